import Foundation
import Testing

/// Another host on the node's LAN (a namespace of its own, on the other end of the node's
/// network card) reaches a NodePort and a LoadBalancer address from `--lb-pool`: the node
/// answers ARP for the pool address while a Service uses it, in every proxy mode.
@Suite("LAN access to services", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct LANAccessIntegrationTests {
    @Test(arguments: ["iptables", "nftables", "userspace"])
    func nodePortAndLoadBalancerFromAnotherHost(mode: String) throws {
        let c = try ClusterFixture()
        let lan = "lnl-" + String(UUID().uuidString.prefix(6)).lowercased()
        defer {
            _ = try? Command.run(["ip", "netns", "del", lan])
            c.stop()
        }
        try #require(try c.up(["--proxy-mode", mode, "--lb-pool", "172.31.250.100-172.31.250.103"]).code == 0, "\(c.upOutput)")
        // The other host: the far end of the node's network card, moved into its own namespace.
        try ClusterFixture.must(["ip", "netns", "add", lan])
        try ClusterFixture.must(["ip", "-n", c.netns, "link", "set", "eth0peer", "netns", lan])
        try ClusterFixture.must(["ip", "-n", lan, "addr", "add", "172.31.250.9/24", "dev", "eth0peer"])
        try ClusterFixture.must(["ip", "-n", lan, "link", "set", "eth0peer", "up"])
        try ClusterFixture.must(["ip", "-n", lan, "link", "set", "lo", "up"])

        _ = try c.kubectl(nil, ["create", "deployment", "web", "--image=busybox", "--",
                                "sh", "-c", "echo hello-from-web > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"])
        _ = try c.kubectl(nil, ["expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=LoadBalancer"])
        var lbIP = ""
        #expect(NodeAgentIntegrationTests.eventually(60) {
            lbIP = (try? c.kubectl(nil, ["get", "svc", "web", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}"]).out) ?? ""
            let ready = (try? c.kubectl(nil, ["get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                                              "-o", "jsonpath={.items[*].endpoints[*].conditions.ready}"]).out) ?? ""
            return lbIP.hasPrefix("172.31.250.10") && ready.contains("true")
        }, "LoadBalancer address \(lbIP)")
        let nodePort = try c.kubectl(nil, ["get", "svc", "web", "-o", "jsonpath={.spec.ports[0].nodePort}"]).out

        func fromLAN(_ url: String) throws -> Command.Result {
            try Command.run(["nsenter", "--net=/run/netns/\(lan)", "curl", "-s", "-m", "3", url])
        }
        var viaLB = Command.Result(code: -1, out: "", err: "")
        #expect(NodeAgentIntegrationTests.eventually(10) {
            viaLB = (try? fromLAN("http://\(lbIP)/")) ?? viaLB
            return viaLB.out.contains("hello-from-web")
        }, "\(mode): LoadBalancer \(lbIP) from the LAN: \(viaLB)")
        let viaNodePort = try fromLAN("http://\(c.nodeIP):\(nodePort)/")
        #expect(viaNodePort.out.contains("hello-from-web"), "\(mode): NodePort from the LAN: \(viaNodePort)")
        let addresses = try c.inNetns(["ip", "-4", "addr", "show", "dev", "eth0"]).out
        #expect(addresses.contains("\(lbIP)/32"), "\(addresses)")

        // The address is given back with the Service.
        _ = try c.kubectl(nil, ["delete", "svc", "web"])
        #expect(NodeAgentIntegrationTests.eventually(10) {
            !((try? c.inNetns(["ip", "-4", "addr", "show", "dev", "eth0"]).out) ?? "").contains("\(lbIP)/32")
        })
    }
}
