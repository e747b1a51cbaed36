import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Sends queries it does not answer itself to upstream resolvers (a resolv.conf or
/// addresses), over UDP (TCP when the asker used TCP), trying another upstream when one
/// does not answer in time.
public final class ForwardPlugin: DNSPlugin {
    public let name = "forward"

    public enum Policy: String, Sendable { case random, round_robin, sequential }

    public struct Config: Sendable {
        public var from: DNSName
        public var upstreams: [SocketAddress]
        public var except: [DNSName] = []
        public var maxConcurrent = 0
        public var policy = Policy.random
        public var forceTCP = false
        public var readTimeout: Duration = .seconds(2)
        /// How long one query may take over all tries.
        public var deadline: Duration = .seconds(5)
        public var maxFails = 2
        public init(from: DNSName, upstreams: [SocketAddress]) {
            self.from = from
            self.upstreams = upstreams
        }
    }

    struct Upstream {
        var address: SocketAddress
        var fails = 0
    }

    struct Pending {
        var promise: EventLoopPromise<[UInt8]>
        var upstream: SocketAddress
    }

    public let config: Config
    let logger: Logger
    let metrics: DNSMetrics?
    let state: Mutex<(upstreams: [Upstream], next: Int, inflight: Int)>
    let pending = Mutex<[UInt16: Pending]>([:])
    let socket = LockedBox<(any Channel)?>(nil)

    public init(config: Config, logger: Logger, metrics: DNSMetrics?) {
        self.config = config
        self.logger = logger
        self.metrics = metrics
        state = Mutex((config.upstreams.map { Upstream(address: $0) }, 0, 0))
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.count >= 2, let from = DNSName(d.args[0]) else {
            throw PluginSetupError("forward", line: d.line, "forward needs FROM and at least one TO")
        }
        var upstreams: [SocketAddress] = []
        for to in d.args.dropFirst() {
            if to.hasPrefix("/") {
                upstreams += try resolvConfUpstreams(path: to, readFile: s.readFile, logger: s.logger)
            } else {
                upstreams.append(try parseUpstream(to, line: d.line))
            }
        }
        guard upstreams.count <= 15 else { throw PluginSetupError("forward", line: d.line, "more than 15 upstreams") }
        var c = Config(from: from, upstreams: upstreams)
        for sub in d.block {
            switch sub.name {
            case "except": c.except = sub.args.compactMap { DNSName($0) }
            case "max_concurrent":
                guard let n = sub.args.first.flatMap(Int.init), n > 0 else {
                    throw PluginSetupError("forward", line: sub.line, "max_concurrent needs a positive number")
                }
                c.maxConcurrent = n
            case "policy":
                guard let p = sub.args.first.flatMap(Policy.init(rawValue:)) else {
                    throw PluginSetupError("forward", line: sub.line, "unknown policy (random, round_robin, sequential)")
                }
                c.policy = p
            case "force_tcp": c.forceTCP = true
            case "max_fails":
                guard let n = sub.args.first.flatMap(Int.init) else { throw PluginSetupError("forward", line: sub.line, "max_fails needs a number") }
                c.maxFails = n
            case "prefer_udp", "health_check", "expire", "tls", "tls_servername", "next", "failfast_all_unhealthy_upstreams":
                continue
            default:
                throw PluginSetupError("forward", line: sub.line, "unknown property '\(sub.name)'")
            }
        }
        return ForwardPlugin(config: c, logger: s.logger, metrics: s.metrics)
    }

    static func parseUpstream(_ text: String, line: Int) throws -> SocketAddress {
        var t = Substring(text)
        if t.hasPrefix("dns://") { t = t.dropFirst(6) }
        if t.contains("://") { throw PluginSetupError("forward", line: line, "only dns:// upstreams are supported: \(text)") }
        var host = String(t)
        var port = 53
        if t.hasPrefix("["), let close = t.firstIndex(of: "]") {
            host = String(t[t.index(after: t.startIndex)..<close])
            let rest = t[t.index(after: close)...]
            if rest.hasPrefix(":"), let p = Int(rest.dropFirst()) { port = p }
        } else if t.filter({ $0 == ":" }).count == 1, let colon = t.firstIndex(of: ":") {
            host = String(t[..<colon])
            guard let p = Int(t[t.index(after: colon)...]) else { throw PluginSetupError("forward", line: line, "bad port in \(text)") }
            port = p
        }
        do {
            return try SocketAddress(ipAddress: host, port: port)
        } catch {
            throw PluginSetupError("forward", line: line, "not an IP address: \(text)")
        }
    }

    /// The nameservers of a resolv.conf. systemd-resolved's stub (127.0.0.53) is only reachable
    /// from the node itself, and forwarding to it from a pod loops or fails (the crash-looping
    /// CoreDNS of kind and k3s); its real upstreams are in /run/systemd/resolve/resolv.conf.
    static func resolvConfUpstreams(path: String, readFile: (String) throws -> String, logger: Logger) throws -> [SocketAddress] {
        let text: String
        do { text = try readFile(path) } catch {
            throw PluginSetupError("forward", "cannot read \(path): \(error)")
        }
        var servers = nameservers(in: text)
        if !servers.isEmpty, servers.allSatisfy({ $0.hasPrefix("127.0.0.53") }),
           let real = try? readFile("/run/systemd/resolve/resolv.conf") {
            let upstream = nameservers(in: real).filter { !$0.hasPrefix("127.") }
            if !upstream.isEmpty {
                logger.info("plugin/forward: \(path) names systemd-resolved's stub 127.0.0.53; using /run/systemd/resolve/resolv.conf's \(upstream.joined(separator: " "))")
                servers = upstream
            }
        }
        return servers.compactMap { try? SocketAddress(ipAddress: $0, port: 53) }
    }

    static func nameservers(in text: String) -> [String] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, fields[0] == "nameserver" else { return nil }
            // Zone-scoped IPv6 (fe80::1%eth0) cannot be dialled by address alone.
            return fields[1].contains("%") ? nil : String(fields[1])
        }
    }

    // MARK: lifecycle

    public func start(_ context: PluginContext) async throws {
        // Never forward to ourselves: our own listen address, or loopback on our port when
        // we listen on every address (inside the pod, 127.0.0.1:53 is this very server).
        let own = context.listenAddresses
        let kept = state.withLock { s -> [Upstream] in
            s.upstreams.removeAll { up in
                own.contains { me in
                    guard me.port == up.address.port else { return false }
                    let mine = me.ipAddress ?? ""
                    let theirs = up.address.ipAddress ?? ""
                    return mine == theirs || ((mine == "0.0.0.0" || mine == "::") && (theirs.hasPrefix("127.") || theirs == "::1"))
                }
            }
            return s.upstreams
        }
        if kept.count < config.upstreams.count {
            logger.warning("plugin/forward: not forwarding to this server itself; upstreams left: \(kept.map { "\($0.address)" }.joined(separator: ", "))")
        }
        if kept.isEmpty {
            logger.error("plugin/forward: no upstream to forward \(config.from) to; names outside the cluster will get SERVFAIL")
        }
        // The handler holds the plugin until stop() closes the socket.
        let channel = try await DatagramBootstrap(group: context.eventLoopGroup)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ForwardReplyHandler { bytes, from in self.received(bytes, from: from) })
                }
            }
            .bind(host: "0.0.0.0", port: 0).get()
        socket.value = channel
    }

    public func stop() async {
        try? await socket.value?.close()
        socket.value = nil
        let left = pending.withLock { p -> [Pending] in
            defer { p = [:] }
            return Array(p.values)
        }
        for p in left { p.promise.fail(ForwardError.stopped) }
    }

    enum ForwardError: Error { case stopped, timeout(String), noUpstream }

    // MARK: queries

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        let q = request.question
        guard q.name.isSubdomain(of: config.from), !config.except.contains(where: { q.name.isSubdomain(of: $0) }) else {
            return next(request)
        }
        let admitted = state.withLock { s -> Bool in
            if config.maxConcurrent > 0 && s.inflight >= config.maxConcurrent { return false }
            s.inflight += 1
            return true
        }
        guard admitted else {
            metrics?.counter("coredns_forward_max_concurrent_rejects_total", [],
                             help: "Counter of the number of queries rejected because the concurrent queries were at maximum.").increment()
            return .done(DNSResponse(message: request.reply(.refused), plugin: name, error: "concurrent queries exceeded maximum \(config.maxConcurrent)"))
        }
        let promise = request.eventLoop.makePromise(of: DNSResponse.self)
        let tries = order()
        attempt(request, tries: tries[...], started: .now, lastError: nil, promise: promise)
        let name = self.name
        promise.futureResult.whenComplete { [weak self] _ in self?.state.withLock { $0.inflight -= 1 } }
        _ = name
        return .later(promise.futureResult)
    }

    /// Upstreams in the order to try them, by policy; healthy ones first.
    func order() -> [SocketAddress] {
        state.withLock { s -> [SocketAddress] in
            guard !s.upstreams.isEmpty else { return [] }
            var list: [Upstream]
            switch config.policy {
            case .random: list = s.upstreams.shuffled()
            case .sequential: list = s.upstreams
            case .round_robin:
                s.next = (s.next + 1) % s.upstreams.count
                list = Array(s.upstreams[s.next...] + s.upstreams[..<s.next])
            }
            let healthy = list.filter { $0.fails < config.maxFails }
            let sick = list.filter { $0.fails >= config.maxFails }
            return (healthy + sick).map(\.address)
        }
    }

    func attempt(_ request: DNSRequest, tries: ArraySlice<SocketAddress>, started: ContinuousClock.Instant, lastError: String?,
                 promise: EventLoopPromise<DNSResponse>) {
        guard let upstream = tries.first, ContinuousClock.now - started < config.deadline else {
            promise.succeed(DNSResponse(message: request.reply(.serverFailure), plugin: name,
                                        error: lastError ?? "no upstream to forward to"))
            return
        }
        var query = request.message
        query.recursionDesired = request.message.recursionDesired
        let sentAt = ContinuousClock.now
        let exchange: EventLoopFuture<[UInt8]> = (request.transport == .tcp || config.forceTCP)
            ? exchangeTCP(query, upstream: upstream, on: request.eventLoop)
            : exchangeUDP(query, upstream: upstream, on: request.eventLoop)
        exchange.whenComplete { [self] result in
            switch result {
            case .success(let bytes):
                guard let answer = try? DNSMessage(parsing: bytes) else {
                    markFailed(upstream)
                    attempt(request, tries: tries.dropFirst(), started: started,
                            lastError: "dns: bad answer from \(upstream.ipAddress ?? ""):\(upstream.port ?? 53)", promise: promise)
                    return
                }
                markHealthy(upstream)
                let (s, atto) = (ContinuousClock.now - sentAt).components
                metrics?.histogram("coredns_proxy_request_duration_seconds",
                                   [("proxy_name", "forward"), ("to", "\(upstream.ipAddress ?? ""):\(upstream.port ?? 53)"),
                                    ("rcode", answer.rcode.description)],
                                   buckets: DNSMetrics.durationBuckets, help: "Histogram of the time each request took.")
                    .record(Double(s) + Double(atto) / 1e18)
                promise.succeed(DNSResponse(message: answer, plugin: name))
            case .failure(let error):
                markFailed(upstream)
                let text: String
                if case ForwardError.timeout(let t) = error { text = t } else { text = "\(error)" }
                attempt(request, tries: tries.dropFirst(), started: started, lastError: text, promise: promise)
            }
        }
    }

    func markFailed(_ a: SocketAddress) {
        state.withLock { s in if let i = s.upstreams.firstIndex(where: { $0.address == a }) { s.upstreams[i].fails += 1 } }
    }

    func markHealthy(_ a: SocketAddress) {
        state.withLock { s in if let i = s.upstreams.firstIndex(where: { $0.address == a }) { s.upstreams[i].fails = 0 } }
    }

    func exchangeUDP(_ query: DNSMessage, upstream: SocketAddress, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        guard let channel = socket.value else { return loop.makeFailedFuture(ForwardError.stopped) }
        let promise = loop.makePromise(of: [UInt8].self)
        // A fresh id per upstream query: two askers may use the same id.
        var q = query
        q.id = pending.withLock { p -> UInt16 in
            var id = UInt16.random(in: 0...UInt16.max)
            while p[id] != nil { id = UInt16.random(in: 0...UInt16.max) }
            p[id] = Pending(promise: promise, upstream: upstream)
            return id
        }
        let id = q.id
        let bytes = q.serialized()
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: upstream, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
        let timeout = config.readTimeout
        let local = channel.localAddress
        let task = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { [weak self] in
            guard let p = self?.pending.withLock({ $0.removeValue(forKey: id) }) else { return }
            p.promise.fail(ForwardError.timeout(
                "read udp \(local?.ipAddress ?? "0.0.0.0"):\(local?.port ?? 0)->\(upstream.ipAddress ?? ""):\(upstream.port ?? 53): i/o timeout"))
        }
        promise.futureResult.whenComplete { _ in task.cancel() }
        return promise.futureResult
    }

    func received(_ bytes: [UInt8], from: SocketAddress) {
        guard bytes.count >= 2 else { return }
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        guard let p = pending.withLock({ p -> Pending? in
            // Only the upstream we asked may answer (a spoofed answer from elsewhere is dropped).
            guard let hit = p[id], hit.upstream == from else { return nil }
            return p.removeValue(forKey: id)
        }) else { return }
        p.promise.succeed(bytes)
    }

    func exchangeTCP(_ query: DNSMessage, upstream: SocketAddress, on loop: any EventLoop) -> EventLoopFuture<[UInt8]> {
        let promise = loop.makePromise(of: [UInt8].self)
        let bytes = query.serialized()
        let timeout = config.readTimeout
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(timeout.nanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ForwardTCPHandler(promise: promise))
                }
            }
            .connect(to: upstream)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    channel.writeAndFlush(TCPDNSHandler.frame(channel.allocator.buffer(bytes: bytes), channel.allocator), promise: nil)
                    let task = channel.eventLoop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) {
                        promise.fail(ForwardError.timeout("read tcp ->\(upstream.ipAddress ?? ""):\(upstream.port ?? 53): i/o timeout"))
                        channel.close(promise: nil)
                    }
                    promise.futureResult.whenComplete { _ in
                        task.cancel()
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    promise.fail(error)
                }
            }
        return promise.futureResult
    }
}

final class ForwardReplyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let onReply: @Sendable ([UInt8], SocketAddress) -> Void

    init(onReply: @escaping @Sendable ([UInt8], SocketAddress) -> Void) { self.onReply = onReply }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var b = envelope.data
        if let bytes = b.readBytes(length: b.readableBytes) { onReply(bytes, envelope.remoteAddress) }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP port unreachable from a dead upstream: its query times out and another is tried.
    }
}

final class ForwardTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<[UInt8]>
    var buffer = ByteBuffer()

    init(promise: EventLoopPromise<[UInt8]>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        buffer.writeBuffer(&b)
        if let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self), buffer.readableBytes >= 2 + Int(length) {
            buffer.moveReaderIndex(forwardBy: 2)
            if let bytes = buffer.readBytes(length: Int(length)) { promise.succeed(bytes) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
