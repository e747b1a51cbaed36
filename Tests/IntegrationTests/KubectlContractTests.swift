import Foundation
import Testing

/// The real kubectl, several releases of it, against a real `labnode up` in a private netns.
/// Each case is what a trainee types in the course; the expectations are kubectl's own output.
@Suite("kubectl against labnode", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct KubectlContractTests {
    static let pod = """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          labels: {app: web}
        spec:
          containers:
          - name: nginx
            image: nginx
            ports:
            - containerPort: 80
        """

    static let service = """
        apiVersion: v1
        kind: Service
        metadata:
          name: web
          labels: {app: web}
        spec:
          selector: {app: web}
          ports:
          - port: 80
            targetPort: 80
        """

    static let deployment = """
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: nginx
          labels: {app: nginx}
        spec:
          replicas: 2
          selector:
            matchLabels: {app: nginx}
          template:
            metadata:
              labels: {app: nginx}
            spec:
              containers:
              - name: nginx
                image: nginx:1.25
        """

    static func configMap(_ value: String) -> String {
        """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          color: \(value)
        """
    }

    /// The machine's kubectl (1.32), the oldest and newest versioned ones beside it, and the newest from PyPI.
    static let versions: [String?] = [nil, "1.27", "1.30", "1.33", "1.37"]

    @Test("the course's kubectl commands", arguments: versions)
    func commands(version: String?) throws {
        guard TestPaths.kubectl(version) != nil else {
            print("SKIPPED: kubectl \(version ?? "default") is not installed (scripts/setup --test installs 1.37)")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        let up = try c.up()
        #expect(up.code == 0, "labnode up failed: \(up)")
        guard up.code == 0 else { return }
        #expect(up.out.contains("api-server"), "up prints each component: \(up.out)")

        func k(_ args: String..., stdin: String? = nil, env: [String: String] = [:]) throws -> Command.Result {
            try c.kubectl(version, args, stdin: stdin, env: env)
        }
        func ok(_ args: String..., stdin: String? = nil, env: [String: String] = [:],
                sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
            let r = try c.kubectl(version, args, stdin: stdin, env: env)
            #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
            return r.out
        }

        // version, cluster-info, api-resources
        let v = try ok("version")
        // 1.27 prints the whole version.Info struct, later releases the gitVersion alone.
        #expect(v.contains("Server Version: v1.") || v.contains("Server Version: version.Info{Major:\"1\""), "\(v)")
        let info = try ok("cluster-info").replacingOccurrences(of: "\u{1B}[0;32m", with: "")
            .replacingOccurrences(of: "\u{1B}[0;33m", with: "").replacingOccurrences(of: "\u{1B}[0m", with: "")
        #expect(info.contains("Kubernetes control plane is running at https://127.0.0.1:6443"), "\(info)")
        let resources = try ok("api-resources")
        for line in ["services", "svc", "deployments", "deploy", "apps/v1", "endpointslices", "discovery.k8s.io/v1", "leases"] {
            #expect(resources.contains(line), "api-resources lacks \(line): \(resources)")
        }
        let namespaces = try ok("get", "namespaces")
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            #expect(namespaces.contains(ns), "\(namespaces)")
        }
        #expect(namespaces.contains("Active"))

        // create -f
        #expect(try ok("create", "-f", "-", stdin: Self.pod).contains("pod/web created"))
        #expect(try ok("create", "-f", "-", stdin: Self.service).contains("service/web created"))
        #expect(try ok("create", "-f", "-", stdin: Self.deployment).contains("deployment.apps/nginx created"))
        let dup = try k("create", "-f", "-", stdin: Self.pod)
        #expect(dup.code != 0)
        #expect(dup.err.contains("Error from server (AlreadyExists)") && dup.err.contains("pods \"web\" already exists"), "\(dup)")

        // get all, in every output form
        let all = try ok("get", "all")
        #expect(all.contains("pod/web") && all.contains("service/web") && all.contains("deployment.apps/nginx"), "\(all)")
        let svc = try ok("get", "svc", "web")
        #expect(svc.contains("NAME") && svc.contains("TYPE") && svc.contains("ClusterIP") && svc.contains("80/TCP"), "\(svc)")
        let wide = try ok("get", "pods", "-o", "wide")
        #expect(wide.contains("NOMINATED NODE"), "\(wide)")
        let yaml = try ok("get", "svc", "web", "-o", "yaml")
        #expect(yaml.contains("sessionAffinity: None") && yaml.contains("uid:") && yaml.contains("resourceVersion:"), "\(yaml)")
        let json = try ok("get", "deploy", "nginx", "-o", "json")
        #expect(json.contains("\"replicas\": 2"), "\(json)")
        let jp = try ok("get", "pod", "web", "-o", "jsonpath={.spec.containers[0].image}")
        #expect(jp == "nginx", "\(jp)")
        let labels = try ok("get", "pods", "-A", "--show-labels")
        #expect(labels.contains("default") && labels.contains("app=web"), "\(labels)")

        // missing objects
        let missing = try k("get", "svc", "ghost")
        #expect(missing.code == 1)
        #expect(missing.err.contains("Error from server (NotFound): services \"ghost\" not found"), "\(missing)")

        // apply, client-side then server-side
        #expect(try ok("apply", "-f", "-", stdin: Self.configMap("blue")).contains("configmap/settings created"))
        #expect(try ok("apply", "-f", "-", stdin: Self.configMap("green")).contains("configmap/settings configured"))
        #expect(try ok("apply", "-f", "-", stdin: Self.configMap("green")).contains("configmap/settings unchanged"))
        #expect(try ok("get", "cm", "settings", "-o", "jsonpath={.data.color}") == "green")
        let ssa = try ok("apply", "--server-side", "--force-conflicts", "-f", "-", stdin: Self.configMap("red"))
        #expect(ssa.contains("serverside-applied"), "\(ssa)")
        #expect(try ok("get", "cm", "settings", "-o", "jsonpath={.data.color}") == "red")

        // label, annotate, patch of every type
        #expect(try ok("label", "pod", "web", "tier=front").contains("pod/web labeled"))
        #expect(try ok("label", "pod", "web", "tier=back", "--overwrite").contains("pod/web labeled"))
        #expect(try ok("get", "pod", "web", "-o", "jsonpath={.metadata.labels.tier}") == "back")
        // kubectl 1.27 says "annotate", later ones "annotated".
        #expect(try ok("annotate", "svc", "web", "owner=trainee").contains("service/web annotate"))
        _ = try ok("patch", "svc", "web", "-p", #"{"spec":{"ports":[{"port":80,"name":"http"}]}}"#)
        #expect(try ok("get", "svc", "web", "-o", "jsonpath={.spec.ports[0].name}") == "http")
        _ = try ok("patch", "svc", "web", "--type=merge", "-p", #"{"metadata":{"labels":{"merged":"yes"}}}"#)
        _ = try ok("patch", "svc", "web", "--type=json", "-p", #"[{"op":"add","path":"/metadata/labels/json","value":"yes"}]"#)
        let patched = try ok("get", "svc", "web", "--show-labels")
        #expect(patched.contains("merged=yes") && patched.contains("json=yes"), "\(patched)")

        // edit through an editor script
        let editor = c.dataDir + "-editor.sh"
        try "#!/bin/sh\nsed -i 's/app: web/app: edited/' \"$1\"\n".write(toFile: editor, atomically: true, encoding: .utf8)
        chmod(editor, 0o755)
        defer { try? FileManager.default.removeItem(atPath: editor) }
        let edit = try k("edit", "svc", "web", env: ["EDITOR": editor, "KUBE_EDITOR": editor])
        #expect(edit.code == 0 && edit.out.contains("service/web edited"), "\(edit)")
        #expect(try ok("get", "svc", "web", "-o", "jsonpath={.spec.selector.app}") == "edited")

        // describe
        let described = try ok("describe", "svc", "web")
        #expect(described.contains("Name:") && described.contains("web") && described.contains("Selector:"), "\(described)")

        // errors: invalid and conflict
        let invalid = try k("create", "-f", "-", stdin: Self.service.replacingOccurrences(of: "name: web", with: "name: Bad_Name"))
        #expect(invalid.code != 0 && invalid.err.contains("Invalid"), "\(invalid)")
        var stale = try ok("get", "cm", "settings", "-o", "json")
        _ = try ok("label", "cm", "settings", "bump=1")
        stale = stale.replacingOccurrences(of: "\"red\"", with: "\"stale\"")
        let conflict = try k("replace", "-f", "-", stdin: stale)
        #expect(conflict.code != 0 && conflict.err.contains("Conflict"), "\(conflict)")

        // explain (OpenAPI)
        let explained = try ok("explain", "svc.spec.ports")
        #expect(explained.contains("port") && explained.contains("targetPort"), "\(explained)")

        // delete
        #expect(try ok("delete", "pod", "web").contains("pod \"web\" deleted"))
        #expect(try ok("delete", "deploy", "nginx").contains("deployment.apps \"nginx\" deleted"))
        #expect(try k("get", "pod", "web").code == 1)
    }

    @Test("get -w sees a change", arguments: [String?.none, "1.37"])
    func watch(version: String?) throws {
        guard TestPaths.kubectl(version) != nil else {
            print("SKIPPED: kubectl \(version ?? "default") is not installed")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        #expect(try c.up().code == 0)
        _ = try c.kubectl(version, ["create", "configmap", "watched", "--from-literal=a=1"])
        // Watch for a few seconds while a change lands.
        let watcher = Task.detached { try c.kubectl(version, ["get", "configmaps", "-w", "--request-timeout=4s"], timeout: 10) }
        usleep(1_500_000)
        _ = try c.kubectl(version, ["label", "configmap", "watched", "seen=yes"])
        _ = try c.kubectl(version, ["create", "configmap", "second", "--from-literal=b=2"])
        let seen = try awaitResult(watcher)
        #expect(seen.out.contains("watched") && seen.out.contains("second"), "\(seen)")
    }

    func awaitResult(_ task: Task<Command.Result, any Error>) throws -> Command.Result {
        let box = ResultBox()
        let sem = DispatchSemaphore(value: 0)
        Task {
            box.value = try? await task.value
            sem.signal()
        }
        sem.wait()
        guard let v = box.value else { throw ClusterFixture.FixtureError.failed("watcher failed") }
        return v
    }

    final class ResultBox: @unchecked Sendable { var value: Command.Result? }
}
