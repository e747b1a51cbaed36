import Foundation
import Testing

/// The nftables service proxy against real pods (real nft, the namespace's own tables), and
/// switching modes between runs.
@Suite("service proxy (nftables)", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct NftablesProxyIntegrationTests {
    @Test func clusterIPNodePortSpreadAffinityRejectAndModeSwitch() throws {
        guard TestPaths.which("nft") != nil || FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft") else {
            Issue.record("SKIPPED LOUDLY: nft (nftables) is missing; scripts/setup installs it")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        let before = try c.inNetns(["nft", "list", "ruleset"]).out
        // A first run in iptables mode, then the switch: no iptables rule of ours may stay.
        try #require(try c.up().code == 0)
        #expect(try c.inNetns(["iptables-save", "-t", "nat"]).out.contains("KUBE-SERVICES"))
        #expect(try c.labnode(["down"], timeout: 60).code == 0)
        try #require(try c.up(["--proxy-mode", "nftables"]).code == 0)
        #expect(c.upOutput.contains("kube-proxy") && c.upOutput.contains("nftables"), "\(c.upOutput)")
        let iptables = try c.inNetns(["iptables-save"]).out
        #expect(!iptables.contains("KUBE-"), "iptables rules left from the iptables run: \(iptables)")
        #expect(try c.inNetns(["curl", "-s", "-m", "2", "http://127.0.0.1:10249/proxyMode"]).out == "nftables")

        let echo = try EchoService.create(c)
        let ip = echo.ip

        // kube-proxy's table: the map element and a numgen choice over three endpoint chains.
        #expect(NodeAgentIntegrationTests.eventually(5) {
            ((try? c.inNetns(["nft", "list", "table", "ip", "kube-proxy"]).out) ?? "").contains("numgen random mod 3 vmap")
        })
        let table = try c.inNetns(["nft", "list", "table", "ip", "kube-proxy"]).out
        #expect(table.contains("\(ip) . tcp . 80 : goto service-") && table.contains("-default/echo/tcp/"), "\(table)")

        try echo.expectSpreadNodePortPodAndHairpin(c)
        try echo.expectAffinity(c) {
            ((try? c.inNetns(["nft", "list", "table", "ip", "kube-proxy"]).out) ?? "").contains("update @affinity-")
        }

        _ = try c.kubectl(nil, ["create", "service", "clusterip", "empty", "--tcp=80"])
        let empty = try c.kubectl(nil, ["get", "svc", "empty", "-o", "jsonpath={.spec.clusterIP}"]).out
        #expect(NodeAgentIntegrationTests.eventually(5) {
            ((try? c.inNetns(["nft", "list", "map", "ip", "kube-proxy", "no-endpoint-services"]).out) ?? "").contains(empty)
        })
        let refused = try c.inNetns(["curl", "-s", "-m", "5", "http://\(empty)/"])
        #expect(refused.code == 7, "connection refused: \(refused)")
        let wrongPort = try c.inNetns(["curl", "-s", "-m", "5", "http://\(ip):81/"])
        #expect(wrongPort.code == 7, "another port of a live cluster IP is refused: \(wrongPort)")
        let free = try c.inNetns(["curl", "-s", "-m", "5", "http://10.111.222.33/"])
        #expect(free.code == 7, "an unallocated service address is refused: \(free)")

        #expect(try c.labnode(["down"], timeout: 60).code == 0)
        let after = try c.inNetns(["nft", "list", "ruleset"]).out
        #expect(!after.contains("table ip kube-proxy"), "\(after)")
        // Rules only: the iptables run leaves iptables-nft's emptied tables and built-in
        // chains, which hold no rule (the iptables test compares the same way).
        func rules(_ text: String) -> [String] {
            text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty && $0 != "}" && !$0.hasPrefix("table ") && !$0.hasPrefix("chain ") && !$0.hasPrefix("type ") }
        }
        #expect(rules(after) == rules(before), "before:\n\(before)\nafter:\n\(after)")
    }
}
