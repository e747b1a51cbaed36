import APIMachinery
import Store
import Testing
@testable import APIServer

/// Service allocation through the API's create/update/delete, as kubectl reaches it.
@Suite struct ServiceAllocatorTests {
    // 10.0.0.0/24 and a small port range keep the arithmetic visible.
    static let ranges = ServiceRanges(network: 0x0A00_0000, prefixLength: 24, nodePorts: 30000...30099)

    static func makeAPI(_ ranges: ServiceRanges = ranges, store: any KVStore = MemoryStore()) async throws -> APIService {
        let api = APIService(store: store, serviceAllocator: ServiceAllocator(ranges: ranges))
        _ = try await api.create(Resources.namespaces, namespace: nil,
                                 body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        return api
    }

    static func service(_ name: String, type: String = "ClusterIP", clusterIP: String? = nil, nodePort: Int64? = nil,
                        ports: [Int64] = [80]) -> JSON {
        var spec: JSON = ["type": .string(type), "selector": ["app": "x"]]
        spec["ports"] = .array(ports.enumerated().map { i, p in
            var port: JSON = ["name": .string("p\(i)"), "port": .int(p)]
            if let nodePort, i == 0 { port["nodePort"] = .int(nodePort) }
            return port
        })
        if let clusterIP { spec["clusterIP"] = .string(clusterIP) }
        if type == "ExternalName" { spec = ["type": "ExternalName", "externalName": "db.example.com"] }
        return ["apiVersion": "v1", "kind": "Service", "metadata": ["name": .string(name)], "spec": spec]
    }

    static func patch(_ spec: JSON) -> [UInt8] {
        let doc: JSON = ["spec": spec]
        return doc.serialized()
    }

    func create(_ api: APIService, _ svc: JSON) async throws(APIError) -> JSON {
        try await api.create(Resources.services, namespace: "default", body: svc)
    }

    @Test func clusterIPAndNodePortsComeFromTheRanges() async throws {
        let api = try await Self.makeAPI()
        let svc = try await create(api, Self.service("web", type: "NodePort", ports: [80, 443]))
        let ip = try #require(svc[path: "spec", "clusterIP"]?.stringValue)
        #expect(ip.hasPrefix("10.0.0."))
        #expect(svc[path: "spec", "clusterIPs"] == [.string(ip)])
        #expect(ip != "10.0.0.10", "the DNS service's address is never handed out at random")
        let nodePorts = (svc[path: "spec", "ports"]?.arrayValue ?? []).compactMap { $0["nodePort"]?.intValue }
        #expect(nodePorts.count == 2)
        #expect(nodePorts.allSatisfy { (30000...30099).contains($0) })
        #expect(Set(nodePorts).count == 2)
    }

    @Test func requestedValuesAreHonouredOrRefusedWith422() async throws {
        let api = try await Self.makeAPI()
        let a = try await create(api, Self.service("a", type: "NodePort", clusterIP: "10.0.0.50", nodePort: 30050))
        #expect(a[path: "spec", "clusterIP"] == "10.0.0.50")
        #expect(a[path: "spec", "ports"]?.arrayValue?.first?["nodePort"] == 30050)

        await #expect {
            _ = try await create(api, Self.service("b", clusterIP: "10.0.0.50"))
        } throws: { e in
            guard let e = e as? APIError else { return false }
            return e.code == 422 && e.message == #"Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.50"}: failed to allocate IP 10.0.0.50: provided IP is already allocated"#
        }
        await #expect {
            _ = try await create(api, Self.service("c", clusterIP: "10.1.0.5"))
        } throws: { e in
            (e as? APIError)?.code == 422
                && (e as? APIError)?.message.contains("the provided IP (10.1.0.5) is not in the valid range. The range of valid IPs is 10.0.0.0/24") == true
        }
        await #expect {
            _ = try await create(api, Self.service("d", type: "NodePort", nodePort: 30050))
        } throws: { e in
            (e as? APIError)?.message == #"Service "d" is invalid: spec.ports[0].nodePort: Invalid value: 30050: provided port is already allocated"#
        }
        await #expect {
            _ = try await create(api, Self.service("e", type: "NodePort", nodePort: 40000))
        } throws: { e in
            (e as? APIError)?.message.contains("provided port is not in the valid range. The range of valid ports is 30000-30099") == true
        }
        // Refused requests hold nothing: only "a" is allocated.
        #expect(await api.serviceAllocator?.allocatedIPCount == 1)
        #expect(await api.serviceAllocator?.allocatedPortCount == 1)
    }

    @Test func headlessAndExternalNameGetNoAddress() async throws {
        let api = try await Self.makeAPI()
        let headless = try await create(api, Self.service("h", clusterIP: "None"))
        #expect(headless[path: "spec", "clusterIP"] == "None")
        let ext = try await create(api, Self.service("x", type: "ExternalName"))
        #expect(ext[path: "spec", "clusterIP"] == nil)
        #expect(await api.serviceAllocator?.allocatedIPCount == 0)
    }

    @Test func exhaustingASmallRangeFailsClearly() async throws {
        // A /29 has six usable addresses, .1 to .6.
        let small = ServiceRanges(network: 0x0A00_0000, prefixLength: 29, nodePorts: 30000...30001)
        let api = try await Self.makeAPI(small)
        var ips: Set<String> = []
        for i in 0..<6 {
            let s = try await create(api, Self.service("s\(i)"))
            ips.insert(s[path: "spec", "clusterIP"]?.stringValue ?? "")
        }
        #expect(ips == Set((1...6).map { "10.0.0.\($0)" }))
        await #expect {
            _ = try await create(api, Self.service("s6"))
        } throws: { e in
            (e as? APIError)?.code == 500
                && (e as? APIError)?.message == "Internal error occurred: failed to allocate a serviceIP: range is full"
        }
        let ports = try await Self.makeAPI(ServiceRanges(network: 0x0A00_0000, prefixLength: 24, nodePorts: 30000...30001))
        _ = try await create(ports, Self.service("n0", type: "NodePort"))
        _ = try await create(ports, Self.service("n1", type: "NodePort"))
        await #expect {
            _ = try await create(ports, Self.service("n2", type: "NodePort"))
        } throws: { e in
            (e as? APIError)?.message == "Internal error occurred: failed to allocate a nodePort: range is full"
        }
        // Deleting frees the address for the next one.
        _ = try await api.delete(Resources.services, namespace: "default", name: "s3")
        let again = try await create(api, Self.service("s7"))
        #expect(again[path: "spec", "clusterIP"] != nil)
    }

    @Test func typeChangesAllocateAndRelease() async throws {
        let api = try await Self.makeAPI()
        _ = try await create(api, Self.service("t"))
        let toNodePort = try await api.patch(Resources.services, namespace: "default", name: "t", type: .merge,
                                             body: Self.patch(["type": "NodePort"])).object
        #expect(toNodePort[path: "spec", "ports"]?.arrayValue?.first?["nodePort"]?.intValue != nil)
        #expect(await api.serviceAllocator?.allocatedPortCount == 1)
        _ = try await api.patch(Resources.services, namespace: "default", name: "t", type: .merge,
                                body: Self.patch(["type": "ClusterIP"]))
        #expect(await api.serviceAllocator?.allocatedPortCount == 0)
        let ext = try await api.patch(Resources.services, namespace: "default", name: "t", type: .merge,
                                      body: Self.patch(["type": "ExternalName", "externalName": "a.example.com"])).object
        #expect(ext[path: "spec", "clusterIP"] == nil)
        #expect(await api.serviceAllocator?.allocatedIPCount == 0)
    }

    @Test func twoHundredConcurrentCreatesNeverShareAnAddress() async throws {
        let api = try await Self.makeAPI(ServiceRanges(network: 0x0A00_0000, prefixLength: 24, nodePorts: 30000...30299))
        let created = try await withThrowingTaskGroup(of: JSON.self) { group in
            for i in 0..<200 {
                group.addTask { try await api.create(Resources.services, namespace: "default",
                                                     body: Self.service("c\(i)", type: "NodePort")) }
            }
            var out: [JSON] = []
            for try await s in group { out.append(s) }
            return out
        }
        let ips = created.compactMap { $0[path: "spec", "clusterIP"]?.stringValue }
        let ports = created.compactMap { $0[path: "spec", "ports"]?.arrayValue?.first?["nodePort"]?.intValue }
        #expect(Set(ips).count == 200)
        #expect(Set(ports).count == 200)
    }

    @Test func restartRebuildsFromTheStoreAndRepairFreesLeaks() async throws {
        let store = MemoryStore()
        let first = try await Self.makeAPI(store: store)
        let a = try await create(first, Self.service("a", type: "NodePort"))
        // A new API server on the same store (a restart) knows what is taken.
        let allocator = ServiceAllocator(ranges: Self.ranges)
        let second = APIService(store: store, serviceAllocator: allocator)
        await allocator.rebuild(from: try await second.list(Resources.services, namespace: nil).items)
        let ip = a[path: "spec", "clusterIP"]?.stringValue ?? ""
        await #expect(throws: APIError.self) {
            _ = try await second.create(Resources.services, namespace: "default", body: Self.service("b", clusterIP: ip))
        }
        // A leak (an allocation without a Service) is found by repair; live ones are kept.
        let (_, leaked) = try await allocator.allocate(Self.service("ghost"), old: nil, dryRun: false)
        await allocator.commit(leaked)
        #expect(await allocator.allocatedIPCount == 2)
        await allocator.beginRepair()
        let services = try await second.list(Resources.services, namespace: nil).items
        #expect(await allocator.finishRepair(services: services) == 1)
        #expect(await allocator.allocatedIPCount == 1)
        #expect(await allocator.allocatedPortCount == 1)
    }

    @Test func dryRunAllocatesNothing() async throws {
        let api = try await Self.makeAPI()
        var options = WriteOptions()
        options.dryRun = true
        let s = try await api.create(Resources.services, namespace: "default", body: Self.service("d", type: "NodePort"), options: options)
        #expect(s[path: "spec", "clusterIP"]?.stringValue?.hasPrefix("10.0.0.") == true)
        #expect(await api.serviceAllocator?.allocatedIPCount == 0)
        #expect(await api.serviceAllocator?.allocatedPortCount == 0)
    }
}

@Suite struct ShutdownTests {
    /// An idle watch must not hold the server's graceful stop (and `labnode down`) for 30 s.
    @Test func endWatchesFinishesOpenAndLaterWatches() async throws {
        let api = APIService(store: MemoryStore())
        let open = try await api.watch(Resources.configMaps, namespace: nil, options: ListOptions())
        api.endWatches()
        var events = 0
        for await _ in open { events += 1 }
        #expect(events == 0, "no objects, so the stream just ends")
        let later = try await api.watch(Resources.configMaps, namespace: nil, options: ListOptions())
        for await _ in later { events += 1 }
        #expect(events == 0)
    }
}
