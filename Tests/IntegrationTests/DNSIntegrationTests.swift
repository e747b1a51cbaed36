import Foundation
import TestSupport
import Testing

/// The DNS add-on as the chapter uses it: the kube-dns pod in kube-system, busybox's nslookup,
/// resolv.conf, the pod's log, and dig from the node; a name outside the cluster goes to an
/// upstream resolver the test runs in a namespace of its own.
@Suite("DNS add-on", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct DNSIntegrationTests {
    @Test func chapterLookupsDigCasesLogsAndForwarding() throws {
        guard let digPath = TestPaths.which("dig") else {
            Issue.record("SKIPPED LOUDLY: dig (dnsutils) is missing; scripts/setup --test installs it")
            return
        }
        let c = try ClusterFixture()
        // The upstream: labnode's own DNS server with one name, in a namespace of its own,
        // reached from the node over a veth pair.
        let up = "lnu-" + String(UUID().uuidString.prefix(6)).lowercased()
        let files = c.dataDir + "-upstream"
        var upstreamPID: pid_t = 0
        defer {
            if upstreamPID > 0 {
                kill(upstreamPID, SIGTERM)
                var status: Int32 = 0
                waitpid(upstreamPID, &status, 0)
            }
            _ = try? Command.run(["ip", "netns", "del", up])
            try? FileManager.default.removeItem(atPath: files)
            c.stop()
        }
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        try ClusterFixture.must(["ip", "netns", "add", up])
        try ClusterFixture.must(["ip", "-n", up, "link", "set", "lo", "up"])
        try ClusterFixture.must(["ip", "-n", c.netns, "link", "add", "up0", "type", "veth", "peer", "name", "up1", "netns", up])
        try ClusterFixture.must(["ip", "-n", c.netns, "addr", "add", "172.31.251.1/24", "dev", "up0"])
        try ClusterFixture.must(["ip", "-n", c.netns, "link", "set", "up0", "up"])
        try ClusterFixture.must(["ip", "-n", up, "addr", "add", "172.31.251.2/24", "dev", "up1"])
        try ClusterFixture.must(["ip", "-n", up, "link", "set", "up1", "up"])
        try ClusterFixture.must(["ip", "-n", up, "route", "add", "default", "via", "172.31.251.1"])
        try ".:53 {\n log\n hosts {\n 192.0.2.80 www.example.org\n }\n}\n".write(toFile: files + "/Corefile", atomically: true, encoding: .utf8)
        upstreamPID = try ChildProcess.spawn(["/usr/bin/nsenter", "--net=/run/netns/\(up)", TestPaths.labnode, "dns", "-conf", files + "/Corefile"],
                                             env: [:], outPath: files + "/out", errPath: files + "/err")
        try "nameserver 172.31.251.2\n".write(toFile: files + "/resolv.conf", atomically: true, encoding: .utf8)

        let r = try c.up(["--resolv-conf", files + "/resolv.conf"], dns: true)
        try #require(r.code == 0, "\(r)")
        #expect(c.upOutput.contains("dns") && c.upOutput.contains("10.96.0.10"), "\(c.upOutput)")
        // `labnode status` asks kube-dns itself, as it asks the API.
        let status = try c.labnode(["status"]).out
        #expect(status.contains("  dns          ready"), "\(status)")

        // The add-on's objects, as `kubectl get svc,ep -n kube-system kube-dns` shows them.
        let svc = try c.kubectl(nil, ["get", "svc,ep", "-n", "kube-system", "kube-dns"]).out
        #expect(svc.contains("10.96.0.10") && svc.contains("53/UDP,53/TCP,9153/TCP"), "\(svc)")
        #expect(svc.contains(":53"), "the endpoint is listed: \(svc)")

        // The chapter's objects.
        _ = try c.kubectl(nil, ["create", "deployment", "nginx", "--image=nginx"])
        _ = try c.kubectl(nil, ["expose", "deployment", "nginx", "--port=80", "--type=NodePort"])
        _ = try c.kubectl(nil, ["create", "service", "externalname", "search", "--external-name=www.example.org"])
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "web", "--clusterip=None", "--tcp=80"])
        _ = try c.kubectl(nil, ["create", "deployment", "web", "--image=busybox", "--", "sleep", "3600"])
        _ = try c.kubectl(nil, ["patch", "svc", "web", "-p", #"{"spec":{"selector":{"app":"web"}}}"#])
        let busybox = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: busybox
          namespace: default
        spec:
          containers:
          - image: busybox
            command:
              - sleep
              - "3600"
            imagePullPolicy: IfNotPresent
            name: busybox
          restartPolicy: Always
        """
        _ = try c.kubectl(nil, ["apply", "-f", "-"], stdin: busybox)
        #expect(NodeAgentIntegrationTests.eventually(60) { NodeAgentIntegrationTests.jsonpath(c, "busybox", "{.status.phase}") == "Running" })
        let nginxIP = try c.kubectl(nil, ["get", "svc", "nginx", "-o", "jsonpath={.spec.clusterIP}"]).out

        // `kubectl exec -ti busybox -- nslookup nginx`: busybox 1.35 asks every search domain at
        // once, prints the address and NXDOMAIN for the others, and exits 1 (as on a real cluster).
        let nslookup = try c.kubectl(nil, ["exec", "busybox", "--", "nslookup", "nginx"])
        #expect(nslookup.out.contains("Address: \(nginxIP)"), "\(nslookup)")
        #expect(nslookup.out.contains("Server:\t\t10.96.0.10"), "\(nslookup)")
        #expect(nslookup.out.contains("nginx.svc.cluster.local: NXDOMAIN"), "\(nslookup)")
        let resolv = try c.kubectl(nil, ["exec", "busybox", "--", "cat", "/etc/resolv.conf"]).out
        #expect(resolv.contains("nameserver 10.96.0.10") && resolv.contains("search default.svc.cluster.local svc.cluster.local cluster.local")
            && resolv.contains("options ndots:5"), "\(resolv)")

        // dig from the node against the kube-dns address.
        func dig(_ args: [String]) throws -> String {
            try c.inNetns([digPath, "@10.96.0.10", "+time=3", "+tries=2"] + args).out
        }
        #expect(try dig(["+short", "nginx.default.svc.cluster.local"]).trimmingCharacters(in: .whitespacesAndNewlines) == nginxIP)
        let srv = try dig(["+short", "SRV", "_dns._udp.kube-dns.kube-system.svc.cluster.local"])
        #expect(srv.contains("0 100 53 kube-dns.kube-system.svc.cluster.local."), "\(srv)")
        let ptr = try dig(["+short", "-x", nginxIP])
        #expect(ptr.contains("nginx.default.svc.cluster.local."), "\(ptr)")
        let cname = try dig(["search.default.svc.cluster.local"])
        #expect(cname.contains("CNAME\twww.example.org.") && cname.contains("192.0.2.80"), "the target is resolved upstream: \(cname)")
        #expect(NodeAgentIntegrationTests.eventually(60) {
            ((try? dig(["+short", "web.default.svc.cluster.local"])) ?? "").hasPrefix("10.244.")
        }, "a headless service answers with its pod's address")
        let nx = try dig(["nope.default.svc.cluster.local"])
        #expect(nx.contains("status: NXDOMAIN") && nx.contains("flags: qr aa rd") && nx.contains("hostmaster.cluster.local."), "\(nx)")
        let nodata = try dig(["AAAA", "nginx.default.svc.cluster.local"])
        #expect(nodata.contains("status: NOERROR") && nodata.contains("ANSWER: 0") && nodata.contains("SOA"), "\(nodata)")
        #expect(try dig(["+short", "+tcp", "nginx.default.svc.cluster.local"]).contains(nginxIP), "TCP/53 too")
        // A name outside the cluster zone goes to the test's upstream.
        #expect(try dig(["+short", "www.example.org"]).contains("192.0.2.80"))
        #expect(((try? String(contentsOfFile: files + "/out", encoding: .utf8)) ?? "").contains("www.example.org."), "the upstream saw it")

        // The pod's log: the start-up lines and one line per query.
        let logs = try c.kubectl(nil, ["logs", "-n", "kube-system", "-l", "k8s-app=kube-dns", "--tail=-1"]).out
        #expect(logs.contains(".:53") && logs.contains("CoreDNS-") && logs.contains("plugin/reload: Running configuration SHA512"), "\(logs)")
        #expect(logs.contains(#""A IN nginx.default.svc.cluster.local. udp"#) && logs.contains("NXDOMAIN qr,aa,rd"), "\(logs)")

        // An edited Corefile is live within 30 s: the agent refreshes the configMap volume and
        // the reload plugin picks it up.
        let corefile = try c.kubectl(nil, ["get", "configmap", "-n", "kube-system", "coredns", "-o", "jsonpath={.data.Corefile}"]).out
        let edited = corefile.replacingOccurrences(of: "    ready\n", with: "    ready\n    hosts {\n        10.1.2.3 reloaded.lab\n        fallthrough\n    }\n")
        #expect(edited != corefile)
        let patch = try JSONSerialization.data(withJSONObject: ["data": ["Corefile": edited]])
        _ = try c.kubectl(nil, ["patch", "configmap", "-n", "kube-system", "coredns", "--type=merge", "-p", String(decoding: patch, as: UTF8.self)])
        let edit = ContinuousClock.now
        #expect(NodeAgentIntegrationTests.eventually(30) {
            ((try? dig(["+short", "reloaded.lab"])) ?? "").contains("10.1.2.3")
        }, "the edited Corefile took effect")
        #expect(ContinuousClock.now - edit < .seconds(30))
        #expect(try dig(["+short", "nginx.default.svc.cluster.local"]).contains(nginxIP), "and cluster names still resolve")

        // A client that keeps its source port (a resolver's socket) follows DNS to a new pod:
        // the proxy deletes the UDP conntrack entry that pinned it to the old one.
        func pinned() -> String {
            ((try? c.inNetns([digPath, "@10.96.0.10", "-b", "\(c.nodeIP)#40053", "+time=1", "+tries=1", "+short",
                              "nginx.default.svc.cluster.local"]))?.out ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(pinned() == nginxIP)
        let oldPod = try c.kubectl(nil, ["get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[0].metadata.name}"]).out
        _ = try c.kubectl(nil, ["delete", "pod", "-n", "kube-system", oldPod, "--wait=true"], timeout: 60)
        #expect(NodeAgentIntegrationTests.eventually(30) {
            ((try? c.kubectl(nil, ["get", "endpointslices", "-n", "kube-system", "-l", "kubernetes.io/service-name=kube-dns",
                                   "-o", "jsonpath={.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}"]))?.out ?? "").hasPrefix("10.244.")
        }, "the replacement pod is ready")
        #expect(NodeAgentIntegrationTests.eventually(10) { pinned() == nginxIP }, "the pinned client reaches the new pod")

        // Deleted add-on objects come back.
        _ = try c.kubectl(nil, ["delete", "svc", "-n", "kube-system", "kube-dns"])
        #expect(NodeAgentIntegrationTests.eventually(20) {
            ((try? c.kubectl(nil, ["get", "svc", "-n", "kube-system", "kube-dns", "-o", "jsonpath={.spec.clusterIP}"]))?.out ?? "") == "10.96.0.10"
        })
    }
}
