import Foundation
import Testing

/// The Services chapter's exercises and the workload commands around them, with the real
/// kubectl against a real `labnode up` in a private netns, whose node agent runs the pods.
@Suite("controllers through kubectl", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ControllersIntegrationTests {
    /// The machine's kubectl, the oldest supported and the newest.
    static let versions: [String?] = [nil, "1.27", "1.37"]

    static func skipIfMissing(_ version: String?) -> Bool {
        guard TestPaths.kubectl(version) != nil else {
            print("SKIPPED: kubectl \(version ?? "default") is not installed (scripts/setup --test installs 1.37)")
            return true
        }
        return false
    }

    /// Polls `body` every 100 ms until it returns true or `seconds` pass.
    static func eventually(_ seconds: Double = 10, _ body: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try body() { return true }
            usleep(100_000)
        }
        return try body()
    }

    /// The chapter's first exercise: expose a deployment as a NodePort and read the services.
    @Test("create deployment, expose as NodePort, get svc", arguments: versions)
    func exposeNodePort(version: String?) throws {
        if Self.skipIfMissing(version) { return }
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up(["--service-cluster-ip-range=10.0.0.0/24"]).code == 0)
        func ok(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try c.kubectl(version, args)
            #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
            return r.out
        }
        #expect(try ok("create", "deployment", "nginx", "--image=nginx").contains("deployment.apps/nginx created"))
        #expect(try ok("expose", "deployment/nginx", "--port=80", "--type=NodePort").contains("service/nginx exposed"))
        let table = try ok("get", "svc")
        let rows = table.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
        #expect(rows.first == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], "\(table)")
        let kubernetes = rows.first { $0.first == "kubernetes" } ?? []
        #expect(Array(kubernetes.prefix(5)) == ["kubernetes", "ClusterIP", "10.0.0.1", "<none>", "443/TCP"], "\(table)")
        let nginx = rows.first { $0.first == "nginx" } ?? []
        #expect(nginx.count == 6, "\(table)")
        if nginx.count == 6 {
            #expect(nginx[1] == "NodePort")
            #expect(nginx[2].hasPrefix("10.0.0.") && nginx[2] != "10.0.0.1", "\(table)")
            #expect(nginx[3] == "<none>")
            let port = nginx[4]
            #expect(port.hasPrefix("80:3") && port.hasSuffix("/TCP"), "\(table)")
            let nodePort = Int(port.dropFirst(3).dropLast(4)) ?? 0
            #expect((30000...32767).contains(nodePort), "\(port)")
            let yaml = try ok("get", "svc", "nginx", "-o", "yaml")
            #expect(yaml.contains("clusterIP: \(nginx[2])"), "\(yaml)")
            #expect(yaml.contains("nodePort: \(nodePort)"), "\(yaml)")
            #expect(yaml.contains("targetPort: 80"), "\(yaml)")
        }
        // The deployment's pods exist as objects and, once "running", become the service's endpoints.
        #expect(Self.eventually { (try? ok("get", "pods", "-l", "app=nginx", "-o", "name"))?.contains("pod/nginx-") == true })
        #expect(Self.eventually(30) {
            let ep = (try? c.kubectl(version, ["get", "endpoints", "nginx"]).out) ?? ""
            return ep.contains("10.244.0.") && ep.contains(":80")
        })
        let slices = try ok("get", "endpointslices", "-l", "kubernetes.io/service-name=nginx")
        #expect(slices.contains("IPv4") && slices.contains("10.244.0."), "\(slices)")
        // A requested address already in use is refused as on kubeadm.
        let clash = try c.kubectl(version, ["create", "service", "clusterip", "dup", "--tcp=80", "--clusterip=10.0.0.1"])
        #expect(clash.code != 0)
        #expect(clash.err.contains("provided IP is already allocated"), "\(clash)")
    }

    /// The chapter's "service update pattern": switch a service from v1 to v2 pods with a selector change.
    @Test func serviceUpdatePattern() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up().code == 0)
        func ok(_ args: String..., stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try c.kubectl(nil, args, stdin: stdin)
            #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
            return r.out
        }
        for v in ["v1", "v2"] {
            let manifest = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: web-\(v)}
                spec:
                  replicas: 2
                  selector: {matchLabels: {app: web, version: \(v)}}
                  template:
                    metadata: {labels: {app: web, version: \(v)}}
                    spec: {containers: [{name: nginx, image: nginx}]}
                """
            _ = try ok("apply", "-f", "-", stdin: manifest)
        }
        _ = try ok("create", "service", "clusterip", "web", "--tcp=80:80")
        _ = try ok("set", "selector", "service", "web", "app=web,version=v1")
        #expect(Self.eventually(30) {
            ((try? c.kubectl(nil, ["get", "pods", "-l", "app=web", "--no-headers"]).out) ?? "")
                .split(separator: "\n").filter { $0.contains("Running") }.count == 4
        })
        func endpointPods() throws -> Set<String> {
            let out = try c.kubectl(nil, ["get", "endpoints", "web", "-o",
                                          "jsonpath={range .subsets[*].addresses[*]}{.targetRef.name}{\"\\n\"}{end}"]).out
            return Set(out.split(separator: "\n").map(String.init))
        }
        #expect(Self.eventually(30) { ((try? endpointPods()) ?? []).count == 2 && ((try? endpointPods()) ?? []).allSatisfy { $0.hasPrefix("web-v1-") } },
                "\((try? endpointPods()) ?? [])")
        _ = try ok("set", "selector", "service", "web", "app=web,version=v2")
        #expect(Self.eventually { ((try? endpointPods()) ?? []).count == 2 && ((try? endpointPods()) ?? []).allSatisfy { $0.hasPrefix("web-v2-") } },
                "\((try? endpointPods()) ?? [])")
        let slice = try ok("get", "endpointslices", "-l", "kubernetes.io/service-name=web", "-o",
                           "jsonpath={range .items[*].endpoints[*]}{.targetRef.name}{\"\\n\"}{end}")
        #expect(slice.split(separator: "\n").allSatisfy { $0.hasPrefix("web-v2-") } && !slice.isEmpty, "\(slice)")
    }

    /// scale, rollout status, set image, rollout undo, delete deployment, delete namespace.
    @Test("workload commands", arguments: [String?.none, "1.27"])
    func workloads(version: String?) throws {
        if Self.skipIfMissing(version) { return }
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up().code == 0)
        func ok(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try c.kubectl(version, args, timeout: 90)
            #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
            return r.out
        }
        func rolloutStatus() throws -> Command.Result {
            try c.kubectl(version, ["rollout", "status", "deployment/web", "-n", "lab", "--timeout=60s"], timeout: 90)
        }

        _ = try ok("create", "namespace", "lab")
        _ = try ok("create", "deployment", "web", "--image=nginx:1.24", "--replicas=3", "-n", "lab")
        let first = try rolloutStatus()
        #expect(first.code == 0 && first.out.contains("successfully rolled out"), "\(first)")

        #expect(try ok("scale", "deployment", "web", "--replicas=5", "-n", "lab").contains("scaled"))
        #expect(Self.eventually { (try? ok("get", "pods", "-n", "lab", "--no-headers"))?.split(separator: "\n").count == 5 })
        _ = try ok("scale", "deployment", "web", "--replicas=2", "-n", "lab")
        #expect(Self.eventually(30) { (try? ok("get", "pods", "-n", "lab", "--no-headers"))?.split(separator: "\n").count == 2 })

        _ = try ok("set", "image", "deployment/web", "nginx=nginx:1.25", "-n", "lab")
        let second = try rolloutStatus()
        #expect(second.code == 0, "\(second)")
        let rs = try ok("get", "rs", "-n", "lab", "--no-headers")
        #expect(rs.split(separator: "\n").count == 2, "one ReplicaSet per template: \(rs)")
        let history = try ok("rollout", "history", "deployment/web", "-n", "lab")
        #expect(history.contains("1 ") && history.contains("2 "), "\(history)")
        _ = try ok("rollout", "undo", "deployment/web", "-n", "lab")
        let third = try rolloutStatus()
        #expect(third.code == 0, "\(third)")
        #expect(try ok("get", "deployment", "web", "-n", "lab", "-o", "jsonpath={.spec.template.spec.containers[0].image}") == "nginx:1.24")
        let describe = try ok("describe", "deployment", "web", "-n", "lab")
        #expect(describe.contains("ScalingReplicaSet"), "\(describe)")

        // Deleting the deployment takes its ReplicaSets and pods with it.
        _ = try ok("delete", "deployment", "web", "-n", "lab")
        #expect(Self.eventually(30) {
            let all = (try? c.kubectl(version, ["get", "rs,pods", "-n", "lab", "--no-headers"]))
            return all?.out.isEmpty == true && all?.code == 0
        })

        // A LoadBalancer gets the node's address.
        _ = try ok("create", "service", "loadbalancer", "lb", "--tcp=8080:80", "-n", "lab")
        #expect(Self.eventually { (try? ok("get", "svc", "lb", "-n", "lab"))?.contains(c.nodeIP) == true })

        // Deleting the namespace deletes what is in it, then the namespace.
        _ = try ok("create", "configmap", "settings", "--from-literal=a=1", "-n", "lab")
        #expect(try ok("delete", "namespace", "lab").contains("deleted"))
        let gone = try c.kubectl(version, ["get", "namespace", "lab"])
        #expect(gone.code != 0 && gone.err.contains("NotFound"), "\(gone)")
    }
}

extension ControllersIntegrationTests {
    /// `kubectl delete --cascade=orphan|foreground`, and allocations that outlive a restart.
    @Test func cascadeAndRestart() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up(["--service-cluster-ip-range=10.0.0.0/24"]).code == 0)
        func ok(_ args: String..., sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try c.kubectl(nil, args)
            #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
            return r.out
        }
        func count(_ what: String) -> Int {
            ((try? c.kubectl(nil, ["get", what, "--no-headers"]).out) ?? "").split(separator: "\n").count
        }
        _ = try ok("create", "deployment", "web", "--image=nginx", "--replicas=2")
        #expect(Self.eventually(30) { count("pods") == 2 })
        _ = try ok("delete", "deployment", "web", "--cascade=orphan")
        usleep(500_000)
        #expect(count("rs") == 1 && count("pods") == 2, "orphaned ReplicaSet and pods stay")
        let owners = try ok("get", "rs", "-o", "jsonpath={.items[0].metadata.ownerReferences}")
        #expect(owners.isEmpty, "the reference to the deleted Deployment is removed: \(owners)")
        let rs = try ok("get", "rs", "-o", "name")
        _ = try ok("delete", rs.trimmingCharacters(in: .whitespacesAndNewlines), "--cascade=foreground")
        #expect(Self.eventually(30) { count("rs") == 0 && count("pods") == 0 })

        // Addresses and ports are still known to be taken after a restart.
        let svc = try ok("create", "service", "nodeport", "keep", "--tcp=80:80")
        #expect(svc.contains("created"))
        let ip = try ok("get", "svc", "keep", "-o", "jsonpath={.spec.clusterIP}")
        let port = try ok("get", "svc", "keep", "-o", "jsonpath={.spec.ports[0].nodePort}")
        #expect(try c.labnode(["down"]).code == 0)
        #expect(try c.up().code == 0)
        let sameIP = try c.kubectl(nil, ["create", "service", "clusterip", "again", "--tcp=80", "--clusterip=\(ip)"])
        #expect(sameIP.code != 0 && sameIP.err.contains("provided IP is already allocated"), "\(sameIP)")
        let samePort = try c.kubectl(nil, ["create", "service", "nodeport", "again2", "--tcp=80:80", "--node-port=\(port)"])
        #expect(samePort.code != 0 && samePort.err.contains("provided port is already allocated"), "\(samePort)")
    }
}
