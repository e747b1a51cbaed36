import APIMachinery
import Logging
import ServiceLifecycle

/// One reconciler: turns the key of an object ("namespace/name", or "name" for cluster-scoped
/// objects) into the writes that make the world match it. Its informer handlers decide
/// which keys to enqueue; the manager runs `workers` loops over its queue.
public protocol Reconciler: Sendable {
    /// What it logs and writes events as, e.g. "deployment-controller".
    var name: String { get }
    var queue: WorkQueue { get }
    var workers: Int { get }
    func reconcile(_ key: String) async throws
}

extension Reconciler {
    public var workers: Int { 2 }
}

/// Settings the controllers take from the cluster configuration.
public struct ControllerSettings: Sendable {
    /// The node's address: the `kubernetes` service's endpoint and the default load-balancer address.
    public var nodeIP: String
    public var nodeName: String
    public var apiPort: Int
    /// The first address of the service range: the `kubernetes` service's ClusterIP.
    public var kubernetesServiceIP: String
    /// Addresses the load-balancer controller hands out (empty: the node IP).
    public var loadBalancerPool: [String]
    /// The cluster CA, published in every namespace as the `kube-root-ca.crt` ConfigMap.
    public var caCertificatePEM: String

    public init(nodeIP: String, nodeName: String, apiPort: Int, kubernetesServiceIP: String, loadBalancerPool: [String] = [],
                caCertificatePEM: String = "") {
        self.caCertificatePEM = caCertificatePEM
        self.nodeIP = nodeIP
        self.nodeName = nodeName
        self.apiPort = apiPort
        self.kubernetesServiceIP = kubernetesServiceIP
        self.loadBalancerPool = loadBalancerPool
    }
}

/// The shared informers, one per resource the controllers read.
public final class Informers: Sendable {
    public let pods = Informer(Resources.pods)
    public let services = Informer(Resources.services)
    public let endpoints = Informer(Resources.endpoints)
    public let endpointSlices = Informer(Resources.endpointSlices)
    public let deployments = Informer(Resources.deployments)
    public let replicaSets = Informer(Resources.replicaSets)
    public let namespaces = Informer(Resources.namespaces)
    public let serviceAccounts = Informer(Resources.serviceAccounts)
    public let configMaps = Informer(Resources.configMaps)
    public let secrets = Informer(Resources.secrets)
    public let nodes = Informer(Resources.nodes)

    public init() {}

    public var all: [Informer] {
        [pods, services, endpoints, endpointSlices, deployments, replicaSets, namespaces, serviceAccounts, configMaps, secrets,
         nodes]
    }

    /// The informer of `r`, if the controllers keep one.
    public func informer(for r: ResourceInfo) -> Informer? {
        all.first { $0.resource == r }
    }
}

/// What every controller is built from.
public struct ControllerContext: Sendable {
    public let client: any APIClient
    public let informers: Informers
    public let events: EventRecorder
    public let settings: ControllerSettings
    public let logger: Logger

    public init(client: any APIClient, informers: Informers, events: EventRecorder, settings: ControllerSettings, logger: Logger) {
        self.client = client
        self.informers = informers
        self.events = events
        self.settings = settings
        self.logger = logger
    }
}

/// Runs the informers, the event writer and every reconciler's workers as one service.
public struct ControllerManager: Service {
    let context: ControllerContext
    let controllers: [any Reconciler]
    let startAfter: @Sendable () async -> Void
    let onReady: @Sendable () -> Void

    /// - Parameters:
    ///   - startAfter: awaited before anything starts (the component before this one being ready).
    ///   - onReady: called once every informer has its first list and the workers run.
    public init(context: ControllerContext, controllers: [any Reconciler], startAfter: @escaping @Sendable () async -> Void = {},
                onReady: @escaping @Sendable () -> Void = {}) {
        self.context = context
        self.controllers = controllers
        self.startAfter = startAfter
        self.onReady = onReady
    }

    public func run() async throws {
        await startAfter()
        let logger = context.logger
        await withTaskGroup(of: Void.self) { group in
            for informer in context.informers.all {
                group.addTask { await informer.run(client: context.client, logger: logger) }
            }
            group.addTask { await context.events.run(logger: logger) }
            for informer in context.informers.all { await informer.waitSynced() }
            for controller in controllers {
                for _ in 0..<max(1, controller.workers) {
                    group.addTask { await Self.work(controller, logger: logger) }
                }
            }
            onReady()
            // Stop on graceful shutdown (or cancellation): queues first, so workers finish the
            // key they hold, then the watches.
            try? await gracefulShutdown()
            for c in controllers { c.queue.shutDown() }
            group.cancelAll()
        }
    }

    static func work(_ controller: any Reconciler, logger: Logger) async {
        while let key = await controller.queue.next() {
            do {
                try await controller.reconcile(key)
                controller.queue.forget(key)
            } catch {
                logger.info("\(controller.name): \(key): \(error); will retry")
                controller.queue.retry(key)
            }
            controller.queue.done(key)
        }
    }
}
