import Foundation
import Testing

/// The iptables service proxy against real pods, from the node and from a pod, in a network
/// namespace of the test's own (real iptables, the namespace's own netfilter tables).
@Suite("service proxy (iptables)", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ServiceProxyIntegrationTests {
    @Test func clusterIPNodePortSpreadAffinityAndCleanup() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        let before = try c.inNetns(["iptables-save"]).out
        let localnetBefore = try c.inNetns(["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"]).out
        try #require(try c.up(["--localhost-nodeports"]).code == 0)
        #expect(try c.inNetns(["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"]).out.hasPrefix("1"))
        #expect(c.upOutput.contains("kube-proxy") && c.upOutput.contains("iptables"), "\(c.upOutput)")

        // Three backends that each answer with their own name.
        let echo = try EchoService.create(c)

        // The rules look like kube-proxy's.
        let nat = try c.inNetns(["iptables", "-t", "nat", "-S", "KUBE-SERVICES"]).out
        #expect(nat.contains("default/echo cluster IP") && nat.contains("-j KUBE-SVC-"), "\(nat)")

        try echo.expectSpreadNodePortPodAndHairpin(c)
        // Localhost NodePorts (opt-in): 127.0.0.1 reaches a pod, with the martian drop in place.
        let local = try c.inNetns(["curl", "-s", "-m", "2", "http://127.0.0.1:\(echo.nodePort)/"])
        #expect(local.out.hasPrefix("echo-"), "localhost NodePort: \(local)")
        let firewall = try c.inNetns(["iptables", "-S", "KUBE-FIREWALL"]).out
        #expect(firewall.contains("! -s 127.0.0.0/8 -d 127.0.0.0/8") && firewall.contains("-j DROP"), "\(firewall)")
        try echo.expectAffinity(c) {
            ((try? c.inNetns(["iptables", "-t", "nat", "-S"]).out) ?? "").contains("--rcheck")
        }

        // A service without endpoints refuses at once (REJECT), and so does a free address.
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "empty", "--tcp=80"])
        let empty = try c.kubectl(nil, ["get", "svc", "empty", "-o", "jsonpath={.spec.clusterIP}"]).out
        #expect(NodeAgentIntegrationTests.eventually(5) {
            ((try? c.inNetns(["iptables", "-S", "KUBE-SERVICES"]).out) ?? "").contains("default/empty:80 has no endpoints")
        })
        let refused = try c.inNetns(["curl", "-s", "-m", "5", "-w", "%{time_total}", "http://\(empty)/"])
        #expect(refused.code == 7, "connection refused: \(refused)")
        let free = try c.inNetns(["curl", "-s", "-m", "5", "http://10.111.222.33/"])
        #expect(free.code == 7, "an unallocated service address is refused: \(free)")

        // Idle, the proxy rests: no sync without a change (a loop that kept re-syncing once
        // burnt half a core rewriting the tables). kube-proxy's own metric counts the syncs.
        func syncs() -> Int? {
            let text = (try? c.inNetns(["curl", "-s", "-m", "2", "http://127.0.0.1:10249/metrics"]).out) ?? ""
            let line = text.split(separator: "\n").first { $0.hasPrefix("kubeproxy_sync_proxy_rules_duration_seconds_count") }
            return line.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) }
        }
        Thread.sleep(forTimeInterval: 1)
        let first = syncs()
        Thread.sleep(forTimeInterval: 3)
        let second = syncs()
        #expect(first != nil && first ?? 0 > 0, "kube-proxy's sync count on :10249/metrics: \(String(describing: first))")
        // One periodic resync may fall in the window (every 30 s).
        #expect((second ?? 0) - (first ?? 0) <= 1, "the idle proxy synced \((second ?? 0) - (first ?? 0)) times in 3 s")

        // After down, the namespace's rules are what they were before up.
        let down = try c.labnode(["down"], timeout: 60)
        #expect(down.code == 0, "\(down)")
        let after = try c.inNetns(["iptables-save"]).out
        // Rules and user chains; an emptied table still lists its built-in chains, which is no rule.
        func rules(_ text: String) -> [String] {
            text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("-A ") || ($0.hasPrefix(":") && $0.contains(" - ")) }
        }
        #expect(rules(after) == rules(before), "before:\n\(before)\nafter:\n\(after)")
        #expect(try c.inNetns(["cat", "/proc/sys/net/ipv4/conf/all/route_localnet"]).out == localnetBefore)
    }
}
