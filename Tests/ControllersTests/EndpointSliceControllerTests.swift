import APIMachinery
import Testing
@testable import Controllers

@Suite(.serialized) struct EndpointSliceControllerTests {
    static func slices(_ h: Harness, service: String) async throws -> [JSON] {
        try await h.items(Resources.endpointSlices, selector: "kubernetes.io/service-name=\(service)")
    }

    static func endpoint(_ slices: [JSON], ip: String) -> JSON? {
        slices.flatMap { $0["endpoints"]?.arrayValue ?? [] }.first { $0["addresses"]?.arrayValue?.first?.stringValue == ip }
    }

    @Test func sliceConditionsFollowPods() async throws {
        try await withEndpointControllers { h in
            let svc = try await h.create(Resources.services, EPObjects.service("web", selector: ["app": "web"]))
            var pods: [JSON] = []
            for i in 1...3 { pods.append(try await h.create(Resources.pods, EPObjects.pod("web-\(i)", labels: ["app": "web"]))) }
            _ = try await h.markReady(pods[0], ip: "10.244.0.11")
            _ = try await h.markReady(pods[1], ip: "10.244.0.12")
            _ = try await h.markReady(pods[2], ip: "10.244.0.13", ready: false)
            #expect(await h.eventually {
                let s = (try? await Self.slices(h, service: "web")) ?? []
                return s.flatMap { $0["endpoints"]?.arrayValue ?? [] }.count == 3
            })
            let slices = try await Self.slices(h, service: "web")
            #expect(slices.count == 1)
            let slice = try #require(slices.first)
            #expect(slice[path: "metadata", "generateName"] == "web-")
            #expect(slice.name?.hasPrefix("web-") == true)
            #expect(slice["addressType"] == "IPv4")
            #expect(slice.labels == [
                "kubernetes.io/service-name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "team": "blue",
            ])
            #expect(slice[path: "metadata", "ownerReferences"] == [[
                "apiVersion": "v1", "kind": "Service", "name": "web", "uid": .string(svc.uid ?? ""),
                "controller": true, "blockOwnerDeletion": true,
            ]])
            #expect(slice["ports"] == [["name": "http", "protocol": "TCP", "port": 8080]])
            let ready = Self.endpoint(slices, ip: "10.244.0.11")
            #expect(ready?["conditions"] == ["ready": true, "serving": true, "terminating": false])
            #expect(ready?["nodeName"] == "labnode")
            #expect(ready?[path: "targetRef", "name"] == "web-1")
            #expect(Self.endpoint(slices, ip: "10.244.0.13")?["conditions"] == ["ready": false, "serving": false, "terminating": false])

            // Deleting a pod makes it terminating (grace period): still listed, marked so.
            _ = try await h.api.delete(Resources.pods, namespace: "default", name: "web-1")
            #expect(await h.eventually {
                let s = (try? await Self.slices(h, service: "web")) ?? []
                return Self.endpoint(s, ip: "10.244.0.11")?["conditions"] == ["ready": false, "serving": true, "terminating": true]
            })
            #expect(try await Self.slices(h, service: "web").first?.name == slice.name, "updated in place")
        }
    }

    @Test func serviceWithoutPodsHasOnePlaceholderSlice() async throws {
        try await withEndpointControllers { h in
            _ = try await h.create(Resources.services, EPObjects.service("empty", selector: ["app": "nothing"]))
            #expect(await h.eventually { ((try? await Self.slices(h, service: "empty")) ?? []).count == 1 })
            try await Task.sleep(for: .milliseconds(100))
            let slices = try await Self.slices(h, service: "empty")
            #expect(slices.count == 1)
            let placeholder = try #require(slices.first)
            #expect(placeholder["endpoints"]?.arrayValue?.isEmpty ?? true)
            #expect(placeholder["ports"]?.arrayValue?.isEmpty ?? true)
        }
    }

    /// The service update pattern seen through slices: the same slice is rewritten.
    @Test func selectorChangeUpdatesTheSameSlice() async throws {
        try await withEndpointControllers { h in
            for (i, version) in ["v1", "v1", "v2", "v2"].enumerated() {
                let p = try await h.create(Resources.pods, EPObjects.pod("app-\(i)", labels: ["app": "shop", "version": version]))
                _ = try await h.markReady(p, ip: "10.244.1.\(10 + i)")
            }
            _ = try await h.create(Resources.services, EPObjects.service("shop", selector: ["app": "shop", "version": "v1"]))
            func addresses() async -> [String] {
                let s = (try? await Self.slices(h, service: "shop")) ?? []
                return s.flatMap { $0["endpoints"]?.arrayValue ?? [] }.compactMap { $0["addresses"]?.arrayValue?.first?.stringValue }.sorted()
            }
            #expect(await h.eventually { await addresses() == ["10.244.1.10", "10.244.1.11"] })
            let before = try await Self.slices(h, service: "shop").map(\.name)

            var svc = try await h.api.get(Resources.services, namespace: "default", name: "shop")
            svc[path: "spec", "selector", "version"] = "v2"
            _ = try await h.api.update(Resources.services, namespace: "default", name: "shop", body: svc)
            #expect(await h.eventually { await addresses() == ["10.244.1.12", "10.244.1.13"] })
            #expect(try await Self.slices(h, service: "shop").map(\.name) == before)
        }
    }

    @Test func handWrittenEndpointsAreMirrored() async throws {
        try await withEndpointControllers { h in
            _ = try await h.create(Resources.services, EPObjects.service("db", selector: nil, ports: [["name": "pg", "port": 5432]]))
            var handWritten: JSON = [
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": ["name": "db", "namespace": "default", "labels": ["tier": "data"]],
                "subsets": [[
                    "addresses": [["ip": "192.168.77.20"]],
                    "notReadyAddresses": [["ip": "192.168.77.21"]],
                    "ports": [["name": "pg", "port": 5432]],
                ]],
            ]
            let ep = try await h.create(Resources.endpoints, handWritten)
            #expect(await h.eventually { ((try? await Self.slices(h, service: "db")) ?? []).count == 1 })
            let slice = try #require(try await Self.slices(h, service: "db").first)
            #expect(slice.labels == [
                "kubernetes.io/service-name": "db",
                "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io",
                "tier": "data",
            ])
            #expect(slice[path: "metadata", "ownerReferences"] == [[
                "apiVersion": "v1", "kind": "Endpoints", "name": "db", "uid": .string(ep.uid ?? ""),
                "controller": true, "blockOwnerDeletion": true,
            ]])
            #expect(slice["addressType"] == "IPv4")
            #expect(slice["ports"] == [["name": "pg", "protocol": "TCP", "port": 5432]])
            #expect(slice["endpoints"] == [
                ["addresses": ["192.168.77.20"], "conditions": ["ready": true]],
                ["addresses": ["192.168.77.21"], "conditions": ["ready": false]],
            ])

            // Changing the Endpoints updates the mirrored slice in place.
            handWritten = try await h.api.get(Resources.endpoints, namespace: "default", name: "db")
            handWritten["subsets"] = [["addresses": [["ip": "192.168.77.30"]], "ports": [["name": "pg", "port": 5432]]]]
            _ = try await h.api.update(Resources.endpoints, namespace: "default", name: "db", body: handWritten)
            #expect(await h.eventually {
                let s = (try? await Self.slices(h, service: "db")) ?? []
                return s.count == 1 && s.first?.name == slice.name
                    && s.first?["endpoints"] == [["addresses": ["192.168.77.30"], "conditions": ["ready": true]]]
            })

            // Removing the Endpoints removes the mirror.
            _ = try await h.api.delete(Resources.endpoints, namespace: "default", name: "db")
            #expect(await h.eventually { ((try? await Self.slices(h, service: "db")) ?? [[:]]).isEmpty })
        }
    }

    @Test func skipMirrorLabelAndSelectorServicesAreNotMirrored() async throws {
        try await withEndpointControllers { h in
            _ = try await h.create(Resources.services, EPObjects.service("ext", selector: nil, ports: [["port": 443]]))
            _ = try await h.create(Resources.endpoints, [
                "apiVersion": "v1", "kind": "Endpoints",
                "metadata": ["name": "ext", "namespace": "default", "labels": ["endpointslice.kubernetes.io/skip-mirror": "true"]],
                "subsets": [["addresses": [["ip": "192.168.77.40"]], "ports": [["port": 443]]]],
            ])
            let p = try await h.create(Resources.pods, EPObjects.pod("sel-0", labels: ["app": "sel"]))
            _ = try await h.markReady(p, ip: "10.244.7.10")
            _ = try await h.create(Resources.services, EPObjects.service("sel", selector: ["app": "sel"]))
            #expect(await h.eventually { ((try? await Self.slices(h, service: "sel")) ?? []).count == 1 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await Self.slices(h, service: "ext").isEmpty)
            let managers = try await Self.slices(h, service: "sel").map { $0.labels[EndpointKeys.managedBy] }
            #expect(managers == [EndpointKeys.sliceControllerName], "Endpoints of a selector service are not mirrored")
        }
    }

    @Test func selectorRemovedRemovesControllerSlices() async throws {
        try await withEndpointControllers { h in
            let p = try await h.create(Resources.pods, EPObjects.pod("r-0", labels: ["app": "r"]))
            _ = try await h.markReady(p, ip: "10.244.8.10")
            _ = try await h.create(Resources.services, EPObjects.service("r", selector: ["app": "r"]))
            #expect(await h.eventually { ((try? await Self.slices(h, service: "r")) ?? []).count == 1 })
            var svc = try await h.api.get(Resources.services, namespace: "default", name: "r")
            svc[path: "spec", "selector"] = nil
            _ = try await h.api.update(Resources.services, namespace: "default", name: "r", body: svc)
            // The Endpoints stay (now the user's) and are mirrored; the controller's slice goes.
            #expect(await h.eventually {
                let s = (try? await Self.slices(h, service: "r")) ?? []
                return s.map { $0.labels[EndpointKeys.managedBy] } == [EndpointKeys.mirroringControllerName]
            })
        }
    }

    @Test func editedSliceIsRepaired() async throws {
        try await withEndpointControllers { h in
            let p = try await h.create(Resources.pods, EPObjects.pod("fix-0", labels: ["app": "fix"]))
            _ = try await h.markReady(p, ip: "10.244.9.10")
            _ = try await h.create(Resources.services, EPObjects.service("fix", selector: ["app": "fix"]))
            #expect(await h.eventually { Self.endpoint((try? await Self.slices(h, service: "fix")) ?? [], ip: "10.244.9.10") != nil })
            var slice = try #require(try await Self.slices(h, service: "fix").first)
            slice["endpoints"] = [["addresses": ["10.244.9.99"], "conditions": ["ready": true]]]
            _ = try await h.api.update(Resources.endpointSlices, namespace: "default", name: slice.name ?? "", body: slice)
            #expect(await h.eventually(timeout: .seconds(20)) {
                let s = (try? await Self.slices(h, service: "fix")) ?? []
                return Self.endpoint(s, ip: "10.244.9.10") != nil && Self.endpoint(s, ip: "10.244.9.99") == nil
            })
        }
    }
}

/// The endpoint controllers next to the cluster's other controllers (the `kubernetes` service
/// controller, the garbage collector), as `labnode up` runs them.
@Suite(.serialized) struct EndpointControllersInClusterTests {
    static func withCluster(_ body: (Harness) async throws -> Void) async throws {
        let h = try await Harness { ctx in
            StandardControllers.all(ctx)
                + [EndpointsController(ctx), EndpointSliceController(ctx), EndpointSliceMirroringController(ctx)]
        }
        do {
            try await body(h)
        } catch {
            await h.stop()
            throw error
        }
        await h.stop()
    }

    @Test func kubernetesServiceKeepsOnlyItsOwnSlice() async throws {
        try await Self.withCluster { h in
            #expect(await h.eventually { (try? await h.api.find(Resources.endpointSlices, namespace: "default", name: "kubernetes")) != nil })
            try await Task.sleep(for: .milliseconds(300))
            let slices = try await EndpointSliceControllerTests.slices(h, service: "kubernetes")
            #expect(slices.map(\.name) == ["kubernetes"], "the skip-mirror Endpoints are not mirrored")
            #expect(try await h.api.find(Resources.endpoints, namespace: "default", name: "kubernetes") != nil)
        }
    }

    @Test(arguments: ["Background", "Foreground"])
    func cascadingServiceDeleteRemovesSlicesAndEndpoints(policy: String) async throws {
        try await Self.withCluster { h in
            let p = try await h.create(Resources.pods, EPObjects.pod("c-0", labels: ["app": "c"]))
            _ = try await h.markReady(p, ip: "10.244.10.10")
            _ = try await h.create(Resources.services, EPObjects.service("c", selector: ["app": "c"]))
            #expect(await h.eventually { ((try? await EndpointSliceControllerTests.slices(h, service: "c")) ?? []).count == 1 })
            _ = try await h.api.delete(Resources.services, namespace: "default", name: "c",
                                       options: DeleteOptions(propagationPolicy: policy))
            #expect(await h.eventually {
                let slices = (try? await EndpointSliceControllerTests.slices(h, service: "c")) ?? [[:]]
                let ep = try? await h.api.find(Resources.endpoints, namespace: "default", name: "c")
                let svc = try? await h.api.find(Resources.services, namespace: "default", name: "c")
                return slices.isEmpty && ep == nil && svc == nil
            })
        }
    }
}

/// The slice planner on its own: slice sizes, in-place updates, the placeholder.
@Suite struct EndpointSlicePlannerTests {
    static let service = EPFixture.service()

    static func pods(_ n: Int) -> [JSON] {
        (0..<n).map { EPFixture.pod("p\($0)", ip: "10.1.\($0 / 200).\($0 % 200 + 1)") }
    }

    /// The plan's creates written as if by the API server (names assigned).
    static func stored(_ plan: SlicePlan) -> [JSON] {
        plan.create.enumerated().map { i, s in
            var s = s
            s[path: "metadata", "name"] = .string("web-\(i)")
            s[path: "metadata", "resourceVersion"] = "1"
            return s
        } + plan.update
    }

    @Test func atMostOneHundredEndpointsPerSlice() {
        let plan = EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(250), existing: [], maxEndpoints: 100)
        #expect(plan.create.map { $0["endpoints"]?.arrayValue?.count ?? 0 }.sorted() == [50, 100, 100])
        #expect(plan.update.isEmpty && plan.delete.isEmpty)
    }

    @Test func inSyncMeansNoWrites() {
        let pods = Self.pods(120)
        let existing = Self.stored(EndpointSlicePlanner.plan(service: Self.service, pods: pods, existing: [], maxEndpoints: 100))
        #expect(EndpointSlicePlanner.plan(service: Self.service, pods: pods, existing: existing, maxEndpoints: 100).isEmpty)
    }

    @Test func oneReadinessChangeUpdatesOneSlice() {
        var pods = Self.pods(150)
        let existing = Self.stored(EndpointSlicePlanner.plan(service: Self.service, pods: pods, existing: [], maxEndpoints: 100))
        pods[7][path: "status", "conditions"] = [["type": "Ready", "status": "False"]]
        let plan = EndpointSlicePlanner.plan(service: Self.service, pods: pods, existing: existing, maxEndpoints: 100)
        #expect(plan.create.isEmpty && plan.delete.isEmpty)
        #expect(plan.update.count == 1)
        #expect(plan.update.first?[path: "metadata", "resourceVersion"] == "1", "written with the version read")
    }

    @Test func newEndpointGoesIntoTheSliceClosestToFull() {
        let existing = Self.stored(EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(150), existing: [], maxEndpoints: 100))
        let plan = EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(151), existing: existing, maxEndpoints: 100)
        #expect(plan.create.isEmpty && plan.delete.isEmpty && plan.update.count == 1)
        #expect(plan.update.first?["endpoints"]?.arrayValue?.count == 51)
    }

    @Test func placeholderWhenNoEndpointsAndKeptWhenStillEmpty() {
        let plan = EndpointSlicePlanner.plan(service: Self.service, pods: [], existing: [], maxEndpoints: 100)
        #expect(plan.create.count == 1 && plan.create.first?["endpoints"] == .null && plan.create.first?["ports"] == .null)
        let again = EndpointSlicePlanner.plan(service: Self.service, pods: [], existing: Self.stored(plan), maxEndpoints: 100)
        #expect(again.isEmpty)
        // Pods arrive: the placeholder is rewritten rather than deleted and replaced.
        let filled = EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(2), existing: Self.stored(plan), maxEndpoints: 100)
        #expect(filled.create.isEmpty && filled.delete.isEmpty)
        #expect(filled.update.first?.name == "web-0" && filled.update.first?["endpoints"]?.arrayValue?.count == 2)
    }

    @Test func slicesOfAnotherServiceWithTheSameNameAreReplaced() {
        var foreign = Self.stored(EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(3), existing: [], maxEndpoints: 100))
        foreign[0][path: "metadata", "ownerReferences"] = [["apiVersion": "v1", "kind": "Service", "name": "web", "uid": "old"]]
        let plan = EndpointSlicePlanner.plan(service: Self.service, pods: Self.pods(3), existing: foreign, maxEndpoints: 100)
        #expect(plan.delete.map(\.name) == ["web-0"])
        #expect(plan.create.count == 1)
    }

    @Test func mirroringGroupsBySubsetPortsAndFamily() {
        let endpoints: JSON = [
            "metadata": ["name": "db", "namespace": "default", "uid": "ep-uid",
                         "annotations": ["kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "x"]],
            "subsets": [
                ["addresses": [["ip": "10.0.0.1"], ["ip": "fd00::1"], ["ip": "bogus"]], "ports": [["name": "a", "port": 1, "protocol": "TCP"]]],
                ["addresses": [["ip": "10.0.0.2"]], "ports": [["name": "b", "port": 2, "protocol": "TCP"]]],
            ],
        ]
        let result = MirroringPlanner.plan(endpoints: endpoints, existing: [], maxPerSubset: 1000)
        #expect(result.invalid == 1)
        #expect(result.plan.create.count == 3)
        #expect(Set(result.plan.create.compactMap { $0["addressType"]?.stringValue }) == ["IPv4", "IPv6"])
        #expect(result.plan.create.allSatisfy { $0[path: "metadata", "annotations"] == ["note": "x"] })
    }
}
