import APIMachinery

/// Keeps the `kubernetes` Service in `default` pointing at the API server: the Service
/// (443/TCP on the first address of the service range), its Endpoints and its EndpointSlice,
/// with the labels kube-apiserver's bootstrap controller gives them. Someone deleting or
/// editing any of the three gets them put back.
public final class KubernetesServiceController: Reconciler {
    public let name = "kubernetes-service-controller"
    public let queue = WorkQueue()
    public var workers: Int { 1 }
    let context: ControllerContext
    static let key = "default/kubernetes"
    /// kube-apiserver writes these objects itself; kubectl shows this manager.
    static let manager = "kube-apiserver"

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let handler: Informer.Handler = { event in
            let obj = event.object
            if obj.namespace == "default" && obj.name == "kubernetes" { queue.add(Self.key) }
        }
        context.informers.services.onChange(handler)
        context.informers.endpoints.onChange(handler)
        context.informers.endpointSlices.onChange(handler)
        queue.add(Self.key)
    }

    var port: Int64 { Int64(context.settings.apiPort) }

    public func reconcile(_ key: String) async throws {
        try await ensureService()
        try await ensureEndpoints()
        try await ensureSlice()
    }

    func ensureService() async throws {
        let ports: JSON = [["name": "https", "port": 443, "protocol": "TCP", "targetPort": .int(port)]]
        let client = context.client
        guard var svc = try await client.find(Resources.services, namespace: "default", name: "kubernetes") else {
            let svc: JSON = [
                "apiVersion": "v1", "kind": "Service",
                "metadata": ["name": "kubernetes", "namespace": "default",
                             "labels": ["component": "apiserver", "provider": "kubernetes"]],
                "spec": ["type": "ClusterIP", "clusterIP": .string(context.settings.kubernetesServiceIP),
                         "ports": ports, "sessionAffinity": "None"],
            ]
            do {
                _ = try await client.create(Resources.services, svc, manager: Self.manager)
            } catch {
                guard error.reason == .alreadyExists else { throw error }
                queue.add(Self.key)
            }
            return
        }
        // Only the ports and the type are put back, as upstream's reconciler does.
        let current = svc[path: "spec", "ports"]?.arrayValue ?? []
        let wanted = ports.arrayValue ?? []
        let same = current.count == 1 && current[0]["port"] == 443 && current[0]["targetPort"]?.intValue == port
            && current[0]["name"] == "https" && current[0]["protocol"] == "TCP"
        if same && svc[path: "spec", "type"]?.stringValue == "ClusterIP" { return }
        svc[path: "spec", "ports"] = .array(wanted.map { p in
            var p = p
            if let old = current.first(where: { $0["port"] == 443 }), let np = old["nodePort"] { p["nodePort"] = np }
            return p
        })
        svc[path: "spec", "type"] = "ClusterIP"
        _ = try await client.update(Resources.services, svc, manager: Self.manager)
    }

    func ensureEndpoints() async throws {
        let subsets: JSON = [[
            "addresses": [["ip": .string(context.settings.nodeIP)]],
            "ports": [["name": "https", "port": .int(port), "protocol": "TCP"]],
        ]]
        // The mirroring controller must not copy these: the API server writes the slice itself.
        let labels: JSON = ["endpointslice.kubernetes.io/skip-mirror": "true"]
        let client = context.client
        if var ep = try await client.find(Resources.endpoints, namespace: "default", name: "kubernetes") {
            guard ep["subsets"] != subsets || ep[path: "metadata", "labels"] != labels else { return }
            ep["subsets"] = subsets
            ep[path: "metadata", "labels"] = labels
            _ = try await client.update(Resources.endpoints, ep, manager: Self.manager)
        } else {
            let ep: JSON = [
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": ["name": "kubernetes", "namespace": "default", "labels": labels],
                "subsets": subsets,
            ]
            _ = try await client.create(Resources.endpoints, ep, manager: Self.manager)
        }
    }

    func ensureSlice() async throws {
        let endpoints: JSON = [["addresses": [.string(context.settings.nodeIP)], "conditions": ["ready": true]]]
        let ports: JSON = [["name": "https", "port": .int(port), "protocol": "TCP"]]
        let labels: JSON = ["kubernetes.io/service-name": "kubernetes"]
        let client = context.client
        if var slice = try await client.find(Resources.endpointSlices, namespace: "default", name: "kubernetes") {
            guard slice["endpoints"] != endpoints || slice["ports"] != ports
                || slice[path: "metadata", "labels"] != labels else { return }
            slice["endpoints"] = endpoints
            slice["ports"] = ports
            slice[path: "metadata", "labels"] = labels
            _ = try await client.update(Resources.endpointSlices, slice, manager: Self.manager)
        } else {
            let slice: JSON = [
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": ["name": "kubernetes", "namespace": "default", "labels": labels],
                "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
            ]
            _ = try await client.create(Resources.endpointSlices, slice, manager: Self.manager)
        }
    }
}
