import NIOCore

/// A plugin in front of the cache that can tell, for a stored answer, that it would hand it on
/// as it is: loadbalance, for an answer with at most one address.
public protocol PassesCachedAnswers: DNSPlugin {
    func leavesUnchanged(_ cached: DNSResponse) -> Bool
}

/// What an observer learns of a cache hit answered by `CacheShortcut`: the same facts
/// `written` reads from a request, without building one.
public struct ShortcutExchange {
    public var zone: DNSName
    public var type: DNSType
    public var transport: DNSTransport
    public var isIPv6: Bool
    /// The query's size on the wire.
    public var requestSize: Int
    public var response: DNSResponse
}

/// An observer that can count a shortcut answer (prometheus), or that has nothing to say
/// about one (errors: a stored answer carries no error). A chain with any other observer
/// (log prints every query in full) never takes the shortcut.
public protocol ShortcutObserver: DNSObserver {
    func written(_ exchange: ShortcutExchange, size: Int, duration: Duration)
}

/// Answers a query the cache holds straight from the packet, like a packet cache: no message
/// is parsed into records, no request built and no chain walked. At saturation those were
/// most of a cache hit's cost.
///
/// It only serves when the chain would have given the same bytes: a plain query (one
/// question, class IN, no records but an option-less or well-formed OPT), the cache as the
/// first plugin that answers, every plugin in front of it passing the stored answer on
/// unchanged (`PassesCachedAnswers`), every observer able to count it (`ShortcutObserver`),
/// and the answer fitting the asker. Anything else, including every miss and every expired
/// entry, goes the whole way, which checks and counts it as before. A class: the chain hands
/// it to each query with one retain.
final class CacheShortcut: Sendable {
    let cache: CachePlugin
    let front: [any PassesCachedAnswers]
    let observers: [any ShortcutObserver]

    /// Nil when the chain's shape rules the shortcut out for every query.
    init?(handlers: [any DNSPlugin], observers: [any DNSObserver]) {
        guard let at = handlers.firstIndex(where: { $0 is CachePlugin }), let cache = handlers[at] as? CachePlugin else { return nil }
        var front: [any PassesCachedAnswers] = []
        for plugin in handlers[..<at] {
            guard let passing = plugin as? any PassesCachedAnswers else { return nil }
            front.append(passing)
        }
        var counted: [any ShortcutObserver] = []
        for observer in observers {
            guard let o = observer as? any ShortcutObserver else { return nil }
            counted.append(o)
        }
        self.cache = cache
        self.front = front
        self.observers = counted
    }

    /// The answer appended to `out`; false, with nothing written, when the query must go the
    /// whole way.
    func answer(_ query: PlainQuery, zone: DNSName, requestSize: Int, remote: SocketAddress?, transport: DNSTransport,
                received: ContinuousClock.Instant, appendingTo out: inout ByteBuffer) -> Bool {
        let key = CachePlugin.Key(name: query.name, type: query.type.rawValue, dnssecOK: query.dnssecOK,
                                  checkingDisabled: query.checkingDisabled, edns: query.edns)
        guard cache.covers(query.name), let (entry, table, age) = cache.peek(key, at: cache.now?() ?? received) else { return false }
        let response = entry.response
        for plugin in front where !plugin.leavesUnchanged(response) { return false }
        let start = out.writerIndex
        guard let wire = response.wire,
              DNSDispatcher.append(wire, age: age, id: query.id, recursionDesired: query.recursionDesired,
                                   name: query.name, transport: transport, maxUDPSize: query.maxUDPSize, to: &out)
        else { return false }
        cache.countHit(table)
        if !observers.isEmpty {
            var isIPv6 = false
            if case .v6 = remote { isIPv6 = true }
            var answered = response
            answered.ttlAge = age
            let exchange = ShortcutExchange(zone: zone, type: query.type, transport: transport, isIPv6: isIPv6,
                                            requestSize: requestSize, response: answered)
            let duration = ContinuousClock.now - received
            let size = out.writerIndex - start
            for o in observers { o.written(exchange, size: size, duration: duration) }
        }
        return true
    }
}

/// The common query, read straight from the wire: header, one question of class IN, and at
/// most an OPT record of EDNS version 0. Nil for anything else (the full parser decides what
/// to answer to it).
struct PlainQuery {
    var id: UInt16
    var recursionDesired: Bool
    var checkingDisabled: Bool
    /// As asked, case kept.
    var name: DNSName
    var type: DNSType
    var edns: Bool
    var dnssecOK: Bool
    var maxUDPSize: Int

    init?(_ packet: ByteBuffer) {
        guard let parsed = packet.withUnsafeReadableBytes({ PlainQuery(bytes: $0) }) else { return nil }
        self = parsed
    }

    init?(bytes p: UnsafeRawBufferPointer) {
        func u16(_ at: Int) -> Int { Int(p[at]) << 8 | Int(p[at + 1]) }
        // Header, a root name, type and class.
        guard p.count >= 17,
              p[2] & 0xf8 == 0,  // QR clear, opcode QUERY
              u16(4) == 1, u16(6) == 0, u16(8) == 0 else { return nil }
        let additionals = u16(10)
        guard additionals <= 1 else { return nil }
        // Uncompressed labels (a query has nothing to point back to), within 255 bytes.
        var i = 12
        while true {
            guard i < p.count else { return nil }
            let length = Int(p[i])
            if length == 0 { break }
            guard length <= 63 else { return nil }
            i += 1 + length
            guard i - 12 < DNSName.maxLength else { return nil }
        }
        let nameEnd = i + 1
        guard nameEnd + 4 <= p.count, u16(nameEnd + 2) == Int(DNSClass.internet) else { return nil }
        id = UInt16(u16(0))
        recursionDesired = p[2] & 0x01 != 0
        checkingDisabled = p[3] & 0x10 != 0
        name = DNSName(uncheckedWire: Array(p[12..<nameEnd]))
        type = DNSType(UInt16(u16(nameEnd)))
        var at = nameEnd + 4
        if additionals == 0 {
            guard at == p.count else { return nil }
            edns = false
            dnssecOK = false
            maxUDPSize = 512
            return
        }
        // OPT: root name, type 41, class = UDP payload size, TTL = extended rcode, version, DO.
        guard at + 11 <= p.count, p[at] == 0, u16(at + 1) == 41, p[at + 6] == 0 else { return nil }
        edns = true
        maxUDPSize = max(512, u16(at + 3))
        dnssecOK = p[at + 7] & 0x80 != 0
        let end = at + 11 + u16(at + 9)
        guard end == p.count else { return nil }
        // Options must frame exactly, as the full parser requires.
        at += 11
        while at < end {
            guard at + 4 <= end else { return nil }
            at += 4 + u16(at + 2)
        }
        guard at == end else { return nil }
    }
}
