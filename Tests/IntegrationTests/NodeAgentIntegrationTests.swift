import Foundation
import Testing

/// The node agent running real busybox and nginx pods, driven by the real kubectl against
/// `labnode up` in a private netns (the safety rule). Each test makes its own cluster.
@Suite("node agent: pods in containers", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct NodeAgentIntegrationTests {
    static func eventually(_ seconds: Double = 30, _ body: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try body() { return true }
            usleep(100_000)
        }
        return try body()
    }

    /// Starts a cluster, runs `body`, and always takes it down.
    static func withCluster(_ body: (ClusterFixture) throws -> Void) throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        let up = try c.up()
        try #require(up.code == 0, "\(up)")
        try body(c)
    }

    static func ok(_ c: ClusterFixture, _ args: [String], stdin: String? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try c.kubectl(nil, args, stdin: stdin)
        #expect(r.code == 0, "kubectl \(args.joined(separator: " ")): \(r)", sourceLocation: sourceLocation)
        return r.out
    }

    static func jsonpath(_ c: ClusterFixture, _ pod: String, _ path: String) -> String {
        (try? c.kubectl(nil, ["get", "pod", pod, "-o", "jsonpath=\(path)"]).out) ?? ""
    }

    /// The chapter's busybox pod runs with an address from the pod range; nginx serves its
    /// welcome page on its pod IP from the node; the node is Ready; `kubectl logs` shows output.
    @Test func busyboxAndNginx() throws {
        try Self.withCluster { c in
            #expect(Self.eventually(10) { (try? c.kubectl(nil, ["get", "nodes"]).out)?.contains(" Ready ") == true })
            let manifest = """
                apiVersion: v1
                kind: Pod
                metadata:
                  name: busybox
                  namespace: default
                spec:
                  containers:
                  - image: busybox
                    name: busy
                    command:
                      - sleep
                      - "3600"
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: manifest)
            _ = try Self.ok(c, ["run", "web", "--image=nginx"])
            _ = try Self.ok(c, ["run", "talker", "--image=busybox", "--restart=Never", "--", "sh", "-c", "echo hello from the pod; echo to stderr >&2"])
            #expect(Self.eventually { Self.jsonpath(c, "busybox", "{.status.phase}") == "Running" })
            let ip = Self.jsonpath(c, "busybox", "{.status.podIP}")
            #expect(ip.hasPrefix("10.244."), "pod IP \(ip)")
            #expect(Self.jsonpath(c, "busybox", "{.status.hostIP}") == c.nodeIP)
            #expect(Self.jsonpath(c, "busybox", "{.spec.nodeName}").isEmpty == false)

            #expect(Self.eventually { Self.jsonpath(c, "web", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True" })
            let webIP = Self.jsonpath(c, "web", "{.status.podIP}")
            let page = try c.inNetns(["curl", "-s", "-m", "5", "http://\(webIP)/"])
            #expect(page.out.contains("Welcome to nginx!"), "\(page)")

            #expect(Self.eventually { Self.jsonpath(c, "talker", "{.status.phase}") == "Succeeded" })
            let logs = try Self.ok(c, ["logs", "talker"])
            #expect(logs.contains("hello from the pod") && logs.contains("to stderr"), "\(logs)")
            let pods = try Self.ok(c, ["get", "pods"])
            #expect(pods.contains("Completed"), "\(pods)")
            let events = try Self.ok(c, ["get", "events", "--field-selector", "involvedObject.name=busybox"])
            #expect(events.contains("Scheduled") && events.contains("Started"), "\(events)")

            // An init container fills an emptyDir the app container reads; env from a ConfigMap.
            _ = try Self.ok(c, ["create", "configmap", "greeting", "--from-literal=WORD=salut"])
            let initPod = """
                apiVersion: v1
                kind: Pod
                metadata: {name: staged}
                spec:
                  restartPolicy: Never
                  volumes: [{name: shared, emptyDir: {}}]
                  initContainers:
                  - {name: prepare, image: busybox, command: ["sh", "-c", "echo prepared > /work/state"],
                     volumeMounts: [{name: shared, mountPath: /work}]}
                  containers:
                  - name: app
                    image: busybox
                    command: ["sh", "-c", "cat /work/state; echo word=$WORD; echo svc=$KUBERNETES_SERVICE_HOST"]
                    envFrom: [{configMapRef: {name: greeting}}]
                    volumeMounts: [{name: shared, mountPath: /work}]
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: initPod)
            #expect(Self.eventually { Self.jsonpath(c, "staged", "{.status.phase}") == "Succeeded" },
                    "\(Self.jsonpath(c, "staged", "{.status}"))")
            let staged = try Self.ok(c, ["logs", "staged"])
            #expect(staged.contains("prepared") && staged.contains("word=salut") && staged.contains("svc=10.96.0.1"), "\(staged)")
            #expect(Self.jsonpath(c, "staged", "{.status.initContainerStatuses[0].state.terminated.reason}") == "Completed")
            // Pods reach past the node through a masquerade rule in the node's netns.
            let nat = try c.inNetns(["iptables", "-t", "nat", "-S", "POSTROUTING"])
            #expect(nat.out.contains("-s 10.244.0.0/24 ! -d 10.244.0.0/16 ! -o cni0") && nat.out.contains("MASQUERADE"), "\(nat)")
        }
    }

    /// What a process inside a pod sees: its hostname, itself as PID 1, the default capability
    /// set, a seccomp filter, no host processes, and no permission to mount.
    @Test func insideThePod() throws {
        try Self.withCluster { c in
            let script = """
                echo host=$(hostname)
                echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline)
                grep CapEff /proc/self/status
                grep '^Seccomp:' /proc/self/status
                echo procs=$(ls /proc | grep -c '^[0-9]')
                if mount -t tmpfs none /mnt 2>/dev/null; then echo mount=allowed; else echo mount=refused; fi
                echo ns=$(cat /etc/resolv.conf | grep nameserver)
                echo token=$(test -s /var/run/secrets/kubernetes.io/serviceaccount/token && echo yes)
                """
            _ = try Self.ok(c, ["run", "inside", "--image=busybox", "--restart=Never", "--", "sh", "-c", script])
            #expect(Self.eventually { Self.jsonpath(c, "inside", "{.status.phase}") == "Succeeded" })
            let out = try Self.ok(c, ["logs", "inside"])
            #expect(out.contains("host=inside"), "\(out)")
            #expect(out.contains("pid1=sh -c"), "\(out)")
            // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
            // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
            #expect(out.contains("CapEff:\t00000000a80425fb"), "\(out)")
            #expect(out.contains("Seccomp:\t2"), "\(out)")
            let procs = out.split(separator: "\n").first { $0.hasPrefix("procs=") }.flatMap { Int($0.dropFirst(6)) } ?? 99
            #expect(procs <= 4, "host processes are visible: \(out)")
            #expect(out.contains("mount=refused"), "\(out)")
            #expect(out.contains("ns=nameserver 10.96.0.10"), "\(out)")
            #expect(out.contains("token=yes"), "\(out)")
        }
    }

    /// securityContext and volumes as a pod sees them: a non-root user without privilege
    /// escalation, a read-only root, a secret as files and as env, a hostPath directory.
    @Test func securityContextAndVolumes() throws {
        try Self.withCluster { c in
            _ = try Self.ok(c, ["create", "secret", "generic", "creds", "--from-literal=password=s3cret"])
            let hostDir = c.dataDir + "-hostpath"
            defer { try? FileManager.default.removeItem(atPath: hostDir) }
            let manifest = """
                apiVersion: v1
                kind: Pod
                metadata: {name: locked}
                spec:
                  restartPolicy: Never
                  securityContext: {runAsUser: 1000, runAsGroup: 3000}
                  volumes:
                  - {name: creds, secret: {secretName: creds}}
                  - {name: host, hostPath: {path: \(hostDir), type: DirectoryOrCreate}}
                  containers:
                  - name: app
                    image: busybox
                    command: ["sh", "-c", "id; cat /etc/creds/password; echo; echo env=$PASSWORD; touch /rootfile 2>/dev/null && echo root=writable || echo root=readonly; grep CapEff /proc/self/status; grep NoNewPrivs /proc/self/status"]
                    env: [{name: PASSWORD, valueFrom: {secretKeyRef: {name: creds, key: password}}}]
                    securityContext: {readOnlyRootFilesystem: true, allowPrivilegeEscalation: false}
                    volumeMounts: [{name: creds, mountPath: /etc/creds}, {name: host, mountPath: /host}]
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: manifest)
            #expect(Self.eventually { Self.jsonpath(c, "locked", "{.status.phase}") == "Succeeded" }, "\(Self.jsonpath(c, "locked", "{.status}"))")
            let out = try Self.ok(c, ["logs", "locked"])
            #expect(out.contains("uid=1000 gid=3000"), "\(out)")
            #expect(out.contains("s3cret") && out.contains("env=s3cret"), "\(out)")
            #expect(out.contains("root=readonly"), "\(out)")
            #expect(out.contains("CapEff:\t0000000000000000"), "a non-root user keeps no capabilities: \(out)")
            #expect(out.contains("NoNewPrivs:\t1"), "\(out)")
            #expect(FileManager.default.fileExists(atPath: hostDir), "the hostPath directory is created")
        }
    }

    /// A crashing container backs off for longer each time; a container over its memory limit
    /// is OOMKilled; a missing image is ErrImagePull then ImagePullBackOff.
    @Test func failures() throws {
        try Self.withCluster { c in
            _ = try Self.ok(c, ["run", "crasher", "--image=busybox", "--", "sh", "-c", "echo crashing; exit 3"])
            _ = try Self.ok(c, ["run", "nosuch", "--image=nosuchimage:v9"])
            let hog = """
                apiVersion: v1
                kind: Pod
                metadata: {name: hog}
                spec:
                  restartPolicy: Never
                  containers:
                  - name: hog
                    image: busybox
                    command: ["tail", "/dev/zero"]
                    resources: {limits: {memory: 24Mi}}
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: hog)

            // Back-off: 10 s after the second crash, 20 s after the third.
            func waiting(_ pod: String) -> String { Self.jsonpath(c, pod, "{.status.containerStatuses[0].state.waiting}") }
            #expect(Self.eventually(10) { waiting("crasher").contains("back-off 10s") }, "\(waiting("crasher"))")
            #expect((try? c.kubectl(nil, ["get", "pod", "crasher"]).out)?.contains("CrashLoopBackOff") == true)
            #expect(Self.eventually(25) { waiting("crasher").contains("back-off 20s") }, "\(waiting("crasher"))")
            #expect(Int(Self.jsonpath(c, "crasher", "{.status.containerStatuses[0].restartCount}")) ?? 0 >= 2)
            #expect(Self.jsonpath(c, "crasher", "{.status.containerStatuses[0].lastState.terminated.exitCode}") == "3")
            let previous = try Self.ok(c, ["logs", "crasher", "--previous"])
            #expect(previous.contains("crashing"), "\(previous)")

            #expect(Self.eventually { Self.jsonpath(c, "hog", "{.status.containerStatuses[0].state.terminated.reason}") == "OOMKilled" },
                    "\(Self.jsonpath(c, "hog", "{.status}"))")
            #expect(Self.jsonpath(c, "hog", "{.status.phase}") == "Failed")
            #expect(Self.jsonpath(c, "hog", "{.status.containerStatuses[0].state.terminated.exitCode}") == "137")

            // By now the missing image has failed more than once.
            #expect(Self.eventually(20) { waiting("nosuch").contains("ImagePullBackOff") }, "\(waiting("nosuch"))")
            #expect(waiting("nosuch").contains("nosuchimage:v9"))
            let events = try Self.ok(c, ["get", "events", "--field-selector", "involvedObject.name=nosuch"])
            #expect(events.contains("Failed to pull image"), "\(events)")
        }
    }

    /// A readiness probe holds Ready at False until it passes; a pod whose nodeSelector matches
    /// no node stays Pending with a FailedScheduling event.
    @Test func readinessAndScheduling() throws {
        try Self.withCluster { c in
            let pod = """
                apiVersion: v1
                kind: Pod
                metadata: {name: slow}
                spec:
                  containers:
                  - name: app
                    image: busybox
                    command: ["sh", "-c", "sleep 4; touch /tmp/ready; sleep 3600"]
                    readinessProbe:
                      exec: {command: ["cat", "/tmp/ready"]}
                      periodSeconds: 1
                  terminationGracePeriodSeconds: 1
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: pod)
            // A liveness probe that starts failing after 3 s gets the container restarted.
            let sick = """
                apiVersion: v1
                kind: Pod
                metadata: {name: sick}
                spec:
                  terminationGracePeriodSeconds: 1
                  containers:
                  - name: app
                    image: busybox
                    command: ["sh", "-c", "touch /tmp/healthy; sleep 3; rm /tmp/healthy; sleep 3600"]
                    livenessProbe:
                      exec: {command: ["cat", "/tmp/healthy"]}
                      periodSeconds: 1
                      failureThreshold: 2
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: sick)
            _ = try Self.ok(c, ["run", "picky", "--image=busybox", "--overrides", #"{"spec":{"nodeSelector":{"disk":"ssd"}}}"#, "--", "sleep", "60"])
            #expect(Self.eventually { Self.jsonpath(c, "slow", "{.status.phase}") == "Running" })
            #expect(Self.jsonpath(c, "slow", "{.status.conditions[?(@.type==\"Ready\")].status}") == "False")
            #expect(Self.eventually(20) { Self.jsonpath(c, "slow", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True" })
            #expect(Self.jsonpath(c, "picky", "{.status.phase}") == "Pending")
            #expect(Self.eventually(20) { Self.jsonpath(c, "sick", "{.status.containerStatuses[0].restartCount}") == "1" },
                    "\(Self.jsonpath(c, "sick", "{.status}"))")
            let sickEvents = try Self.ok(c, ["get", "events", "--field-selector", "involvedObject.name=sick"])
            #expect(sickEvents.contains("Unhealthy") && sickEvents.contains("failed liveness probe"), "\(sickEvents)")
            #expect(Self.eventually(10) {
                (try? c.kubectl(nil, ["get", "events", "--field-selector", "involvedObject.name=picky"]).out)?.contains("FailedScheduling") == true
            })
        }
    }

    /// Fifty pods come and go; none of their veths, namespace mounts, cgroups or directories stay.
    @Test func fiftyPodsLeaveNothing() throws {
        try Self.withCluster { c in
            func veths() -> Int {
                // "5: veth0a1b2c3d@if2: ...": the pods' host ends, not the fixture's eth0 pair.
                ((try? c.inNetns(["ip", "-o", "link", "show", "type", "veth"]).out) ?? "")
                    .split(separator: "\n").filter { $0.split(separator: " ").dropFirst().first?.hasPrefix("veth") == true }.count
            }
            func dataMounts() -> Int {
                ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "")
                    .split(separator: "\n").filter { $0.contains(c.dataDir + "/") }.count
            }
            let before = (veths(), dataMounts())
            let deployment = """
                apiVersion: apps/v1
                kind: Deployment
                metadata: {name: many}
                spec:
                  replicas: 50
                  selector: {matchLabels: {app: many}}
                  template:
                    metadata: {labels: {app: many}}
                    spec:
                      terminationGracePeriodSeconds: 1
                      containers: [{name: c, image: busybox, command: ["sleep", "3600"]}]
                """
            _ = try Self.ok(c, ["create", "-f", "-"], stdin: deployment)
            #expect(Self.eventually(90) {
                ((try? c.kubectl(nil, ["get", "pods", "-l", "app=many", "--no-headers"]).out) ?? "")
                    .split(separator: "\n").filter { $0.contains("Running") }.count == 50
            })
            let uids = try Self.ok(c, ["get", "pods", "-l", "app=many", "-o", "jsonpath={.items[*].metadata.uid}"])
                .split(separator: " ").map(String.init)
            #expect(uids.count == 50)
            #expect(veths() == before.0 + 50)
            _ = try Self.ok(c, ["delete", "deployment", "many"])
            #expect(Self.eventually(90) {
                ((try? c.kubectl(nil, ["get", "pods", "--no-headers"]).out) ?? "").isEmpty
            })
            #expect(Self.eventually(10) { veths() == before.0 }, "veths left: \(veths() - before.0)")
            #expect(dataMounts() == before.1, "namespace mounts left")
            let cgroups = (try? Command.run(["find", "/sys/fs/cgroup", "-type", "d", "-path", "*labnode*"]).out) ?? ""
            let leftover = uids.filter { cgroups.contains($0) }
            #expect(leftover.isEmpty, "cgroups left for \(leftover.count) pods")
            let podDirs = (try? FileManager.default.contentsOfDirectory(atPath: c.dataDir + "/pods")) ?? []
            #expect(podDirs.isEmpty, "pod directories left: \(podDirs)")
        }
    }

    /// After `kill -9` of the daemon and `up`, the pod runs again (a restart is counted) and the
    /// old container is gone; after `down` nothing of the pod and no bridge remains.
    @Test func recoveryAfterKill() throws {
        try Self.withCluster { c in
            _ = try Self.ok(c, ["run", "survivor", "--image=busybox", "--", "sleep", "3600"])
            #expect(Self.eventually { Self.jsonpath(c, "survivor", "{.status.phase}") == "Running" })
            let oldContainers = Self.containerProcesses(c)
            #expect(!oldContainers.isEmpty)
            if let pid = c.pid() { kill(pid, SIGKILL) }
            usleep(200_000)
            let up = try c.up()
            #expect(up.code == 0, "\(up)")
            #expect(Self.eventually {
                Self.jsonpath(c, "survivor", "{.status.containerStatuses[0].restartCount}") == "1"
                    && Self.jsonpath(c, "survivor", "{.status.phase}") == "Running"
                    && Self.jsonpath(c, "survivor", "{.status.containerStatuses[0].state.running.startedAt}").isEmpty == false
            }, "\(Self.jsonpath(c, "survivor", "{.status}"))")
            for pid in oldContainers { #expect(!Self.isRunning(pid), "the old container \(pid) still runs") }
            let newContainers = Self.containerProcesses(c)
            #expect(!newContainers.isEmpty)
            #expect(try c.labnode(["down"], timeout: 40).code == 0)
            for pid in newContainers { #expect(!Self.isRunning(pid), "container \(pid) outlived down") }
            let bridge = try c.inNetns(["ip", "link", "show", "cni0"])
            #expect(bridge.code != 0, "the bridge is still there")
            let nat = try c.inNetns(["iptables", "-t", "nat", "-S", "POSTROUTING"])
            #expect(!nat.out.contains("MASQUERADE"), "the masquerade rule is still there: \(nat)")
        }
    }

    /// The containers' PID 1s this cluster's agent recorded (`pods/*/state.json`) that still run.
    static func containerProcesses(_ c: ClusterFixture) -> [Int32] {
        let root = c.dataDir + "/pods"
        let pods = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return pods.flatMap { uid -> [Int32] in
            guard let data = FileManager.default.contents(atPath: "\(root)/\(uid)/state.json"),
                  let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let containers = json["containers"] as? [[String: Any]] else { return [] }
            return containers.compactMap { ($0["pid"] as? Int).map(Int32.init) }
        }.filter(isRunning)
    }

    /// The process exists and is not a zombie (PID 1 of this machine may not reap orphans).
    static func isRunning(_ pid: Int32) -> Bool {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return false }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return false }
        return text[text.index(after: close)...].dropFirst().first != "Z"
    }
}
