import Foundation
import Networking
import Synchronization
import Testing
@testable import ServiceProxy

@Suite struct NftablesDeltaTests {
    let settings = ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")
    var rules: NftablesRules { NftablesRules(settings: settings) }

    func port(_ name: String, ip: String, endpoints: [String] = ["10.244.0.5", "10.244.0.6"]) -> ProxyServicePort {
        ProxyServicePort(namespace: "default", name: name, portName: "http", clusterIP: ip, port: 80,
                         endpoints: endpoints.map { ProxyEndpoint(ip: $0, port: 8080, nodeName: "vm") })
    }

    func byID(_ ports: [ProxyServicePort]) -> [String: ProxyServicePort] {
        Dictionary(ports.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    func tracer(_ text: String) throws -> NftablesTracer {
        try NftablesTracer(text, nodeAddresses: ["192.168.1.10"], serviceCIDR: settings.serviceCIDR)
    }

    /// The old table with the delta applied, as the kernel would, in the tracer's model.
    func applied(_ delta: NftablesDelta, to old: [ProxyServicePort]) throws -> NftablesTracer {
        var t = try tracer(rules.render(old))
        for s in delta.sets { t.sets[s.name] = t.sets[s.name] ?? [] }
        for c in delta.chains { t.chains[c.name] = c.rules }
        for e in delta.elementsRemoved {
            if t.maps[e.map] != nil { t.maps[e.map]?[NftablesDelta.key(e.element)] = nil } else { t.sets[e.map]?.remove(e.element) }
        }
        for e in delta.elementsAdded {
            let parts = e.element.components(separatedBy: " : ")
            if parts.count == 2 { t.maps[e.map, default: [:]][parts[0]] = parts[1] } else { t.sets[e.map, default: []].insert(e.element) }
        }
        for c in delta.chainsRemoved {
            #expect(t.chains[c] != nil, "deletes a chain that is not there: \(c)")
            t.chains[c] = nil
        }
        for s in delta.setsRemoved { t.sets[s] = nil }
        return t
    }

    func expectSameTable(_ a: NftablesTracer, _ b: NftablesTracer) {
        #expect(a.chains == b.chains)
        #expect(a.maps == b.maps)
        #expect(a.sets == b.sets)
    }

    var many: [ProxyServicePort] {
        (0..<20).map { port("svc-\($0)", ip: "10.96.0.\($0 + 10)", endpoints: ["10.244.1.\($0 + 1)", "10.244.2.\($0 + 1)"]) }
    }

    @Test func aChangedEndpointRewritesOnlyThatServicesChains() throws {
        let old = many
        var new = old
        new[7].endpoints[0].ip = "10.244.9.9"
        let delta = rules.delta(old: byID(old), new: new)
        let moved = new[7]
        #expect(delta.chains.map(\.name) == [NftablesRules.endpointChain(moved, moved.endpoints[0]), NftablesRules.serviceChain(moved)])
        #expect(delta.chainsRemoved == [NftablesRules.endpointChain(old[7], old[7].endpoints[0])])
        // The service's chain name does not change, so neither do the map elements.
        #expect(delta.elementsAdded.isEmpty && delta.elementsRemoved.isEmpty)
        for other in new where other.id != moved.id {
            #expect(!delta.text.contains(NftablesRules.serviceChain(other)))
        }
        expectSameTable(try applied(delta, to: old), try tracer(rules.render(new)))
        // And packets reach the new endpoint.
        var t = try applied(delta, to: old)
        let verdict = try t.trace(.init(source: "10.244.3.3", destination: moved.clusterIP ?? "", port: 80, origin: .pod))
        #expect(verdict == .dnat(to: "10.244.9.9:8080", masquerade: false))
    }

    @Test func aRemovedServiceDeletesItsElementsThenItsChains() throws {
        let old = many
        var new = old
        let gone = new.remove(at: 3)
        let delta = rules.delta(old: byID(old), new: new)
        #expect(delta.chains.isEmpty && delta.elementsAdded.isEmpty)
        #expect(Set(delta.elementsRemoved) == [
            .init(map: "service-ips", element: "10.96.0.13 . tcp . 80 : goto \(NftablesRules.serviceChain(gone))"),
            .init(map: "cluster-ips", element: "10.96.0.13"),
        ])
        // The service chain jumps to the endpoint chains: it goes first.
        #expect(delta.chainsRemoved.first == NftablesRules.serviceChain(gone))
        #expect(Set(delta.chainsRemoved) == Set([NftablesRules.serviceChain(gone)] + gone.endpoints.map { NftablesRules.endpointChain(gone, $0) }))
        #expect(delta.text.contains("delete element ip kube-proxy service-ips { 10.96.0.13 . tcp . 80 }\n"))
        expectSameTable(try applied(delta, to: old), try tracer(rules.render(new)))
    }

    @Test func unchangedServicesAreNotInTheDelta() {
        #expect(rules.delta(old: byID(many), new: many).isEmpty)
        #expect(rules.delta(old: byID(many), new: many).text.isEmpty)
    }

    /// Table-driven: each change, applied to the old table, gives the full render of the new.
    @Test(arguments: [
        "add a service", "lose all endpoints", "gain the first endpoint", "add a NodePort with Local policy",
        "turn on affinity", "turn off affinity", "share a cluster IP between two ports", "remove one of two ports",
    ])
    func theDeltaAppliedToTheOldTableIsTheFullRender(change: String) throws {
        var old = many
        var new = old
        switch change {
        case "add a service":
            new.append(port("fresh", ip: "10.96.5.5"))
        case "lose all endpoints":
            new[2].endpoints = []
        case "gain the first endpoint":
            old[2].endpoints = []
        case "add a NodePort with Local policy":
            new[4].nodePort = 30080
            new[4].externalPolicyLocal = true
            new[4].externalIPs = ["192.168.1.50"]
        case "turn on affinity":
            new[5].affinitySeconds = 10800
        case "turn off affinity":
            old[5].affinitySeconds = 10800
        case "share a cluster IP between two ports":
            var second = new[6]
            second.portName = "https"
            second.port = 443
            new.append(second)
        default:
            var second = old[6]
            second.portName = "https"
            second.port = 443
            old.append(second)
            new = old
            new.removeLast()
        }
        let delta = rules.delta(old: byID(old), new: new)
        #expect(!delta.isEmpty)
        expectSameTable(try applied(delta, to: old), try tracer(rules.render(new)))
        // A shared cluster IP stays while either port uses it.
        if change.contains("two ports") { #expect(!delta.elementsRemoved.contains { $0.map == "cluster-ips" }) }
    }

    @Test func theChainScriptNeedsOnlyTheTableListFromTheKernel() {
        var old = many
        old[1].affinitySeconds = 60
        var new = old
        new[1].endpoints.append(ProxyEndpoint(ip: "10.244.7.7", port: 8080))
        let delta = rules.delta(old: byID(old), new: new)
        let script = delta.chainScript
        // Only `add set`, `add chain` and `flush chain`: `add rule` or `add element` would make
        // libnftables read every chain and set back first.
        for line in script.split(separator: "\n") {
            #expect(line.hasPrefix("add chain ") || line.hasPrefix("flush chain ") || line.hasPrefix("add set "), "\(line)")
        }
        // The affinity sets the rewritten chains name are declared in the same transaction.
        #expect(script.contains("add set ip kube-proxy \(NftablesRules.affinitySet(new[1], new[1].endpoints[2])) { type ipv4_addr; flags dynamic,timeout; timeout 60s; }"))
    }

    // MARK: Netlink encoding

    @Test func elementKeysArePaddedFieldsInNetworkOrder() throws {
        #expect(try NftablesNetlink.key("10.96.0.10 . udp . 53") == [10, 96, 0, 10, 17, 0, 0, 0, 0, 53, 0, 0])
        #expect(try NftablesNetlink.key("tcp . 30080") == [6, 0, 0, 0, 0x75, 0x80, 0, 0])
        #expect(throws: NftablesNetlink.Unencodable.self) { try NftablesNetlink.key("10.96.0.10 . quic . 53") }
    }

    @Test func elementVerdictsAreGotoOrDrop() throws {
        let goto = try NftablesNetlink.element("10.96.0.10 . udp . 53 : goto service-X")
        let drop = try NftablesNetlink.element("10.96.0.10 . udp . 53 : drop")
        // The drop verdict is the code alone (NF_DROP, 0); goto adds its chain name.
        #expect(goto.count > drop.count)
        #expect(Array(drop.suffix(4)) == [0, 0, 0, 0])
        #expect(throws: NftablesNetlink.Unencodable.self) { try NftablesNetlink.element("10.96.0.10 . udp . 53 : return") }
    }

    @Test func aBatchIsOneTransactionAckedOnceAtItsLastOperation() throws {
        let ops: [NftablesNetlink.Operation] = [.deleteElements(set: "cluster-ips", ["10.96.0.13"]), .deleteChain("service-X")]
        let (bytes, last) = try NftablesNetlink.batch(ops, firstSequence: 7)
        let messages = NftablesNetlink.messages(in: bytes)
        #expect(messages.map(\.type) == [0x10, 10 << 8 | 14, 10 << 8 | 5, 0x11])
        #expect(messages.map(\.sequence) == [7, 8, 9, 10])
        #expect(last == 9)
        // Flags: only the last operation asks for an acknowledgement.
        let flags = { (i: Int) -> UInt16 in
            var offset = 0
            for _ in 0..<i { offset += Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 }
            return UInt16(bytes[offset + 6]) | UInt16(bytes[offset + 7]) << 8
        }
        #expect(flags(1) & NftablesNetlink.acknowledge == 0)
        #expect(flags(2) & NftablesNetlink.acknowledge != 0)
        // The batch messages name the nf_tables subsystem in res_id (big-endian).
        #expect(Array(messages[0].payload.prefix(4)) == [0, 0, 0, 10])
    }

    @Test func theWriterReportsWhichOperationTheKernelRefused() throws {
        let socket = RecordingNetlinkSocket { request in
            // Acknowledge the last operation, refuse the first one (ENOENT), as nfnetlink does.
            let messages = NftablesNetlink.messages(in: request)
            return messages.dropFirst().dropLast().enumerated().map { i, m in
                var reply = NftablesNetlink.littleEndian(36) + NftablesNetlink.littleEndian16(2) + [0, 0]
                reply += NftablesNetlink.littleEndian(m.sequence) + NftablesNetlink.littleEndian(0)
                reply += NftablesNetlink.littleEndian(UInt32(bitPattern: i == 0 ? -ENOENT : 0)) + [UInt8](repeating: 0, count: 16)
                return reply
            }
        }
        let writer = try InProcessNftablesWriter(socket: socket)
        var delta = NftablesDelta()
        delta.chainsRemoved = ["service-A", "endpoint-B"]
        #expect {
            try writer.apply(delta)
        } throws: { error in
            "\(error)".contains("deleteChain(\"service-A\"): ENOENT") && !"\(error)".contains("endpoint-B\"): ")
        }
    }
}
