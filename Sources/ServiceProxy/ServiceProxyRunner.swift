import APIMachinery
import Controllers
import Foundation
import Logging
import Networking
import Prometheus

/// The service proxy as kube-proxy runs it: watch Services and EndpointSlices, and after
/// each change program the node (iptables or nftables mode). Changes that arrive together are applied
/// in one sync; a sync that fails is retried.
public final class ServiceProxyRunner: Sendable {
    let settings: ProxySettings
    let mode: Mode
    let proxier: any ProxyBackend
    /// The other modes' proxiers, to remove what an earlier run in another mode left.
    let others: [any ProxyBackend]
    let client: any APIClient
    let logger: Logger
    let bridge: String
    /// Sysctls changed for the proxy, with their values before, for `cleanup`.
    let sysctls: SysctlJournal
    /// `--lb-pool` addresses in use, held on the node's LAN interface; nil without a node address.
    let lbAddresses: LoadBalancerAddresses?
    /// kube-proxy's sync metrics, by its names (served on 127.0.0.1:10249/metrics).
    public let metrics = PrometheusCollectorRegistry()
    let syncDuration: ValueHistogram
    let lastSync: Gauge
    let services = Informer(Resources.services)
    let slices = Informer(Resources.endpointSlices)

    public enum Mode: String, Sendable { case iptables, nftables, userspace }

    static let coalesce: Duration = .milliseconds(5)

    public init(settings: ProxySettings, mode: Mode = .iptables, bridge: String, stateDirectory: String, client: any APIClient,
                logger: Logger, nodeIP: String? = nil, addressHolder: (any AddressHolder)? = nil,
                serviceAddresses: (any ServiceAddressLink)? = nil,
                run: @escaping CommandRunner = IptablesProxier.system) throws {
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        sysctls = try SysctlJournal(sysctl: ProcSysctl(), recordPath: stateDirectory + "/proxy-sysctls.json")
        self.settings = settings
        lbAddresses = nodeIP.map { ip in
            LoadBalancerAddresses(holder: addressHolder ?? LinkAddressHolder(nodeIP: ip), nodeIP: ip,
                                  recordPath: stateDirectory + "/proxy-lb-addresses.json")
        }
        self.bridge = bridge
        // kube-proxy's buckets: 1 ms doubling 15 times.
        syncDuration = metrics.makeValueHistogram(
            descriptor: MetricNameDescriptor(metricName: "kubeproxy_sync_proxy_rules_duration_seconds", unitName: "",
                                             helpText: "SyncProxyRules latency in seconds"),
            buckets: (0..<15).map { 0.001 * Double(1 << $0) })
        lastSync = metrics.makeGauge(
            descriptor: MetricNameDescriptor(metricName: "kubeproxy_sync_proxy_rules_last_timestamp_seconds", unitName: "",
                                             helpText: "The last time proxy rules were successfully synced"))
        self.client = client
        self.logger = logger
        let all: [Mode: any ProxyBackend] = [
            .iptables: IptablesProxier(settings: settings, run: run, logger: logger),
            .nftables: NftablesProxier(settings: settings, run: run, logger: logger),
            .userspace: UserspaceProxier(nodeName: settings.nodeName, logger: logger, addresses: serviceAddresses),
        ]
        self.mode = mode
        proxier = all[mode] ?? IptablesProxier(settings: settings, run: run, logger: logger)
        others = all.filter { $0.key != mode }.map(\.value)
    }

    /// Readies the node (sysctls, the route to the service range), then syncs until cancelled.
    /// `onReady` is called after the first successful sync.
    public func run(onReady: @escaping @Sendable () -> Void) async throws {
        try prepareNode()
        // Switching modes between runs leaves no rules of the old mode behind.
        for other in others {
            do { try await other.cleanup() } catch {
                logger.debug("nothing of another proxy mode to remove", metadata: ["error": "\(error)"])
            }
        }
        let (changes, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        services.onChange { _ in signal.yield() }
        slices.onChange { _ in signal.yield() }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.services.run(client: self.client, logger: self.logger) }
            group.addTask { await self.slices.run(client: self.client, logger: self.logger) }
            group.addTask {
                // Nothing is programmed until both informers have synced (kube-proxy's isInitialized).
                await self.services.waitSynced()
                await self.slices.waitSynced()
                var ready = false
                var retry = false
                while !Task.isCancelled {
                    do {
                        let ports = self.currentPorts()
                        // Addresses first: the userspace mode listens on them.
                        self.holdLoadBalancerAddresses(ports)
                        let started = ContinuousClock.now
                        try await self.proxier.sync(ports)
                        let took = ContinuousClock.now - started
                        self.syncDuration.record(Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18)
                        self.lastSync.set(Date().timeIntervalSince1970)
                        retry = false
                        if !ready {
                            ready = true
                            onReady()
                        }
                    } catch {
                        self.logger.warning("service proxy sync failed; retrying", metadata: ["error": "\(error)"])
                        retry = true
                    }
                    // The next change, or a resync: a retry soon, the canary check every 30 s.
                    // Only a timer that ran out signals: a cancelled sleep must not, or every
                    // change would leave a signal behind and the loop would never rest again.
                    let delay: Duration = retry ? .seconds(1) : .seconds(30)
                    let next = Task {
                        do {
                            try await Task.sleep(for: delay)
                            signal.yield()
                        } catch {}
                    }
                    var it = changes.makeAsyncIterator()
                    guard await it.next() != nil else { break }
                    next.cancel()
                    // A new Service and its EndpointSlice arrive a few ms apart: one sync for
                    // both, rather than a REJECT sync the slice must then wait behind.
                    try? await Task.sleep(for: Self.coalesce)
                }
            }
        }
    }

    /// A LoadBalancer address from the pool must be answered for on the LAN (ARP), or no other
    /// host can reach it; a failure here is logged and retried with the next sync.
    func holdLoadBalancerAddresses(_ ports: [ProxyServicePort]) {
        guard let lbAddresses else { return }
        do { try lbAddresses.update(lbAddresses.wanted(ports)) } catch {
            logger.warning("LoadBalancer addresses on the node's LAN", metadata: ["error": "\(error)"])
        }
    }

    func currentPorts() -> [ProxyServicePort] {
        ProxyModel.servicePorts(services: services.list(), slices: slices.list())
    }

    /// What a kube-proxy node needs (proxy-dns-spec.md A15): forwarding, bridged traffic
    /// through netfilter (replies are un-DNATed only then), and a route for the service range
    /// so the node's own connections to a cluster IP reach the OUTPUT hook.
    func prepareNode() throws {
        try sysctls.set("net/ipv4/ip_forward", to: "1")
        try sysctls.set("net/bridge/bridge-nf-call-iptables", to: "1", required: false)
        if settings.localhostNodePorts && mode == .iptables {
            // A packet from 127.0.0.1 DNATed to a pod may leave through the bridge only with
            // this; the KUBE-FIREWALL rule keeps neighbours from using 127/8 in turn.
            try sysctls.set("net/ipv4/conf/all/route_localnet", to: "1")
        }
        guard let cidr = IPv4.CIDR(settings.serviceCIDR) else {
            throw ServiceProxyError(message: "service range \(settings.serviceCIDR) is not an IPv4 CIDR")
        }
        let session = NetlinkSession(socket: try RouteNetlinkSocket())
        guard let link = try session.link(named: bridge) else {
            throw ServiceProxyError(message: "the pod bridge \(bridge) does not exist, so cluster IPs cannot be routed")
        }
        do {
            try session.addRoute(destination: cidr, gateway: nil, outputIndex: link.index)
        } catch let error as NetlinkError where error.errno == EEXIST {
            // Already there from an earlier start.
        }
    }

    /// Removes the rules and puts the sysctls back (the route goes with the bridge).
    public func cleanup() async {
        do { try lbAddresses?.removeAll() } catch {
            logger.warning("LoadBalancer addresses cleanup", metadata: ["error": "\(error)"])
        }
        do { try await proxier.cleanup() } catch {
            logger.warning("service proxy cleanup", metadata: ["error": "\(error)"])
        }
        do { try sysctls.restoreAll() } catch {
            logger.warning("service proxy sysctls", metadata: ["error": "\(error)"])
        }
    }
}
