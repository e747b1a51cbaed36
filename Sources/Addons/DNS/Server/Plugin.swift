import Logging
import NIOCore

/// How a query arrived.
public enum DNSTransport: String, Sendable {
    case udp, tcp

    /// The `proto` label and log field; DNS over TLS counts as tcp, as in CoreDNS.
    public var label: String { rawValue }
}

/// One query on its way through a server block's plugin chain.
public struct DNSRequest: Sendable {
    public var message: DNSMessage
    public var question: DNSQuestion
    /// Who asked. Kept as the socket address: its text is made only when a plugin asks
    /// (`remoteAddress`), which most queries never need.
    public var remote: SocketAddress?
    public var transport: DNSTransport
    /// The query's size on the wire.
    public var size: Int
    /// The server block's zone that matched (`.` for the default Corefile).
    public var zone: DNSName
    /// The `server` metric label: `dns://:53`, `tls://:853`.
    public var server: String
    public var eventLoop: any EventLoop
    public var received: ContinuousClock.Instant

    public init(message: DNSMessage, question: DNSQuestion, remote: SocketAddress? = nil,
                transport: DNSTransport = .udp, size: Int = 0, zone: DNSName = .root, server: String = "dns://:53",
                eventLoop: any EventLoop, received: ContinuousClock.Instant = .now) {
        self.message = message
        self.question = question
        self.remote = remote
        self.transport = transport
        self.size = size
        self.zone = zone
        self.server = server
        self.eventLoop = eventLoop
        self.received = received
    }

    public var remoteAddress: String { remote?.ipAddress ?? "" }
    public var remotePort: Int { remote?.port ?? 0 }
    public var isIPv6: Bool {
        if case .v6 = remote { return true }
        return false
    }

    /// An answer skeleton for this query.
    public func reply(_ rcode: DNSRcode = .noError) -> DNSMessage { DNSMessage.reply(to: message, rcode: rcode) }
}

/// An answer already in wire form (the cache's), to be sent after patching the id, the RD
/// bit, the asker's spelling of the name and the TTLs, instead of being written again.
public struct WireAnswer: Sendable {
    public var bytes: [UInt8]
    /// Where each record's TTL is, to count it down.
    public var ttlOffsets: [Int]
}

/// A finished answer and which plugin wrote it (the `plugin` label of responses_total).
///
/// The dispatcher writes `message` with the request's id and question (the asker's spelling),
/// so a plugin may hand back a stored message as it is: the cache does, with `ttlAge`.
///
/// One shared, immutable box: a response passes through every plugin of the chain and the
/// observers, and a copy of the box is one retain where the fields were about ten. Changing a
/// field makes a new box (rare: loadbalance shuffling several addresses, the dispatcher
/// writing a truncated answer).
public struct DNSResponse: Sendable {
    /// `let` fields: reading them needs no exclusivity check.
    final class Box: Sendable {
        let message: DNSMessage
        let plugin: String
        let error: String?
        let wire: WireAnswer?

        init(message: DNSMessage, plugin: String, error: String?, wire: WireAnswer?) {
            self.message = message
            self.plugin = plugin
            self.error = error
            self.wire = wire
        }
    }
    var box: Box
    /// Seconds to take off every TTL when the answer is written (not below 0): how the cache
    /// serves an aged answer without copying its records.
    public var ttlAge: UInt32 = 0

    public init(message: DNSMessage, plugin: String, error: String? = nil, wire: WireAnswer? = nil, ttlAge: UInt32 = 0) {
        box = Box(message: message, plugin: plugin, error: error, wire: wire)
        self.ttlAge = ttlAge
    }

    public var message: DNSMessage {
        _read { yield box.message }
        set { box = Box(message: newValue, plugin: box.plugin, error: box.error, wire: box.wire) }
    }
    public var plugin: String {
        _read { yield box.plugin }
        set { box = Box(message: box.message, plugin: newValue, error: box.error, wire: box.wire) }
    }
    /// A processing error for the errors plugin to print (`read udp ...: i/o timeout`).
    public var error: String? {
        _read { yield box.error }
        set { box = Box(message: box.message, plugin: box.plugin, error: newValue, wire: box.wire) }
    }
    /// The same answer in wire form, when a plugin has it; a plugin that changes `message`
    /// must drop it.
    public var wire: WireAnswer? {
        _read { yield box.wire }
        set { box = Box(message: box.message, plugin: box.plugin, error: box.error, wire: newValue) }
    }

    /// `message` with its TTLs to be counted down by `ttlAge` when serialized.
    public var agedMessage: DNSMessage {
        var m = box.message
        m.ttlAge = ttlAge
        return m
    }
}

/// A plugin's answer: ready now (the common, allocation-light path) or later (forward).
public enum DNSResult: Sendable {
    case done(DNSResponse)
    case later(EventLoopFuture<DNSResponse>)

    /// Applies `transform` when the answer is there, without a future when it already is.
    public func map(_ transform: @escaping @Sendable (DNSResponse) -> DNSResponse) -> DNSResult {
        switch self {
        case .done(let r): .done(transform(r))
        case .later(let f): .later(f.map(transform))
        }
    }

    public func future(on loop: any EventLoop) -> EventLoopFuture<DNSResponse> {
        switch self {
        case .done(let r): loop.makeSucceededFuture(r)
        case .later(let f): f
        }
    }
}

/// What a plugin can use while it starts: the logger, the server's listen addresses (the
/// loop plugin queries them), and the shared metrics.
public struct PluginContext: Sendable {
    public var logger: Logger
    public var metrics: DNSMetrics
    public var eventLoopGroup: any EventLoopGroup
    /// Where this block's server listens, once it does (`127.0.0.1:53`).
    public var listenAddresses: [SocketAddress]
    /// The server block's zones.
    public var zones: [DNSName]

    public init(logger: Logger, metrics: DNSMetrics, eventLoopGroup: any EventLoopGroup, listenAddresses: [SocketAddress] = [],
                zones: [DNSName] = [.root]) {
        self.logger = logger
        self.metrics = metrics
        self.eventLoopGroup = eventLoopGroup
        self.listenAddresses = listenAddresses
        self.zones = zones
    }
}

/// A link in a server block's chain, like a CoreDNS plugin: it answers, or passes the query to
/// `next` and may change what comes back.
public protocol DNSPlugin: AnyObject, Sendable {
    var name: String { get }
    func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult
    /// Called once the server listens (informers, listeners).
    func start(_ context: PluginContext) async throws
    /// Called when every plugin of every block has started (the loop probe needs forward up).
    func serverStarted(_ context: PluginContext)
    /// Called when the server stops or is replaced by a reload.
    func stop() async
    /// Nil when the plugin has no readiness to report (the ready plugin skips it).
    var isReady: Bool? { get }
    /// False for a plugin whose `serve` only passes the query on (health, ready, reload, tls,
    /// and the observers errors, log and prometheus): the dispatcher leaves it out of the
    /// query path, as CoreDNS never makes setup-only plugins handlers.
    var servesQueries: Bool { get }
}

extension DNSPlugin {
    public func start(_ context: PluginContext) async throws {}
    public func serverStarted(_ context: PluginContext) {}
    public func stop() async {}
    public var isReady: Bool? { nil }
    public var servesQueries: Bool { true }
}

/// The rest of the chain after a plugin.
public struct DNSNext: Sendable {
    let chain: [any DNSPlugin]
    let index: Int

    public init(chain: [any DNSPlugin], index: Int = 0) {
        self.chain = chain
        self.index = index
    }

    public var isEmpty: Bool { index >= chain.count }

    /// Runs the next plugin; at the end of the chain, SERVFAIL as CoreDNS's `NextOrFailure`.
    public func callAsFunction(_ request: DNSRequest) -> DNSResult {
        guard index < chain.count else {
            return .done(DNSResponse(message: request.reply(.serverFailure), plugin: "",
                                     error: "no next plugin found"))
        }
        return chain[index].serve(request, next: DNSNext(chain: chain, index: index + 1))
    }
}
