import APIMachinery

/// Empties a namespace being deleted, then lets it go: deletes every namespaced object in it,
/// reports progress in the namespace's status conditions (what `kubectl describe ns` shows
/// while it is Terminating), and when nothing is left removes the `kubernetes` finalizer
/// through the `finalize` subresource, which completes the delete.
public final class NamespaceController: Reconciler {
    public let name = "namespace-controller"
    public let queue = WorkQueue()
    let context: ControllerContext
    static let finalizer = "kubernetes"

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        context.informers.namespaces.onChange { event in
            if case .deleted = event { return }
            if event.object.deletionTimestamp != nil { queue.add(event.object.name ?? "") }
        }
    }

    /// Every namespaced resource that can be listed and deleted, events last so the
    /// deletions' own events do not keep the namespace alive.
    static var contentResources: [ResourceInfo] {
        let all = Resources.all.filter { $0.namespaced && $0.verbs.contains("list") && $0.verbs.contains("delete") }
        return all.filter { $0 != Resources.events } + [Resources.events]
    }

    public func reconcile(_ key: String) async throws {
        let client = context.client
        guard let ns = try await client.find(Resources.namespaces, namespace: nil, name: key),
              ns.deletionTimestamp != nil else { return }
        var remaining: [(ResourceInfo, Int)] = []
        var failures: [String] = []
        var finalizersLeft: [String: Int] = [:]
        for r in Self.contentResources {
            let items: [JSON]
            do {
                items = try await client.items(r, namespace: key)
            } catch {
                failures.append("\(r.qualifiedResource): \(error.message)")
                continue
            }
            guard !items.isEmpty else { continue }
            for item in items {
                for f in item.finalizers { finalizersLeft[f, default: 0] += 1 }
                guard item.deletionTimestamp == nil else { continue }
                do {
                    try await client.remove(r, namespace: key, name: item.name ?? "",
                                            options: DeleteOptions(propagationPolicy: "Background", preconditionUID: item.uid))
                } catch {
                    // A conflict means it changed under us; it is looked at again below.
                    if error.reason == .conflict { continue }
                    failures.append("\(r.qualifiedResource) \"\(item.name ?? "")\": \(error.message)")
                }
            }
            // Whatever is still there (graceful pods, finalizers) is waited for.
            let left = try await client.items(r, namespace: key).count
            if left > 0 { remaining.append((r, left)) }
        }
        try await report(ns, remaining: remaining, failures: failures, finalizers: finalizersLeft)
        guard remaining.isEmpty else {
            // Pods waiting for their grace period and objects with finalizers are polled, as upstream does.
            queue.add(key, after: .seconds(remaining.contains { $0.0 == Resources.pods } ? 1 : 5))
            return
        }
        var finalized = try await client.get(Resources.namespaces, namespace: nil, name: key, subresource: nil)
        let specFinalizers = (finalized[path: "spec", "finalizers"]?.arrayValue ?? []).filter { $0.stringValue != Self.finalizer }
        finalized[path: "spec", "finalizers"] = .array(specFinalizers)
        _ = try await client.update(Resources.namespaces, namespace: nil, name: key, body: finalized, subresource: "finalize",
                                    options: WriteOptions(fieldManager: name))
    }

    /// The conditions upstream's namespace deleter sets, with its reasons and messages.
    func report(_ ns: JSON, remaining: [(ResourceInfo, Int)], failures: [String], finalizers: [String: Int]) async throws {
        let now = Timestamp.rfc3339()
        func condition(_ type: String, _ bad: Bool, _ goodReason: String, _ goodMessage: String,
                       _ badReason: String, _ badMessage: String) -> JSON {
            let previous = (ns[path: "status", "conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == type }
            let status = bad ? "True" : "False"
            let since = previous?["status"]?.stringValue == status ? previous?["lastTransitionTime"] ?? .string(now) : .string(now)
            return ["type": .string(type), "status": .string(status), "lastTransitionTime": since,
                    "reason": .string(bad ? badReason : goodReason), "message": .string(bad ? badMessage : goodMessage)]
        }
        let left = remaining.map { "\($0.0.qualifiedResource) has \($0.1) resource instances" }.joined(separator: ", ")
        let fins = finalizers.sorted { $0.key < $1.key }.map { "\($0.key) in \($0.value) resource instances" }.joined(separator: ", ")
        let conditions: JSON = [
            condition("NamespaceDeletionDiscoveryFailure", false, "ResourcesDiscovered", "All resources successfully discovered", "", ""),
            condition("NamespaceDeletionGroupVersionParsingFailure", false, "ParsedGroupVersions",
                      "All legacy kube types successfully parsed", "", ""),
            condition("NamespaceDeletionContentFailure", !failures.isEmpty, "ContentDeleted",
                      "All content successfully deleted, may be waiting on finalization", "ContentDeletionFailed",
                      "Failed to delete all resource types, \(failures.count) remaining: " + failures.joined(separator: ", ")),
            condition("NamespaceContentRemaining", !remaining.isEmpty, "ContentRemoved", "All content successfully removed",
                      "SomeResourcesRemain", "Some resources are remaining: " + left),
            condition("NamespaceFinalizersRemaining", !finalizers.isEmpty, "ContentHasNoFinalizers",
                      "All content-preserving finalizers finished", "SomeFinalizersRemain",
                      "Some content in the namespace has finalizers remaining: " + fins),
        ]
        let old = (ns[path: "status", "conditions"]?.arrayValue ?? []).map { c -> JSON in
            var c = c
            c["lastTransitionTime"] = nil
            return c
        }
        let new = (conditions.arrayValue ?? []).map { c -> JSON in
            var c = c
            c["lastTransitionTime"] = nil
            return c
        }
        guard old != new else { return }
        var updated = ns
        updated[path: "status", "conditions"] = conditions
        updated[path: "status", "phase"] = "Terminating"
        do {
            _ = try await context.client.update(Resources.namespaces, updated, subresource: "status", manager: name)
        } catch {
            // A concurrent write: the next pass reports again.
            guard error.reason == .conflict else { throw error }
            queue.add(ns.name ?? "")
        }
    }
}
