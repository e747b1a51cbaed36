import Addons
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `labnode up`, `down` and `status`: settings, host checks, the daemon and the kubeconfig.
public enum Lifecycle {
    /// Flags given on this command line; nil means "keep the saved or default value".
    public struct Flags: Sendable {
        public var apiPort: Int?
        public var nodeIP: String?
        public var serviceClusterIPRange: String?
        public var serviceNodePortRange: String?
        public var clusterCIDR: String?
        public var clusterDomain: String?
        public var proxyMode: String?
        public var loadBalancerPool: String?
        /// `--disable dns`: add-ons and components to leave out (an empty list turns all back on).
        public var disabled: [String]?
        public var resolvConf: String?
        public var localhostNodePorts: Bool?

        public init() {}

        func apply(to c: inout ClusterConfig) {
            if let v = apiPort { c.apiPort = v }
            if let v = nodeIP { c.nodeIP = v }
            if let v = serviceClusterIPRange { c.serviceClusterIPRange = v }
            if let v = serviceNodePortRange { c.serviceNodePortRange = v }
            if let v = clusterCIDR { c.clusterCIDR = v }
            if let v = clusterDomain { c.clusterDomain = v }
            if let v = proxyMode { c.proxyMode = v }
            if let v = loadBalancerPool { c.loadBalancerPool = v.isEmpty ? nil : v }
            if let v = disabled {
                // Repeated or comma-separated, as k3s takes its --disable list.
                c.disabled = v.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            }
            if let v = resolvConf { c.resolvConf = v.isEmpty ? nil : v }
            if let v = localhostNodePorts { c.localhostNodePorts = v }
        }
    }

    static func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }

    /// Resolves the settings (saved file, then flags, then detection) and checks them.
    public static func resolve(dataDir relative: String, flags: Flags) throws -> ClusterConfig {
        // The daemon and later commands may run from another directory: keep the path absolute.
        let dataDir = relative.hasPrefix("/") ? relative : FileManager.default.currentDirectoryPath + "/" + relative
        var config = try ClusterConfig.load(dataDir: dataDir) ?? ClusterConfig(dataDir: dataDir)
        config.dataDir = dataDir
        flags.apply(to: &config)
        if config.nodeIP.isEmpty {
            guard let ip = HostNetwork.defaultNodeIP() else {
                throw ClusterError.config("no IPv4 address found on this machine to use as the node IP; pass --node-ip")
            }
            config.nodeIP = ip
        }
        if config.nodeName.isEmpty {
            config.nodeName = ProcessInfo.processInfo.hostName.lowercased().split(separator: ".").first.map(String.init) ?? "labnode"
        }
        try config.validate()
        return config
    }

    /// Host checks that only make sense before our own cluster exists: routes and the port.
    static func checkHost(_ config: ClusterConfig) throws {
        let ownInterfaces: Set<String> = ["cni0"]
        let routes = HostNetwork.hostRoutes()
        for (flag, text) in [("--service-cluster-ip-range", config.serviceClusterIPRange), ("--cluster-cidr", config.clusterCIDR)] {
            guard let cidr = try? IPv4CIDR(parsing: text) else { continue }
            if let r = routes.first(where: { !$0.isDefault && !ownInterfaces.contains($0.interface) && $0.destination.overlaps(cidr) }) {
                throw ClusterError.host("\(flag) \(text) overlaps the host route \(r); choose another range with \(flag)")
            }
        }
        if !HostNetwork.isTCPPortFree(host: "0.0.0.0", port: config.apiPort) {
            throw ClusterError.host("port \(config.apiPort) is already in use; stop what listens there or pass --api-port")
        }
    }

    /// Creates the data dir (and its parents) with a sentence naming the failing directory and errno.
    static func prepareDataDir(_ dir: String) throws {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                let why = String(cString: strerror(errno))
                throw ClusterError.config("cannot create the data directory \(path): \(why); run labnode as root or pass --data-dir")
            }
        }
        guard access(dir, W_OK) == 0 else {
            throw ClusterError.config("the data directory \(dir) is not writable; run labnode as root or pass --data-dir")
        }
    }

    /// The path of this executable, so the daemon runs the same binary.
    static func selfExecutable() -> String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        if n > 0 { return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        return CommandLine.arguments[0]
    }

    // MARK: up

    public static func up(dataDir: String, flags: Flags, kubeconfig: String?, foreground: Bool) async throws -> Int32 {
        let started = ContinuousClock.now
        let saved = try ClusterConfig.load(dataDir: dataDir)
        let config = try resolve(dataDir: dataDir, flags: flags)

        if let pid = Daemon.runningPID(pidPath: config.pidPath) {
            say("labnode is already running (pid \(pid)); API at \(config.apiURL)")
            if let saved, saved != config {
                say("note: changed settings take effect after `labnode down` and `labnode up`")
            }
            return 0
        }
        try checkHost(config)
        try prepareDataDir(config.dataDir)
        try config.save()

        if foreground {
            try await runForeground(config: config, progressFD: nil, kubeconfig: kubeconfig)
            return 0
        }

        say("Starting labnode (data in \(config.dataDir), log in \(config.logPath))")
        let (pid, progress) = try Daemon.spawn(executable: selfExecutable(),
                                               arguments: ["up", "--data-dir", config.dataDir, "--progress-fd", "\(Daemon.progressFD)"],
                                               logPath: config.logPath)
        // Relay the daemon's progress lines until it closes the pipe (ready, or failed).
        var failed: String?
        var pending = Data()
        while true {
            let chunk = progress.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let nl = pending.firstIndex(of: 0x0a) {
                let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                pending.removeSubrange(pending.startIndex...nl)
                if line.hasPrefix("error: ") { failed = String(line.dropFirst(7)) } else { say(line) }
            }
        }
        try? progress.close()
        if let failed {
            FileHandle.standardError.write(Data("labnode: the cluster failed to start: \(failed) (log: \(config.logPath))\n".utf8))
            return 1
        }
        guard Daemon.isAlive(pid) else {
            FileHandle.standardError.write(Data("labnode: the daemon exited during start-up; see \(config.logPath)\n".utf8))
            return 1
        }
        let pki = try PKI.loadOrCreate(directory: config.pkiDir, nodeIP: config.nodeIP, serviceIP: config.firstServiceIP,
                                       clusterDomain: config.clusterDomain)
        let answer = try? await HealthProbe.get(host: "127.0.0.1", port: config.apiPort, path: "/readyz", caPEM: pki.caCertificatePEM)
        guard let answer, answer.status == 200 else {
            FileHandle.standardError.write(Data("labnode: the API does not answer on port \(config.apiPort); see \(config.logPath)\n".utf8))
            return 1
        }
        let path = try writeKubeconfig(config: config, pki: pki, explicitPath: kubeconfig)
        let ms = (ContinuousClock.now - started).components
        let total = ms.seconds * 1000 + ms.attoseconds / 1_000_000_000_000_000
        say("kubeconfig: \(path) (context labnode)")
        say("labnode is up in \(total) ms (pid \(pid)); try: kubectl get all -A")
        return 0
    }

    /// Runs the cluster in this process until SIGTERM/SIGINT.
    public static func runForeground(config: ClusterConfig, progressFD: Int32?, kubeconfig: String? = nil) async throws {
        Daemon.unblockTerminationSignals()
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = ProcessInfo.processInfo.environment["LABNODE_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .info
            return h
        }
        let logger = Logger(label: "labnode.cluster")
        let progress = ProgressReporter(fd: progressFD, states: ComponentStates(path: config.statusPath, config: config))
        if progressFD == nil {
            // In the foreground the kubeconfig is written here, once the PKI exists.
            let pki = try PKI.loadOrCreate(directory: config.pkiDir, nodeIP: config.nodeIP, serviceIP: config.firstServiceIP,
                                           clusterDomain: config.clusterDomain)
            let path = try writeKubeconfig(config: config, pki: pki, explicitPath: kubeconfig)
            progress.ready("kubeconfig", path)
        }
        try await ClusterRunner.run(config: config, progress: progress, logger: logger)
    }

    static func writeKubeconfig(config: ClusterConfig, pki: PKI, explicitPath: String?) throws -> String {
        let doc = Kubeconfig.labnode(server: "https://127.0.0.1:\(config.apiPort)", pki: pki)
        return try doc.write(explicitPath: explicitPath)
    }

    // MARK: down

    public static func down(dataDir: String, purge: Bool, kubeconfig: String?) throws {
        let pidPath = dataDir + "/labnode.pid"
        if let pid = Daemon.runningPID(pidPath: pidPath) {
            let graceful = Daemon.stop(pid: pid, timeout: 30)
            say(graceful ? "labnode stopped (pid \(pid))" : "labnode did not stop in 30 s and was killed (pid \(pid))")
            try? FileManager.default.removeItem(atPath: pidPath)
        } else {
            say("labnode is not running")
        }
        guard purge else { return }
        _ = try? Kubeconfig.removeLabnode(explicitPath: kubeconfig)
        if FileManager.default.fileExists(atPath: dataDir) {
            try FileManager.default.removeItem(atPath: dataDir)
            say("removed \(dataDir) and the labnode kubeconfig entries")
        }
    }

    // MARK: status

    public static func status(dataDir: String) async throws -> Int32 {
        guard let config = try ClusterConfig.load(dataDir: dataDir) else {
            say("labnode has never been started with data dir \(dataDir)")
            return 3
        }
        let pid = Daemon.runningPID(pidPath: config.pidPath)
        var apiState = "stopped"
        if pid != nil {
            let ca = (try? String(contentsOfFile: config.pkiDir + "/ca.crt", encoding: .utf8)) ?? ""
            if let r = try? await HealthProbe.get(host: "127.0.0.1", port: config.apiPort, path: "/readyz", caPEM: ca) {
                apiState = r.status == 200 ? "ready" : "not ready (HTTP \(r.status))"
            } else {
                apiState = "not answering"
            }
        }
        say("labnode:        " + (pid.map { "running (pid \($0))" } ?? "stopped"))
        say("API server:     \(config.apiURL)  \(apiState)")
        say("node:           \(config.nodeName)  \(config.nodeIP)")
        say("service range:  \(config.serviceClusterIPRange)  (kubernetes \(config.firstServiceIP))")
        say("node ports:     \(config.serviceNodePortRange)")
        say("pod range:      \(config.clusterCIDR)")
        say("cluster domain: \(config.clusterDomain)")
        say("proxy mode:     \(config.proxyMode)")
        say("lb pool:        \(config.loadBalancerPool ?? "the node IP")")
        say("data dir:       \(config.dataDir)")
        // The API and DNS are asked now; the other components are as the daemon last recorded them.
        var live = ["api-server": apiState]
        if pid != nil && config.runs("dns") && config.runs("kube-proxy") {
            let m = await DNSProbe.ask(server: config.clusterDNSIP, name: "kubernetes.default.svc.\(config.clusterDomain)")
            live["dns"] = m.map { $0.rcode == .noError && !$0.answers.isEmpty } == true
                ? "ready" : "not answering (kube-dns \(config.clusterDNSIP):53)"
        }
        say("components:")
        for line in componentLines(config: config, running: pid != nil, live: live) { say("  " + line) }
        return pid == nil ? 3 : (apiState == "ready" ? 0 : 1)
    }

    /// One line per component: the daemon's record of it (`ComponentStates`), or for those in
    /// `live` (the API server, DNS), what was just probed.
    static func componentLines(config: ClusterConfig, running: Bool, live: [String: String]) -> [String] {
        let recorded = running ? ComponentStates.load(path: config.statusPath) ?? [] : []
        return ComponentStates.order.map { name in
            var state = "stopped", detail = ""
            if let why = config.whyNotRunning(name) {
                (state, detail) = ("disabled", why)
            } else if running, let probed = live[name] {
                state = probed
            } else if let entry = recorded.first(where: { $0.name == name }) {
                (state, detail) = (entry.state, entry.detail)
            } else if running {
                // A daemon that keeps no record (one started by an older labnode) cannot be asked.
                (state, detail) = ("unknown", "no \(config.statusPath)")
            }
            let columns = name.padding(toLength: 13, withPad: " ", startingAt: 0) + state
            return detail.isEmpty ? columns : columns.padding(toLength: max(columns.count + 2, 24), withPad: " ", startingAt: 0) + detail
        }
    }
}
