import APIMachinery

/// Deletes what nobody owns any more, following `metadata.ownerReferences` as upstream's
/// garbage collector does for the three propagation policies `kubectl delete --cascade` sends:
///
/// - Background (kubectl's default): the owner goes at once; its dependents, now pointing
///   at an owner that is gone, are deleted afterwards.
/// - Foreground: the API server marks the owner with the `foregroundDeletion` finalizer; its
///   dependents are deleted first (in foreground too), and the finalizer is removed once no
///   dependent with `blockOwnerDeletion` is left, which completes the owner's delete.
/// - Orphan: the owner carries the `orphan` finalizer; the reference to it is removed from
///   every dependent, then the finalizer, so the dependents stay.
///
/// It sees the resources the controllers keep informers for (pods, services, endpoints,
/// slices, deployments, replica sets, service accounts, config maps, secrets, namespaces).
public final class GarbageCollector: Reconciler {
    public let name = "garbage-collector-controller"
    public let queue = WorkQueue()
    public var workers: Int { 4 }
    let context: ControllerContext
    static let orphan = "orphan"
    static let foreground = "foregroundDeletion"

    public init(_ context: ControllerContext) {
        self.context = context
        for informer in context.informers.all {
            let r = informer.resource
            informer.onChange { [weak self] event in self?.observe(r, event) }
        }
    }

    // MARK: Keys: "dependent|<resource>.<group>|<ns>/<name>" checks an object's owners;
    // "owner|..." finishes an owner's orphan or foreground deletion.

    static func key(_ kind: String, _ r: ResourceInfo, _ obj: JSON) -> String {
        "\(kind)|\(r.resource).\(r.group)|\(Informer.key(obj))"
    }

    static func parse(_ key: String) -> (kind: String, resource: ResourceInfo, objectKey: String)? {
        let parts = key.split(separator: "|", maxSplits: 2).map(String.init)
        guard parts.count == 3 else { return nil }
        let rg = parts[1].split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard rg.count == 2, let r = Resources.all.first(where: { $0.resource == rg[0] && $0.group == rg[1] }) else { return nil }
        return (parts[0], r, parts[2])
    }

    static func ownerRefs(_ obj: JSON) -> [JSON] { obj[path: "metadata", "ownerReferences"]?.arrayValue ?? [] }

    func observe(_ r: ResourceInfo, _ event: InformerEvent) {
        switch event {
        case .added(let obj):
            if !Self.ownerRefs(obj).isEmpty { queue.add(Self.key("dependent", r, obj)) }
            if Self.deleting(obj) { queue.add(Self.key("owner", r, obj)) }
        case .updated(let old, let obj):
            if Self.ownerRefs(old) != Self.ownerRefs(obj), !Self.ownerRefs(obj).isEmpty {
                queue.add(Self.key("dependent", r, obj))
            }
            if Self.deleting(obj) { queue.add(Self.key("owner", r, obj)) }
            // An owner entering foreground deletion makes its dependents go.
            if obj.deletionTimestamp != nil, obj.finalizers.contains(Self.foreground) {
                for (dr, dep) in dependents(of: obj.uid ?? "") { queue.add(Self.key("dependent", dr, dep)) }
            }
        case .deleted(let obj):
            for (dr, dep) in dependents(of: obj.uid ?? "") { queue.add(Self.key("dependent", dr, dep)) }
            // An owner waiting for its dependents may now be free to go.
            for ref in Self.ownerRefs(obj) {
                guard let owner = lookupCached(ref, namespace: obj.namespace), Self.deleting(owner),
                      let or = resource(of: ref) else { continue }
                queue.add(Self.key("owner", or, owner))
            }
        }
    }

    static func deleting(_ obj: JSON) -> Bool {
        obj.deletionTimestamp != nil && (obj.finalizers.contains(orphan) || obj.finalizers.contains(foreground))
    }

    /// Every known object with an owner reference to `uid`.
    func dependents(of uid: String) -> [(ResourceInfo, JSON)] {
        guard !uid.isEmpty else { return [] }
        var out: [(ResourceInfo, JSON)] = []
        for informer in context.informers.all {
            for obj in informer.list() where Self.ownerRefs(obj).contains(where: { $0["uid"]?.stringValue == uid }) {
                out.append((informer.resource, obj))
            }
        }
        return out
    }

    func resource(of ref: JSON) -> ResourceInfo? {
        let apiVersion = ref["apiVersion"]?.stringValue ?? ""
        let group = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
        return Resources.find(group: group, kind: ref["kind"]?.stringValue ?? "")
    }

    func lookupCached(_ ref: JSON, namespace: String?) -> JSON? {
        guard let r = resource(of: ref), let informer = context.informers.informer(for: r) else { return nil }
        return informer.get(namespace: r.namespaced ? namespace : nil, name: ref["name"]?.stringValue ?? "")
    }

    /// The owner a reference names, only if it is the same object (same uid). The cache may lag
    /// behind a just-created owner, so absence is confirmed with a live read.
    func lookupOwner(_ ref: JSON, namespace: String?) async throws(APIError) -> JSON? {
        guard let r = resource(of: ref) else { return nil }
        let uid = ref["uid"]?.stringValue
        if let cached = lookupCached(ref, namespace: namespace), cached.uid == uid { return cached }
        let live = try await context.client.find(r, namespace: r.namespaced ? namespace : nil, name: ref["name"]?.stringValue ?? "")
        return live?.uid == uid ? live : nil
    }

    public func reconcile(_ key: String) async throws {
        guard let (kind, r, objectKey) = Self.parse(key) else { return }
        let parts = objectKey.split(separator: "/", maxSplits: 1).map(String.init)
        let namespace = parts.count == 2 ? parts[0] : nil
        let name = parts.last ?? ""
        guard let obj = try await context.client.find(r, namespace: namespace, name: name) else { return }
        if kind == "owner" {
            try await finishOwner(r, obj)
        } else {
            try await checkDependent(r, obj)
        }
    }

    func checkDependent(_ r: ResourceInfo, _ obj: JSON) async throws {
        let refs = Self.ownerRefs(obj)
        guard !refs.isEmpty, obj.deletionTimestamp == nil else { return }
        var dangling: [String] = []
        var waitingForeground = false
        var solid = false
        for ref in refs {
            guard let owner = try await lookupOwner(ref, namespace: obj.namespace) else {
                dangling.append(ref["uid"]?.stringValue ?? "")
                continue
            }
            if owner.deletionTimestamp != nil && owner.finalizers.contains(Self.foreground) {
                waitingForeground = true
            } else {
                solid = true
            }
        }
        let client = context.client
        if solid {
            // Still owned: only the references to owners that are gone are dropped.
            guard !dangling.isEmpty else { return }
            var updated = obj
            updated[path: "metadata", "ownerReferences"] = .array(refs.filter { !dangling.contains($0["uid"]?.stringValue ?? "") })
            _ = try await client.update(r, updated, manager: name)
        } else if waitingForeground {
            try await client.remove(r, namespace: obj.namespace, name: obj.name ?? "",
                                    options: DeleteOptions(propagationPolicy: "Foreground", preconditionUID: obj.uid))
        } else if !dangling.isEmpty {
            try await client.remove(r, namespace: obj.namespace, name: obj.name ?? "",
                                    options: DeleteOptions(propagationPolicy: "Background", preconditionUID: obj.uid))
        }
    }

    func finishOwner(_ r: ResourceInfo, _ owner: JSON) async throws {
        guard owner.deletionTimestamp != nil, let uid = owner.uid else { return }
        let client = context.client
        var finalizers = owner.finalizers
        if finalizers.contains(Self.orphan) {
            for (dr, dep) in dependents(of: uid) {
                guard var live = try await client.find(dr, namespace: dep.namespace, name: dep.name ?? "") else { continue }
                let refs = Self.ownerRefs(live)
                guard refs.contains(where: { $0["uid"]?.stringValue == uid }) else { continue }
                let kept = refs.filter { $0["uid"]?.stringValue != uid }
                live[path: "metadata", "ownerReferences"] = kept.isEmpty ? nil : .array(kept)
                _ = try await client.update(dr, live, manager: name)
            }
            finalizers.removeAll { $0 == Self.orphan }
        }
        if finalizers.contains(Self.foreground) {
            let deps = dependents(of: uid)
            var blocking = 0
            for (dr, dep) in deps {
                let ref = Self.ownerRefs(dep).first { $0["uid"]?.stringValue == uid }
                if ref?["blockOwnerDeletion"]?.boolValue == true { blocking += 1 }
                if dep.deletionTimestamp == nil {
                    try await client.remove(dr, namespace: dep.namespace, name: dep.name ?? "",
                                            options: DeleteOptions(propagationPolicy: "Foreground", preconditionUID: dep.uid))
                }
            }
            // Dependents still going (graceful pods, their own dependents) hold the owner back.
            guard blocking == 0 else { return }
            finalizers.removeAll { $0 == Self.foreground }
        }
        guard finalizers != owner.finalizers else { return }
        var updated = try await client.get(r, namespace: owner.namespace, name: owner.name ?? "", subresource: nil)
        updated[path: "metadata", "finalizers"] = finalizers.isEmpty ? nil : .array(finalizers.map { .string($0) })
        _ = try await client.update(r, updated, manager: name)
    }
}
