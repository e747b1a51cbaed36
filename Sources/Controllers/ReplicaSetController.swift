import APIMachinery
import Foundation

/// Keeps the number of Pod objects of each ReplicaSet at spec.replicas, as
/// kube-controller-manager's replicaset controller does: it creates and deletes Pod objects
/// (the node agent runs them), adopts matching orphan pods, releases pods that stopped
/// matching, and reports counts and failures in the ReplicaSet's status.
///
/// Instead of client-go's expectations, a reconcile waits until the pod cache holds its own
/// writes, so the next reconcile never creates a pod twice.
public final class ReplicaSetController: Reconciler {
    public let name = "replicaset-controller"
    public let queue = WorkQueue()
    /// kube-controller-manager's --concurrent-replicaset-syncs default.
    public var workers: Int { 5 }

    let context: ControllerContext
    let requeue: DelayedRequeue
    static let manager = "kube-controller-manager"
    /// Upstream's burstReplicas: at most this many creates or deletes per reconcile.
    static let burstReplicas = 500

    public init(_ context: ControllerContext) {
        self.context = context
        requeue = DelayedRequeue(queue)
        context.informers.replicaSets.onChange { [weak self] event in
            self?.queue.add(Informer.key(event.object))
        }
        context.informers.pods.onChange { [weak self] event in self?.podChanged(event) }
    }

    var pods: Informer { context.informers.pods }
    var replicaSets: Informer { context.informers.replicaSets }

    public func reconcile(_ key: String) async throws {
        guard let rs = replicaSets.get(key: key) else { return }
        let namespace = rs.namespace ?? ""
        let selector = LabelSelector.from(rs[path: "spec", "selector"])
        let active = pods.list(namespace: namespace).filter(PodFacts.isActive)
        var claimer = ControllerRefClaimer(client: context.client, resource: Resources.pods, owner: rs,
                                           ownerResource: Resources.replicaSets, manager: Self.manager)
        var owned = try await claimer.claim(active) { selector.matches($0.labels) }
        let countBefore = owned.count
        var written = claimer.revision
        var manageError: APIError?
        if rs.deletionTimestamp == nil {
            let outcome = await manageReplicas(owned, of: rs)
            written = max(written, outcome.revision)
            manageError = outcome.error
        }
        if written > 0 {
            // Report what is there after our own writes, not what was there before them.
            await pods.waitForRevision(written)
            let uid = rs.uid
            owned = pods.list(namespace: namespace).filter { pod in
                PodFacts.isActive(pod) && ControllerRef(of: pod)?.uid == uid && selector.matches(pod.labels)
            }
        }

        let now = Date().timeIntervalSince1970
        let status = Self.calculateStatus(rs, pods: owned, countBefore: countBefore, manageError: manageError, now: now)
        var current = rs
        if status != ReplicaSetStatus(rs["status"]) {
            current["status"] = status.json
            current = try await context.client.update(Resources.replicaSets, current, subresource: "status", manager: Self.manager)
            await replicaSets.waitForRevision(Int64(current.resourceVersion ?? "") ?? 0)
        }
        // Pods turn available minReadySeconds after turning ready, which no watch event
        // announces; look again then.
        let desired = Int(current[path: "spec", "replicas"]?.intValue ?? 1)
        let minReady = current[path: "spec", "minReadySeconds"]?.intValue ?? 0
        if manageError == nil, minReady > 0, status.readyReplicas == desired, status.availableReplicas != desired {
            requeue.add(key, after: .seconds(minReady) + .seconds(1))
        }
        if let manageError { throw manageError }
    }

    // MARK: Creating and deleting pods

    /// Creates or deletes pods so that `owned.count` becomes spec.replicas. Returns the highest
    /// resourceVersion written and the first error.
    func manageReplicas(_ owned: [JSON], of rs: JSON) async -> (revision: Int64, error: APIError?) {
        let desired = Int(rs[path: "spec", "replicas"]?.intValue ?? 1)
        let diff = owned.count - desired
        if diff < 0 {
            return await createPods(min(-diff, Self.burstReplicas), for: rs)
        }
        if diff > 0 {
            let victims = PodFacts.podsToDelete(owned, count: min(diff, Self.burstReplicas), now: Date().timeIntervalSince1970)
            return await deletePods(victims, of: rs)
        }
        return (0, nil)
    }

    func createPods(_ count: Int, for rs: JSON) async -> (revision: Int64, error: APIError?) {
        let pod = Self.pod(from: rs)
        let outcome = await Self.slowStart(count) { await self.createPod(pod, for: rs) }
        return (outcome.revision, outcome.error)
    }

    /// Upstream's slow start: calls `attempt` `count` times in batches of 1, 2, 4, 8, ..., each
    /// batch concurrently, and stops after the first batch with a failure, so that a quota or
    /// admission error costs one request and one event rather than hundreds. Returns the
    /// successes, the highest revision they reported and the first error.
    static func slowStart(_ count: Int, _ attempt: @escaping @Sendable () async -> Result<Int64, APIError>) async
        -> (successes: Int, revision: Int64, error: APIError?) {
        var remaining = count
        var batch = min(remaining, 1)
        var successes = 0
        var revision: Int64 = 0
        while batch > 0 {
            let size = batch
            let results = await withTaskGroup(of: Result<Int64, APIError>.self) { group in
                for _ in 0..<size { group.addTask { await attempt() } }
                var all: [Result<Int64, APIError>] = []
                for await r in group { all.append(r) }
                return all
            }
            var failure: APIError?
            for r in results {
                switch r {
                case .success(let rv):
                    successes += 1
                    revision = max(revision, rv)
                case .failure(let e): failure = failure ?? e
                }
            }
            if let failure { return (successes, revision, failure) }
            remaining -= size
            batch = min(2 * size, remaining)
        }
        return (successes, revision, nil)
    }

    /// One create; success carries the new pod's resourceVersion (0 when the create was
    /// skipped because the namespace is being deleted, which upstream does not count as a failure).
    func createPod(_ pod: JSON, for rs: JSON) async -> Result<Int64, APIError> {
        do {
            let created = try await context.client.create(Resources.pods, pod, manager: Self.manager)
            context.events.record(rs, component: name, reason: "SuccessfulCreate", message: "Created pod: \(created.name ?? "")")
            return .success(Int64(created.resourceVersion ?? "") ?? 0)
        } catch {
            if error.reason == .forbidden, error.message.contains("because it is being terminated") { return .success(0) }
            context.events.record(rs, component: name, type: "Warning", reason: "FailedCreate", message: "Error creating: \(error.message)")
            return .failure(error)
        }
    }

    func deletePods(_ victims: [JSON], of rs: JSON) async -> (revision: Int64, error: APIError?) {
        await withTaskGroup(of: Result<Int64, APIError>.self) { group in
            for pod in victims {
                group.addTask {
                    do throws(APIError) {
                        guard let result = try await self.context.client.remove(Resources.pods, namespace: pod.namespace,
                                                                                name: pod.name ?? "")
                        else { return .success(0) }
                        self.context.events.record(rs, component: self.name, reason: "SuccessfulDelete",
                                                   message: "Deleted pod: \(pod.name ?? "")")
                        return .success(Int64(result.object.resourceVersion ?? "") ?? 0)
                    } catch {
                        self.context.events.record(rs, component: self.name, type: "Warning", reason: "FailedDelete",
                                                   message: "Error deleting: \(error.message)")
                        return .failure(error)
                    }
                }
            }
            var revision: Int64 = 0
            var failure: APIError?
            for await r in group {
                switch r {
                case .success(let rv): revision = max(revision, rv)
                case .failure(let e): failure = failure ?? e
                }
            }
            return (revision, failure)
        }
    }

    /// A pod for `rs` from its template: generated name `<rs>-xxxxx`, the template's labels,
    /// annotations, finalizers and spec, and the ReplicaSet as controller.
    static func pod(from rs: JSON) -> JSON {
        let template = rs[path: "spec", "template"] ?? .object([:])
        let owner = ControllerRef(apiVersion: "apps/v1", kind: "ReplicaSet", name: rs.name ?? "", uid: rs.uid ?? "")
        var meta: JSON = ["generateName": .string((rs.name ?? "") + "-"), "namespace": .string(rs.namespace ?? "")]
        for key in ["labels", "annotations", "finalizers"] {
            if let v = template[path: "metadata", key], !v.isNull { meta[key] = v }
        }
        meta["ownerReferences"] = [owner.json]
        return ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"] ?? .object([:])]
    }

    // MARK: Status

    /// The status the pods call for. `countBefore` is the number of pods before this
    /// reconcile's creates and deletes: it says which way a failure went.
    static func calculateStatus(_ rs: JSON, pods: [JSON], countBefore: Int, manageError: APIError?, now: Double) -> ReplicaSetStatus {
        var status = ReplicaSetStatus(rs["status"])
        let templateLabels = LabelSelector.from(map: (rs[path: "spec", "template"] ?? .null).labels)
        let minReady = Int(rs[path: "spec", "minReadySeconds"]?.intValue ?? 0)
        status.replicas = pods.count
        status.fullyLabeledReplicas = pods.filter { templateLabels.matches($0.labels) }.count
        status.readyReplicas = pods.filter(PodFacts.isReady).count
        status.availableReplicas = pods.filter { PodFacts.isAvailable($0, minReadySeconds: minReady, now: now) }.count
        status.observedGeneration = rs[path: "metadata", "generation"]?.intValue ?? 0
        let hasFailure = status.conditions.contains { $0["type"]?.stringValue == "ReplicaFailure" }
        if let manageError, !hasFailure {
            let desired = Int(rs[path: "spec", "replicas"]?.intValue ?? 1)
            let reason = countBefore < desired ? "FailedCreate" : "FailedDelete"
            status.conditions.append(["type": "ReplicaFailure", "status": "True",
                                      "lastTransitionTime": .string(Timestamp.format(now)),
                                      "reason": .string(reason), "message": .string(manageError.message)])
        } else if manageError == nil, hasFailure {
            status.conditions.removeAll { $0["type"]?.stringValue == "ReplicaFailure" }
        }
        return status
    }

    // MARK: Watch handlers

    func podChanged(_ event: InformerEvent) {
        switch event {
        case .added(let pod):
            // A pod already being deleted when first seen (after a restart) is a deletion.
            if pod.deletionTimestamp != nil { return podGone(pod) }
            if let ref = ControllerRef(of: pod) {
                if let rs = resolve(ref, namespace: pod.namespace) { queue.add(Informer.key(rs)) }
                return
            }
            for rs in replicaSetsSelecting(pod) { queue.add(Informer.key(rs)) }
        case .updated(let old, let cur):
            guard old.resourceVersion != cur.resourceVersion else { return }
            let labelsChanged = old.labels != cur.labels
            if cur.deletionTimestamp != nil {
                // A graceful deletion has begun: replace the pod now rather than when it is gone.
                podGone(cur)
                if labelsChanged { podGone(old) }
                return
            }
            let curRef = ControllerRef(of: cur)
            let oldRef = ControllerRef(of: old)
            if curRef != oldRef, let oldRef, let rs = resolve(oldRef, namespace: old.namespace) {
                queue.add(Informer.key(rs))
            }
            if let curRef {
                guard let rs = resolve(curRef, namespace: cur.namespace) else { return }
                queue.add(Informer.key(rs))
                let minReady = rs[path: "spec", "minReadySeconds"]?.intValue ?? 0
                if minReady > 0, !PodFacts.isReady(old), PodFacts.isReady(cur) {
                    requeue.add(Informer.key(rs), after: .seconds(minReady) + .seconds(1))
                }
                return
            }
            if labelsChanged || curRef != oldRef {
                for rs in replicaSetsSelecting(cur) { queue.add(Informer.key(rs)) }
            }
        case .deleted(let pod):
            podGone(pod)
        }
    }

    func podGone(_ pod: JSON) {
        guard let ref = ControllerRef(of: pod), let rs = resolve(ref, namespace: pod.namespace) else { return }
        queue.add(Informer.key(rs))
    }

    /// The ReplicaSet a controller reference names, if it still is that object.
    func resolve(_ ref: ControllerRef, namespace: String?) -> JSON? {
        guard ref.kind == "ReplicaSet", let rs = replicaSets.get(namespace: namespace, name: ref.name), rs.uid == ref.uid
        else { return nil }
        return rs
    }

    /// ReplicaSets whose (non-empty) selector matches an orphan pod: candidates to adopt it.
    func replicaSetsSelecting(_ pod: JSON) -> [JSON] {
        replicaSets.list(namespace: pod.namespace).filter { rs in
            let selector = LabelSelector.from(rs[path: "spec", "selector"])
            return !selector.isEmpty && selector.matches(pod.labels)
        }
    }
}

/// A ReplicaSet's status. `replicas` is always written; the other counts only when non-zero,
/// as upstream's omitempty fields.
struct ReplicaSetStatus: Sendable, Equatable {
    var replicas = 0
    var fullyLabeledReplicas = 0
    var readyReplicas = 0
    var availableReplicas = 0
    var observedGeneration: Int64 = 0
    var conditions: [JSON] = []

    init(_ json: JSON?) {
        let s = json ?? .null
        replicas = Int(s["replicas"]?.intValue ?? 0)
        fullyLabeledReplicas = Int(s["fullyLabeledReplicas"]?.intValue ?? 0)
        readyReplicas = Int(s["readyReplicas"]?.intValue ?? 0)
        availableReplicas = Int(s["availableReplicas"]?.intValue ?? 0)
        observedGeneration = s["observedGeneration"]?.intValue ?? 0
        conditions = s["conditions"]?.arrayValue ?? []
    }

    var json: JSON {
        var o: JSON = ["replicas": .int(Int64(replicas))]
        if fullyLabeledReplicas != 0 { o["fullyLabeledReplicas"] = .int(Int64(fullyLabeledReplicas)) }
        if readyReplicas != 0 { o["readyReplicas"] = .int(Int64(readyReplicas)) }
        if availableReplicas != 0 { o["availableReplicas"] = .int(Int64(availableReplicas)) }
        if observedGeneration != 0 { o["observedGeneration"] = .int(observedGeneration) }
        if !conditions.isEmpty { o["conditions"] = .array(conditions) }
        return o
    }
}

/// What the replicaset controller reads from pods.
enum PodFacts {
    /// Counted towards replicas: not finished and not being deleted.
    static func isActive(_ pod: JSON) -> Bool {
        let phase = pod[path: "status", "phase"]?.stringValue
        return phase != "Succeeded" && phase != "Failed" && pod.deletionTimestamp == nil
    }

    static func readyCondition(_ pod: JSON) -> JSON? {
        pod[path: "status", "conditions"]?.arrayValue?.first { $0["type"]?.stringValue == "Ready" }
    }

    static func isReady(_ pod: JSON) -> Bool { readyCondition(pod)?["status"]?.stringValue == "True" }

    /// When the pod last turned ready, in unix seconds.
    static func readySince(_ pod: JSON) -> Double? {
        guard isReady(pod) else { return nil }
        return readyCondition(pod)?["lastTransitionTime"]?.stringValue.flatMap(Timestamp.parse)
    }

    /// Ready for at least minReadySeconds.
    static func isAvailable(_ pod: JSON, minReadySeconds: Int, now: Double) -> Bool {
        guard isReady(pod) else { return false }
        if minReadySeconds == 0 { return true }
        guard let since = readySince(pod) else { return false }
        return since + Double(minReadySeconds) < now
    }

    static func maxRestarts(_ pod: JSON) -> Int64 {
        (pod[path: "status", "containerStatuses"]?.arrayValue ?? []).compactMap { $0["restartCount"]?.intValue }.max() ?? 0
    }

    /// The controller.kubernetes.io/pod-deletion-cost annotation (0 when absent or not an int32).
    static func deletionCost(_ pod: JSON) -> Int64 {
        guard let text = pod[path: "metadata", "annotations", "controller.kubernetes.io/pod-deletion-cost"]?.stringValue,
              let v = Int32(text) else { return 0 }
        return Int64(v)
    }

    static func phaseOrder(_ pod: JSON) -> Int {
        switch pod[path: "status", "phase"]?.stringValue {
        case "Unknown": 1
        case "Running": 2
        default: 0
        }
    }

    /// The `count` pods to delete first, by upstream's ranking: unscheduled before scheduled,
    /// Pending before Unknown before Running, not ready before ready, lower deletion cost
    /// first, ready for less time first, more restarts first, newer first. Times compare on a
    /// logarithmic scale (pods of similar age are equals, ties broken by uid) as with
    /// upstream's LogarithmicScaleDown. Upstream also prefers nodes crowded with sibling pods,
    /// which cannot differ on a single node, so that rule is left out.
    static func podsToDelete(_ pods: [JSON], count: Int, now: Double) -> [JSON] {
        guard count < pods.count else { return pods }
        return Array(pods.sorted { deleteBefore($0, $1, now: now) }.prefix(count))
    }

    static func deleteBefore(_ a: JSON, _ b: JSON, now: Double) -> Bool {
        let nodeA = a[path: "spec", "nodeName"]?.stringValue ?? ""
        let nodeB = b[path: "spec", "nodeName"]?.stringValue ?? ""
        if nodeA != nodeB && (nodeA.isEmpty || nodeB.isEmpty) { return nodeA.isEmpty }
        if phaseOrder(a) != phaseOrder(b) { return phaseOrder(a) < phaseOrder(b) }
        if isReady(a) != isReady(b) { return !isReady(a) }
        if deletionCost(a) != deletionCost(b) { return deletionCost(a) < deletionCost(b) }
        if isReady(a) && isReady(b) {
            let ra = readySince(a)
            let rb = readySince(b)
            if ra != rb { return newerFirst(ra, rb, now: now, a, b) }
        }
        if maxRestarts(a) != maxRestarts(b) { return maxRestarts(a) > maxRestarts(b) }
        let ca = a[path: "metadata", "creationTimestamp"]?.stringValue.flatMap(Timestamp.parse)
        let cb = b[path: "metadata", "creationTimestamp"]?.stringValue.flatMap(Timestamp.parse)
        if ca != cb { return newerFirst(ca, cb, now: now, a, b) }
        return false
    }

    /// Newer (or unknown) time first, comparing whole powers of two of the age in nanoseconds.
    static func newerFirst(_ ta: Double?, _ tb: Double?, now: Double, _ a: JSON, _ b: JSON) -> Bool {
        guard let ta, let tb else { return ta == nil }
        func rank(_ t: Double) -> Int {
            let age = (now - t) * 1e9
            return age > 0 ? Int(log2(age)) : -1
        }
        let diff = rank(ta) - rank(tb)
        if diff == 0 { return (a.uid ?? "") < (b.uid ?? "") }
        return diff < 0
    }
}
