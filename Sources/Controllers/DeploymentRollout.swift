import APIMachinery
import Foundation

// The arithmetic and bookkeeping of Deployment rollouts, kept free of I/O so it can be tested
// table by table. The rules (rounding, fenceposts, proportions, orderings) follow
// kube-controller-manager's deployment controller, because kubectl and users reason with them.

/// Annotation and label keys the deployment controller shares with kubectl.
enum DeploymentKeys {
    static let revision = "deployment.kubernetes.io/revision"
    static let revisionHistory = "deployment.kubernetes.io/revision-history"
    static let desiredReplicas = "deployment.kubernetes.io/desired-replicas"
    static let maxReplicas = "deployment.kubernetes.io/max-replicas"
    static let podTemplateHash = "pod-template-hash"
    /// Deployment annotations that are never copied to ReplicaSets (and back on undo).
    static let notCopied: Set<String> = [
        "kubectl.kubernetes.io/last-applied-configuration", revision, revisionHistory, desiredReplicas, maxReplicas,
        "deprecated.deployment.rollback.to",
    ]
    /// Upstream caps the revision-history annotation at about a hundred entries.
    static let revisionHistoryLimitChars = 2000
}

/// What the rollout rules need to know about a Deployment's spec.
struct DeploymentParams: Sendable, Equatable {
    var replicas: Int
    var rolling: Bool
    var maxSurgeValue: JSON?
    var maxUnavailableValue: JSON?

    init(replicas: Int, rolling: Bool = true, maxSurge: JSON? = "25%", maxUnavailable: JSON? = "25%") {
        self.replicas = replicas
        self.rolling = rolling
        self.maxSurgeValue = maxSurge
        self.maxUnavailableValue = maxUnavailable
    }

    init(_ deployment: JSON) {
        replicas = Int(deployment[path: "spec", "replicas"]?.intValue ?? 1)
        rolling = (deployment[path: "spec", "strategy", "type"]?.stringValue ?? "RollingUpdate") == "RollingUpdate"
        maxSurgeValue = deployment[path: "spec", "strategy", "rollingUpdate", "maxSurge"]
        maxUnavailableValue = deployment[path: "spec", "strategy", "rollingUpdate", "maxUnavailable"]
    }

    var fenceposts: (surge: Int, unavailable: Int) {
        RolloutMath.resolveFenceposts(maxSurge: maxSurgeValue, maxUnavailable: maxUnavailableValue, desired: replicas)
    }

    /// Pods allowed above `replicas` during a rollout (0 for Recreate).
    var maxSurge: Int { rolling ? fenceposts.surge : 0 }

    /// Pods allowed to be unavailable during a rollout, never more than `replicas` (0 for Recreate).
    var maxUnavailable: Int {
        guard rolling, replicas != 0 else { return 0 }
        return min(fenceposts.unavailable, replicas)
    }

    /// Upstream's MinAvailable: 0 for Recreate, which may take everything down.
    var minAvailable: Int { rolling ? replicas - maxUnavailable : 0 }
}

/// The numbers of one ReplicaSet that the rollout rules use.
struct ReplicaSetFigures: Sendable, Equatable {
    var name: String
    /// creationTimestamp in unix seconds (whole seconds, like metav1.Time).
    var created: Double
    /// spec.replicas
    var replicas: Int
    /// status.availableReplicas
    var available: Int = 0
    /// The max-replicas annotation: deployment size plus surge when this set was last scaled.
    var maxReplicasAnnotation: Int?

    init(name: String, created: Double, replicas: Int, available: Int = 0, maxReplicasAnnotation: Int? = nil) {
        self.name = name
        self.created = created
        self.replicas = replicas
        self.available = available
        self.maxReplicasAnnotation = maxReplicasAnnotation
    }

    init(_ rs: JSON) {
        name = rs.name ?? ""
        created = rs[path: "metadata", "creationTimestamp"]?.stringValue.flatMap(Timestamp.parse) ?? 0
        replicas = Int(rs[path: "spec", "replicas"]?.intValue ?? 1)
        available = Int(rs[path: "status", "availableReplicas"]?.intValue ?? 0)
        maxReplicasAnnotation = rs[path: "metadata", "annotations", DeploymentKeys.maxReplicas]?.stringValue.flatMap { Int($0) }
    }
}

enum RolloutMath {
    /// An IntOrString such as `2` or `"25%"` as a count out of `total`. Percentages round up for
    /// surge and down for unavailability, so a rollout never stalls at zero and never drops
    /// below what was asked. A string that is not a percentage counts as 0 (validation refuses it).
    static func scaled(_ value: JSON?, total: Int, roundUp: Bool) -> Int {
        switch value {
        case .int(let n)?: return Int(n)
        case .double(let d)? where d.rounded() == d: return Int(d)
        case .string(let s)? where s.hasSuffix("%"):
            guard let percent = Int(s.dropLast()) else { return 0 }
            let exact = Double(percent) * Double(total) / 100
            return Int(roundUp ? exact.rounded(.up) : exact.rounded(.down))
        default: return 0
        }
    }

    /// maxSurge and maxUnavailable together: if both come out 0 (a small deployment with
    /// percentages), one pod may be unavailable, or the rollout could never move.
    static func resolveFenceposts(maxSurge: JSON?, maxUnavailable: JSON?, desired: Int) -> (surge: Int, unavailable: Int) {
        let surge = scaled(maxSurge, total: desired, roundUp: true)
        var unavailable = scaled(maxUnavailable, total: desired, roundUp: false)
        if surge == 0 && unavailable == 0 { unavailable = 1 }
        return (surge, unavailable)
    }

    /// The size the new ReplicaSet may grow to now: Recreate jumps to the full size; a rolling
    /// update grows within replicas + maxSurge counting every set's spec.replicas, never past
    /// the deployment's size.
    static func newReplicaSetSize(_ p: DeploymentParams, allReplicas: Int, newReplicas: Int) -> Int {
        guard p.rolling else { return p.replicas }
        let maxTotal = p.replicas + p.maxSurge
        if allReplicas >= maxTotal { return newReplicas }
        return newReplicas + min(maxTotal - allReplicas, p.replicas - newReplicas)
    }

    /// How many old pods a rolling update may remove now. Unavailable new pods count against
    /// the budget so that a broken new template cannot eat into the old, working pods.
    static func oldScaleDownBudget(_ p: DeploymentParams, allReplicas: Int, newReplicas: Int, newAvailable: Int) -> Int {
        allReplicas - (p.replicas - p.maxUnavailable) - (newReplicas - newAvailable)
    }

    /// Scales down the unavailable part of old sets first (oldest set first): removing pods that
    /// serve nothing costs no availability. Returns the new sizes of the sets it touched.
    static func cleanupUnhealthy(old: [ReplicaSetFigures], budget: Int) -> [(name: String, replicas: Int)] {
        var out: [(name: String, replicas: Int)] = []
        var done = 0
        for rs in byCreation(old) {
            if done >= budget { break }
            guard rs.replicas > 0, rs.replicas != rs.available else { continue }
            let n = min(budget - done, rs.replicas - rs.available)
            guard n > 0 else { continue }
            out.append((rs.name, rs.replicas - n))
            done += n
        }
        return out
    }

    /// Scales old sets down (oldest first) by as many pods as are available above minAvailable.
    static func scaleDownOld(old: [ReplicaSetFigures], availableTotal: Int, minAvailable: Int) -> [(name: String, replicas: Int)] {
        guard availableTotal > minAvailable else { return [] }
        let wanted = availableTotal - minAvailable
        var out: [(name: String, replicas: Int)] = []
        var done = 0
        for rs in byCreation(old) {
            if done >= wanted { break }
            guard rs.replicas > 0 else { continue }
            let n = min(rs.replicas, wanted - done)
            out.append((rs.name, rs.replicas - n))
            done += n
        }
        return out
    }

    /// Proportional scaling: when a deployment is resized while several sets are active, the
    /// change is shared out in proportion to each set's size (measured against the size it was
    /// given, the max-replicas annotation), so a rollout neither speeds up nor slows down.
    /// Returns the direction ("up", "down" or "") and each active set's new size, in the order
    /// the sets are written.
    static func proportionalSizes(active: [ReplicaSetFigures], _ p: DeploymentParams,
                                  statusReplicas: Int) -> (direction: String, sizes: [(name: String, replicas: Int)]) {
        let current = active.reduce(0) { $0 + $1.replicas }
        let allowed = p.replicas > 0 ? p.replicas + p.maxSurge : 0
        let toAdd = allowed - current
        var ordered = active
        var direction = ""
        if toAdd > 0 {
            ordered = bySizeNewer(active)
            direction = "up"
        } else if toAdd < 0 {
            ordered = bySizeOlder(active)
            direction = "down"
        }
        var added = 0
        var sizes: [(name: String, replicas: Int)] = []
        for rs in ordered {
            var size = rs.replicas
            if toAdd != 0 {
                let share = proportion(rs, p, toAdd: toAdd, added: added, statusReplicas: statusReplicas)
                size += share
                added += share
            }
            sizes.append((rs.name, size))
        }
        // Rounding leftovers go to the first (largest) set.
        if toAdd != 0, !sizes.isEmpty {
            sizes[0].replicas = max(0, sizes[0].replicas + toAdd - added)
        }
        return (direction, sizes)
    }

    /// One set's share of `toAdd`, never overshooting what is left to add or remove.
    static func proportion(_ rs: ReplicaSetFigures, _ p: DeploymentParams, toAdd: Int, added: Int, statusReplicas: Int) -> Int {
        guard rs.replicas != 0, toAdd != 0, toAdd != added else { return 0 }
        let fraction = fraction(rs, p, statusReplicas: statusReplicas)
        let allowed = toAdd - added
        return toAdd > 0 ? min(fraction, allowed) : max(fraction, allowed)
    }

    static func fraction(_ rs: ReplicaSetFigures, _ p: DeploymentParams, statusReplicas: Int) -> Int {
        if p.replicas == 0 { return -rs.replicas }
        let target = p.replicas + p.maxSurge
        // Without the annotation the deployment's current size is the best guess.
        let annotated = rs.maxReplicasAnnotation ?? statusReplicas
        guard annotated != 0 else { return 0 }
        let size = (Double(rs.replicas * target) / Double(annotated)).rounded()
        return Int(size) - rs.replicas
    }

    // MARK: Orderings (upstream's sort.Interface types, as stable Swift sorts)

    static func earlier(_ a: ReplicaSetFigures, _ b: ReplicaSetFigures) -> Bool {
        a.created == b.created ? a.name < b.name : a.created < b.created
    }

    static func byCreation(_ sets: [ReplicaSetFigures]) -> [ReplicaSetFigures] { sets.sorted(by: earlier) }

    /// Larger first; among equal sizes the newer first (scaling up favours the new template).
    static func bySizeNewer(_ sets: [ReplicaSetFigures]) -> [ReplicaSetFigures] {
        sets.sorted { a, b in a.replicas == b.replicas ? earlier(b, a) : a.replicas > b.replicas }
    }

    /// Larger first; among equal sizes the older first (scaling down removes old pods first).
    static func bySizeOlder(_ sets: [ReplicaSetFigures]) -> [ReplicaSetFigures] {
        sets.sorted { a, b in a.replicas == b.replicas ? earlier(a, b) : a.replicas > b.replicas }
    }
}

// MARK: - Pod template identity

/// Pod templates compared and hashed by meaning rather than by bytes: member order, nulls and
/// empty lists or maps do not count, and the `pod-template-hash` label is ignored, as
/// upstream's EqualIgnoreHash does on typed objects. That is what lets `kubectl rollout undo`
/// (which writes an old ReplicaSet's template back into the Deployment) find the old set.
enum PodTemplates {
    static func withoutHashLabel(_ template: JSON) -> JSON {
        var t = template
        t[path: "metadata", "labels", DeploymentKeys.podTemplateHash] = nil
        return t
    }

    static func equalIgnoringHash(_ a: JSON?, _ b: JSON?) -> Bool {
        canonical(a.map(withoutHashLabel)) == canonical(b.map(withoutHashLabel))
    }

    /// Members sorted by key, nulls and empty containers dropped, integral doubles as integers.
    static func canonical(_ value: JSON?) -> JSON? {
        guard let value else { return nil }
        switch value {
        case .null: return nil
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return .int(Int64(d))
        case .array(let items):
            if items.isEmpty { return nil }
            // Positions matter in a list, so an element that normalises away stays as a placeholder.
            return .array(items.map { canonical($0) ?? .null })
        case .object(let members):
            var out = JSONObject()
            for key in members.keys.sorted() {
                if let v = canonical(members[key]) { out[key] = v }
            }
            return out.isEmpty ? nil : .object(out)
        default: return value
        }
    }

    /// The `pod-template-hash` value: a 32-bit FNV-1a hash of the canonical template (plus the
    /// collision count, when set) written with the apiserver's name alphabet, as upstream
    /// renders it. The bytes hashed differ from upstream's, so the value does too, but it is
    /// stable across restarts and equal for equal templates.
    static func hash(_ template: JSON, collisionCount: Int64?) -> String {
        var h: UInt32 = 2_166_136_261
        func feed(_ bytes: some Sequence<UInt8>) {
            for b in bytes {
                h ^= UInt32(b)
                h = h &* 16_777_619
            }
        }
        feed((canonical(withoutHashLabel(template)) ?? .object([:])).serialized())
        if let collisionCount {
            let c = UInt32(truncatingIfNeeded: collisionCount)
            feed([UInt8(c & 0xff), UInt8((c >> 8) & 0xff), UInt8((c >> 16) & 0xff), UInt8(c >> 24)])
        }
        // Upstream maps each decimal digit of the hash through the alphabet by its byte value.
        let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")
        return String(String(h).utf8.map { alphabet[Int($0) % alphabet.count] })
    }
}

// MARK: - Status

/// One entry of a Deployment's status.conditions.
struct DeploymentCondition: Sendable, Equatable {
    var type: String
    var status: String
    var reason: String
    var message: String
    var lastUpdateTime: String
    var lastTransitionTime: String

    init(type: String, status: String, reason: String, message: String, now: String) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        lastUpdateTime = now
        lastTransitionTime = now
    }

    init(_ json: JSON) {
        type = json["type"]?.stringValue ?? ""
        status = json["status"]?.stringValue ?? ""
        reason = json["reason"]?.stringValue ?? ""
        message = json["message"]?.stringValue ?? ""
        lastUpdateTime = json["lastUpdateTime"]?.stringValue ?? ""
        lastTransitionTime = json["lastTransitionTime"]?.stringValue ?? ""
    }

    var json: JSON {
        var o: JSON = ["type": .string(type), "status": .string(status)]
        if !lastUpdateTime.isEmpty { o["lastUpdateTime"] = .string(lastUpdateTime) }
        if !lastTransitionTime.isEmpty { o["lastTransitionTime"] = .string(lastTransitionTime) }
        if !reason.isEmpty { o["reason"] = .string(reason) }
        if !message.isEmpty { o["message"] = .string(message) }
        return o
    }
}

/// A Deployment's status, written with the zero counts left out as upstream's omitempty does.
struct DeploymentStatus: Sendable, Equatable {
    var observedGeneration: Int64 = 0
    var replicas = 0
    var updatedReplicas = 0
    var readyReplicas = 0
    var availableReplicas = 0
    var unavailableReplicas = 0
    var collisionCount: Int64?
    var conditions: [DeploymentCondition] = []

    init() {}

    init(_ json: JSON?) {
        let s = json ?? .null
        observedGeneration = s["observedGeneration"]?.intValue ?? 0
        replicas = Int(s["replicas"]?.intValue ?? 0)
        updatedReplicas = Int(s["updatedReplicas"]?.intValue ?? 0)
        readyReplicas = Int(s["readyReplicas"]?.intValue ?? 0)
        availableReplicas = Int(s["availableReplicas"]?.intValue ?? 0)
        unavailableReplicas = Int(s["unavailableReplicas"]?.intValue ?? 0)
        collisionCount = s["collisionCount"]?.intValue
        conditions = (s["conditions"]?.arrayValue ?? []).map(DeploymentCondition.init)
    }

    var json: JSON {
        var o: JSON = .object([:])
        if observedGeneration != 0 { o["observedGeneration"] = .int(observedGeneration) }
        for (key, value) in [("replicas", replicas), ("updatedReplicas", updatedReplicas), ("readyReplicas", readyReplicas),
                             ("availableReplicas", availableReplicas), ("unavailableReplicas", unavailableReplicas)]
        where value != 0 {
            o[key] = .int(Int64(value))
        }
        if !conditions.isEmpty { o["conditions"] = .array(conditions.map(\.json)) }
        if let collisionCount { o["collisionCount"] = .int(collisionCount) }
        return o
    }

    func condition(_ type: String) -> DeploymentCondition? { conditions.first { $0.type == type } }

    /// Sets a condition unless one with the same status and reason is there; keeps the
    /// transition time while the status stays the same. The changed condition moves last.
    mutating func set(_ condition: DeploymentCondition) {
        var c = condition
        if let current = self.condition(c.type) {
            if current.status == c.status && current.reason == c.reason { return }
            if current.status == c.status { c.lastTransitionTime = current.lastTransitionTime }
        }
        remove(c.type)
        conditions.append(c)
    }

    mutating func remove(_ type: String) { conditions.removeAll { $0.type == type } }

    /// All desired replicas updated and available, nothing old left, and the latest spec seen.
    func isComplete(replicas: Int, generation: Int64) -> Bool {
        updatedReplicas == replicas && self.replicas == replicas && availableReplicas == replicas
            && observedGeneration >= generation
    }

    /// Whether `self` (new) shows progress over `old`: more updated, ready or available pods,
    /// or fewer old ones.
    func progressed(since old: DeploymentStatus) -> Bool {
        updatedReplicas > old.updatedReplicas
            || (replicas - updatedReplicas) < (old.replicas - old.updatedReplicas)
            || readyReplicas > old.readyReplicas
            || availableReplicas > old.availableReplicas
    }
}
