import Foundation
import Logging
import NIOCore
import NIOPosix
import Networking
import Synchronization

/// kube-proxy's v1.0 design, in-process and without netfilter: every cluster IP is made a
/// local address of the node (on a port-less bridge, as the ipvs mode's `kube-ipvs0`), and
/// the proxy listens on each service address itself, then splices each TCP connection, or
/// relays each client's UDP datagrams, to an endpoint it picks round-robin (the same one
/// again for a client with ClientIP affinity). NodePorts listen on every node address, LB
/// and external IPs on those addresses when they are the node's.
///
/// What it cannot do, as in v1.0: backends see the node as the client, and an unallocated
/// service address is not rejected, only unanswered. A service without endpoints has no
/// listener, so its connections are refused by the kernel at once.
public final class UserspaceProxier: ProxyBackend, Sendable {
    /// The link that holds the cluster IPs; deleting it is the cleanup, also after a crash.
    public static let holderLink = "kube-svc0"

    let logger: Logger
    let nodeName: String
    let group: MultiThreadedEventLoopGroup
    let addresses: any ServiceAddressLink
    private let state = Mutex(State())

    struct State {
        var listeners: [ListenerKey: any Channel] = [:]
        var balancers: [String: Balancer] = [:]
        var addresses: Set<String> = []
        var unbindableSaid: Set<ListenerKey> = []
        /// Whether addresses left by an earlier run (a crash) were cleared.
        var started = false
    }

    /// One socket the proxy listens on.
    struct ListenerKey: Hashable, Sendable, CustomStringConvertible {
        var proto: String
        var address: String
        var port: Int
        var description: String { "\(proto) \(address):\(port)" }
    }

    public init(nodeName: String, logger: Logger, addresses: (any ServiceAddressLink)? = nil) {
        self.nodeName = nodeName
        self.logger = logger
        self.addresses = addresses ?? BridgeAddressHolder(link: Self.holderLink)
        // NIO's shared loops: nothing to shut down, and nothing started for a proxier that is
        // only asked to clean up after an earlier run.
        group = .singleton
    }

    /// What a sync wants: for each listener, the balancer (named by service port and whether
    /// the traffic is internal or external) and its endpoints.
    struct Plan {
        var listeners: [ListenerKey: String] = [:]
        var balancers: [String: (endpoints: [ProxyEndpoint], affinitySeconds: Int?)] = [:]
        var clusterIPs: Set<String> = []
    }

    static func plan(_ ports: [ProxyServicePort], nodeName: String) -> Plan {
        var plan = Plan()
        for sp in ports {
            if let ip = sp.clusterIP { plan.clusterIPs.insert(ip) }
            let inside = sp.internalPolicyLocal ? sp.localEndpoints(node: nodeName) : sp.clusterEndpoints
            let outside = sp.externalPolicyLocal ? sp.localEndpoints(node: nodeName) : sp.clusterEndpoints
            if let ip = sp.clusterIP, !inside.isEmpty {
                plan.balancers[sp.id + "/internal"] = (inside, sp.affinitySeconds)
                plan.listeners[ListenerKey(proto: sp.proto, address: ip, port: sp.port)] = sp.id + "/internal"
            }
            guard !outside.isEmpty else { continue }
            var keys = (sp.externalIPs + sp.loadBalancerIPs).map { ListenerKey(proto: sp.proto, address: $0, port: sp.port) }
            if let np = sp.nodePort { keys.append(ListenerKey(proto: sp.proto, address: "0.0.0.0", port: np)) }
            guard !keys.isEmpty else { continue }
            plan.balancers[sp.id + "/external"] = (outside, sp.affinitySeconds)
            for key in keys { plan.listeners[key] = sp.id + "/external" }
        }
        return plan
    }

    public func sync(_ ports: [ProxyServicePort]) async throws {
        let plan = Self.plan(ports, nodeName: nodeName)
        try holdAddresses(plan.clusterIPs)
        // Endpoint changes only update the balancers; listeners come and go with services.
        let (toOpen, toClose) = state.withLock { s -> ([(ListenerKey, Balancer)], [any Channel]) in
            for (name, wanted) in plan.balancers {
                if let b = s.balancers[name] { b.update(wanted.endpoints, affinitySeconds: wanted.affinitySeconds) } else {
                    s.balancers[name] = Balancer(wanted.endpoints, affinitySeconds: wanted.affinitySeconds)
                }
            }
            s.balancers = s.balancers.filter { plan.balancers[$0.key] != nil }
            var close: [any Channel] = []
            for (key, channel) in s.listeners where plan.listeners[key] == nil {
                close.append(channel)
                s.listeners[key] = nil
            }
            let open = plan.listeners.compactMap { key, name -> (ListenerKey, Balancer)? in
                guard s.listeners[key] == nil, let b = s.balancers[name] else { return nil }
                return (key, b)
            }
            return (open, close)
        }
        for channel in toClose { try? await channel.close() }
        for (key, balancer) in toOpen {
            do {
                let channel = try await listen(key, balancer: balancer)
                state.withLock { s in
                    s.listeners[key] = channel
                    s.unbindableSaid.remove(key)
                }
            } catch {
                // An external IP that is not the node's cannot be bound; that costs only it.
                let first = state.withLock { $0.unbindableSaid.insert(key).inserted }
                if first { logger.warning("userspace proxy cannot listen on \(key): \(error)") }
            }
        }
    }

    func holdAddresses(_ wanted: Set<String>) throws {
        if !state.withLock({ $0.started }) {
            // What an earlier run left (it may have crashed) is not known address by address.
            try addresses.removeAll()
            state.withLock { $0.started = true }
        }
        let held = state.withLock { $0.addresses }
        for ip in wanted.subtracting(held) {
            try addresses.add(ip)
            state.withLock { _ = $0.addresses.insert(ip) }
        }
        for ip in held.subtracting(wanted) {
            try addresses.remove(ip)
            state.withLock { _ = $0.addresses.remove(ip) }
        }
    }

    func listen(_ key: ListenerKey, balancer: Balancer) async throws -> any Channel {
        let logger = logger
        switch key.proto {
        case "tcp":
            return try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { client in
                    client.eventLoop.makeCompletedFuture {
                        let side = SpliceHandler()
                        try client.pipeline.syncOperations.addHandler(side)
                        TCPSplice.connect(client, side: NIOLoopBound(side, eventLoop: client.eventLoop),
                                          candidates: balancer.candidates(client: client.remoteAddress?.ipAddress),
                                          balancer: balancer, logger: logger)
                    }
                }
                .bind(host: key.address, port: key.port).get()
        case "udp":
            return try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPRelay(balancer: balancer, logger: logger))
                    }
                }
                .bind(host: key.address, port: key.port).get()
        default:
            throw ServiceProxyError(message: "the userspace proxy does not carry \(key.proto)")
        }
    }

    public func cleanup() async throws {
        let channels = state.withLock { s in
            let out = Array(s.listeners.values)
            s.listeners = [:]
            s.balancers = [:]
            s.addresses = []
            s.started = false
            return out
        }
        for channel in channels { try? await channel.close() }
        try addresses.removeAll()
    }
}

/// Round-robin over a service port's endpoints, and ClientIP affinity: a client seen within
/// the timeout gets the endpoint it had, while that endpoint is still there.
final class Balancer: Sendable {
    struct State {
        var endpoints: [ProxyEndpoint]
        var affinitySeconds: Int?
        var next = 0
        var sticky: [String: (endpoint: ProxyEndpoint, seen: ContinuousClock.Instant)] = [:]
    }
    private let state: Mutex<State>

    init(_ endpoints: [ProxyEndpoint], affinitySeconds: Int?) {
        state = Mutex(State(endpoints: endpoints, affinitySeconds: affinitySeconds))
    }

    func update(_ endpoints: [ProxyEndpoint], affinitySeconds: Int?) {
        state.withLock { s in
            s.endpoints = endpoints
            if affinitySeconds != s.affinitySeconds { s.sticky = [:] }
            s.affinitySeconds = affinitySeconds
            s.sticky = s.sticky.filter { endpoints.contains($0.value.endpoint) }
        }
    }

    /// The endpoints to try for a new connection, the chosen one first, then the others (a
    /// refused connect moves on to the next, as v1.0 did).
    func candidates(client: String?) -> [ProxyEndpoint] {
        state.withLock { s in
            let n = s.endpoints.count
            guard n > 0 else { return [] }
            let now = ContinuousClock.now
            if let seconds = s.affinitySeconds, let client, let entry = s.sticky[client],
               now - entry.seen < .seconds(seconds), let index = s.endpoints.firstIndex(of: entry.endpoint) {
                s.sticky[client]?.seen = now
                return Array(s.endpoints[index...] + s.endpoints[..<index])
            }
            let index = s.next % n
            s.next = (s.next + 1) % n
            if s.affinitySeconds != nil, let client { s.sticky[client] = (s.endpoints[index], now) }
            return Array(s.endpoints[index...] + s.endpoints[..<index])
        }
    }

    /// A retry landed elsewhere: the client sticks to where it got through.
    func connected(client: String?, to endpoint: ProxyEndpoint) {
        state.withLock { s in
            guard s.affinitySeconds != nil, let client else { return }
            s.sticky[client] = (endpoint, .now)
        }
    }
}

/// TCP: connect to an endpoint, then pass bytes both ways with backpressure and half-close.
enum TCPSplice {
    static func connect(_ client: any Channel, side: NIOLoopBound<SpliceHandler>, candidates: [ProxyEndpoint],
                        balancer: Balancer, logger: Logger) {
        guard let endpoint = candidates.first else {
            client.close(promise: nil)
            return
        }
        ClientBootstrap(group: client.eventLoop)
            .connectTimeout(.seconds(2))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: endpoint.ip, port: endpoint.port)
            .whenComplete { result in
                switch result {
                case .success(let upstream):
                    let other = SpliceHandler()
                    do {
                        try upstream.pipeline.syncOperations.addHandler(other)
                    } catch {
                        client.close(promise: nil)
                        upstream.close(promise: nil)
                        return
                    }
                    side.value.join(other)
                    balancer.connected(client: client.remoteAddress?.ipAddress, to: endpoint)
                case .failure(let error):
                    logger.debug("userspace proxy: endpoint \(endpoint.address) did not answer: \(error)")
                    connect(client, side: side, candidates: Array(candidates.dropFirst()), balancer: balancer, logger: logger)
                }
            }
    }
}

/// One side of a spliced connection: what it reads is written to its partner; it reads only
/// while the partner can take more; end of input becomes the partner's end of output. The
/// client's side exists before its partner does: what arrives meanwhile (often the whole
/// request and its FIN) is kept and handed over on `join`.
final class SpliceHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let earlyLimit = 64 * 1024
    private var partner: SpliceHandler?
    private var context: ChannelHandlerContext?
    private var early: [ByteBuffer] = []
    private var earlyBytes = 0
    private var readWanted = false
    private var inputClosed = false
    private var outputClosed = false

    func join(_ other: SpliceHandler) {
        partner = other
        other.partner = self
        for buffer in early { other.context?.write(wrapOutboundOut(buffer), promise: nil) }
        other.context?.flush()
        early = []
        earlyBytes = 0
        if inputClosed { other.closeOutput() }
        resumeReading()
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let partner else {
            early.append(buffer)
            earlyBytes += buffer.readableBytes
            return
        }
        partner.context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.flushAndClose()
        context.fireChannelInactive()
    }

    /// What was read last may not be flushed yet (end of input can come before the read
    /// completes), and a close would drop it.
    func flushAndClose() {
        context?.flush()
        context?.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        inputClosed = true
        partner?.closeOutput()
        if outputClosed { context.close(promise: nil) }
    }

    func closeOutput() {
        guard let context else { return }
        outputClosed = true
        context.flush()
        if inputClosed {
            context.close(promise: nil)
        } else {
            // A socket that cannot half-close is closed whole.
            let channel = context.channel
            context.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        let canTake = partner.map { $0.context?.channel.isWritable ?? true } ?? (earlyBytes < Self.earlyLimit)
        if canTake {
            context.read()
        } else {
            readWanted = true
        }
    }

    func resumeReading() {
        guard readWanted, let context else { return }
        readWanted = false
        context.read()
    }
}

/// UDP: one connected socket per client address towards its endpoint; the endpoint's replies
/// go back to the client from the service address. A client idle for a while is forgotten.
final class UDPRelay: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    static let idle: TimeAmount = .seconds(30)
    let balancer: Balancer
    let logger: Logger
    private var sessions: [SocketAddress: Session] = [:]
    private var sweep: RepeatedTask?

    final class Session {
        var channel: (any Channel)?
        var pending: [ByteBuffer] = []
        var lastUsed = NIODeadline.now()
    }

    init(balancer: Balancer, logger: Logger) {
        self.balancer = balancer
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        sweep = context.eventLoop.scheduleRepeatedTask(initialDelay: Self.idle, delay: .seconds(5)) { _ in
            bound.value.forgetIdle()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        sweep?.cancel()
        for session in sessions.values { session.channel?.close(promise: nil) }
        sessions = [:]
    }

    func forgetIdle() {
        let cutoff = NIODeadline.now() - Self.idle
        for (client, session) in sessions where session.lastUsed < cutoff {
            session.channel?.close(promise: nil)
            sessions[client] = nil
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let datagram = unwrapInboundIn(data)
        let client = datagram.remoteAddress
        if let session = sessions[client] {
            session.lastUsed = .now()
            if let channel = session.channel {
                channel.writeAndFlush(datagram.data, promise: nil)
            } else {
                session.pending.append(datagram.data)
            }
            return
        }
        guard let endpoint = balancer.candidates(client: client.ipAddress).first else { return }
        let session = Session()
        session.pending.append(datagram.data)
        sessions[client] = session
        let service = context.channel
        let logger = logger
        let bound = NIOLoopBound(session, eventLoop: context.eventLoop)
        let relay = NIOLoopBound(self, eventLoop: context.eventLoop)
        DatagramBootstrap(group: context.eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPReply(service: service, client: client))
                }
            }
            .connect(host: endpoint.ip, port: endpoint.port)
            .whenComplete { result in
                let session = bound.value
                switch result {
                case .success(let channel):
                    session.channel = channel
                    for buffer in session.pending { channel.write(buffer, promise: nil) }
                    session.pending = []
                    channel.flush()
                case .failure(let error):
                    logger.debug("userspace proxy: UDP endpoint \(endpoint.address): \(error)")
                    relay.value.sessions[client] = nil
                }
            }
    }
}

/// An endpoint's datagram back to the client it answers, from the service's own socket.
final class UDPReply: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let service: any Channel
    let client: SocketAddress

    init(service: any Channel, client: SocketAddress) {
        self.service = service
        self.client = client
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        service.writeAndFlush(AddressedEnvelope(remoteAddress: client, data: unwrapInboundIn(data).data), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // An ICMP "port unreachable" from the endpoint ends this client's session only.
        context.close(promise: nil)
    }
}

/// Cluster IPs as /32 addresses on a port-less bridge that is kept down: a local address on
/// a down link still gets its local route, so the node accepts packets for it (the kernel
/// here has no dummy links). Removing the bridge removes them all.
public struct BridgeAddressHolder: ServiceAddressLink {
    let link: String

    public init(link: String) { self.link = link }

    func index(creating: Bool) throws -> Int32? {
        let session = NetlinkSession(socket: try RouteNetlinkSocket())
        if let existing = try session.link(named: link) { return existing.index }
        guard creating else { return nil }
        try session.createBridge(name: link)
        return try session.link(named: link)?.index
    }

    public func add(_ address: String) throws {
        guard let ip = IPv4.Address(address), let cidr = IPv4.CIDR(address: ip, prefixLength: 32) else {
            throw ServiceProxyError(message: "cluster IP \(address) is not IPv4")
        }
        guard let index = try index(creating: true) else {
            throw ServiceProxyError(message: "the service address link \(link) could not be created")
        }
        do {
            try NetlinkSession(socket: try RouteNetlinkSocket()).addAddress(cidr, index: index)
        } catch let error as NetlinkError where error.errno == EEXIST {
            // Already there (a restart).
        }
    }

    public func remove(_ address: String) throws {
        guard let ip = IPv4.Address(address), let cidr = IPv4.CIDR(address: ip, prefixLength: 32),
              let index = try index(creating: false) else { return }
        _ = try NetlinkSession(socket: try RouteNetlinkSocket()).removeAddress(cidr, index: index)
    }

    public func removeAll() throws {
        _ = try NetlinkSession(socket: try RouteNetlinkSocket()).deleteLink(name: link)
    }
}

/// Where the userspace mode keeps cluster IPs: addresses one by one, and all at once on
/// cleanup (tests substitute a recorder).
public protocol ServiceAddressLink: AddressHolder {
    func removeAll() throws
}
