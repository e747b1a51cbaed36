import APIMachinery
import Controllers
import Foundation
import Glibc
import Logging
import Networking
import Synchronization

/// What the node agent needs to know about the cluster and the host.
public struct NodeAgentSettings: Sendable {
    public var nodeName: String
    public var nodeIP: String
    /// `--cluster-cidr`; the node takes its first /24 (gateway .1 on the bridge).
    public var clusterCIDR: String
    /// The kube-dns Service address pods get as their nameserver.
    public var clusterDNS: String
    public var clusterDomain: String
    /// Pods, logs and network state live under it (`pods/`, `logs/`, `network/`, `images/`).
    public var dataDirectory: String
    /// The labnode binary containers are started with (`init container`).
    public var executable: String
    /// Image recipes for images the store lacks; nil builds nothing.
    public var recipesDirectory: String?
    public var caCertificatePEM: String
    public var bridgeName: String
    public var hostResolvConf: String

    public init(nodeName: String, nodeIP: String, clusterCIDR: String, clusterDNS: String, clusterDomain: String,
                dataDirectory: String, executable: String, recipesDirectory: String?, caCertificatePEM: String,
                bridgeName: String = "cni0", hostResolvConf: String = "/etc/resolv.conf") {
        self.nodeName = nodeName
        self.nodeIP = nodeIP
        self.clusterCIDR = clusterCIDR
        self.clusterDNS = clusterDNS
        self.clusterDomain = clusterDomain
        self.dataDirectory = dataDirectory
        self.executable = executable
        self.recipesDirectory = recipesDirectory
        self.caCertificatePEM = caCertificatePEM
        self.bridgeName = bridgeName
        self.hostResolvConf = hostResolvConf
    }
}

/// The dependencies every pod worker shares.
struct AgentEnvironment: Sendable {
    let settings: NodeAgentSettings
    let client: any APIClient
    let events: EventRecorder
    let launcher: ContainerLauncher
    let cgroups: CgroupManager
    let network: any PodNetworking
    let images: ImageProvider
    let probes: ProbeManager
    let podRoot: String
    let logRoot: String
    let hostDNS: PodDNS
    let logger: Logger

    func now() -> Double { Date().timeIntervalSince1970 }

    func logLocation(pod: JSON, container: String) -> ContainerLogLocation {
        ContainerLogLocation(root: logRoot, namespace: pod.namespace ?? "default", pod: pod.name ?? "",
                             uid: pod.uid ?? "", container: container)
    }
}

/// The pod workers by pod UID; shared with the prober's exec handler.
final class WorkerRegistry: Sendable {
    let workers = Mutex<[String: PodWorker]>([:])
    func get(_ uid: String) -> PodWorker? { workers.withLock { $0[uid] } }
}

/// The kubelet's role: registers the node and keeps its Lease fresh, runs every pod bound to
/// the node (see `PodWorker`), feeds the prober and serves container logs.
///
/// Recovery (after `labnode down`, `kill -9` or a reboot): containers do not outlive the agent
/// that started them. At start the agent stops any container a previous agent left behind and
/// removes its namespaces, veth, cgroups and files; the pod objects are then synced again as
/// new, so every pod bound to the node is restarted cleanly with its restart count carried on
/// (as after a node reboot upstream). Finished pods stay finished.
public final class NodeAgent: Sendable {
    let env: AgentEnvironment
    let registry: WorkerRegistry
    let podNetwork: PodNetwork
    let pods = Informer(Resources.pods)
    /// ConfigMaps, so configMap volumes follow edits (the kubelet's volume refresh).
    let configMaps = Informer(Resources.configMaps)

    public init(settings: NodeAgentSettings, client: any APIClient, events: EventRecorder, logger: Logger) throws {
        guard let cidr = IPv4.CIDR(settings.clusterCIDR) else {
            throw ContainerTranslation.ConfigError("--cluster-cidr \(settings.clusterCIDR) is not an IPv4 CIDR")
        }
        let data = settings.dataDirectory
        let network = try PodNetwork.forNode(clusterCIDR: cidr, stateDirectory: data + "/network", logger: logger)
        let store = try ImageStore(root: data + "/images")
        let builder = settings.recipesDirectory.map {
            ImageBuilder(recipesDirectory: $0, variables: ["labnode": settings.executable])
        }
        let registry = WorkerRegistry()
        let launcher = ContainerLauncher(executable: settings.executable, standby: 1)
        let runner = SocketProbeRunner { request, timeout in
            guard let worker = registry.get(request.podUID),
                  let (spec, path) = await worker.execSpec(container: request.containerName, command: request.command) else {
                return .couldNotRun(message: "container \(request.containerName) is not running")
            }
            return await ContainerExec.run(spec, specPath: path, launcher: launcher, timeout: timeout)
        }
        let hostDNS = PodDNS.parse((try? String(contentsOfFile: settings.hostResolvConf, encoding: .utf8)) ?? "")
        self.registry = registry
        self.podNetwork = network
        self.env = AgentEnvironment(
            settings: settings, client: client, events: events,
            launcher: launcher,
            cgroups: try CgroupManager(parent: "labnode", nestUnder: CgroupManager.currentCgroups()),
            network: network, images: ImageProvider(store: store, builder: builder),
            probes: ProbeManager(runner: runner), podRoot: data + "/pods", logRoot: data + "/logs",
            hostDNS: hostDNS, logger: logger)
    }

    /// Cleans up after a previous agent, readies the bridge, registers the node, then runs until
    /// cancelled. `onReady` is called once the node is registered and pods are being synced.
    /// Pods start only after `podsMayStart` returns (labnode waits for the service proxy's
    /// first sync: a pod that calls a cluster IP before its rules exist hangs in ARP).
    public func run(onReady: @escaping @Sendable () -> Void, podsMayStart: @escaping @Sendable () async -> Void = {}) async throws {
        // Containers' PID 1s are adopted by the agent when their shims exit.
        try ContainerLauncher.becomeSubreaper()
        try recoverLeftovers()
        try podNetwork.ensureBridge(name: env.settings.bridgeName, gateway: podNetwork.gatewayCIDR)
        do { try egress.ensure() } catch {
            env.logger.warning("pods will not reach past the node", metadata: ["error": "\(error)"])
        }
        try await registerNode()
        // The handler goes in before the informer lists, or the first pods would be missed.
        let (events, continuation) = AsyncStream.makeStream(of: InformerEvent.self)
        pods.onChange { continuation.yield($0) }
        let registry = self.registry
        configMaps.onChange { event in
            guard case .updated(_, let cm) = event else { return }
            let workers = registry.workers.withLock { Array($0.values) }
            Task { for w in workers { await w.configMapChanged(cm) } }
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.env.images.buildMissing() }
            group.addTask { await self.env.events.run(logger: self.env.logger) }
            group.addTask { await self.heartbeat() }
            group.addTask { await self.handleProbeNotifications() }
            group.addTask { await self.pods.run(client: self.env.client, logger: self.env.logger) }
            group.addTask { await self.configMaps.run(client: self.env.client, logger: self.env.logger) }
            group.addTask {
                await podsMayStart()
                await self.dispatchPods(events)
            }
            group.addTask {
                await self.pods.waitSynced()
                onReady()
            }
        }
    }

    /// Stops every pod's containers (SIGTERM, then SIGKILL after 2 s) and removes what they
    /// made on the host, then the bridge. The pod objects stay; the next start runs them again.
    public func shutdown() async {
        let workers = registry.workers.withLock { $0 }
        await withDiscardingTaskGroup { group in
            for worker in workers.values {
                group.addTask { await worker.shutdown() }
            }
        }
        await env.probes.shutdown()
        await env.launcher.standby?.drain()
        await env.launcher.execStandby?.drain()
        try? egress.remove()
        do { try podNetwork.removeBridge() } catch {
            env.logger.warning("could not remove the pod bridge", metadata: ["error": "\(error)"])
        }
        try? env.cgroups.removeParent()
    }

    // MARK: pods

    func dispatchPods(_ events: AsyncStream<InformerEvent>) async {
        for await event in events {
            if Task.isCancelled { break }
            switch event {
            case .added(let pod), .updated(_, let pod):
                guard pod[path: "spec", "nodeName"]?.stringValue == env.settings.nodeName, let uid = pod.uid else { continue }
                let worker = registry.workers.withLock { workers -> PodWorker in
                    if let existing = workers[uid] { return existing }
                    let created = PodWorker(env: env, pod: pod) { [registry] finished in
                        registry.workers.withLock { _ = $0.removeValue(forKey: finished) }
                    }
                    workers[uid] = created
                    return created
                }
                await worker.update(pod)
            case .deleted(let pod):
                guard let uid = pod.uid, let worker = registry.get(uid) else { continue }
                await worker.markGone()
            }
        }
    }

    func handleProbeNotifications() async {
        for await notification in env.probes.notifications {
            switch notification {
            case .resultChanged(let uid, _, _):
                await registry.get(uid)?.requestSync()
            case .event(let uid, _, _, let event):
                if let worker = registry.get(uid) {
                    let pod = await worker.pod
                    env.events.record(pod, component: "kubelet", type: event.type, reason: event.reason, message: event.message)
                }
            case .containerFailed(let failure):
                guard let worker = registry.get(failure.podUID) else { continue }
                Task {
                    await worker.kill(container: failure.container, containerID: failure.containerID,
                                      grace: failure.gracePeriodSeconds, message: failure.killMessage)
                }
            }
        }
    }

    // MARK: node

    var podCIDR: String { "\(podNetwork.ipam.subnet)" }

    var egress: PodEgress {
        PodEgress(podSubnet: podCIDR, clusterCIDR: env.settings.clusterCIDR, bridge: env.settings.bridgeName)
    }

    func registerNode() async throws {
        let name = env.settings.nodeName
        let facts = HostFacts.read(dataDir: env.settings.dataDirectory)
        var existing = try await env.client.find(Resources.nodes, namespace: nil, name: name)
        let fresh = NodeObject.make(name: name, nodeIP: env.settings.nodeIP, podCIDR: podCIDR, facts: facts, ready: true,
                                    readyMessage: "kubelet is posting ready status", previous: existing)
        if existing == nil {
            existing = try await env.client.create(Resources.nodes, fresh, manager: "kubelet")
        }
        guard var node = existing else { return }
        node["status"] = fresh["status"]
        node[path: "spec", "podCIDR"] = fresh[path: "spec", "podCIDR"]
        _ = try await env.client.update(Resources.nodes, node, subresource: "status", manager: "kubelet")
    }

    /// Renews the Lease every 10 s (the kubelet's default) and re-posts the node status every minute.
    func heartbeat() async {
        var beats = 0
        while !Task.isCancelled {
            do {
                let lease = NodeObject.lease(name: env.settings.nodeName)
                if var current = try await env.client.find(Resources.leases, namespace: "kube-node-lease", name: env.settings.nodeName) {
                    current["spec"] = lease["spec"]
                    _ = try await env.client.update(Resources.leases, current, manager: "kubelet")
                } else {
                    _ = try await env.client.create(Resources.leases, lease, manager: "kubelet")
                }
                if beats > 0 && beats % 6 == 0 { try await registerNode() }
            } catch {
                env.logger.warning("node heartbeat failed", metadata: ["error": "\(error)"])
            }
            beats += 1
            try? await Task.sleep(for: .seconds(10))
        }
    }

    // MARK: recovery

    /// Stops the containers a previous agent left running (SIGKILL to each PID 1 ends its PID
    /// namespace) and removes every pod directory,
    /// sandbox, veth and cgroup it made; then releases their addresses.
    func recoverLeftovers() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: env.podRoot, withIntermediateDirectories: true)
        for uid in (try? fm.contentsOfDirectory(atPath: env.podRoot)) ?? [] {
            let paths = PodPaths(root: env.podRoot, uid: uid)
            for pid in Self.leftoverContainers(paths) {
                _ = Glibc.kill(pid, SIGKILL)
            }
            for pid in Self.leftoverContainers(paths) {
                // Not our children: wait for them to be gone before their namespaces are removed.
                var waited = 0
                while ProcessIdentity.isAlive(pid) && waited < 200 {
                    usleep(10_000)
                    waited += 1
                }
            }
            try? env.network.detach(podUID: uid, netnsPath: SandboxNamespaces(directory: paths.namespaces).network)
            try? SandboxSetup.destroy(directory: paths.namespaces)
            try? env.cgroups.removePod(uid)
            try? fm.removeItem(atPath: paths.directory)
            env.logger.info("removed a pod left by a previous run", metadata: ["uid": "\(uid)"])
        }
        _ = try podNetwork.ipam.reconcile(keep: [])
    }

    /// The containers in a pod's state file that still run: same pid, same start time (a pid
    /// may have been reused since).
    static func leftoverContainers(_ paths: PodPaths) -> [Int32] {
        guard let text = try? String(contentsOfFile: paths.stateFile, encoding: .utf8),
              let json = try? JSON.parse(text) else { return [] }
        return (json["containers"]?.arrayValue ?? []).compactMap { entry -> Int32? in
            guard let pid = entry["pid"]?.intValue.map({ Int32(clamping: $0) }),
                  let start = entry["start"]?.intValue, ProcessIdentity.isAlive(pid),
                  ProcessIdentity.startTime(pid) == start else { return nil }
            return pid
        }
    }

    // MARK: exec

    /// Runs `command` in a running container with its streams relayed (`kubectl exec`);
    /// returns the exit status.
    public func exec(uid: String, container: String, command: [String], tty: Bool, stdin: Bool,
                     input: AsyncStream<[UInt8]>, resize: AsyncStream<(rows: UInt16, columns: UInt16)>,
                     output: @escaping @Sendable (UInt8, [UInt8]) async -> Void) async throws(ContainerExecError) -> Int32 {
        guard let worker = registry.get(uid) else {
            throw ContainerExecError(message: "pod \(uid) does not run on this node")
        }
        guard let found = await worker.execSpec(container: container, command: command) else {
            throw ContainerExecError(message: "container \(GoQuote.quote(container)) is not running")
        }
        var spec = found.spec
        let path = found.path
        spec.tty = tty
        return try await ContainerExec.stream(spec, specPath: path, launcher: env.launcher, stdin: stdin,
                                              input: input, resize: resize, output: output)
    }

    // MARK: attach

    /// Joins a running container's stdio (`kubectl attach`, `kubectl run -it`): its output
    /// from now on goes to `output`, `input` to its stdin when it has one (`stdin: true`).
    /// Returns when the container's output ends or the caller is cancelled (the client left).
    public func attach(uid: String, container: String, stdin: Bool, input: AsyncStream<[UInt8]>,
                       resize: AsyncStream<(rows: UInt16, columns: UInt16)>,
                       output: @escaping @Sendable (UInt8, [UInt8]) async -> Void) async throws(ContainerExecError) {
        guard let worker = registry.get(uid) else {
            throw ContainerExecError(message: "pod \(uid) does not run on this node")
        }
        guard let point = await worker.attachPoint(container: container) else {
            throw ContainerExecError(message: "container \(GoQuote.quote(container)) is not running")
        }
        let stdio = point.stdio
        let follow = point.output.follow()
        let pump = Task {
            guard stdin, let stdio else { return }
            for await chunk in input {
                if !stdio.write(chunk) { break }
            }
            // The first client to leave closes a `stdinOnce` container's stdin.
            if stdio.stdinOnce { stdio.closeInput() }
        }
        let resizer = Task {
            for await size in resize { stdio?.resize(rows: size.rows, columns: size.columns) }
        }
        for await (stream, bytes) in follow {
            await output(stream == .stderr ? 2 : 1, bytes)
        }
        pump.cancel()
        resizer.cancel()
    }

    // MARK: port-forward

    /// A TCP connection to `port` on the pod's loopback, made inside its network namespace
    /// as the kubelet does for `kubectl port-forward` (so a server bound to 127.0.0.1 in the
    /// pod is reachable too). The caller owns the returned descriptor.
    public func connect(uid: String, port: Int) async throws(ContainerExecError) -> Int32 {
        guard let worker = registry.get(uid) else {
            throw ContainerExecError(message: "pod \(uid) does not run on this node")
        }
        guard await worker.sandboxCreated else {
            throw ContainerExecError(message: "the pod's sandbox is not running")
        }
        let netns = SandboxNamespaces(directory: PodPaths(root: env.podRoot, uid: uid).namespaces).network
        let outcome: Result<Int32, ProbeSocket.DialError>
        do {
            outcome = try NetworkNamespace.run(inNamespaceAt: netns) {
                ProbeSocket.dial(host: "localhost", port: port, deadline: ProbeSocket.monotonicNow() + 5).map { connection in
                    // The Connection closes its descriptor when it goes; keep a copy (close-on-exec).
                    fcntl(connection.fd, F_DUPFD_CLOEXEC, 0)
                }
            }
        } catch {
            throw ContainerExecError(message: "entering the pod's network namespace: \(error)")
        }
        switch outcome {
        case .success(let fd) where fd >= 0:
            return fd
        case .success:
            throw ContainerExecError(message: "fcntl(F_DUPFD_CLOEXEC): \(String(cString: strerror(errno)))")
        case .failure(let error):
            throw ContainerExecError(message: "failed to connect to localhost:\(port) inside the pod's network namespace: \(error.goText)")
        }
    }

    // MARK: logs

    /// The log of one run of a container, for the API server's pods/log.
    public func logs(namespace: String, pod: String, uid: String, container: String, restartCount: Int,
                     options: ContainerLogOptions) async throws(ContainerLogError) -> AsyncThrowingStream<[UInt8], any Error> {
        let location = ContainerLogLocation(root: env.logRoot, namespace: namespace, pod: pod, uid: uid, container: container)
        let writer = await registry.get(uid)?.logWriter(container: container)
        let path = location.file(restartCount: restartCount)
        let writing: @Sendable () -> Bool = {
            guard let writer, writer.path == path else { return false }
            return !writer.isFinished
        }
        let reader = ContainerLogReader(path: path, options: options, stillWriting: writing)
        return try reader.open()
    }
}

extension PodWorker {
    func logWriter(container: String) -> ContainerLogWriter? { runs[container]?.logWriter }

    /// Labnode is stopping: stop the containers quickly and remove what they made on the host,
    /// leaving the object (and its logs) for the next start.
    func shutdown() async {
        wakeUp?.cancel()
        finished = true
        await stop(names: Array(runs.keys), grace: 2)
        tearDown(removeLogs: false)
    }
}

/// What /proc says about a process, to recognise one across a restart of the agent.
enum ProcessIdentity {
    /// Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.
    static func startTime(_ pid: Int32) -> Int64? {
        guard let fields = statFields(pid), fields.count > 19 else { return nil }
        return Int64(fields[19])
    }

    /// True while `pid` exists and is not a zombie (an orphan's zombie lingers where PID 1
    /// does not reap, as in some containers, but it holds no namespace or mount).
    static func isAlive(_ pid: Int32) -> Bool {
        guard let state = statFields(pid)?.first else { return false }
        return state != "Z" && state != "X"
    }

    /// The fields after the command name, which may itself hold spaces and parentheses.
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }
}
