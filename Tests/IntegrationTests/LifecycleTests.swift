import Foundation
import Testing

/// `labnode up/down/status` as a trainee uses them, and what must survive a stop or a crash.
@Suite("labnode lifecycle", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct LifecycleTests {
    @Test("objects survive down/up and kill -9; a second up reuses settings")
    func persistence() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        let first = try c.up(["--service-cluster-ip-range", "10.0.0.0/24"])
        #expect(first.code == 0, "\(first)")
        for line in ["store", "pki", "api-server", "kubeconfig:"] {
            #expect(first.out.contains(line), "up should report \(line): \(first.out)")
        }
        #expect(try c.kubectl(nil, ["create", "configmap", "keep", "--from-literal=a=1"]).code == 0)
        // A pod that calls the API's cluster IP the moment it starts, as the DNS pod does.
        _ = try c.kubectl(nil, ["run", "caller", "--image=busybox", "--", "sh", "-c",
                                "if echo | nc -w 2 $KUBERNETES_SERVICE_HOST 443 >/dev/null; then r=ok; else r=failed; fi; echo first-call-$r $(date +%s); exec sleep 3600"])

        let again = try c.up()
        #expect(again.code == 0 && again.out.contains("already running"), "\(again)")
        // Once started, the daemon gave back what only start-up needed (MemoryTrim).
        let log = (try? String(contentsOfFile: c.dataDir + "/labnode.log", encoding: .utf8)) ?? ""
        let trim = log.split(separator: "\n").last { $0.contains("start-up memory given back") } ?? ""
        let unmapped = trim.split(separator: " ").first { $0.hasPrefix("unmappedMB=") }.flatMap { Int($0.dropFirst(11)) } ?? 0
        #expect(unmapped > 10, "no trim after start-up in the daemon's log: \(trim)")

        let status = try c.labnode(["status"])
        #expect(status.code == 0, "\(status)")
        #expect(status.out.contains("10.0.0.0/24") && status.out.contains("ready") && status.out.contains(c.nodeIP), "\(status.out)")
        // Each component's state, as the daemon recorded it (the fixture leaves DNS out).
        for line in ["api-server   ready", "controllers  ready", "node-agent   ready", "kube-proxy   ready      iptables",
                     "dns          disabled   --disable dns"] {
            #expect(status.out.contains("  " + line), "status should say \(line): \(status.out)")
        }

        let down = try c.labnode(["down"])
        #expect(down.code == 0)
        // A graceful stop: every component returns on SIGTERM, nothing has to be killed.
        #expect(down.out.contains("labnode stopped") && !down.out.contains("killed"), "\(down)")
        #expect(try c.labnode(["status"]).code != 0)
        let restartedAt = Int(Date().timeIntervalSince1970)
        #expect(try c.up().code == 0)
        // The pods started again only once the proxy had programmed the services: the restarted
        // pod's first call to a cluster IP got through.
        var last = ""
        #expect(NodeAgentIntegrationTests.eventually(30) {
            let log = (try? c.kubectl(nil, ["logs", "caller"]).out) ?? ""
            last = log.split(separator: "\n").last { $0.hasPrefix("first-call-") }.map(String.init) ?? ""
            return (Int(last.split(separator: " ").last ?? "") ?? 0) >= restartedAt
        }, "the caller pod did not run again after up: \(last)")
        #expect(last.hasPrefix("first-call-ok"), "\(last)")
        // The saved range was reused without the flag.
        #expect(try c.labnode(["status"]).out.contains("10.0.0.0/24"))
        #expect(try c.kubectl(nil, ["get", "configmap", "keep", "-o", "jsonpath={.data.a}"]).out == "1")

        // A crash loses nothing that was acknowledged.
        #expect(try c.kubectl(nil, ["create", "configmap", "crash", "--from-literal=b=2"]).code == 0)
        let pid = try #require(c.pid())
        kill(pid, SIGKILL)
        usleep(200_000)
        let restarted = try c.up()
        #expect(restarted.code == 0, "\(restarted)")
        #expect(try c.kubectl(nil, ["get", "configmap", "crash", "-o", "jsonpath={.data.b}"]).out == "2")
        #expect(try c.kubectl(nil, ["get", "configmap", "keep", "-o", "jsonpath={.data.a}"]).out == "1")
    }

    @Test("--disable leaves components out: with all four, the daemon is the API server alone")
    func apiServerAlone() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        let up = try c.up(["--disable", "controllers,node-agent,kube-proxy"])
        #expect(up.code == 0, "\(up)")
        for name in ["controllers", "node-agent", "kube-proxy", "dns"] {
            #expect(up.out.contains("\(name.padding(toLength: 12, withPad: " ", startingAt: 0))disabled"), "up should say \(name) is disabled: \(up.out)")
        }
        let status = try c.labnode(["status"])
        #expect(status.code == 0 && status.out.contains("  api-server   ready") && status.out.contains("  node-agent   disabled"), "\(status)")

        // What kube-apiserver does itself still happens: the `kubernetes` Service exists.
        #expect(NodeAgentIntegrationTests.eventually(10) {
            (try? c.kubectl(nil, ["get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"]).out) == "10.96.0.1"
        })
        // Nothing else runs: a Deployment gets no ReplicaSet, no node registers, no rules are written.
        #expect(try c.kubectl(nil, ["create", "deployment", "web", "--image=nginx"]).code == 0)
        #expect(try c.kubectl(nil, ["create", "configmap", "kept", "--from-literal=a=1"]).code == 0)
        sleep(2)
        #expect(try c.kubectl(nil, ["get", "replicasets", "-o", "name"]).out.isEmpty)
        #expect(try c.kubectl(nil, ["get", "nodes", "-o", "name"]).out.isEmpty)
        let rules = try c.inNetns(["iptables-save"]).out + (try c.inNetns(["nft", "list", "ruleset"]).out)
        #expect(!rules.contains("KUBE-") && !rules.contains("kube-proxy"), "the proxy wrote rules: \(rules)")

        // The choice is kept: a second start without flags is the API server alone again.
        #expect(try c.labnode(["down"]).code == 0)
        let again = try c.labnode(["up", "--kubeconfig", c.kubeconfig])
        #expect(again.code == 0 && again.out.contains("controllers disabled"), "\(again)")
        #expect(try c.kubectl(nil, ["get", "configmap", "kept", "-o", "jsonpath={.data.a}"]).out == "1")

        // Idle memory: no trim while kubectl keeps talking (a request every 5 s for 40 s, longer
        // than the 30 s quiet), then one once it stops, and the daemon's resident memory drops.
        let log = c.dataDir + "/labnode.log"
        func idleTrims() -> Int {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").components(separatedBy: "idle: memory given back").count - 1
        }
        func rssKB() -> Int? {
            guard let pid = c.pid(), let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
            return status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        let busyUntil = Date().addingTimeInterval(40)
        while Date() < busyUntil {
            _ = try c.kubectl(nil, ["get", "configmap", "kept"])
            sleep(5)
        }
        #expect(idleTrims() == 0, "the daemon trimmed while requests kept coming")
        let busyRSS = try #require(rssKB())
        #expect(NodeAgentIntegrationTests.eventually(60) { idleTrims() == 1 }, "no idle trim 60 s after the last request")
        let idleRSS = try #require(rssKB())
        #expect(idleRSS < busyRSS, "resident memory \(busyRSS) kB while busy, \(idleRSS) kB after the idle trim")
    }

    @Test("bad flags are refused with one clear sentence")
    func badFlags() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        let cases: [([String], String)] = [
            (["--service-cluster-ip-range", "10.96.0.0/33"], "--service-cluster-ip-range"),
            (["--cluster-cidr", "banana"], "--cluster-cidr"),
            (["--service-node-port-range", "40000-30000"], "--service-node-port-range"),
            (["--api-port", "70000"], "--api-port"),
            (["--proxy-mode", "magic"], "--proxy-mode"),
            (["--disable", "scheduler"], "--disable scheduler: no such add-on or component"),
            // The test namespace routes 192.168.77.0/24: a pod range over it is refused.
            (["--cluster-cidr", "192.168.0.0/16"], "overlaps the host route"),
            (["--cluster-cidr", "172.31.0.0/16"], "--node-ip"),
        ]
        for (flags, expected) in cases {
            let r = try c.up(flags)
            #expect(r.code != 0, "\(flags) should fail")
            #expect(r.err.contains(expected), "\(flags): \(r.err)")
            #expect(r.err.split(separator: "\n").count == 1, "one sentence: \(r.err)")
        }
    }

    @Test("a busy API port is reported before anything starts")
    func portInUse() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        // Hold the port inside the test namespace with a listener of our own (stopped by its pid).
        let holder = try c.inNetns(["sh", "-c",
            "python3 -c 'import socket,time;s=socket.socket();s.bind((\"0.0.0.0\",6443));s.listen();time.sleep(30)' >/dev/null 2>&1 & echo $!"])
        let holderPID = try #require(Int32(holder.out.trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(holderPID, SIGKILL) }
        // Python can take seconds to start on a busy CI machine: wait until the port is really held.
        var held = false
        for _ in 0..<100 where !held {
            held = (try? c.inNetns(["ss", "-Hltn", "sport = :6443"]).out.contains("6443")) ?? false
            if !held { usleep(100_000) }
        }
        try #require(held, "the holder never listened on 6443")
        let r = try c.up()
        #expect(r.code != 0 && r.err.contains("port 6443 is already in use"), "\(r)")
    }

    @Test("unauthenticated requests get 401 with a Status body")
    func unauthenticated() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up().code == 0)
        let script = """
            import ssl, urllib.request, urllib.error, json
            ctx = ssl.create_default_context(cafile='\(c.dataDir)/pki/ca.crt')
            ctx.check_hostname = False
            try:
                urllib.request.urlopen('https://127.0.0.1:6443/api/v1/namespaces', context=ctx)
                print('no error')
            except urllib.error.HTTPError as e:
                body = json.loads(e.read())
                print(e.code, body['kind'], body['reason'], body['code'])
            """
        let r = try c.inNetns(["python3", "-c", script])
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "401 Status Unauthorized 401", "\(r)")

        // A GET of one object is answered on the event loop; a token must still stop working there
        // the moment its service account is deleted, on a connection that already used it.
        #expect(try c.kubectl(nil, ["create", "serviceaccount", "reader"]).code == 0)
        #expect(try c.kubectl(nil, ["create", "configmap", "seen", "--from-literal=a=1"]).code == 0)
        let token = try c.kubectl(nil, ["create", "token", "reader"]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let kubectl = try #require(TestPaths.kubectl(nil))
        let keepAlive = """
            import http.client, ssl, subprocess, sys
            ctx = ssl.create_default_context(cafile='\(c.dataDir)/pki/ca.crt')
            ctx.check_hostname = False
            conn = http.client.HTTPSConnection('127.0.0.1', 6443, context=ctx)
            def get(token):
                conn.request('GET', '/api/v1/namespaces/default/configmaps/seen',
                             headers={'Authorization': 'Bearer ' + token} if token else {})
                r = conn.getresponse()
                r.read()
                return str(r.status)
            out = [get(sys.argv[1]), get(sys.argv[1])]
            sock = conn.sock
            subprocess.run([sys.argv[2], 'delete', 'serviceaccount', 'reader'], check=True, capture_output=True)
            out.append(get(sys.argv[1]))
            out.append('same-connection' if conn.sock is sock else 'reconnected')
            out.append(get(None))
            print(' '.join(out))
            """
        let revoked = try c.inNetns(["python3", "-c", keepAlive, token, kubectl],
                                    env: ["KUBECONFIG": c.kubeconfig, "HOME": c.dataDir + "-home"])
        // Accepted twice, refused on the same connection once deleted; no credentials refused too.
        #expect(revoked.out.trimmingCharacters(in: .whitespacesAndNewlines) == "200 200 401 same-connection 401", "\(revoked)")
    }

    @Test("the official Python client can list, create and watch")
    func pythonClient() throws {
        let pythonPath = TestPaths.packageRoot.appendingPathComponent(".build-tools/python").path
        guard FileManager.default.fileExists(atPath: pythonPath + "/kubernetes") else {
            print("SKIPPED: the Python kubernetes client is not installed (scripts/setup --test installs it)")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up().code == 0)
        let script = """
            import threading, time
            from kubernetes import client, config, watch
            config.load_kube_config(config_file='\(c.kubeconfig)')
            v1 = client.CoreV1Api()
            names = sorted(ns.metadata.name for ns in v1.list_namespace().items)
            print('namespaces', ','.join(names))
            seen = []
            def watcher():
                w = watch.Watch()
                for ev in w.stream(v1.list_namespaced_config_map, namespace='default', timeout_seconds=5):
                    seen.append((ev['type'], ev['object'].metadata.name))
                    if ev['object'].metadata.name == 'from-python':
                        w.stop()
            t = threading.Thread(target=watcher); t.start(); time.sleep(1)
            cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name='from-python'), data={'k': 'v'})
            print('created', v1.create_namespaced_config_map('default', cm).metadata.name)
            t.join()
            print('watched', ('ADDED', 'from-python') in seen)
            """
        let r = try c.inNetns(["python3", "-c", script], env: ["PYTHONPATH": pythonPath], timeout: 60)
        #expect(r.out.contains("namespaces default,kube-node-lease,kube-public,kube-system"), "\(r)")
        #expect(r.out.contains("created from-python"), "\(r)")
        #expect(r.out.contains("watched True"), "\(r)")
    }
}
