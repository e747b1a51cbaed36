import Synchronization
import NIOCore

/// A plugin that wants to see every answer as written (size on the wire, time taken): log
/// and prometheus, which in CoreDNS wrap the response writer.
public protocol DNSObserver: Sendable {
    func written(_ request: DNSRequest, _ response: DNSResponse, size: Int, duration: Duration)
}

/// One server block's chain and the zones it serves.
public final class ServerBlockChain: Sendable {
    public let zones: [DNSName]
    public let plugins: [any DNSPlugin]
    /// The plugins a query passes through (`servesQueries`), in chain order.
    public let handlers: [any DNSPlugin]
    public let observers: [any DNSObserver]
    public let serverLabel: String
    /// Nil when this chain cannot answer cache hits from the packet (see `CacheShortcut`).
    let shortcut: CacheShortcut?

    /// `packetShortcut: false` only for tests that compare against the whole path.
    public init(zones: [DNSName], plugins: [any DNSPlugin], serverLabel: String, packetShortcut: Bool = true) {
        self.zones = zones
        self.plugins = plugins
        self.handlers = plugins.filter(\.servesQueries)
        self.observers = plugins.compactMap { $0 as? any DNSObserver }
        self.serverLabel = serverLabel
        shortcut = packetShortcut ? CacheShortcut(handlers: handlers, observers: observers) : nil
    }
}

/// What the listener does with a packet: the checks CoreDNS's server does before any plugin
/// (miekg/dns's default accept function), then the chain of the block whose zone is the
/// longest suffix of the name, then truncation to what the asker can take.
public final class DNSDispatcher: Sendable {
    let blocks: [(zone: DNSName, chain: ServerBlockChain)]
    /// Closed while the server's plugins start: the listener must be bound first (forward and
    /// loop need its address), but a query answered before the kubernetes plugin has synced
    /// would get SERVFAIL, seen right after a Corefile reload. CoreDNS opens its listeners only
    /// after startup; a query that arrives earlier goes unanswered and the client retries.
    let accepting: Atomic<Bool>

    func open() { accepting.store(true, ordering: .releasing) }
    /// Whether any block can answer from the packet: if none, a query is not read twice.
    let shortcuts: Bool

    /// `accepting: false` until `open()`: how DNSServer makes one; tests call handle directly.
    public init(chains: [ServerBlockChain], accepting: Bool = true) {
        self.accepting = Atomic(accepting)
        var entries: [(zone: DNSName, chain: ServerBlockChain)] = []
        for chain in chains { for zone in chain.zones { entries.append((zone, chain)) } }
        // Longest zone first, so the most specific block wins.
        blocks = entries.sorted { $0.zone.wire.count > $1.zone.wire.count }
        shortcuts = chains.contains { $0.shortcut != nil }
    }

    /// The plugins of every block (each once).
    public var chains: [ServerBlockChain] {
        var seen: [ObjectIdentifier] = []
        var out: [ServerBlockChain] = []
        for b in blocks where !seen.contains(ObjectIdentifier(b.chain)) {
            seen.append(ObjectIdentifier(b.chain))
            out.append(b.chain)
        }
        return out
    }

    /// A finished exchange: the bytes to send back (nil: stay silent) once they are known.
    public enum Outcome {
        case silent
        case reply(ByteBuffer)
        case later(EventLoopFuture<ByteBuffer?>)
    }

    /// Answers are written straight into the buffer the socket sends.
    static let allocator = ByteBufferAllocator()

    static func buffer(_ bytes: [UInt8]) -> ByteBuffer { allocator.buffer(bytes: bytes) }

    public func handle(_ bytes: [UInt8], remote: SocketAddress?, transport: DNSTransport,
                       eventLoop: any EventLoop) -> Outcome {
        handle(Self.buffer(bytes), remote: remote, transport: transport, eventLoop: eventLoop)
    }

    /// A cache hit answered straight from the packet (`CacheShortcut`), its answer appended to
    /// `out`. False, with nothing written, for every other query: then `handle` it, with
    /// `shortcut: false` so it is not looked at twice. The UDP listener writes the answers of
    /// one read batch into one buffer this way, instead of allocating one per answer.
    func shortcutAnswer(_ packet: ByteBuffer, remote: SocketAddress?, transport: DNSTransport,
                        appendingTo out: inout ByteBuffer) -> Bool {
        guard shortcuts, accepting.load(ordering: .acquiring) else { return false }
        let received = ContinuousClock.now
        guard let query = PlainQuery(packet), let block = blocks.first(where: { query.name.isSubdomain(of: $0.zone) }),
              let shortcut = block.chain.shortcut else { return false }
        return shortcut.answer(query, zone: block.zone, requestSize: packet.readableBytes, remote: remote,
                               transport: transport, received: received, appendingTo: &out)
    }

    /// The packet as received: it is read in place, not copied out first.
    public func handle(_ packet: ByteBuffer, remote: SocketAddress?, transport: DNSTransport,
                       eventLoop: any EventLoop, shortcut: Bool = true) -> Outcome {
        guard accepting.load(ordering: .acquiring) else { return .silent }
        if shortcut, shortcuts {
            // Capacity 0 allocates nothing until an answer is written: a miss costs no buffer.
            var out = Self.allocator.buffer(capacity: 0)
            if shortcutAnswer(packet, remote: remote, transport: transport, appendingTo: &out) { return .reply(out) }
        }
        let received = ContinuousClock.now
        let message: DNSMessage
        do {
            message = try DNSMessage(parsing: packet)
        } catch {
            // Unreadable beyond the header: FORMERR with the id; no header: nothing.
            guard let id = error.id, let third = packet.getInteger(at: packet.readerIndex + 2, as: UInt8.self),
                  third & 0x80 == 0 else { return .silent }
            var m = DNSMessage()
            m.id = id
            m.isResponse = true
            m.opcode = third >> 3 & 0xf
            m.rcode = .formatError
            return .reply(Self.buffer(m.serialized()))
        }
        if message.isResponse { return .silent }
        if message.opcode != 0 {
            var m = DNSMessage.reply(to: message, rcode: .notImplemented)
            m.questions = []
            return .reply(Self.buffer(m.serialized()))
        }
        guard message.questions.count == 1, message.answers.count <= 1, message.authorities.count <= 1,
              message.additionals.count <= 1, let question = message.question else {
            var m = DNSMessage.reply(to: message, rcode: .formatError)
            m.questions = []
            return .reply(Self.buffer(m.serialized()))
        }
        if let e = message.edns, e.version > 0 {
            var m = DNSMessage.reply(to: message, rcode: .badVersion)
            m.edns = EDNS(udpPayloadSize: 1232, version: 0, dnssecOK: e.dnssecOK)
            return .reply(Self.buffer(m.serialized()))
        }
        guard let block = blocks.first(where: { question.name.isSubdomain(of: $0.zone) }) else {
            return .reply(Self.buffer(DNSMessage.reply(to: message, rcode: .refused).serialized()))
        }
        // `consume`: the request takes the parsed message over instead of retaining a copy.
        let request = DNSRequest(message: consume message, question: question, remote: remote,
                                 transport: transport, size: packet.readableBytes, zone: block.zone, server: block.chain.serverLabel,
                                 eventLoop: eventLoop, received: received)
        let chain = block.chain
        let result = DNSNext(chain: chain.handlers)(request)
        switch result {
        case .done(let response):
            return .reply(Self.finish(request, response, chain: chain))
        case .later(let future):
            return .later(future.map { Self.finish(request, $0, chain: chain) })
        }
    }

    /// A wire answer made ready for this asker: its id, its RD bit, its spelling of the name,
    /// the TTLs counted down. Nil when it does not fit the asker's UDP size (then the message
    /// is written with truncation) or its question is not where expected.
    static func patched(_ wire: WireAnswer, age: UInt32, for request: DNSRequest) -> ByteBuffer? {
        patched(wire, age: age, id: request.message.id, recursionDesired: request.message.recursionDesired,
                name: request.question.name, transport: request.transport, maxUDPSize: request.message.maxUDPSize)
    }

    static func patched(_ wire: WireAnswer, age: UInt32, id: UInt16, recursionDesired: Bool, name asked: DNSName,
                        transport: DNSTransport, maxUDPSize: Int) -> ByteBuffer? {
        var out = allocator.buffer(capacity: wire.bytes.count)
        return append(wire, age: age, id: id, recursionDesired: recursionDesired, name: asked, transport: transport,
                      maxUDPSize: maxUDPSize, to: &out) ? out : nil
    }

    /// `patched`, written at the end of `out` (false, and nothing written, when it does not fit
    /// the asker or its question is not where expected).
    static func append(_ wire: WireAnswer, age: UInt32, id: UInt16, recursionDesired: Bool, name asked: DNSName,
                       transport: DNSTransport, maxUDPSize: Int, to out: inout ByteBuffer) -> Bool {
        let name = asked.wire
        let bytes = wire.bytes
        guard bytes.count >= 12 + name.count, transport == .tcp || bytes.count <= maxUDPSize else { return false }
        let start = out.writerIndex
        // From the arrays' storage, so each copy is one memcpy.
        bytes.withUnsafeBytes { _ = out.writeBytes($0) }
        out.setInteger(id, at: start)
        out.setInteger((bytes[2] & 0xfe) | (recursionDesired ? 1 : 0), at: start + 2)
        name.withUnsafeBytes { _ = out.setBytes($0, at: start + 12) }
        if age > 0 {
            for at in wire.ttlOffsets where at + 4 <= bytes.count {
                let ttl = UInt32(bytes[at]) << 24 | UInt32(bytes[at + 1]) << 16 | UInt32(bytes[at + 2]) << 8 | UInt32(bytes[at + 3])
                out.setInteger(ttl > age ? ttl - age : 0, at: start + at)
            }
        }
        return true
    }

    static func finish(_ request: DNSRequest, _ response: DNSResponse, chain: ServerBlockChain) -> ByteBuffer {
        if let wire = response.wire, let bytes = patched(wire, age: response.ttlAge, for: request) {
            if !chain.observers.isEmpty {
                let duration = ContinuousClock.now - request.received
                let size = bytes.readableBytes
                // What the observers see has the flags sent: a stored answer carries the RD bit
                // of the query that filled the cache, the bytes this asker's (the log prints it).
                var written = response
                if written.message.recursionDesired != request.message.recursionDesired {
                    var m = written.message
                    m.recursionDesired = request.message.recursionDesired
                    written.message = m
                }
                // Borrowed from the array: a `for in` copies (retains) each observer.
                chain.observers.withUnsafeBufferPointer { observers in
                    for i in observers.indices { observers[i].written(request, written, size: size, duration: duration) }
                }
            }
            return bytes
        }
        var message = response.agedMessage
        message.id = request.message.id
        message.isResponse = true
        // As CoreDNS's SetReply: the asker's RD, also for a stored answer written again.
        message.recursionDesired = request.message.recursionDesired
        // Answers keep the asker's spelling of the name (0x20 case randomisation works).
        message.questions = request.message.questions
        let limit = request.transport == .udp ? request.message.maxUDPSize : 65535
        let bytes = message.serialized(maxSize: limit)
        if !chain.observers.isEmpty {
            let duration = ContinuousClock.now - request.received
            var written = response
            written.message = message
            for o in chain.observers { o.written(request, written, size: bytes.count, duration: duration) }
        }
        return buffer(bytes)
    }
}
