import Glibc
import Foundation
import Logging
import Synchronization

/// What a pod got from `attach`.
public struct PodAddress: Equatable, Sendable, CustomStringConvertible {
    public var address: IPv4.Address
    public var gateway: IPv4.Address
    public var prefixLength: Int
    /// The veth end left on the node, a port of the bridge.
    public var hostInterface: String
    /// The interface inside the pod.
    public var podInterface: String

    public init(address: IPv4.Address, gateway: IPv4.Address, prefixLength: Int, hostInterface: String, podInterface: String) {
        self.address = address
        self.gateway = gateway
        self.prefixLength = prefixLength
        self.hostInterface = hostInterface
        self.podInterface = podInterface
    }

    public var description: String {
        "\(address)/\(prefixLength) via \(gateway) (\(podInterface) <-> \(hostInterface))"
    }
}

/// Pod networking as the node agent sees it. `PodNetwork` is the real one;
/// `RecordingPodNetwork` stands in for it in tests of the node agent.
public protocol PodNetworking: Sendable {
    /// Makes sure the node bridge exists with `gateway` as its address and is up, and turns
    /// on the sysctls Services need. Idempotent; call it at every start.
    func ensureBridge(name: String, gateway: IPv4.CIDR) throws
    /// Gives the pod whose network namespace is at `netnsPath` an address and a link to the
    /// bridge. Calling it again for the same pod rebuilds the link with the same address.
    func attach(podUID: String, netnsPath: String) throws -> PodAddress
    /// Undoes `attach`. Succeeds when there is nothing left to undo.
    func detach(podUID: String, netnsPath: String) throws
    /// Deletes the bridge and puts back the sysctls `ensureBridge` changed (`labnode down`).
    func removeBridge() throws
}

public enum PodNetworkError: Error, CustomStringConvertible, Sendable {
    case bridgeNotReady(operation: String)
    case gatewayNotInPodSubnet(gateway: IPv4.CIDR, subnet: IPv4.CIDR, expected: IPv4.Address)
    case notABridge(name: String, kind: String?)
    /// A step of attach/detach failed; `underlying` says how.
    case failed(operation: String, step: String, underlying: any Error)

    public var description: String {
        switch self {
        case let .bridgeNotReady(operation):
            return "\(operation): the node bridge is not set up yet (ensureBridge must succeed first)"
        case let .gatewayNotInPodSubnet(gateway, subnet, expected):
            return "bridge address \(gateway) does not match the pod subnet \(subnet): expected \(expected)/\(subnet.prefixLength)"
        case let .notABridge(name, kind):
            return "link \(name) exists but is \(kind.map { "a \($0)" } ?? "not a bridge") device; remove it or choose another bridge name"
        case let .failed(operation, step, underlying):
            return "\(operation): \(step): \(underlying)"
        }
    }
}

/// Opens netlink sockets in the right network namespaces. The seam that lets `PodNetwork` run
/// against `RecordingNetlinkSocket`s in tests.
public protocol NetlinkSocketProvider: Sendable {
    /// A socket in the node's network namespace (where the bridge lives).
    func nodeSocket() throws -> any NetlinkSocket
    /// A socket in the network namespace at `path` (a pod's).
    func socket(inNamespaceAt path: String) throws -> any NetlinkSocket
    /// Runs `body` with an open descriptor of the namespace at `path`, for IFLA_NET_NS_FD.
    func withNamespaceDescriptor<T>(at path: String, _ body: (Int32) throws -> T) throws -> T
}

/// Real sockets. `nodeNamespacePath` nil means the namespace labnode runs in; tests give the
/// path of a private namespace so nothing is created in the machine's own.
public struct RouteNetlinkSocketProvider: NetlinkSocketProvider {
    public var nodeNamespacePath: String?

    public init(nodeNamespacePath: String? = nil) {
        self.nodeNamespacePath = nodeNamespacePath
    }

    public func nodeSocket() throws -> any NetlinkSocket {
        guard let nodeNamespacePath else { return try RouteNetlinkSocket() }
        return try RouteNetlinkSocket.open(inNetworkNamespaceAt: nodeNamespacePath)
    }

    public func socket(inNamespaceAt path: String) throws -> any NetlinkSocket {
        try RouteNetlinkSocket.open(inNetworkNamespaceAt: path)
    }

    public func withNamespaceDescriptor<T>(at path: String, _ body: (Int32) throws -> T) throws -> T {
        let fd = try NetworkNamespace.open(path: path)
        defer { close(fd) }
        return try body(fd)
    }
}

/// The node's pod network: a Linux bridge holding the gateway address, and for each pod a veth
/// pair with one end on the bridge and the other as `eth0` in the pod, addressed from `IPAM`.
///
/// The same layout as the CNI bridge plugin with host-local IPAM, done in-process over netlink
/// (no plugin binaries, no `ip` commands), which keeps attach to a few milliseconds.
///
/// It never touches netfilter: masquerading and Service rules belong to the proxy.
public final class PodNetwork: PodNetworking {
    public static let podInterfaceName = "eth0"

    public let ipam: IPAM
    public let sysctls: SysctlJournal
    /// The bridge `removeBridge()` deletes when this process did not call `ensureBridge`
    /// (`labnode down` runs in a fresh process).
    public let defaultBridgeName: String
    private let sockets: any NetlinkSocketProvider
    private let logger: Logger

    private struct Bridge {
        var name: String
        var index: Int32
        var gateway: IPv4.CIDR
    }

    private struct NodeState {
        var session: NetlinkSession?
        var bridge: Bridge?
    }

    // One node socket shared by all pods, used under this lock; the pod-side work of concurrent
    // attaches runs outside it, each on its own socket.
    private let node: Mutex<NodeState>

    public init(ipam: IPAM, sysctls: SysctlJournal, sockets: any NetlinkSocketProvider = RouteNetlinkSocketProvider(),
                defaultBridgeName: String = "cni0", logger: Logger = Logger(label: "labnode.networking")) {
        self.ipam = ipam
        self.sysctls = sysctls
        self.defaultBridgeName = defaultBridgeName
        self.sockets = sockets
        self.logger = logger
        self.node = Mutex(NodeState())
    }

    /// The usual wiring for a node: the first /24 of `clusterCIDR` as pod subnet, allocations in
    /// `stateDirectory/ipam`, sysctl originals in `stateDirectory/sysctl-originals.json`.
    ///
    /// - Parameter nodeNamespacePath: where the node's links live; nil for labnode's own
    ///   namespace. Tests pass a private namespace.
    public static func forNode(clusterCIDR: IPv4.CIDR, stateDirectory: String, nodeNamespacePath: String? = nil,
                               logger: Logger = Logger(label: "labnode.networking")) throws -> PodNetwork {
        let ipam = try IPAM(subnet: clusterCIDR.firstSlash24, directory: stateDirectory + "/ipam")
        let journal = try SysctlJournal(sysctl: ProcSysctl(networkNamespacePath: nodeNamespacePath),
                                        recordPath: stateDirectory + "/sysctl-originals.json")
        return PodNetwork(ipam: ipam, sysctls: journal,
                          sockets: RouteNetlinkSocketProvider(nodeNamespacePath: nodeNamespacePath), logger: logger)
    }

    /// The bridge address for the node's pod subnet (gateway/prefix), e.g. 10.244.0.1/24.
    public var gatewayCIDR: IPv4.CIDR {
        IPv4.CIDR(address: ipam.gateway, prefixLength: ipam.subnet.prefixLength) ?? ipam.subnet
    }

    /// The node-side veth name for a pod: "veth" and 8 hex digits of a hash of the UID.
    ///
    /// Derived from the UID rather than random (as the CNI bridge plugin does) so that detach
    /// finds the link from the UID alone, even after a restart lost all memory of the attach.
    public static func hostInterfaceName(podUID: String) -> String {
        // FNV-1a: stable across processes, unlike Swift's seeded Hasher.
        var hash: UInt32 = 0x811c_9dc5
        for byte in podUID.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return "veth" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// A fixed, locally administered MAC for the bridge derived from its address (0a:58 and
    /// the four address bytes), so the gateway's MAC never changes while pods come and go.
    static func bridgeMACAddress(for gateway: IPv4.Address) -> [UInt8] {
        [0x0a, 0x58] + gateway.bytes
    }

    // MARK: PodNetworking

    public func ensureBridge(name: String, gateway: IPv4.CIDR) throws {
        let operation = "ensure bridge \(name) \(gateway)"
        guard gateway.address == ipam.gateway, gateway.prefixLength == ipam.subnet.prefixLength else {
            throw PodNetworkError.gatewayNotInPodSubnet(gateway: gateway, subnet: ipam.subnet, expected: ipam.gateway)
        }
        let bridge: Bridge = try node.withLock { state in
            let session = try step(operation, "open netlink socket in the node namespace") { try nodeSession(&state) }
            var link = try step(operation, "look up \(name)") { try session.link(named: name) }
            if let existing = link, existing.kind != "bridge" {
                throw PodNetworkError.notABridge(name: name, kind: existing.kind)
            }
            if link == nil {
                try step(operation, "create bridge") {
                    try session.createBridge(name: name, macAddress: Self.bridgeMACAddress(for: gateway.address))
                }
                link = try step(operation, "look up the new bridge") { try session.link(named: name) }
            }
            guard let link else {
                throw PodNetworkError.failed(operation: operation, step: "look up the new bridge",
                                             underlying: NetlinkError(operation: "look up link \(name)", errno: ENODEV))
            }
            try step(operation, "add address \(gateway)") {
                do {
                    try session.addAddress(gateway, index: link.index)
                } catch let error as NetlinkError where error.errno == EEXIST {
                    // Already there from an earlier start.
                }
            }
            if !link.isUp {
                try step(operation, "set \(name) up") { try session.setLinkUp(name: name) }
            }
            return Bridge(name: name, index: link.index, gateway: gateway)
        }
        // Forwarding between pods and to Services needs these; the proxy relies on them.
        try step(operation, "enable sysctls") {
            try sysctls.set("net/ipv4/ip_forward", to: "1")
            // Bridged pod-to-pod traffic must traverse iptables, or a Service reply from a pod
            // on the same bridge is never un-NATed. The file exists only with br_netfilter.
            let bridgeNetfilter = try sysctls.set("net/bridge/bridge-nf-call-iptables", to: "1", required: false)
            if !bridgeNetfilter {
                logger.warning("net/bridge/bridge-nf-call-iptables is missing (br_netfilter not loaded): a pod calling a Service served by a pod on this node may not get replies")
            }
            // Lets NodePorts answer on 127.0.0.1: such packets are DNATed out of the bridge.
            try sysctls.set("net/ipv4/conf/\(name)/route_localnet", to: "1")
        }
        node.withLock { $0.bridge = bridge }
        logger.info("bridge ready", metadata: ["bridge": "\(name)", "gateway": "\(gateway)"])
    }

    public func attach(podUID: String, netnsPath: String) throws -> PodAddress {
        let started = ContinuousClock.now
        let operation = "attach pod \(podUID) (netns \(netnsPath))"
        guard let bridge = node.withLock({ $0.bridge }) else {
            throw PodNetworkError.bridgeNotReady(operation: operation)
        }
        let address = try step(operation, "allocate an address") { try ipam.allocate(podUID: podUID) }
        let hostName = Self.hostInterfaceName(podUID: podUID)
        let podCIDR = IPv4.CIDR(address: address, prefixLength: bridge.gateway.prefixLength) ?? bridge.gateway
        var hostLinkCreated = false
        do {
            try sockets.withNamespaceDescriptor(at: netnsPath) { namespaceFD in
                try node.withLock { state in
                    let session = try step(operation, "open netlink socket in the node namespace") { try nodeSession(&state) }
                    try step(operation, "create veth \(hostName) with \(Self.podInterfaceName) in the pod") {
                        try createVeth(session, hostName: hostName, namespaceFD: namespaceFD, bridgeIndex: bridge.index)
                    }
                    hostLinkCreated = true
                    guard let hostLink = try step(operation, "look up \(hostName)", { try session.link(named: hostName) }) else {
                        throw PodNetworkError.failed(operation: operation, step: "look up \(hostName)",
                                                     underlying: NetlinkError(operation: "look up link \(hostName)", errno: ENODEV))
                    }
                    try step(operation, "turn hairpin on for \(hostName)") { try session.setHairpin(index: hostLink.index, enabled: true) }
                }
            }
            // The pod side is configured through a socket that lives in the pod's namespace.
            let pod = NetlinkSession(socket: try step(operation, "open netlink socket in the pod namespace") {
                try sockets.socket(inNamespaceAt: netnsPath)
            })
            guard let eth0 = try step(operation, "look up \(Self.podInterfaceName) in the pod", { try pod.link(named: Self.podInterfaceName) }) else {
                throw PodNetworkError.failed(operation: operation, step: "look up \(Self.podInterfaceName) in the pod",
                                             underlying: NetlinkError(operation: "look up link \(Self.podInterfaceName)", errno: ENODEV))
            }
            try step(operation, "add address \(podCIDR) to \(Self.podInterfaceName)") { try pod.addAddress(podCIDR, index: eth0.index) }
            try step(operation, "set \(Self.podInterfaceName) up in the pod") { try pod.setLinkUp(name: Self.podInterfaceName) }
            try step(operation, "set lo up in the pod") { try pod.setLinkUp(name: "lo") }
            try step(operation, "add default route via \(bridge.gateway.address)") {
                try pod.addDefaultRoute(gateway: bridge.gateway.address, outputIndex: eth0.index)
            }
        } catch {
            // Leave nothing half-built: the next attach starts clean, and the address is not leaked.
            if hostLinkCreated {
                _ = try? node.withLock { state in try nodeSession(&state).deleteLink(name: hostName) }
            }
            _ = try? ipam.release(podUID: podUID)
            throw error
        }
        let result = PodAddress(address: address, gateway: bridge.gateway.address, prefixLength: bridge.gateway.prefixLength,
                                hostInterface: hostName, podInterface: Self.podInterfaceName)
        logger.debug("pod attached", metadata: [
            "pod": "\(podUID)", "address": "\(result)", "duration": "\(ContinuousClock.now - started)",
        ])
        return result
    }

    public func detach(podUID: String, netnsPath: String) throws {
        // `netnsPath` is not needed: deleting the node end of the veth pair deletes the pod end
        // too, and the namespace may already be gone. It is accepted for symmetry with attach
        // (and with CNI DEL).
        let operation = "detach pod \(podUID) (netns \(netnsPath))"
        let hostName = Self.hostInterfaceName(podUID: podUID)
        try node.withLock { state in
            let session = try step(operation, "open netlink socket in the node namespace") { try nodeSession(&state) }
            try step(operation, "delete \(hostName)") { _ = try session.deleteLink(name: hostName) }
        }
        try step(operation, "release the address") { _ = try ipam.release(podUID: podUID) }
    }

    public func removeBridge() throws {
        let name: String? = node.withLock { $0.bridge?.name }
        let bridgeName = name ?? defaultBridgeName
        let operation = "remove bridge \(bridgeName)"
        try node.withLock { state in
            let session = try step(operation, "open netlink socket in the node namespace") { try nodeSession(&state) }
            try step(operation, "delete \(bridgeName)") { _ = try session.deleteLink(name: bridgeName) }
            state.bridge = nil
        }
        try step(operation, "restore sysctls") { try sysctls.restoreAll() }
    }

    // MARK: Helpers

    private func createVeth(_ session: NetlinkSession, hostName: String, namespaceFD: Int32, bridgeIndex: Int32) throws {
        let create = {
            // One request does the work of `ip link add ... netns`, `master` and `up` (for the
            // node end; the pod end is raised from inside the pod, see createVethPair).
            try session.createVethPair(name: hostName, peerName: Self.podInterfaceName, peerNamespaceFD: namespaceFD,
                                       masterIndex: bridgeIndex, up: true)
        }
        do {
            try create()
        } catch let error as NetlinkError where error.errno == EEXIST {
            // A link left from an attach that was interrupted (labnode killed mid-way), or a
            // repeated attach: its pod end goes with it, so rebuilding is safe.
            try session.deleteLink(name: hostName)
            try create()
        }
    }

    private func nodeSession(_ state: inout NodeState) throws -> NetlinkSession {
        if let session = state.session { return session }
        let session = NetlinkSession(socket: try sockets.nodeSocket())
        state.session = session
        return session
    }

    private func step<T>(_ operation: String, _ step: String, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as PodNetworkError {
            throw error
        } catch {
            throw PodNetworkError.failed(operation: operation, step: step, underlying: error)
        }
    }
}

/// A `PodNetworking` for node agent tests: records calls and hands out addresses from
/// 10.244.0.2 upwards without touching the host.
public final class RecordingPodNetwork: PodNetworking {
    public enum Call: Equatable, Sendable {
        case ensureBridge(name: String, gateway: IPv4.CIDR)
        case attach(podUID: String, netnsPath: String)
        case detach(podUID: String, netnsPath: String)
        case removeBridge
    }

    private struct State {
        var calls: [Call] = []
        var addresses: [String: IPv4.Address] = [:]
        var next: UInt32 = 2
    }

    private let state = Mutex(State())
    /// When set, `attach` throws it (to test the agent's failure handling).
    private let attachError: (any Error)?

    public init(attachError: (any Error)? = nil) {
        self.attachError = attachError
    }

    public var calls: [Call] { state.withLock { $0.calls } }

    public func ensureBridge(name: String, gateway: IPv4.CIDR) throws {
        state.withLock { $0.calls.append(.ensureBridge(name: name, gateway: gateway)) }
    }

    public func attach(podUID: String, netnsPath: String) throws -> PodAddress {
        let address: IPv4.Address = state.withLock { state in
            state.calls.append(.attach(podUID: podUID, netnsPath: netnsPath))
            if let known = state.addresses[podUID] { return known }
            let address = IPv4.Address(IPv4.Address(10, 244, 0, 0).value + state.next)
            state.next += 1
            state.addresses[podUID] = address
            return address
        }
        if let attachError { throw attachError }
        return PodAddress(address: address, gateway: IPv4.Address(10, 244, 0, 1), prefixLength: 24,
                          hostInterface: PodNetwork.hostInterfaceName(podUID: podUID), podInterface: PodNetwork.podInterfaceName)
    }

    public func detach(podUID: String, netnsPath: String) throws {
        state.withLock {
            $0.calls.append(.detach(podUID: podUID, netnsPath: netnsPath))
            $0.addresses[podUID] = nil
        }
    }

    public func removeBridge() throws {
        state.withLock { $0.calls.append(.removeBridge) }
    }
}
