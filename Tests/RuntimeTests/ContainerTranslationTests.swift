import APIMachinery
import Foundation
import Testing
@testable import Runtime

/// A JSON literal where Swift needs an expression.
private func J(_ json: JSON) -> JSON { json }

/// Pod spec → runtime spec, without root: every rule the kubelet applies when it turns a
/// container into a runtime config.
@Suite struct ContainerTranslationTests {
    static let nginxImage = ImageConfig(entrypoint: ["/docker-entrypoint.sh"], cmd: ["nginx", "-g", "daemon off;"],
                                        env: ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=1.22"], workingDir: "/srv")

    @Test("command and args against ENTRYPOINT and CMD", arguments: [
        (J(["name": "c"]), ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]),
        (J(["name": "c", "args": ["-v"]]), ["/docker-entrypoint.sh", "-v"]),
        (J(["name": "c", "command": ["sleep"]]), ["sleep"]),
        (J(["name": "c", "command": ["sleep"], "args": ["3600"]]), ["sleep", "3600"]),
        (J(["name": "c", "command": ["echo", "$(GREETING) $(MISSING) $$(GREETING)"]]), ["echo", "hi $(MISSING) $(GREETING)"]),
    ])
    func arguments(container: JSON, expected: [String]) throws {
        let argv = try ContainerTranslation.arguments(container: container, image: Self.nginxImage, env: [("GREETING", "hi")])
        #expect(argv == expected)
    }

    @Test func noCommandAtAllIsAConfigError() {
        #expect(throws: ContainerTranslation.ConfigError("no command specified")) {
            try ContainerTranslation.arguments(container: ["name": "c"], image: ImageConfig(), env: [])
        }
    }

    @Test func environmentOrderAndOverrides() {
        let env = ContainerTranslation.environment(image: Self.nginxImage, hostname: "web-1",
                                                   container: [("NGINX_VERSION", "mine"), ("EXTRA", "1")])
        #expect(env == ["PATH=/usr/sbin:/usr/bin", "NGINX_VERSION=mine", "HOSTNAME=web-1", "EXTRA=1"])
        let bare = ContainerTranslation.environment(image: ImageConfig(), hostname: "h", container: [])
        #expect(bare.first?.hasPrefix("PATH=/usr/local/sbin") == true)
    }

    @Test("resources to cgroup limits", arguments: [
        (J(["limits": ["cpu": "500m", "memory": "64Mi"]]), CgroupResources(cpuRequestMillis: 500, cpuLimitMillis: 500, memoryLimitBytes: 67_108_864)),
        (J(["requests": ["cpu": "0.25"], "limits": ["memory": "1G"]]), CgroupResources(cpuRequestMillis: 250, memoryLimitBytes: 1_000_000_000)),
        (J([:]), CgroupResources()),
    ])
    func resources(resources: JSON, expected: CgroupResources) {
        #expect(ContainerTranslation.resources(container: ["name": "c", "resources": resources]) == expected)
    }

    @Test func userFromContainerPodAndImage() {
        let pod: JSON = ["spec": ["securityContext": ["runAsUser": 1000, "supplementalGroups": [5, 6]]]]
        let user = ContainerTranslation.user(pod: pod, container: ["securityContext": ["runAsGroup": 3000]],
                                             image: ImageConfig(user: "101:101"))
        #expect(user == ContainerSpec.User(uid: 1000, gid: 3000, additionalGids: [5, 6]))
        let imageOnly = ContainerTranslation.user(pod: ["spec": [:]], container: [:], image: ImageConfig(user: "101:102"))
        #expect(imageOnly == ContainerSpec.User(uid: 101, gid: 102))
    }

    @Test func seccompDefaultsToRuntimeDefault() {
        #expect(ContainerTranslation.seccomp(pod: ["spec": [:]], container: [:]) == .runtimeDefault)
        #expect(ContainerTranslation.seccomp(pod: ["spec": ["securityContext": ["seccompProfile": ["type": "Unconfined"]]]],
                                             container: [:]) == .unconfined)
        #expect(ContainerTranslation.seccomp(pod: ["spec": [:]], container: ["securityContext": ["privileged": true]]) == .unconfined)
    }

    static let context = PodContext(
        sandbox: SandboxNamespaces(directory: "/d/ns"), hostname: "web", hostsFile: "/d/etc/hosts",
        hostnameFile: "/d/etc/hostname", resolvConfFile: "/d/etc/resolv.conf", serviceAccountDirectory: "/d/sa",
        volumes: ["data": "/d/volumes/data", "cfg": "/d/volumes/cfg"], readOnlyVolumes: ["cfg"])

    @Test func wholeSpec() throws {
        let pod: JSON = ["metadata": ["name": "web", "namespace": "lab"], "spec": [:]]
        let container: JSON = [
            "name": "nginx",
            "volumeMounts": [["name": "data", "mountPath": "/data"], ["name": "cfg", "mountPath": "/etc/cfg"],
                             ["name": "data", "mountPath": "/sub", "subPath": "a/b", "readOnly": true]],
            "securityContext": ["readOnlyRootFilesystem": true, "allowPrivilegeEscalation": false,
                                "capabilities": ["add": ["NET_ADMIN"], "drop": ["MKNOD"]]],
        ]
        let run = ContainerRunDirectories(base: "/d/containers/nginx/1")
        let spec = try ContainerTranslation.spec(pod: pod, container: container, image: Self.nginxImage,
                                                 layers: ["/layers/a", "/layers/b"], env: [], context: Self.context,
                                                 run: run, cgroupPaths: ["/cg/x"])
        #expect(spec.id == "lab/web/nginx")
        #expect(spec.rootfs == .overlay(lower: ["/layers/b", "/layers/a"], upper: run.upper, work: run.work, target: run.rootfs))
        #expect(spec.readonlyRootfs)
        #expect(spec.namespaces == .sandbox(SandboxNamespaces(directory: "/d/ns")))
        #expect(spec.process.cwd == "/srv")
        #expect(spec.process.noNewPrivileges)
        #expect(spec.process.capabilities == CapabilityConfig(add: ["NET_ADMIN"], drop: ["MKNOD"]))
        #expect(spec.exitStatusPath == run.exitStatus)
        let mounts = Dictionary(uniqueKeysWithValues: spec.mounts.map { ($0.destination, $0) })
        #expect(mounts["/etc/hosts"]?.source == "/d/etc/hosts")
        #expect(mounts["/etc/resolv.conf"]?.source == "/d/etc/resolv.conf")
        #expect(mounts["/dev/termination-log"]?.source == run.terminationLog)
        #expect(mounts["/data"]?.readOnly == false)
        #expect(mounts["/etc/cfg"]?.readOnly == true, "configMap volumes are read-only")
        #expect(mounts["/sub"]?.source == "/d/volumes/data/a/b")
        #expect(mounts[ContainerTranslation.serviceAccountMountPath]?.source == "/d/sa")
        #expect(mounts[ContainerTranslation.serviceAccountMountPath]?.readOnly == true)
    }

    @Test func hostNetworkAndPrivileged() throws {
        let pod: JSON = ["metadata": ["name": "p"], "spec": ["hostNetwork": true]]
        let container: JSON = ["name": "c", "command": ["sh"], "securityContext": ["privileged": true]]
        let spec = try ContainerTranslation.spec(pod: pod, container: container, image: ImageConfig(), layers: ["/l"], env: [],
                                                 context: Self.context, run: ContainerRunDirectories(base: "/r"), cgroupPaths: [])
        #expect(spec.namespaces.network == .host)
        #expect(spec.maskedPaths.isEmpty && spec.readonlyPaths.isEmpty)
        #expect(spec.process.capabilities.privileged)
        #expect(spec.process.seccomp == .unconfined)
    }

    @Test("bad mounts are config errors", arguments: [
        J(["name": "c", "command": ["sh"], "volumeMounts": [["name": "nope", "mountPath": "/x"]]]),
        J(["name": "c", "command": ["sh"], "volumeMounts": [["name": "data", "mountPath": "/x", "subPath": "../etc"]]]),
    ])
    func badMounts(container: JSON) {
        #expect(throws: ContainerTranslation.ConfigError.self) {
            try ContainerTranslation.spec(pod: ["metadata": ["name": "p"], "spec": [:]], container: container, image: ImageConfig(),
                                          layers: ["/l"], env: [], context: Self.context, run: ContainerRunDirectories(base: "/r"),
                                          cgroupPaths: [])
        }
    }
}

/// The files the agent writes for a pod, in a temporary directory.
@Suite struct PodFilesTests {
    @Test func hostsFileWithSubdomainAndAliases() {
        let pod: JSON = ["metadata": ["name": "web-0", "namespace": "lab"],
                         "spec": ["hostname": "web-0", "subdomain": "web",
                                  "hostAliases": [["ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]]]]]
        let text = PodFiles.hostsFile(pod: pod, podIP: "10.244.0.7", clusterDomain: "cluster.local")
        #expect(text.hasPrefix("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"))
        #expect(text.contains("10.244.0.7\tweb-0.web.lab.svc.cluster.local\tweb-0\n"))
        #expect(text.contains("# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n"))
    }

    @Test func hostnameIsCutTo63() {
        let long = String(repeating: "a", count: 62) + "-b"
        #expect(PodFiles.hostname(["metadata": ["name": .string(long)]]) == String(repeating: "a", count: 62))
    }

    @Test func prepareWritesFilesAndVolumes() throws {
        let root = try makeScratchDirectory("labnode-podfiles")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pod: JSON = [
            "metadata": ["name": "app", "namespace": "lab", "labels": ["tier": "web"]],
            "spec": ["volumes": [
                ["name": "scratch", "emptyDir": [:]],
                ["name": "cfg", "configMap": ["name": "settings", "items": [["key": "a", "path": "dir/a.txt"]]]],
                ["name": "pw", "secret": ["secretName": "creds"]],
                ["name": "info", "downwardAPI": ["items": [["path": "labels", "fieldRef": ["fieldPath": "metadata.labels"]]]]],
            ]],
        ]
        let inputs = PodFiles.Inputs(
            dns: PodDNS(nameservers: ["10.96.0.10"], searches: ["lab.svc.cluster.local"], options: ["ndots:5"]),
            podIP: "10.244.0.9", clusterDomain: "cluster.local", token: "tok", caCertificatePEM: "CA",
            configMaps: ["settings": ["data": ["a": "1", "b": "2"]]],
            secrets: ["creds": ["data": ["password": "c2VjcmV0"]]])
        let paths = PodPaths(root: root, uid: "u1")
        let context = try PodFiles.prepare(pod: pod, paths: paths, sandbox: SandboxNamespaces(directory: paths.namespaces), inputs: inputs)
        func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
        #expect(read(paths.hostname) == "app\n")
        #expect(read(paths.resolvConf)?.contains("nameserver 10.96.0.10") == true)
        #expect(read(paths.serviceAccount + "/token") == "tok")
        #expect(read(paths.serviceAccount + "/namespace") == "lab")
        #expect(read(context.volumes["cfg", default: ""] + "/dir/a.txt") == "1")
        #expect(read(context.volumes["cfg", default: ""] + "/b") == nil, "items limit the keys")
        #expect(read(context.volumes["pw", default: ""] + "/password") == "secret")
        #expect(read(context.volumes["info", default: ""] + "/labels") == "tier=\"web\"")
        #expect(context.readOnlyVolumes == ["cfg", "pw", "info"])
        #expect(FileManager.default.fileExists(atPath: context.volumes["scratch", default: ""]))
    }

    @Test func missingConfigMapIsAnError() throws {
        let root = try makeScratchDirectory("labnode-podfiles")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pod: JSON = ["metadata": ["name": "app"], "spec": ["volumes": [["name": "cfg", "configMap": ["name": "absent"]]]]]
        let paths = PodPaths(root: root, uid: "u2")
        let inputs = PodFiles.Inputs(dns: PodDNS(), podIP: nil, clusterDomain: "cluster.local", token: nil, caCertificatePEM: "")
        #expect(throws: ContainerTranslation.ConfigError("configmap \"absent\" not found")) {
            try PodFiles.prepare(pod: pod, paths: paths, sandbox: SandboxNamespaces(directory: paths.namespaces), inputs: inputs)
        }
    }

    @Test("image tags that map to a recipe", arguments: [("latest", true), ("1.25", true), ("1.25.3", true),
                                                          ("doesnotexist", false), ("1.25-alpine", false), ("", false)])
    func recipeTags(tag: String, expected: Bool) {
        #expect(ImageProvider.isRecipeTag(tag) == expected)
    }
}

@Suite struct StandbyInitTests {
    /// A standby init decodes this before it waits; if the format drifted the warm-up would
    /// silently do nothing, so it must stay a valid spec.
    @Test func warmUpSpecDecodes() throws {
        let spec = try JSONDecoder().decode(ContainerSpec.self, from: Data(ContainerInit.standbyWarmUp.utf8))
        #expect(spec.process.args == ["true"])
    }
}
