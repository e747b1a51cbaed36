import Foundation
import Synchronization
import Testing
@testable import ServiceProxy

@Suite struct NftablesRulesTests {
    let settings = ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")

    func port(_ name: String = "web", ip: String = "10.96.0.20", endpoints: [String] = ["10.244.0.5", "10.244.0.6", "10.244.0.7"]) -> ProxyServicePort {
        ProxyServicePort(namespace: "default", name: name, portName: "http", clusterIP: ip, port: 80,
                         endpoints: endpoints.map { ProxyEndpoint(ip: $0, port: 8080, nodeName: "vm") })
    }

    /// The rules of one chain, from the rendered text.
    func chain(_ text: String, _ name: String) -> [String]? {
        let lines = text.split(separator: "\n").map(String.init)
        guard let start = lines.firstIndex(of: "\tchain \(name) {") else { return nil }
        return Array(lines[(start + 1)...].prefix { $0 != "\t}" }).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    @Test func namesMatchUpstreamVectors() {
        let sp = ProxyServicePort(namespace: "ns1", name: "svc1", portName: "p80", clusterIP: "10.0.0.1", port: 80)
        #expect(NftablesRules.serviceChain(sp) == "service-ULMVA6XW-ns1/svc1/tcp/p80")
        #expect(NftablesRules.endpointChain(sp, ProxyEndpoint(ip: "10.180.0.1", port: 80)) == "endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80")
    }

    @Test func aServiceIsOneMapElementAndOneRandomChoice() {
        let sp = port()
        let text = NftablesRules(settings: settings).render([sp])
        #expect(text.hasPrefix("add table ip kube-proxy\ndelete table ip kube-proxy\ntable ip kube-proxy {\n"))
        let service = NftablesRules.serviceChain(sp)
        #expect(text.contains("10.96.0.20 . tcp . 80 : goto \(service)"))
        let rules = chain(text, service)
        #expect(rules?.first == "ip daddr 10.96.0.20 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade")
        let eps = sp.endpoints.map { NftablesRules.endpointChain(sp, $0) }
        #expect(rules?.last == "numgen random mod 3 vmap { 0 : goto \(eps[0]), 1 : goto \(eps[1]), 2 : goto \(eps[2]) }")
        // Each endpoint chain masquerades its own pod (hairpin) and DNATs.
        #expect(chain(text, eps[1]) == ["ip saddr 10.244.0.6 jump mark-for-masquerade", "meta l4proto tcp dnat to 10.244.0.6:8080"])
        #expect(chain(text, "masquerading") == ["meta mark & 0x4000 == 0 return", "meta mark set meta mark xor 0x4000", "masquerade fully-random"])
        #expect(chain(text, "cluster-ips-check")?.last == "ip daddr 10.96.0.0/12 reject comment \"Reject traffic to unallocated ClusterIPs\"")
        #expect(chain(text, "filter-output")?.contains("ct state new jump cluster-ips-check") == false)
        #expect(chain(text, "filter-output-post-dnat")?.last == "ct state new jump cluster-ips-check")
        #expect(text.contains("\tmap service-ips {\n\t\ttype ipv4_addr . inet_proto . inet_service : verdict"))
    }

    @Test func noEndpointsRejectsAndNodePortsGoThroughTheExternalChain() {
        var empty = port("idle", ip: "10.96.0.30", endpoints: [])
        empty.nodePort = 30001
        var np = port()
        np.nodePort = 30080
        np.loadBalancerIPs = ["172.31.250.2"]
        let text = NftablesRules(settings: settings).render([empty, np])
        #expect(text.contains("10.96.0.30 . tcp . 80 : goto reject-chain"))
        #expect(text.contains("tcp . 30001 : goto reject-chain"))
        #expect(chain(text, NftablesRules.serviceChain(empty)) == nil)
        let external = NftablesRules.externalChain(np)
        #expect(text.contains("tcp . 30080 : goto \(external)"))
        #expect(text.contains("172.31.250.2 . tcp . 80 : goto \(external)"))
        #expect(chain(text, external) == ["jump mark-for-masquerade", "goto \(NftablesRules.serviceChain(np))"])
        // 10.96.0.30 is an active cluster IP: other ports on it are rejected, not dropped.
        #expect(text.contains("elements = { 10.96.0.20, 10.96.0.30 }"))
    }

    @Test func clientIPAffinityRemembersTheEndpointPerClient() {
        var sp = port(endpoints: ["10.244.0.5", "10.244.0.6"])
        sp.affinitySeconds = 10800
        let text = NftablesRules(settings: settings).render([sp])
        let e0 = sp.endpoints[0]
        let set = NftablesRules.affinitySet(sp, e0)
        #expect(text.contains("\tset \(set) {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 10800s\n\t}"))
        let rules = chain(text, NftablesRules.serviceChain(sp)) ?? []
        #expect(rules.dropFirst().first == "ip saddr @\(set) goto \(NftablesRules.endpointChain(sp, e0))")
        #expect(chain(text, NftablesRules.endpointChain(sp, e0))?.contains("update @\(set) { ip saddr }") == true)
    }

    @Test func theProxierAppliesOneTransactionAndCleansUpByDeletingItsTable() async throws {
        let calls = Mutex<[String]>([])
        let tableExists = Mutex(false)
        let proxier = NftablesProxier(settings: settings, run: { args, stdin in
            calls.withLock { $0.append(args.joined(separator: " ")) }
            switch args.joined(separator: " ") {
            case "nft -f -": tableExists.withLock { $0 = true }; return (0, "")
            case "nft list chain ip kube-proxy mark-for-masquerade": return (tableExists.withLock { $0 } ? 0 : 1, "")
            case "nft delete table ip kube-proxy": tableExists.withLock { $0 = false }; return (0, "")
            default: return (0, "")
            }
        }, logger: .init(label: "test"))
        try await proxier.sync([port()])
        try await proxier.sync([port()])  // unchanged, table present: nothing applied
        try await proxier.sync([port(endpoints: ["10.244.0.9"])])
        #expect(calls.withLock { $0.filter { $0 == "nft -f -" }.count } == 2)
        try await proxier.cleanup()
        #expect(calls.withLock { $0.last } == "nft delete table ip kube-proxy")
        #expect(tableExists.withLock { $0 } == false)
    }
}

@Suite struct LoadBalancerAddressesTests {
    final class RecordingHolder: AddressHolder {
        let calls = Mutex<[String]>([])
        func add(_ address: String) throws { calls.withLock { $0.append("add \(address)") } }
        func remove(_ address: String) throws { calls.withLock { $0.append("remove \(address)") } }
    }

    @Test func poolAddressesAreHeldWhileUsedAndRemovedAfterEvenAcrossARestart() throws {
        let record = FileManager.default.temporaryDirectory.appendingPathComponent("lb-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: record) }
        let holder = RecordingHolder()
        let lb = LoadBalancerAddresses(holder: holder, nodeIP: "172.31.250.2", recordPath: record)
        var a = ProxyServicePort(namespace: "default", name: "a", clusterIP: "10.96.0.20", port: 80)
        a.loadBalancerIPs = ["172.31.250.100"]
        var b = ProxyServicePort(namespace: "default", name: "b", clusterIP: "10.96.0.21", port: 80)
        b.loadBalancerIPs = ["172.31.250.2"]  // the node's own address: nothing to add
        try lb.update(lb.wanted([a, b]))
        #expect(holder.calls.withLock { $0 } == ["add 172.31.250.100"])
        // A new process (after a crash) knows what the last one added, and removes it when unused.
        let again = LoadBalancerAddresses(holder: holder, nodeIP: "172.31.250.2", recordPath: record)
        #expect(again.current == ["172.31.250.100"])
        try again.update(again.wanted([b]))
        #expect(holder.calls.withLock { $0 } == ["add 172.31.250.100", "remove 172.31.250.100"])
        try again.removeAll()
        #expect(holder.calls.withLock { $0 }.count == 2)
    }
}
