import Synchronization
import Testing
@testable import Networking

@Suite struct PodEgressTests {
    /// A fake iptables holding the nat POSTROUTING rules as argument lists.
    final class FakeIPTables: Sendable {
        let rules = Mutex<[[String]]>([])
        let calls = Mutex<[[String]]>([])
        func run(_ args: [String]) -> (status: Int32, error: String) {
            calls.withLock { $0.append(args) }
            let rule = Array(args.dropFirst(3))
            switch args[2] {
            case "-C": return (rules.withLock { $0.contains(rule) } ? 0 : 1, "")
            case "-A": rules.withLock { $0.append(rule) }; return (0, "")
            case "-D": rules.withLock { if let i = $0.firstIndex(of: rule) { $0.remove(at: i) } }; return (0, "")
            default: return (2, "unknown")
            }
        }
    }

    @Test func ensureAddsOnceAndRemoveDeletes() throws {
        let fake = FakeIPTables()
        let egress = PodEgress(podSubnet: "10.244.0.0/24", clusterCIDR: "10.244.0.0/16", bridge: "cni0") { fake.run($0) }
        try egress.ensure()
        try egress.ensure()
        #expect(fake.rules.withLock { $0 } == [egress.rule])
        #expect(egress.rule.prefix(8) == ["POSTROUTING", "-s", "10.244.0.0/24", "!", "-d", "10.244.0.0/16", "!", "-o"])
        #expect(egress.rule.last == "MASQUERADE")
        try egress.remove()
        #expect(fake.rules.withLock { $0 }.isEmpty)
        #expect(fake.calls.withLock { $0 }.allSatisfy { $0.prefix(2) == ["-t", "nat"] })
    }

    @Test func aRefusedAddIsAnError() {
        let egress = PodEgress(podSubnet: "10.244.0.0/24", clusterCIDR: "10.244.0.0/16", bridge: "cni0") { _ in (1, "no nat table") }
        #expect(throws: PodEgressError.self) { try egress.ensure() }
    }
}
