import APIMachinery
import APIServer
import Testing
@testable import Controllers

/// The controllers every cluster has besides workloads and endpoints: the `kubernetes`
/// service, service accounts, load balancers, namespaces and garbage collection.
@Suite struct ClusterControllersTests {
    static func configMap(_ name: String, namespace: String = "default", owners: [JSON] = []) -> JSON {
        var meta: JSON = ["name": .string(name), "namespace": .string(namespace)]
        if !owners.isEmpty {
            meta["ownerReferences"] = .array(owners.map { o in
                ["apiVersion": "v1", "kind": "ConfigMap", "name": .string(o.name ?? ""), "uid": .string(o.uid ?? ""),
                 "blockOwnerDeletion": true]
            })
        }
        return ["apiVersion": "v1", "kind": "ConfigMap", "metadata": meta]
    }

    func exists(_ h: Harness, _ r: ResourceInfo, _ name: String, namespace: String? = "default") async throws -> Bool {
        try await h.api.find(r, namespace: namespace, name: name) != nil
    }

    @Test func kubernetesServicePointsAtTheAPIServerAndIsPutBack() async throws {
        let h = try await Harness { [KubernetesServiceController($0)] }
        defer { Task { await h.stop() } }
        #expect(try await h.eventually { try await exists(h, Resources.endpointSlices, "kubernetes") })
        let svc = try await h.api.get(Resources.services, namespace: "default", name: "kubernetes")
        #expect(svc[path: "spec", "clusterIP"] == "10.96.0.1")
        #expect(svc[path: "spec", "ports"] == [["name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443]])
        #expect(svc.labels == ["component": "apiserver", "provider": "kubernetes"])
        let ep = try await h.api.get(Resources.endpoints, namespace: "default", name: "kubernetes")
        #expect(ep[path: "subsets"] == [["addresses": [["ip": "192.168.77.10"]], "ports": [["name": "https", "port": 6443, "protocol": "TCP"]]]])
        let slice = try await h.api.get(Resources.endpointSlices, namespace: "default", name: "kubernetes")
        #expect(slice[path: "endpoints"]?.arrayValue?.first?["addresses"] == ["192.168.77.10"])

        _ = try await h.api.delete(Resources.endpoints, namespace: "default", name: "kubernetes")
        #expect(try await h.eventually { try await exists(h, Resources.endpoints, "kubernetes") }, "deleted endpoints come back")
    }

    @Test func everyNamespaceGetsTheDefaultServiceAccountAndRootCA() async throws {
        var settings = Harness.settings
        settings.caCertificatePEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        let h = try await Harness(settings: settings) { [ServiceAccountController($0)] }
        defer { Task { await h.stop() } }
        _ = try await h.api.create(Resources.namespaces, namespace: nil,
                                   body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "team"]])
        #expect(try await h.eventually { try await exists(h, Resources.serviceAccounts, "default", namespace: "team") })
        #expect(try await h.eventually { try await exists(h, Resources.configMaps, "kube-root-ca.crt", namespace: "team") })
        let cm = try await h.api.get(Resources.configMaps, namespace: "team", name: "kube-root-ca.crt")
        #expect(cm[path: "data", "ca.crt"]?.stringValue == settings.caCertificatePEM)
        _ = try await h.api.delete(Resources.serviceAccounts, namespace: "team", name: "default")
        #expect(try await h.eventually { try await exists(h, Resources.serviceAccounts, "default", namespace: "team") })
    }

    static func loadBalancer(_ name: String, port: Int64 = 80, ip: String? = nil) -> JSON {
        var spec: JSON = ["type": "LoadBalancer", "ports": [["port": .int(port)]], "selector": ["app": .string(name)]]
        if let ip { spec["loadBalancerIP"] = .string(ip) }
        return ["apiVersion": "v1", "kind": "Service", "metadata": ["name": .string(name), "namespace": "default"], "spec": spec]
    }

    func ingress(_ h: Harness, _ name: String) async throws -> String? {
        let s = try await h.api.get(Resources.services, namespace: "default", name: name)
        return s[path: "status", "loadBalancer", "ingress"]?.arrayValue?.first?["ip"]?.stringValue
    }

    func events(_ h: Harness, about name: String) async throws -> [JSON] {
        try await h.items(Resources.events).filter { $0[path: "involvedObject", "name"]?.stringValue == name }
    }

    @Test func loadBalancersShareTheNodeIPUnlessTheirPortsClash() async throws {
        let h = try await Harness { [LoadBalancerController($0)] }
        defer { Task { await h.stop() } }
        _ = try await h.create(Resources.services, Self.loadBalancer("web"))
        _ = try await h.create(Resources.services, Self.loadBalancer("api", port: 8080))
        _ = try await h.create(Resources.services, Self.loadBalancer("clash"))
        #expect(try await h.eventually { try await ingress(h, "web") == "192.168.77.10" })
        #expect(try await h.eventually { try await ingress(h, "api") == "192.168.77.10" })
        #expect(try await h.eventually {
            try await events(h, about: "clash").contains { $0["reason"] == "SyncLoadBalancerFailed" }
        }, "a pending load balancer always has an event saying why")
        #expect(try await ingress(h, "clash") == nil)
        let why = try await events(h, about: "clash").first { $0["reason"] == "SyncLoadBalancerFailed" }
        #expect(why?["message"]?.stringValue?.contains("port 80/TCP on 192.168.77.10 is already used by LoadBalancer default/web") == true)
        // The holder goes away: the pending one gets the address.
        _ = try await h.api.delete(Resources.services, namespace: "default", name: "web")
        #expect(try await h.eventually { try await ingress(h, "clash") == "192.168.77.10" })
    }

    @Test func aPoolGivesEachLoadBalancerItsOwnAddress() async throws {
        var settings = Harness.settings
        settings.loadBalancerPool = ["192.168.77.200", "192.168.77.201"]
        let h = try await Harness(settings: settings) { [LoadBalancerController($0)] }
        defer { Task { await h.stop() } }
        _ = try await h.create(Resources.services, Self.loadBalancer("a"))
        #expect(try await h.eventually { try await ingress(h, "a") != nil })
        _ = try await h.create(Resources.services, Self.loadBalancer("b", ip: "192.168.77.201"))
        #expect(try await h.eventually { try await ingress(h, "b") == "192.168.77.201" })
        #expect(try await ingress(h, "a") == "192.168.77.200")
        _ = try await h.create(Resources.services, Self.loadBalancer("c"))
        #expect(try await h.eventually {
            try await events(h, about: "c").contains { $0["message"]?.stringValue?.contains("no address left in --lb-pool") == true }
        })
        // Back to ClusterIP: the address is given back and the status cleared.
        _ = try await h.api.patch(Resources.services, namespace: "default", name: "a", type: .merge,
                                  body: Array(#"{"spec":{"type":"ClusterIP"}}"#.utf8))
        #expect(try await h.eventually { try await ingress(h, "a") == nil })
        #expect(try await h.eventually { try await ingress(h, "c") == "192.168.77.200" })
    }

    @Test func deletingANamespaceDeletesItsContentThenTheNamespace() async throws {
        let h = try await Harness { [NamespaceController($0)] }
        defer { Task { await h.stop() } }
        _ = try await h.api.create(Resources.namespaces, namespace: nil,
                                   body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "lab"]])
        _ = try await h.create(Resources.configMaps, Self.configMap("a", namespace: "lab"))
        _ = try await h.create(Resources.pods, ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": "p", "namespace": "lab"],
                                                "spec": ["containers": [["name": "c", "image": "busybox"]]]])
        let result = try await h.api.delete(Resources.namespaces, namespace: nil, name: "lab")
        guard case .pending(let terminating) = result else { Issue.record("a namespace with content is not deleted at once"); return }
        #expect(terminating[path: "status", "phase"] == "Terminating")
        #expect(try await h.eventually { try await !exists(h, Resources.namespaces, "lab", namespace: nil) })
        #expect(try await h.items(Resources.configMaps, namespace: "lab").isEmpty)
        #expect(try await h.items(Resources.pods, namespace: "lab").isEmpty)
    }

    @Test func backgroundDeletionRemovesDependentsAfterTheOwner() async throws {
        let h = try await Harness { [GarbageCollector($0)] }
        defer { Task { await h.stop() } }
        let owner = try await h.create(Resources.configMaps, Self.configMap("owner"))
        _ = try await h.create(Resources.configMaps, Self.configMap("child", owners: [owner]))
        let grandchild = try await h.api.get(Resources.configMaps, namespace: "default", name: "child")
        _ = try await h.create(Resources.configMaps, Self.configMap("grandchild", owners: [grandchild]))
        _ = try await h.api.delete(Resources.configMaps, namespace: "default", name: "owner",
                                   options: DeleteOptions(propagationPolicy: "Background"))
        #expect(try await h.eventually { try await !exists(h, Resources.configMaps, "grandchild") })
        #expect(try await !exists(h, Resources.configMaps, "child"))
    }

    @Test func foregroundDeletionWaitsForDependents() async throws {
        let h = try await Harness { [GarbageCollector($0)] }
        defer { Task { await h.stop() } }
        let owner = try await h.create(Resources.configMaps, Self.configMap("owner"))
        _ = try await h.create(Resources.configMaps, Self.configMap("child", owners: [owner]))
        let result = try await h.api.delete(Resources.configMaps, namespace: "default", name: "owner",
                                            options: DeleteOptions(propagationPolicy: "Foreground"))
        guard case .pending(let deleting) = result else { Issue.record("foreground deletion returns the owner still present"); return }
        #expect(deleting.finalizers == ["foregroundDeletion"])
        #expect(try await h.eventually { try await !exists(h, Resources.configMaps, "owner") })
        #expect(try await !exists(h, Resources.configMaps, "child"))
    }

    @Test func orphanDeletionKeepsDependentsWithoutTheReference() async throws {
        let h = try await Harness { [GarbageCollector($0)] }
        defer { Task { await h.stop() } }
        let owner = try await h.create(Resources.configMaps, Self.configMap("owner"))
        let other = try await h.create(Resources.configMaps, Self.configMap("other"))
        _ = try await h.create(Resources.configMaps, Self.configMap("child", owners: [owner, other]))
        _ = try await h.api.delete(Resources.configMaps, namespace: "default", name: "owner",
                                   options: DeleteOptions(propagationPolicy: "Orphan"))
        #expect(try await h.eventually { try await !exists(h, Resources.configMaps, "owner") })
        let child = try await h.api.get(Resources.configMaps, namespace: "default", name: "child")
        #expect(child[path: "metadata", "ownerReferences"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["other"])
    }

    @Test func aDependentWhoseOwnerVanishedWhileNobodyWatchedIsCollected() async throws {
        // Written before the collector runs, as after a restart: the owner uid matches nothing.
        let h = try await Harness { _ in [] }
        let ghost: JSON = ["metadata": ["name": "gone", "uid": "00000000-0000-0000-0000-000000000000"]]
        _ = try await h.create(Resources.configMaps, Self.configMap("stray", owners: [ghost]))
        await h.stop()
        let gc = GarbageCollector(ControllerContext(client: h.api, informers: Informers(), events: h.context.events,
                                                    settings: Harness.settings, logger: h.context.logger))
        let manager = ControllerManager(context: gc.context, controllers: [gc])
        let task = Task { try? await manager.run() }
        #expect(try await h.eventually { try await !exists(h, Resources.configMaps, "stray") })
        gc.queue.shutDown()
        task.cancel()
    }
}
