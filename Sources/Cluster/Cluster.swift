import APIMachinery
import APIServer
import Addons
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Store
import Controllers
import Runtime

/// One line per component as it becomes ready, with the time since start.
///
/// In a daemon the lines go to the progress pipe the parent `labnode up` reads; in the
/// foreground they go to stdout. Closing the reporter tells the parent the cluster is up.
public final class ProgressReporter: Sendable {
    let handle: FileHandle?
    let start = ContinuousClock.now
    let closed = NIOLockedValueBox(false)
    /// How many components must call `finish` before the stream ends: one for the API server
    /// and controllers, plus one per `expectFinish`.
    let finishers = NIOLockedValueBox(1)
    /// Run once, when the last component has finished.
    let whenFinished = NIOLockedValueBox<[@Sendable () -> Void]>([])

    /// Where each component's state is kept for `labnode status` (nil: nowhere).
    let states: ComponentStates?

    public init(fd: Int32?, states: ComponentStates? = nil) {
        handle = fd.map { FileHandle(fileDescriptor: $0, closeOnDealloc: false) }
        self.states = states
    }

    /// Elapsed milliseconds since the reporter was made.
    public var elapsedMS: Int {
        let d = ContinuousClock.now - start
        return Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    public func ready(_ component: String, _ detail: String = "") {
        states?.set(component, "ready", detail)
        line(component, "ready", detail)
    }

    /// Says that a component left out by `--disable` (or by what it needs) will not start.
    public func disabled(_ component: String, _ why: String) { line(component, "disabled", why) }

    func line(_ component: String, _ state: String, _ detail: String) {
        let ms = String(elapsedMS)
        write(String(repeating: " ", count: max(0, 6 - ms.count)) + ms + " ms  "
              + component.padding(toLength: 12, withPad: " ", startingAt: 0) + state + (detail.isEmpty ? "" : "  " + detail) + "\n")
    }

    /// Reports a failure; `component` (when it is one of `ComponentStates.order`) is marked failed.
    public func fail(_ component: String?, _ message: String) {
        if let component { states?.set(component, "failed", message) }
        write("error: " + message + "\n")
    }

    func write(_ line: String) {
        closed.withLockedValue { isClosed in
            guard !isClosed else { return }
            if let handle {
                try? handle.write(contentsOf: Data(line.utf8))
            } else {
                FileHandle.standardOutput.write(Data(line.utf8))
            }
        }
    }

    /// Runs `body` when start-up is over (every expected component has finished).
    public func onFinish(_ body: @escaping @Sendable () -> Void) {
        whenFinished.withLockedValue { $0.append(body) }
    }

    /// One more component must finish before start-up is over.
    public func expectFinish() { finishers.withLockedValue { $0 += 1 } }

    /// Ends the progress stream once every expected component has finished (the parent then
    /// knows start-up is over).
    public func finish() {
        let last = finishers.withLockedValue { n -> Bool in
            n -= 1
            return n <= 0
        }
        guard last else { return }
        closed.withLockedValue { isClosed in
            guard !isClosed else { return }
            isClosed = true
            try? handle?.close()
        }
        for body in whenFinished.withLockedValue({ bodies in defer { bodies = [] }; return bodies }) { body() }
    }
}

/// The composition root: opens the store, prepares TLS, bootstraps the API objects every
/// cluster has, and runs the components in one ServiceGroup (start in order, stop in reverse).
public enum ClusterRunner {
    /// The namespaces every cluster has from its first start.
    public static let systemNamespaces = ["default", "kube-system", "kube-public", "kube-node-lease"]

    public static func run(config: ClusterConfig, progress: ProgressReporter, logger: Logger) async throws {
        try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        try Daemon.writePIDFile(config.pidPath)
        defer {
            try? FileManager.default.removeItem(atPath: config.pidPath)
            progress.states?.remove()
        }

        for name in ComponentStates.order { config.whyNotRunning(name).map { progress.disabled(name, $0) } }
        let store: SQLiteStore
        do {
            store = try SQLiteStore(path: config.storePath)
        } catch {
            throw ClusterError.daemon("cannot open the store \(config.storePath): \(error)")
        }
        progress.ready("store", "\(config.storePath), revision \(await store.revision)")

        let pki = try PKI.loadOrCreate(directory: config.pkiDir, nodeIP: config.nodeIP, serviceIP: config.firstServiceIP,
                                       clusterDomain: config.clusterDomain)
        progress.ready("pki", pki.actions.isEmpty ? "reused \(config.pkiDir)" : pki.actions.joined(separator: ", "))

        let tokens = try ServiceAccountTokens(pki: pki, clusterDomain: config.clusterDomain)
        let allocator = ServiceAllocator(ranges: try config.serviceRanges(), logger: logger)
        let api = APIService(store: store, tokenIssuer: tokens, serviceAllocator: allocator)
        // Allocations are rebuilt from the stored Services before the first write.
        await allocator.rebuild(from: try await api.list(Resources.services, namespace: nil).items)
        try await bootstrap(api)

        let ready = NIOLockedValueBox(false)
        let activity = RequestActivity()
        let apiReady = ReadinessGate()
        // A token stops working when its service account (or bound pod) is deleted or recreated.
        // The SQLite store keeps every key in memory, so both paths read the same way.
        let immediateLookup: ClusterAuthenticator.ImmediateBindingLookup = { namespace, serviceAccount, pod in
            let sa = api.getImmediately(Resources.serviceAccounts, namespace: namespace, name: serviceAccount)
            let boundPod = pod.flatMap { api.getImmediately(Resources.pods, namespace: namespace, name: $0) }
            return (sa?.uid, boundPod?.uid)
        }
        let lookup: ClusterAuthenticator.BindingLookup = { immediateLookup($0, $1, $2) }
        let handler = APIHandler(api: api, serverAddress: "\(config.nodeIP):\(config.apiPort)",
                                 authenticator: ClusterAuthenticator(tokens: tokens, lookup: lookup, immediateLookup: immediateLookup),
                                 peerCertificates: NIOSSLPeerCertificates(), logger: logger,
                                 ready: { ready.withLockedValue { $0 } }, activity: activity)
        let tls = TLSMaterial(certificateChainPEM: pki.servingCertificatePEM, privateKeyPEM: pki.servingKeyPEM,
                              clientCAPEM: pki.caCertificatePEM)
        let runsControllers = config.runs("controllers")
        let server = APIServerService(handler: handler, host: "0.0.0.0", port: config.apiPort, tls: tls, logger: logger) { port in
            ready.withLockedValue { $0 = true }
            progress.ready("api-server", "https://\(config.nodeIP):\(port)")
            apiReady.open()
        }
        let settings = ControllerSettings(
            nodeIP: config.nodeIP, nodeName: config.nodeName, apiPort: config.apiPort,
            kubernetesServiceIP: config.firstServiceIP, loadBalancerPool: try config.loadBalancerAddresses(),
            caCertificatePEM: pki.caCertificatePEM)
        let context = ControllerContext(client: api, informers: Informers(), events: EventRecorder(client: api),
                                        settings: settings, logger: Logger(label: "labnode.controllers"))
        let controllersReady = ReadinessGate()
        // Without the controller manager, what kube-apiserver itself runs still runs (the
        // `kubernetes` Service), and what waits for the controllers waits for that.
        let controllers = ControllerManager(context: context,
                                            controllers: runsControllers ? StandardControllers.all(context) : StandardControllers.apiServer(context),
                                            startAfter: { await apiReady.wait() }) {
            if runsControllers { progress.ready("controllers") }
            controllersReady.open()
            progress.finish()
        }
        let agentLogger = Logger(label: "labnode.node-agent")
        let executable = Lifecycle.selfExecutable()
        let agentSettings = NodeAgentSettings(
            nodeName: config.nodeName, nodeIP: config.nodeIP, clusterCIDR: config.clusterCIDR,
            clusterDNS: config.clusterDNSIP, clusterDomain: config.clusterDomain, dataDirectory: config.dataDir,
            executable: executable,
            recipesDirectory: ImageBuilder.defaultRecipesDirectory(executablePath: executable),
            caCertificatePEM: pki.caCertificatePEM, hostResolvConf: config.effectiveResolvConf)
        let agentStarted = ReadinessGate()
        let agentUp = NIOLockedValueBox(false)
        // Pods start once the proxy has programmed the services (a restarted DNS pod would
        // otherwise dial the API's cluster IP into nothing and wait out its timeouts), or
        // after 5 s whatever the proxy does.
        let proxySynced = ReadinessGate()
        let agent = NodeAgentService(
            make: { try NodeAgent(settings: agentSettings, client: api, events: EventRecorder(client: api), logger: agentLogger) },
            api: api, startAfter: { await controllersReady.wait() }, progress: progress,
            onStarted: { up in
                agentUp.withLockedValue { $0 = up }
                agentStarted.open()
                Task {
                    try? await Task.sleep(for: .seconds(5))
                    proxySynced.open()
                }
            },
            podsMayStart: { await proxySynced.wait() },
            logger: agentLogger)
        let proxy = ServiceProxyService(
            config: config, api: api,
            startAfter: {
                await agentStarted.wait()
                return agentUp.withLockedValue { $0 }
            },
            progress: progress, onSynced: { proxySynced.open() }, logger: Logger(label: "labnode.service-proxy"))
        let runsProxy = config.runs("kube-proxy")
        if runsProxy { progress.expectFinish() } else { proxySynced.open() }
        if config.runs("dns") { progress.expectFinish() }
        // Start-up ran code and read objects that serving does not need again; an idle daemon
        // should not keep them resident (see MemoryTrim).
        let startUpOver = ReadinessGate()
        progress.onFinish {
            defer { startUpOver.open() }
            let report = MemoryTrim.afterStartUp()
            logger.info("start-up memory given back", metadata: [
                "pagedOutMB": "\(report.advisedBytes >> 20)", "unmappedMB": "\(report.unmappedBytes >> 20)"])
        }
        let addons = AddonManager(config: config, api: api, startAfter: { await controllersReady.wait() }, progress: progress,
                                  logger: Logger(label: "labnode.addons"))
        let repair = AllocationRepair(api: api, logger: logger)
        // Started in this order and stopped in reverse; what `--disable` leaves out is not started.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server), .init(service: controllers)]
        if config.runs("node-agent") { services.append(.init(service: agent)) }
        if runsProxy { services.append(.init(service: proxy)) }
        services += [.init(service: addons), .init(service: repair),
                     .init(service: IdleTrim(activity: activity, startAfter: { await startUpOver.wait() }, logger: logger))]
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await group.run()
        } catch {
            progress.fail(nil, "\(error)")
            progress.finish()
            await store.close()
            throw error
        }
        await store.close()
    }

    /// Objects a cluster cannot be without; created once, left alone after.
    static func bootstrap(_ api: APIService) async throws {
        guard let namespaces = Resources.find(group: "", version: "v1", resource: "namespaces") else { return }
        for ns in systemNamespaces {
            let existing = try await api.list(namespaces, namespace: nil).items.compactMap(\.name)
            if existing.contains(ns) { continue }
            let body: JSON = ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]]
            _ = try await api.create(namespaces, namespace: nil, body: body)
        }
    }
}

/// Re-checks the service IP and node-port pools against the stored Services every few minutes
/// (upstream's repair controllers), returning leaked allocations to the pools.
struct AllocationRepair: Service {
    let api: APIService
    let logger: Logger
    static let interval: Duration = .seconds(180)

    func run() async throws {
        try? await cancelWhenGracefulShutdown { try await repairLoop() }
    }

    func repairLoop() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: Self.interval)
            guard let allocator = api.serviceAllocator else { return }
            await allocator.beginRepair()
            do {
                let services = try await api.list(Resources.services, namespace: nil).items
                await allocator.finishRepair(services: services)
            } catch {
                await allocator.cancelRepair()
                logger.warning("service allocation repair could not list services: \(error.message)")
            }
        }
    }
}

extension ClusterConfig {
    /// The pools the API server's Service allocator draws from.
    public func serviceRanges() throws -> ServiceRanges {
        let cidr = try IPv4CIDR(parsing: serviceClusterIPRange)
        let ports = try PortRange(parsing: serviceNodePortRange)
        return ServiceRanges(network: cidr.network.value, prefixLength: cidr.prefixLength,
                             nodePorts: ports.lowerBound...ports.upperBound)
    }
}

/// A one-way signal a later component awaits before it starts (no polling, no sleeps).
final class ReadinessGate: Sendable {
    let state = NIOLockedValueBox<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLockedValue { s -> Bool in
                if !s.open { s.waiters.append(c) }
                return s.open
            }
            if isOpen { c.resume() }
        }
    }
}
