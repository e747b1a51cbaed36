import Foundation
import Testing

/// What trainees see the proxy do, in both modes: a pod that fails its readiness probe stops
/// getting new connections, a selector switch moves new connections within a second, and a
/// UDP service answers (a DNS server in a pod, asked with dig from the node).
@Suite("service proxy behaviour", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ProxyBehaviourIntegrationTests {
    @Test(arguments: ["iptables", "nftables"])
    func readinessSelectorSwitchAndUDP(mode: String) throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up(["--proxy-mode", mode]).code == 0, "\(c.upOutput)")

        // Two versions, each pod ready while /tmp/ready exists (checked every second).
        for version in ["a", "b"] {
            let manifest = """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web-\(version)}
            spec:
              replicas: 1
              selector: {matchLabels: {app: web, version: \(version)}}
              template:
                metadata: {labels: {app: web, version: \(version)}}
                spec:
                  containers:
                  - name: web
                    image: busybox
                    command: [sh, -c, "echo \(version) > /tmp/index.html; touch /tmp/ready; exec httpd -f -p 8080 -h /tmp"]
                    readinessProbe:
                      exec: {command: [cat, /tmp/ready]}
                      periodSeconds: 1
                      failureThreshold: 1
            """
            _ = try c.kubectl(nil, ["apply", "-f", "-"], stdin: manifest)
        }
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "web", "--tcp=80:8080"])
        _ = try c.kubectl(nil, ["patch", "svc", "web", "-p", #"{"spec":{"selector":{"app":"web"}}}"#])
        let ip = try c.kubectl(nil, ["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]).out
        func answers(_ n: Int) -> Set<String> {
            let out = (try? c.inNetns(["sh", "-c", "for i in $(seq \(n)); do curl -s -m 2 http://\(ip)/; done"]).out) ?? ""
            return Set(out.split(separator: "\n").map(String.init))
        }
        #expect(NodeAgentIntegrationTests.eventually(60) { answers(20) == ["a", "b"] }, "\(mode): both versions answer")

        // b stops being ready: once its pod says so, new connections go to a only.
        let podB = try c.kubectl(nil, ["get", "pods", "-l", "version=b", "-o", "jsonpath={.items[0].metadata.name}"]).out
        _ = try c.kubectl(nil, ["exec", podB, "--", "rm", "/tmp/ready"])
        #expect(NodeAgentIntegrationTests.eventually(10) { NodeAgentIntegrationTests.jsonpath(c, podB, "{.status.conditions[?(@.type==\"Ready\")].status}") == "False" })
        let notReadyAt = Date()
        #expect(NodeAgentIntegrationTests.eventually(1) { answers(1) == ["a"] && answers(10) == ["a"] }, "\(mode): a not-ready pod still gets connections")
        print("\(mode): traffic left the not-ready pod \(String(format: "%.2f", Date().timeIntervalSince(notReadyAt))) s after its Ready turned False")
        _ = try c.kubectl(nil, ["exec", podB, "--", "touch", "/tmp/ready"])
        #expect(NodeAgentIntegrationTests.eventually(10) { answers(20) == ["a", "b"] })

        // The update pattern: switch the selector to version b; new connections move within a second.
        _ = try c.kubectl(nil, ["patch", "svc", "web", "-p", #"{"spec":{"selector":{"app":"web","version":"b"}}}"#])
        let switchedAt = Date()
        #expect(NodeAgentIntegrationTests.eventually(1) { answers(1) == ["b"] && answers(10) == ["b"] }, "\(mode): the selector switch took over 1 s")
        print("\(mode): selector switch moved new connections in \(String(format: "%.2f", Date().timeIntervalSince(switchedAt))) s")

        // UDP: labnode's own DNS server in a pod, with one name, behind a UDP service.
        _ = try c.kubectl(nil, ["create", "configmap", "udp-dns", "--from-literal=Corefile=.:53 {\n hosts {\n 192.0.2.55 probe.test\n }\n}\n"])
        let dns = """
        apiVersion: v1
        kind: Pod
        metadata: {name: udp-dns, labels: {app: udp-dns}}
        spec:
          containers:
          - name: dns
            image: labnode
            command: [labnode, dns, -conf, /etc/udp-dns/Corefile]
            volumeMounts: [{name: conf, mountPath: /etc/udp-dns}]
          volumes: [{name: conf, configMap: {name: udp-dns}}]
        """
        _ = try c.kubectl(nil, ["apply", "-f", "-"], stdin: dns)
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "udp-dns", "--tcp=5300:53"])
        _ = try c.kubectl(nil, ["patch", "svc", "udp-dns", "--type=json", "-p",
                                #"[{"op":"replace","path":"/spec/ports/0/protocol","value":"UDP"},{"op":"replace","path":"/spec/ports/0/name","value":"dns"}]"#])
        let udpIP = try c.kubectl(nil, ["get", "svc", "udp-dns", "-o", "jsonpath={.spec.clusterIP}"]).out
        var answer = ""
        #expect(NodeAgentIntegrationTests.eventually(60) {
            answer = (try? c.inNetns(["dig", "+short", "+time=1", "+tries=1", "-p", "5300", "@\(udpIP)", "probe.test"]).out) ?? ""
            return answer.trimmingCharacters(in: .whitespacesAndNewlines) == "192.0.2.55"
        }, "\(mode): UDP service \(udpIP):5300 answered \(answer)")
    }
}
