import APIMachinery
import Foundation

/// Rolls Deployments out through ReplicaSets, as kube-controller-manager's deployment
/// controller does: one ReplicaSet per pod template (named `<deployment>-<pod-template-hash>`),
/// RollingUpdate within maxSurge/maxUnavailable or Recreate, proportional scaling, revision
/// annotations for `kubectl rollout history/undo`, history cleanup, and the status and
/// conditions `kubectl rollout status` and `describe` read.
///
/// Every write carries the resourceVersion it was decided on; a 409 ends the reconcile with
/// an error and the work queue retries the key on fresh data.
public final class DeploymentController: Reconciler {
    public let name = "deployment-controller"
    public let queue = WorkQueue()
    /// kube-controller-manager's --concurrent-deployment-syncs default.
    public var workers: Int { 5 }

    let context: ControllerContext
    let requeue: DelayedRequeue
    static let manager = "kube-controller-manager"

    public init(_ context: ControllerContext) {
        self.context = context
        requeue = DelayedRequeue(queue)
        context.informers.deployments.onChange { [weak self] event in
            self?.queue.add(Informer.key(event.object))
        }
        context.informers.replicaSets.onChange { [weak self] event in self?.replicaSetChanged(event) }
        context.informers.pods.onChange { [weak self] event in
            if case .deleted(let pod) = event { self?.podDeleted(pod) }
        }
    }

    var deployments: Informer { context.informers.deployments }
    var replicaSets: Informer { context.informers.replicaSets }
    var pods: Informer { context.informers.pods }

    public func reconcile(_ key: String) async throws {
        guard let deployment = deployments.get(key: key) else { return }
        let sync = DeploymentSync(self, deployment, key: key)
        do {
            try await sync.run()
        } catch {
            await sync.settle()
            throw error
        }
        await sync.settle()
    }

    // MARK: Watch handlers

    func replicaSetChanged(_ event: InformerEvent) {
        switch event {
        case .added(let rs):
            if rs.deletionTimestamp != nil { return replicaSetGone(rs) }
            if let ref = ControllerRef(of: rs) {
                if let d = resolve(ref, namespace: rs.namespace) { queue.add(Informer.key(d)) }
                return
            }
            for d in deploymentsSelecting(rs) { queue.add(Informer.key(d)) }
        case .updated(let old, let cur):
            guard old.resourceVersion != cur.resourceVersion else { return }
            let curRef = ControllerRef(of: cur)
            let oldRef = ControllerRef(of: old)
            if curRef != oldRef, let oldRef, let d = resolve(oldRef, namespace: old.namespace) {
                queue.add(Informer.key(d))
            }
            if let curRef {
                if let d = resolve(curRef, namespace: cur.namespace) { queue.add(Informer.key(d)) }
                return
            }
            // An orphan whose labels or owner changed may now be someone's to adopt.
            if old.labels != cur.labels || curRef != oldRef {
                for d in deploymentsSelecting(cur) { queue.add(Informer.key(d)) }
            }
        case .deleted(let rs):
            replicaSetGone(rs)
        }
    }

    func replicaSetGone(_ rs: JSON) {
        guard let ref = ControllerRef(of: rs), let d = resolve(ref, namespace: rs.namespace) else { return }
        queue.add(Informer.key(d))
    }

    /// Recreate starts the new pods only once every old pod is gone; the last deletion is the cue.
    func podDeleted(_ pod: JSON) {
        guard let podRef = ControllerRef(of: pod), podRef.kind == "ReplicaSet",
              let rs = replicaSets.get(namespace: pod.namespace, name: podRef.name), rs.uid == podRef.uid,
              let rsRef = ControllerRef(of: rs), let d = resolve(rsRef, namespace: rs.namespace),
              !DeploymentParams(d).rolling
        else { return }
        let ownedSets = Set(replicaSets.list(namespace: d.namespace).filter { ControllerRef(of: $0)?.uid == d.uid }.compactMap(\.uid))
        let selector = LabelSelector.from(d[path: "spec", "selector"])
        let left = pods.list(namespace: d.namespace, selector: selector).contains { p in
            ControllerRef(of: p).map { ownedSets.contains($0.uid) } ?? false
        }
        if !left { queue.add(Informer.key(d)) }
    }

    func resolve(_ ref: ControllerRef, namespace: String?) -> JSON? {
        guard ref.kind == "Deployment", let d = deployments.get(namespace: namespace, name: ref.name), d.uid == ref.uid
        else { return nil }
        return d
    }

    /// Deployments whose (non-empty) selector matches an orphan ReplicaSet's labels.
    func deploymentsSelecting(_ rs: JSON) -> [JSON] {
        let labels = rs.labels
        guard !labels.isEmpty else { return [] }
        return deployments.list(namespace: rs.namespace).filter { d in
            let selector = LabelSelector.from(d[path: "spec", "selector"])
            return !selector.isEmpty && selector.matches(labels)
        }
    }
}

/// One reconcile of one Deployment. It keeps the latest version of everything it wrote, so
/// a later step builds on the earlier ones instead of on the cache, and remembers the
/// revisions written so the caches can catch up before the next reconcile.
final class DeploymentSync {
    let controller: DeploymentController
    let key: String
    var d: JSON
    /// The ReplicaSets this Deployment manages (after adoption and release), kept current.
    var sets: [JSON] = []
    /// uid of the set whose template is the Deployment's, once known.
    var newUID: String?
    var setsWritten: Int64 = 0
    var deploymentWritten: Int64 = 0
    let nowSeconds = Date().timeIntervalSince1970
    var now: String { Timestamp.format(nowSeconds) }

    init(_ controller: DeploymentController, _ deployment: JSON, key: String) {
        self.controller = controller
        self.d = deployment
        self.key = key
    }

    var client: any APIClient { controller.context.client }
    var namespace: String { d.namespace ?? "" }
    var params: DeploymentParams { DeploymentParams(d) }
    var generation: Int64 { d[path: "metadata", "generation"]?.intValue ?? 0 }
    var paused: Bool { d[path: "spec", "paused"]?.boolValue == true }
    var status: DeploymentStatus { DeploymentStatus(d["status"]) }
    var newSet: JSON? { newUID.flatMap { uid in sets.first { $0.uid == uid } } }
    var oldSets: [JSON] { sets.filter { $0.uid != newUID } }

    /// progressDeadlineSeconds, unless absent or "forever" (max int32).
    var progressDeadline: Double? {
        guard let v = d[path: "spec", "progressDeadlineSeconds"]?.intValue, v != Int64(Int32.max) else { return nil }
        return Double(v)
    }

    /// Waits until the caches hold this reconcile's writes.
    func settle() async {
        await controller.replicaSets.waitForRevision(setsWritten)
        await controller.deployments.waitForRevision(deploymentWritten)
    }

    func run() async throws {
        let selectorJSON = d[path: "spec", "selector"]
        if selectorJSON?.objectValue != nil, PodTemplates.canonical(selectorJSON) == nil {
            event("Warning", "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
            if status.observedGeneration < generation {
                var s = status
                s.observedGeneration = generation
                try await writeStatus(s)
            }
            return
        }
        let selector = LabelSelector.from(selectorJSON)
        try await claimReplicaSets(selector)
        let podMap = podsBySet(selector)

        // Being deleted: only report; the garbage collector removes the sets.
        if d.deletionTimestamp != nil {
            try await syncNewReplicaSet(create: false)
            try await syncStatus()
            return
        }
        try await checkPausedConditions()
        // Resizes (and anything while paused) are handled apart from the rollout, so a resize
        // mid-rollout is shared out proportionally instead of advancing the rollout.
        if paused {
            try await syncScaling()
            return
        }
        if try await isScalingEvent() {
            try await syncScaling()
            return
        }
        if params.rolling {
            try await rolloutRolling()
        } else {
            try await rolloutRecreate(podMap)
        }
    }

    // MARK: Ownership

    func claimReplicaSets(_ selector: LabelSelector) async throws {
        var claimer = ControllerRefClaimer(client: client, resource: Resources.replicaSets, owner: d,
                                           ownerResource: Resources.deployments, manager: DeploymentController.manager)
        sets = try await claimer.claim(controller.replicaSets.list(namespace: namespace)) { selector.matches($0.labels) }
        setsWritten = max(setsWritten, claimer.revision)
    }

    /// Every pod of the managed sets (terminating and finished ones included), by set uid.
    func podsBySet(_ selector: LabelSelector) -> [String: [JSON]] {
        var map: [String: [JSON]] = [:]
        for rs in sets { map[rs.uid ?? ""] = [] }
        for pod in controller.pods.list(namespace: namespace, selector: selector) {
            guard let ref = ControllerRef(of: pod), map[ref.uid] != nil else { continue }
            map[ref.uid, default: []].append(pod)
        }
        return map
    }

    // MARK: The new ReplicaSet and revisions

    /// Finds (and with `create`, creates) the ReplicaSet of the current template, brings its
    /// revision and copied annotations up to date, and the Deployment's revision with it.
    @discardableResult
    func syncNewReplicaSet(create: Bool) async throws -> JSON? {
        let template = d[path: "spec", "template"]
        // The oldest set with the template wins, should there be several.
        let existing = sets.sorted { RolloutMath.earlier(ReplicaSetFigures($0), ReplicaSetFigures($1)) }
            .first { PodTemplates.equalIgnoringHash($0[path: "spec", "template"], template) }
        newUID = existing?.uid
        let newRevision = (oldSets.compactMap(Self.revision).max() ?? 0) + 1

        if var rs = existing {
            let annotationsChanged = setNewReplicaSetAnnotations(&rs, newRevision: newRevision, exists: true)
            let minReady = d[path: "spec", "minReadySeconds"]?.intValue ?? 0
            if annotationsChanged || (rs[path: "spec", "minReadySeconds"]?.intValue ?? 0) != minReady {
                rs[path: "spec", "minReadySeconds"] = minReady == 0 ? nil : .int(minReady)
                rs = try await update(rs)
            }
            var s = status
            var needsWrite = false
            let revision = rs[path: "metadata", "annotations", DeploymentKeys.revision]?.stringValue
            if let revision, Self.annotation(d, DeploymentKeys.revision) != revision { needsWrite = true }
            if progressDeadline != nil, s.condition("Progressing") == nil {
                s.set(condition("Progressing", "True", "FoundNewReplicaSet", "Found new replica set \"\(rs.name ?? "")\""))
                needsWrite = true
            }
            if needsWrite { try await writeStatus(s, revision: revision) }
            return rs
        }
        guard create else { return nil }

        var s = status
        let hash = PodTemplates.hash(template ?? .object([:]), collisionCount: s.collisionCount)
        var newTemplate = template ?? .object([:])
        newTemplate[path: "metadata", "labels", DeploymentKeys.podTemplateHash] = .string(hash)
        var selector = d[path: "spec", "selector"] ?? .object([:])
        selector[path: "matchLabels", DeploymentKeys.podTemplateHash] = .string(hash)
        let rsName = "\(d.name ?? "")-\(hash)"
        let owner = ControllerRef(apiVersion: "apps/v1", kind: "Deployment", name: d.name ?? "", uid: d.uid ?? "")
        let currentTotal = sets.reduce(0) { $0 + Self.replicas($1) }
        let size = RolloutMath.newReplicaSetSize(params, allReplicas: currentTotal, newReplicas: 0)
        var rs: JSON = [
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": ["name": .string(rsName), "namespace": .string(namespace),
                         "labels": newTemplate[path: "metadata", "labels"] ?? .object([:]),
                         "ownerReferences": [owner.json]],
            "spec": ["replicas": .int(Int64(size)), "selector": selector, "template": newTemplate],
        ]
        if let minReady = d[path: "spec", "minReadySeconds"]?.intValue, minReady != 0 {
            rs[path: "spec", "minReadySeconds"] = .int(minReady)
        }
        _ = setNewReplicaSetAnnotations(&rs, newRevision: newRevision, exists: false)

        var alreadyExisted = false
        let created: JSON
        do {
            created = try await client.create(Resources.replicaSets, rs, manager: DeploymentController.manager)
            note(set: created)
        } catch where error.reason == .alreadyExists {
            // Ours from an earlier pass the cache had not shown, or another template with the
            // same hash: then count a collision so the next pass hashes differently.
            let found = try await client.find(Resources.replicaSets, namespace: namespace, name: rsName)
            guard let found, ControllerRef(of: found)?.uid == d.uid,
                  PodTemplates.equalIgnoringHash(found[path: "spec", "template"], template)
            else {
                s.collisionCount = (s.collisionCount ?? 0) + 1
                try? await writeStatus(s)
                throw error
            }
            created = found
            alreadyExisted = true
            note(set: found)
        } catch {
            if error.reason == .forbidden, error.message.contains("because it is being terminated") { throw error }
            let message = "Failed to create new replica set \"\(rsName)\": \(error.message)"
            if progressDeadline != nil {
                s.set(condition("Progressing", "False", "ReplicaSetCreateError", message))
                try? await writeStatus(s)
            }
            event("Warning", "ReplicaSetCreateError", message)
            throw error
        }
        newUID = created.uid
        if !alreadyExisted && size > 0 {
            event("Normal", "ScalingReplicaSet", "Scaled up replica set \(created.name ?? "") from 0 to \(size)")
        }
        let revision = String(newRevision)
        var needsWrite = Self.annotation(d, DeploymentKeys.revision) != revision
        if !alreadyExisted && progressDeadline != nil {
            s.set(condition("Progressing", "True", "NewReplicaSetCreated", "Created new replica set \"\(created.name ?? "")\""))
            needsWrite = true
        }
        if needsWrite { try await writeStatus(s, revision: revision) }
        return created
    }

    /// Copies the Deployment's annotations to the new set, raises its revision to
    /// `newRevision` (keeping the revisions it served before in revision-history), and for a
    /// set about to be created, records the sizes it is created for. Returns whether anything changed.
    func setNewReplicaSetAnnotations(_ rs: inout JSON, newRevision: Int64, exists: Bool) -> Bool {
        var changed = false
        if let annotations = d[path: "metadata", "annotations"]?.objectValue {
            for (k, v) in annotations where !DeploymentKeys.notCopied.contains(k) {
                guard let value = v.stringValue, Self.annotation(rs, k) != value else { continue }
                rs[path: "metadata", "annotations", k] = .string(value)
                changed = true
            }
        }
        let oldText = Self.annotation(rs, DeploymentKeys.revision) ?? ""
        var oldRevision: Int64 = 0
        if !oldText.isEmpty {
            // Not a number: leave this set's revision alone, as upstream does.
            guard let parsed = Int64(oldText) else { return changed }
            oldRevision = parsed
        }
        if oldRevision < newRevision {
            rs[path: "metadata", "annotations", DeploymentKeys.revision] = .string(String(newRevision))
            changed = true
            // Brought back (rollout undo): remember the revisions it had.
            if !oldText.isEmpty {
                let history = Self.annotation(rs, DeploymentKeys.revisionHistory) ?? ""
                if let updated = Self.appendHistory(history, oldText) {
                    rs[path: "metadata", "annotations", DeploymentKeys.revisionHistory] = .string(updated)
                }
            }
        }
        if !exists, setReplicasAnnotations(&rs) { changed = true }
        return changed
    }

    /// revision-history plus one revision, dropping the oldest entries to stay within the limit.
    static func appendHistory(_ history: String, _ revision: String) -> String? {
        if history.isEmpty { return revision }
        var parts = history.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var total = history.count + revision.count + 1
        var start = 0
        while total > DeploymentKeys.revisionHistoryLimitChars && start < parts.count {
            total -= parts[start].count + 1
            start += 1
        }
        guard total <= DeploymentKeys.revisionHistoryLimitChars else { return nil }
        parts = Array(parts[start...]) + [revision]
        return parts.joined(separator: ",")
    }

    /// desired-replicas and max-replicas: the deployment size this set was last scaled for.
    func setReplicasAnnotations(_ rs: inout JSON) -> Bool {
        let p = params
        var changed = false
        for (k, v) in [(DeploymentKeys.desiredReplicas, p.replicas), (DeploymentKeys.maxReplicas, p.replicas + p.maxSurge)]
        where Self.annotation(rs, k) != String(v) {
            rs[path: "metadata", "annotations", k] = .string(String(v))
            changed = true
        }
        return changed
    }

    // MARK: Scaling

    /// A change of spec.replicas (or anything while paused): resize the active sets without
    /// advancing the rollout.
    func syncScaling() async throws {
        try await syncNewReplicaSet(create: false)
        try await scale()
        if paused { try await cleanup() }
        try await syncStatus()
    }

    /// Whether spec.replicas changed since the active sets were last sized.
    func isScalingEvent() async throws -> Bool {
        try await syncNewReplicaSet(create: false)
        let want = params.replicas
        return sets.contains { rs in
            guard Self.replicas(rs) > 0, let desired = Self.annotation(rs, DeploymentKeys.desiredReplicas).flatMap({ Int($0) })
            else { return false }
            return desired != want
        }
    }

    func scale() async throws {
        let p = params
        if let target = activeOrLatest() {
            if Self.replicas(target) != p.replicas { try await scaleAndRecord(target, to: p.replicas) }
            return
        }
        // A saturated new set makes the old ones redundant (e.g. after adopting old sets).
        if let newSet, isSaturated(newSet) {
            for rs in oldSets where Self.replicas(rs) > 0 { try await scaleAndRecord(rs, to: 0) }
            return
        }
        guard p.rolling else { return }
        let active = sets.filter { Self.replicas($0) > 0 }
        let plan = RolloutMath.proportionalSizes(active: active.map(ReplicaSetFigures.init), p, statusReplicas: status.replicas)
        for (name, size) in plan.sizes {
            guard let rs = sets.first(where: { $0.name == name }) else { continue }
            try await scaleSet(rs, to: size, direction: plan.direction)
        }
    }

    /// The only active set, or the newest one when none is active; nil while several run.
    func activeOrLatest() -> JSON? {
        let olds = oldSets.sorted { RolloutMath.earlier(ReplicaSetFigures($1), ReplicaSetFigures($0)) }
        let candidates = olds + (newSet.map { [$0] } ?? [])
        if candidates.isEmpty { return nil }
        let active = candidates.filter { Self.replicas($0) > 0 }
        switch active.count {
        case 0: return newSet ?? olds.first
        case 1: return active[0]
        default: return nil
        }
    }

    /// The new set holds every desired replica, all available, and was sized for this deployment size.
    func isSaturated(_ rs: JSON) -> Bool {
        guard let desired = Self.annotation(rs, DeploymentKeys.desiredReplicas).flatMap({ Int($0) }) else { return false }
        let want = params.replicas
        return Self.replicas(rs) == want && desired == want && Self.available(rs) == want
    }

    @discardableResult
    func scaleAndRecord(_ rs: JSON, to size: Int) async throws -> Bool {
        let current = Self.replicas(rs)
        guard current != size else { return false }
        return try await scaleSet(rs, to: size, direction: current < size ? "up" : "down")
    }

    /// Writes a set's size and its desired/max-replicas annotations; an event tells of a size change.
    @discardableResult
    func scaleSet(_ rs: JSON, to size: Int, direction: String) async throws -> Bool {
        let from = Self.replicas(rs)
        var copy = rs
        let annotationsChanged = setReplicasAnnotations(&copy)
        guard from != size || annotationsChanged else { return false }
        copy[path: "spec", "replicas"] = .int(Int64(size))
        let updated = try await update(copy)
        guard from != size else { return false }
        event("Normal", "ScalingReplicaSet", "Scaled \(direction) replica set \(updated.name ?? "") from \(from) to \(size)")
        return true
    }

    // MARK: Rollouts

    func rolloutRolling() async throws {
        guard try await syncNewReplicaSet(create: true) != nil else { return }
        if try await reconcileNewReplicaSet() {
            try await syncRolloutStatus()
            return
        }
        if try await reconcileOldReplicaSets() {
            try await syncRolloutStatus()
            return
        }
        if status.isComplete(replicas: params.replicas, generation: generation) { try await cleanup() }
        try await syncRolloutStatus()
    }

    /// Grows (or, above the deployment size, shrinks) the new set within the surge allowance.
    func reconcileNewReplicaSet() async throws -> Bool {
        guard let rs = newSet else { return false }
        let p = params
        let current = Self.replicas(rs)
        if current == p.replicas { return false }
        if current > p.replicas { return try await scaleAndRecord(rs, to: p.replicas) }
        let total = sets.reduce(0) { $0 + Self.replicas($1) }
        return try await scaleAndRecord(rs, to: RolloutMath.newReplicaSetSize(p, allReplicas: total, newReplicas: current))
    }

    /// Shrinks the old sets as far as availability allows: first their unavailable pods, then
    /// as many as are available above the minimum.
    func reconcileOldReplicaSets() async throws -> Bool {
        guard let rs = newSet else { return false }
        let p = params
        let activeOld = Set(oldSets.filter { Self.replicas($0) > 0 }.compactMap(\.uid))
        func currentOld() -> [JSON] { sets.filter { activeOld.contains($0.uid ?? "") } }
        let oldTotal = currentOld().reduce(0) { $0 + Self.replicas($1) }
        if oldTotal == 0 { return false }
        let total = sets.reduce(0) { $0 + Self.replicas($1) }
        let budget = RolloutMath.oldScaleDownBudget(p, allReplicas: total, newReplicas: Self.replicas(rs),
                                                    newAvailable: Self.available(rs))
        if budget <= 0 { return false }

        var scaledDown = 0
        for step in RolloutMath.cleanupUnhealthy(old: currentOld().map(ReplicaSetFigures.init), budget: budget) {
            guard let target = sets.first(where: { $0.name == step.name }) else { continue }
            scaledDown += Self.replicas(target) - step.replicas
            try await scaleAndRecord(target, to: step.replicas)
        }
        let old = currentOld()
        let availableTotal = old.reduce(0) { $0 + Self.available($1) } + Self.available(rs)
        for step in RolloutMath.scaleDownOld(old: old.map(ReplicaSetFigures.init), availableTotal: availableTotal,
                                             minAvailable: p.replicas - p.maxUnavailable) {
            guard let target = sets.first(where: { $0.name == step.name }) else { continue }
            scaledDown += Self.replicas(target) - step.replicas
            try await scaleAndRecord(target, to: step.replicas)
        }
        return scaledDown > 0
    }

    func rolloutRecreate(_ podMap: [String: [JSON]]) async throws {
        try await syncNewReplicaSet(create: false)
        var scaledDown = false
        for rs in oldSets where Self.replicas(rs) > 0 {
            if try await scaleAndRecord(rs, to: 0) { scaledDown = true }
        }
        if scaledDown || oldPodsRunning(podMap) {
            try await syncRolloutStatus()
            return
        }
        if newSet == nil { try await syncNewReplicaSet(create: true) }
        if let rs = newSet { try await scaleAndRecord(rs, to: params.replicas) }
        if status.isComplete(replicas: params.replicas, generation: generation) { try await cleanup() }
        try await syncRolloutStatus()
    }

    /// Old pods that may still run: counted by the old sets, or present and not finished
    /// (terminating ones included: Recreate must not overlap old and new pods).
    func oldPodsRunning(_ podMap: [String: [JSON]]) -> Bool {
        if oldSets.reduce(0, { $0 + Self.currentReplicas($1) }) > 0 { return true }
        for (uid, pods) in podMap where uid != newUID {
            for pod in pods {
                let phase = pod[path: "status", "phase"]?.stringValue
                if phase != "Failed" && phase != "Succeeded" { return true }
            }
        }
        return false
    }

    /// Deletes the oldest scaled-down sets beyond revisionHistoryLimit.
    func cleanup() async throws {
        guard let limit = d[path: "spec", "revisionHistoryLimit"]?.intValue, limit != Int64(Int32.max) else { return }
        let cleanable = oldSets.filter { $0.deletionTimestamp == nil }
        let excess = cleanable.count - Int(limit)
        guard excess > 0 else { return }
        let byRevision = cleanable.sorted { a, b in
            if let ra = Self.revision(a), let rb = Self.revision(b), ra != rb { return ra < rb }
            return RolloutMath.earlier(ReplicaSetFigures(a), ReplicaSetFigures(b))
        }
        for rs in byRevision.prefix(excess) {
            let observed = rs[path: "status", "observedGeneration"]?.intValue ?? 0
            let gen = rs[path: "metadata", "generation"]?.intValue ?? 0
            guard Self.currentReplicas(rs) == 0, Self.replicas(rs) == 0, gen <= observed else { continue }
            if let result = try await client.remove(Resources.replicaSets, namespace: namespace, name: rs.name ?? "") {
                setsWritten = max(setsWritten, Int64(result.object.resourceVersion ?? "") ?? 0)
            }
            sets.removeAll { $0.uid == rs.uid }
        }
    }

    // MARK: Status

    func checkPausedConditions() async throws {
        guard progressDeadline != nil else { return }
        var s = status
        let progressing = s.condition("Progressing")
        // A reported timeout stays until a new rollout replaces it.
        if progressing?.reason == "ProgressDeadlineExceeded" { return }
        let pausedCondition = progressing?.reason == "DeploymentPaused"
        if paused && !pausedCondition {
            s.set(condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused"))
        } else if !paused && pausedCondition {
            s.set(condition("Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed"))
        } else {
            return
        }
        try await writeStatus(s)
    }

    /// Counts from the sets, and the Available condition.
    func calculateStatus() -> DeploymentStatus {
        let p = params
        let available = sets.reduce(0) { $0 + Self.available($1) }
        let total = sets.reduce(0) { $0 + Self.replicas($1) }
        let old = status
        var s = DeploymentStatus()
        s.observedGeneration = generation
        s.replicas = sets.reduce(0) { $0 + Self.currentReplicas($1) }
        s.updatedReplicas = newSet.map(Self.currentReplicas) ?? 0
        s.readyReplicas = sets.reduce(0) { $0 + Int($1[path: "status", "readyReplicas"]?.intValue ?? 0) }
        s.availableReplicas = available
        s.unavailableReplicas = max(0, total - available)
        s.collisionCount = old.collisionCount
        s.conditions = old.conditions
        if available >= p.replicas - p.maxUnavailable {
            s.set(condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."))
        } else {
            s.set(condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."))
        }
        return s
    }

    func syncStatus() async throws {
        let s = calculateStatus()
        if s != status { try await writeStatus(s) }
    }

    /// Status during a rollout: the Progressing condition (complete, progressing, or past
    /// its deadline) and ReplicaSet failures on top of the counts.
    func syncRolloutStatus() async throws {
        var s = calculateStatus()
        let p = params
        if progressDeadline == nil { s.remove("Progressing") }
        let current = status.condition("Progressing")
        let completeBefore = s.replicas == s.updatedReplicas && current?.reason == "NewReplicaSetAvailable"
        let subject = newSet.map { "ReplicaSet \"\($0.name ?? "")\"" } ?? "Deployment \"\(d.name ?? "")\""
        if progressDeadline != nil && !completeBefore {
            if s.isComplete(replicas: p.replicas, generation: generation) {
                s.set(condition("Progressing", "True", "NewReplicaSetAvailable", "\(subject) has successfully progressed."))
            } else if s.progressed(since: status) {
                // Progress refreshes lastUpdateTime even with an unchanged reason: the deadline counts from it.
                var c = condition("Progressing", "True", "ReplicaSetUpdated", "\(subject) is progressing.")
                if let current {
                    if current.status == "True" { c.lastTransitionTime = current.lastTransitionTime }
                    s.remove("Progressing")
                }
                s.set(c)
            } else if timedOut(s) {
                s.set(condition("Progressing", "False", "ProgressDeadlineExceeded", "\(subject) has timed out progressing."))
            }
        }
        if let failure = replicaFailure() {
            s.set(failure)
        } else {
            s.remove("ReplicaFailure")
        }
        if s == status {
            requeueIfStuck(s)
            return
        }
        try await writeStatus(s)
    }

    func timedOut(_ s: DeploymentStatus) -> Bool {
        guard let deadline = progressDeadline, let c = s.condition("Progressing") else { return false }
        if c.reason == "NewReplicaSetAvailable" { return false }
        if c.reason == "ProgressDeadlineExceeded" { return true }
        guard let from = Timestamp.parse(c.lastUpdateTime) else { return false }
        return from + deadline < nowSeconds
    }

    /// Nothing changed, so no watch event will come: look again when the deadline passes.
    func requeueIfStuck(_ s: DeploymentStatus) {
        guard let deadline = progressDeadline, let c = status.condition("Progressing") else { return }
        if s.isComplete(replicas: params.replicas, generation: generation) || c.reason == "ProgressDeadlineExceeded" { return }
        guard let from = Timestamp.parse(c.lastUpdateTime) else { return }
        let due = from + deadline - nowSeconds
        // A second more absorbs whole-second timestamps.
        controller.requeue.add(key, after: .milliseconds(Int64((max(due, 0) + 1) * 1000)))
    }

    /// A ReplicaFailure of the new set (else of any set) shown on the Deployment.
    func replicaFailure() -> DeploymentCondition? {
        let candidates = (newSet.map { [$0] } ?? []) + sets
        for rs in candidates {
            for c in rs[path: "status", "conditions"]?.arrayValue ?? [] where c["type"]?.stringValue == "ReplicaFailure" {
                let at = c["lastTransitionTime"]?.stringValue ?? ""
                var converted = DeploymentCondition(type: "ReplicaFailure", status: c["status"]?.stringValue ?? "",
                                                    reason: c["reason"]?.stringValue ?? "", message: c["message"]?.stringValue ?? "",
                                                    now: at)
                converted.lastUpdateTime = at
                return converted
            }
        }
        return nil
    }

    // MARK: Writes

    /// Writes the status, and with `revision` the Deployment's revision annotation.
    ///
    /// Upstream writes the annotation through the status subresource (whose strategy keeps
    /// metadata from the request), so it does not bump metadata.generation. When this API
    /// server keeps annotations out of status writes, the annotation follows in a normal
    /// update instead, at the cost of a generation bump.
    func writeStatus(_ s: DeploymentStatus, revision: String? = nil) async throws {
        var updated = d
        if let revision { updated[path: "metadata", "annotations", DeploymentKeys.revision] = .string(revision) }
        updated["status"] = s.json
        var written = try await client.update(Resources.deployments, updated, subresource: "status",
                                              manager: DeploymentController.manager)
        if let revision, Self.annotation(written, DeploymentKeys.revision) != revision {
            written[path: "metadata", "annotations", DeploymentKeys.revision] = .string(revision)
            written = try await client.update(Resources.deployments, written, manager: DeploymentController.manager)
        }
        d = written
        deploymentWritten = max(deploymentWritten, Int64(written.resourceVersion ?? "") ?? 0)
    }

    func update(_ rs: JSON) async throws -> JSON {
        let updated = try await client.update(Resources.replicaSets, rs, manager: DeploymentController.manager)
        note(set: updated)
        return updated
    }

    func note(set rs: JSON) {
        setsWritten = max(setsWritten, Int64(rs.resourceVersion ?? "") ?? 0)
        if let i = sets.firstIndex(where: { $0.uid == rs.uid }) {
            sets[i] = rs
        } else {
            sets.append(rs)
        }
    }

    func event(_ type: String, _ reason: String, _ message: String) {
        controller.context.events.record(d, component: controller.name, type: type, reason: reason, message: message)
    }

    func condition(_ type: String, _ status: String, _ reason: String, _ message: String) -> DeploymentCondition {
        DeploymentCondition(type: type, status: status, reason: reason, message: message, now: now)
    }

    // MARK: Reading ReplicaSets

    static func replicas(_ rs: JSON) -> Int { Int(rs[path: "spec", "replicas"]?.intValue ?? 1) }
    static func currentReplicas(_ rs: JSON) -> Int { Int(rs[path: "status", "replicas"]?.intValue ?? 0) }
    static func available(_ rs: JSON) -> Int { Int(rs[path: "status", "availableReplicas"]?.intValue ?? 0) }
    static func annotation(_ obj: JSON, _ key: String) -> String? { obj[path: "metadata", "annotations", key]?.stringValue }

    /// The revision annotation: 0 when absent, nil when not a number (such sets are skipped).
    static func revision(_ rs: JSON) -> Int64? {
        guard let text = annotation(rs, DeploymentKeys.revision) else { return 0 }
        return Int64(text)
    }
}
