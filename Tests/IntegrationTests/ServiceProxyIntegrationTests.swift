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
        try #require(try c.up().code == 0)
        #expect(c.upOutput.contains("kube-proxy") && c.upOutput.contains("iptables"), "\(c.upOutput)")

        // Three backends that each answer with their own name.
        _ = try c.kubectl(nil, ["create", "deployment", "echo", "--image=busybox", "--replicas=3", "--",
                                "sh", "-c", "hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp"])
        _ = try c.kubectl(nil, ["expose", "deployment", "echo", "--port=80", "--target-port=8080", "--type=NodePort"])
        _ = try c.kubectl(nil, ["run", "client", "--image=busybox", "--", "sleep", "3600"])
        #expect(NodeAgentIntegrationTests.eventually(60) {
            (try? c.kubectl(nil, ["get", "endpointslices", "-l", "kubernetes.io/service-name=echo",
                                  "-o", "jsonpath={.items[*].endpoints[*].addresses[0]}"]))?.out.split(separator: " ").count == 3
        })
        #expect(NodeAgentIntegrationTests.eventually { NodeAgentIntegrationTests.jsonpath(c, "client", "{.status.phase}") == "Running" })
        let ip = try c.kubectl(nil, ["get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]).out
        let nodePort = try c.kubectl(nil, ["get", "svc", "echo", "-o", "jsonpath={.spec.ports[0].nodePort}"]).out

        // The rules look like kube-proxy's.
        let nat = try c.inNetns(["iptables", "-t", "nat", "-S", "KUBE-SERVICES"]).out
        #expect(nat.contains("default/echo cluster IP") && nat.contains("-j KUBE-SVC-"), "\(nat)")

        // From the node: 300 requests spread over the three pods (uniform within 10 points).
        let spread = try c.inNetns(["sh", "-c", "for i in $(seq 300); do curl -s -m 2 http://\(ip)/; done | sort | uniq -c"]).out
        let counts = spread.split(separator: "\n").compactMap { Int($0.split(separator: " ").first ?? "") }
        #expect(counts.count == 3 && counts.reduce(0, +) == 300, "\(spread)")
        #expect(counts.allSatisfy { abs($0 - 100) <= 30 }, "\(spread)")
        // NodePort on the node's address.
        let viaNodePort = try c.inNetns(["curl", "-s", "-m", "2", "http://\(c.nodeIP):\(nodePort)/"])
        #expect(viaNodePort.out.hasPrefix("echo-"), "\(viaNodePort)")
        // From a pod, by cluster IP (busybox's nc: its wget is not reliable here).
        let fromPod = try c.kubectl(nil, ["exec", "client", "--", "sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(ip) 80"])
        #expect(fromPod.out.contains("echo-"), "\(fromPod)")
        // A backend reaching itself through its own service (hairpin).
        let pods = try c.kubectl(nil, ["get", "pods", "-l", "app=echo", "-o", "jsonpath={.items[*].metadata.name}"]).out.split(separator: " ")
        let hairpin = try c.kubectl(nil, ["exec", String(pods.first ?? ""), "--", "sh", "-c",
                                          "for i in 1 2 3 4 5 6; do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 \(ip) 80 | tail -1; done"])
        #expect(hairpin.out.split(separator: "\n").filter { $0.hasPrefix("echo-") }.count == 6, "\(hairpin)")

        // ClientIP affinity: every request from the node lands on one pod.
        _ = try c.kubectl(nil, ["patch", "svc", "echo", "-p", #"{"spec":{"sessionAffinity":"ClientIP"}}"#])
        #expect(NodeAgentIntegrationTests.eventually(5) {
            ((try? c.inNetns(["iptables", "-t", "nat", "-S"]).out) ?? "").contains("--rcheck")
        })
        let sticky = try c.inNetns(["sh", "-c", "for i in $(seq 20); do curl -s -m 2 http://\(ip)/; done | sort | uniq -c"]).out
        #expect(sticky.split(separator: "\n").count == 1 && sticky.contains("20 "), "\(sticky)")

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

        // After down, the namespace's rules are what they were before up.
        let down = try c.labnode(["down"], timeout: 60)
        #expect(down.code == 0, "\(down)")
        let after = try c.inNetns(["iptables-save"]).out
        // Rules and user chains; an emptied table still lists its built-in chains, which is no rule.
        func rules(_ text: String) -> [String] {
            text.split(separator: "\n").map(String.init).filter { $0.hasPrefix("-A ") || ($0.hasPrefix(":") && $0.contains(" - ")) }
        }
        #expect(rules(after) == rules(before), "before:\n\(before)\nafter:\n\(after)")
    }
}
