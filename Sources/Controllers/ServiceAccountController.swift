import APIMachinery

/// Gives every namespace what kube-controller-manager gives it: the `default` ServiceAccount
/// (serviceaccount-controller) and the `kube-root-ca.crt` ConfigMap holding the cluster CA
/// (root-ca-cert-publisher), put back when deleted while the namespace is active.
public final class ServiceAccountController: Reconciler {
    public let name = "serviceaccount-controller"
    public let queue = WorkQueue()
    let context: ControllerContext
    static let configMapName = "kube-root-ca.crt"

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        context.informers.namespaces.onChange { event in
            if case .deleted = event { return }
            queue.add(event.object.name ?? "")
        }
        context.informers.serviceAccounts.onChange { event in
            if case .deleted(let sa) = event, sa.name == "default" { queue.add(sa.namespace ?? "") }
        }
        context.informers.configMaps.onChange { event in
            switch event {
            case .deleted(let cm) where cm.name == Self.configMapName: queue.add(cm.namespace ?? "")
            case .updated(_, let cm) where cm.name == Self.configMapName: queue.add(cm.namespace ?? "")
            default: break
            }
        }
    }

    public func reconcile(_ namespace: String) async throws {
        guard let ns = context.informers.namespaces.get(key: namespace), ns.deletionTimestamp == nil,
              ns[path: "status", "phase"]?.stringValue != "Terminating" else { return }
        let client = context.client
        if context.informers.serviceAccounts.get(namespace: namespace, name: "default") == nil,
           try await client.find(Resources.serviceAccounts, namespace: namespace, name: "default") == nil {
            let sa: JSON = ["apiVersion": "v1", "kind": "ServiceAccount",
                            "metadata": ["name": "default", "namespace": .string(namespace)]]
            try await createIgnoringExisting(Resources.serviceAccounts, sa)
        }
        let pem = context.settings.caCertificatePEM
        guard !pem.isEmpty else { return }
        let data: JSON = ["ca.crt": .string(pem)]
        if var cm = try await client.find(Resources.configMaps, namespace: namespace, name: Self.configMapName) {
            guard cm["data"] != data else { return }
            cm["data"] = data
            _ = try await client.update(Resources.configMaps, cm, manager: "kube-controller-manager")
        } else {
            let cm: JSON = [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": ["name": .string(Self.configMapName), "namespace": .string(namespace),
                             "annotations": ["kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."]],
                "data": data,
            ]
            try await createIgnoringExisting(Resources.configMaps, cm)
        }
    }

    func createIgnoringExisting(_ r: ResourceInfo, _ obj: JSON) async throws {
        do {
            _ = try await context.client.create(r, obj, manager: "kube-controller-manager")
        } catch {
            // A namespace being deleted refuses new content (403); both are fine to ignore.
            guard error.reason == .alreadyExists || error.reason == .forbidden else { throw error }
        }
    }
}
