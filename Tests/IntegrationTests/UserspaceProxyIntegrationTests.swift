import Foundation
import Testing

/// The userspace mode against real pods: no netfilter rule at all, cluster IPs as local
/// addresses of the node, the proxy itself listening and splicing. The basics of the other
/// modes' suites: spread (round-robin), NodePort, a pod and the node to the cluster IP,
/// hairpin, affinity, a refused connection without endpoints, DNS over UDP from a pod, and
/// nothing left after `down`.
@Suite("service proxy (userspace)", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct UserspaceProxyIntegrationTests {
    @Test func basicsWithoutNetfilter() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up(["--proxy-mode", "userspace"], dns: true).code == 0, "\(c.upOutput)")
        #expect(c.upOutput.contains("kube-proxy") && c.upOutput.contains("userspace"), "\(c.upOutput)")
        #expect(try c.inNetns(["curl", "-s", "-m", "2", "http://127.0.0.1:10249/proxyMode"]).out == "userspace")

        let echo = try EchoService.create(c)
        // The cluster IP is the node's own address, on the holder link; no rule was written.
        let held = try c.inNetns(["ip", "-4", "addr", "show", "dev", "kube-svc0"]).out
        #expect(held.contains("\(echo.ip)/32"), "\(held)")
        #expect(!(try c.inNetns(["iptables-save"]).out.contains("KUBE-")))

        try echo.expectSpreadNodePortPodAndHairpin(c)
        // NodePorts listen on every node address, loopback included.
        let local = try c.inNetns(["curl", "-s", "-m", "2", "http://127.0.0.1:\(echo.nodePort)/"])
        #expect(local.out.hasPrefix("echo-"), "\(local)")
        // Without affinity three requests in a row meet three pods; with it, one.
        try echo.expectAffinity(c) {
            let out = (try? c.inNetns(["sh", "-c", "for i in 1 2 3; do curl -s -m 2 http://\(echo.ip)/; done | sort -u"]).out) ?? ""
            return out.split(separator: "\n").count == 1
        }

        // DNS through the UDP relay, from a pod, as in the chapter.
        var lookup = Command.Result(code: -1, out: "", err: "")
        #expect(NodeAgentIntegrationTests.eventually(30) {
            lookup = (try? c.kubectl(nil, ["exec", "client", "--", "nslookup", "echo.default.svc.cluster.local"])) ?? lookup
            return lookup.out.contains(echo.ip)
        }, "nslookup through the userspace proxy: \(lookup)")

        // No endpoints: nothing listens, so the kernel refuses at once.
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "empty", "--tcp=80"])
        let empty = try c.kubectl(nil, ["get", "svc", "empty", "-o", "jsonpath={.spec.clusterIP}"]).out
        #expect(NodeAgentIntegrationTests.eventually(5) {
            ((try? c.inNetns(["ip", "-4", "addr", "show", "dev", "kube-svc0"]).out) ?? "").contains("\(empty)/32")
        })
        let refused = try c.inNetns(["curl", "-s", "-m", "5", "http://\(empty)/"])
        #expect(refused.code == 7, "connection refused: \(refused)")

        #expect(try c.labnode(["down"], timeout: 60).code == 0)
        let link = try c.inNetns(["ip", "link", "show", "kube-svc0"])
        #expect(link.code != 0, "the holder link outlived down: \(link)")
        #expect(!(try c.inNetns(["iptables-save"]).out.contains("KUBE-")))
    }
}
