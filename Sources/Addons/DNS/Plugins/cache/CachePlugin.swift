import Prometheus
import Synchronization

/// Keeps answers for their TTL (capped), positive and negative ones apart, with CoreDNS's
/// cache metrics. Answers served from the cache have their TTLs counted down.
public final class CachePlugin: DNSPlugin {
    public let name = "cache"

    public struct Config: Sendable {
        public var maxTTL: UInt32 = 3600
        public var zones: [DNSName] = [.root]
        public var successCapacity = 9984
        public var denialCapacity = 9984
        public var successMinTTL: UInt32 = 5
        public var denialMinTTL: UInt32 = 5
        public var denialMaxTTL: UInt32 = 1800
        public var servfailTTL: UInt32 = 5
        public init() {}
    }

    struct Key: Hashable {
        var name: DNSName
        var type: UInt16
        var dnssecOK: Bool
        var checkingDisabled: Bool
        /// Whether the query had EDNS: the answer then carries an OPT record.
        var edns: Bool
    }

    /// A class, so a hit costs one retain instead of copying the message's arrays.
    final class Entry: Sendable {
        /// The answer as a hit hands it on, with its wire form (sent with only the id, RD, the
        /// name's case and the TTLs patched).
        let response: DNSResponse
        let stored: ContinuousClock.Instant
        let ttl: UInt32

        init(response: DNSResponse, stored: ContinuousClock.Instant, ttl: UInt32) {
            self.response = response
            self.stored = stored
            self.ttl = ttl
        }
    }

    struct Tables {
        var success: [Key: Entry] = [:]
        var denial: [Key: Entry] = [:]

        subscript(table: Table) -> [Key: Entry] {
            get { table == .success ? success : denial }
            _modify {
                if table == .success { yield &success } else { yield &denial }
            }
        }
    }

    public let config: Config
    enum Table: String { case success, denial }
    let tables = Mutex(Tables())
    let metrics: DNSMetrics?
    let serverLabel: String
    let zonesLabel: String
    /// The clock, for tests; nil: the time the query arrived, which the dispatcher has read.
    let now: (@Sendable () -> ContinuousClock.Instant)?

    /// The per-query counters, made once. A class: the query path reads them through one
    /// reference instead of copying (retaining) four.
    final class Counters: Sendable {
        let requests: Counter
        let misses: Counter
        let successHits: Counter
        let denialHits: Counter

        init(requests: Counter, misses: Counter, successHits: Counter, denialHits: Counter) {
            self.requests = requests
            self.misses = misses
            self.successHits = successHits
            self.denialHits = denialHits
        }
    }
    let counters: Counters?

    public init(config: Config, metrics: DNSMetrics?, serverLabel: String, now: (@Sendable () -> ContinuousClock.Instant)? = nil) {
        self.config = config
        self.metrics = metrics
        self.serverLabel = serverLabel
        let zonesLabel = config.zones.map(\.description).joined(separator: ",")
        self.zonesLabel = zonesLabel
        self.now = now
        counters = metrics.map { m in
            func labels(_ type: String?) -> [(String, String)] {
                [("server", serverLabel)] + (type.map { [("type", $0)] } ?? []) + [("zones", zonesLabel), ("view", "")]
            }
            return Counters(
                requests: m.counter("coredns_cache_requests_total", labels(nil), help: "The count of cache requests."),
                misses: m.counter("coredns_cache_misses_total", labels(nil), help: "The count of cache misses. Deprecated, derive misses from cache hits/requests counters."),
                successHits: m.counter("coredns_cache_hits_total", labels("success"), help: "The count of cache hits."),
                denialHits: m.counter("coredns_cache_hits_total", labels("denial"), help: "The count of cache hits."))
        }
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        var c = Config()
        var args = d.args[...]
        if let first = args.first, let ttl = UInt32(first) {
            c.maxTTL = ttl
            c.denialMaxTTL = min(ttl, c.denialMaxTTL)
            args = args.dropFirst()
        }
        if !args.isEmpty { c.zones = args.compactMap { DNSName($0) } }
        for sub in d.block {
            switch sub.name {
            case "success", "denial":
                guard let cap = sub.args.first.flatMap(Int.init), cap > 0 else {
                    throw PluginSetupError("cache", line: sub.line, "\(sub.name) needs a capacity")
                }
                let ttl = sub.args.count > 1 ? UInt32(sub.args[1]) : nil
                let minTTL = sub.args.count > 2 ? UInt32(sub.args[2]) : nil
                if sub.name == "success" {
                    c.successCapacity = cap
                    if let ttl { c.maxTTL = ttl }
                    if let minTTL { c.successMinTTL = minTTL }
                } else {
                    c.denialCapacity = cap
                    if let ttl { c.denialMaxTTL = ttl }
                    if let minTTL { c.denialMinTTL = minTTL }
                }
            case "servfail":
                c.servfailTTL = sub.args.first.flatMap(parseDuration).map { UInt32($0.components.seconds) } ?? 5
            case "prefetch", "serve_stale", "disable", "keepttl":
                continue
            default:
                throw PluginSetupError("cache", line: sub.line, "unknown property '\(sub.name)'")
            }
        }
        return CachePlugin(config: c, metrics: s.metrics, serverLabel: s.serverLabel)
    }

    /// Whether this cache keeps answers for `name` (its zones).
    func covers(_ name: DNSName) -> Bool { config.zones.contains(where: { name.isSubdomain(of: $0) }) }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        let q = request.question
        guard covers(q.name) else { return next(request) }
        let key = Key(name: q.name, type: q.type.rawValue, dnssecOK: request.message.edns?.dnssecOK ?? false,
                      checkingDisabled: request.message.checkingDisabled, edns: request.message.edns != nil)
        counters?.requests.increment()
        let t = now?() ?? request.received
        if let (hit, age) = lookup(key, at: t) {
            // The stored message as it is: the dispatcher writes it with this asker's id and question.
            var response = hit.response
            response.ttlAge = age
            return .done(response)
        }
        counters?.misses.increment()
        return next(request).map { [self] response in
            store(key, response.message, at: t)
            return response
        }
    }

    /// The live entry for `key` and its age in seconds (its TTLs are counted down by that
    /// when written); an expired one is dropped.
    func lookup(_ key: Key, at t: ContinuousClock.Instant) -> (Entry, UInt32)? {
        guard let (entry, table, age) = stored(key, at: t) else { return nil }
        guard age < entry.ttl else {
            // Unless another query has stored a fresh answer meanwhile.
            tables.withLock { tables in
                if tables[table][key] === entry { tables[table][key] = nil }
            }
            return nil
        }
        if table == .success { counters?.successHits.increment() } else { counters?.denialHits.increment() }
        return (entry, age)
    }

    /// The live entry for `key`, its table and age, touching nothing: what `CacheShortcut`
    /// checks before it commits to answering (then `countHit`). An expired entry is left for
    /// the whole path's `lookup` to drop.
    func peek(_ key: Key, at t: ContinuousClock.Instant) -> (Entry, Table, UInt32)? {
        guard let found = stored(key, at: t), found.2 < found.0.ttl else { return nil }
        return found
    }

    /// The entry for `key`, live or not, its table and age.
    private func stored(_ key: Key, at t: ContinuousClock.Instant) -> (Entry, Table, UInt32)? {
        // The lock covers only the dictionary reads: a hit, the common case, changes nothing.
        // A key is in one table at most: it is stored only after a miss, and a miss drops the
        // expired entry it found.
        let found = tables.withLock { tables -> (Entry, Table)? in
            if let e = tables.success[key] { return (e, .success) }
            if let e = tables.denial[key] { return (e, .denial) }
            return nil
        }
        guard let (entry, table) = found else { return nil }
        return (entry, table, UInt32(max(0, (t - entry.stored).components.seconds)))
    }

    /// Counts a hit answered by `CacheShortcut`, as `serve` counts one.
    func countHit(_ table: Table) {
        guard let counters else { return }
        counters.requests.increment()
        if table == .success { counters.successHits.increment() } else { counters.denialHits.increment() }
    }

    func store(_ key: Key, _ m: DNSMessage, at t: ContinuousClock.Instant) {
        // Truncated answers are not complete; other failures are not worth keeping long.
        guard !m.truncated else { return }
        let isDenial = m.rcode == .nameError || (m.rcode == .noError && m.answers.isEmpty)
        var ttl: UInt32
        switch m.rcode {
        case .noError, .nameError:
            let records = isDenial ? m.authorities : m.answers
            let least = records.map(\.ttl).min() ?? (isDenial ? config.denialMinTTL : config.successMinTTL)
            ttl = isDenial ? min(max(least, config.denialMinTTL), config.denialMaxTTL)
                           : min(max(least, config.successMinTTL), config.maxTTL)
        case .serverFailure:
            ttl = config.servfailTTL
        default:
            return
        }
        guard ttl > 0 else { return }
        let table: Table = isDenial || m.rcode == .serverFailure ? .denial : .success
        let capacity = table == .success ? config.successCapacity : config.denialCapacity
        let (size, evicted) = tables.withLock { tables -> (Int, Bool) in
            var evicted = false
            if tables[table][key] == nil, tables[table].count >= capacity, let victim = tables[table].keys.randomElement() {
                // CoreDNS evicts a random entry when full.
                tables[table][victim] = nil
                evicted = true
            }
            var capped = m
            // As CoreDNS's cache: hits are marked authoritative (some clients drop a whole
            // non-authoritative answer); the first, passed-through answer keeps its flags.
            capped.authoritative = true
            let cap = { (r: DNSRecord) -> DNSRecord in
                var r = r
                r.ttl = min(r.ttl, ttl)
                return r
            }
            capped.answers = m.answers.map(cap)
            capped.authorities = m.authorities.map(cap)
            capped.additionals = m.additionals.map(cap)
            let response = DNSResponse(message: capped, plugin: name, wire: capped.wireAnswer())
            tables[table][key] = Entry(response: response, stored: t, ttl: ttl)
            return (tables[table].count, evicted)
        }
        if evicted { count("coredns_cache_evictions_total", table.rawValue) }
        metrics?.gauge("coredns_cache_entries", [("server", serverLabel), ("type", table.rawValue), ("zones", zonesLabel), ("view", "")],
                       help: "The number of elements in the cache.").set(Int64(size))
    }

    func count(_ metric: String, _ type: String?) {
        guard let metrics else { return }
        var labels = [("server", serverLabel)]
        if let type { labels.append(("type", type)) }
        labels += [("zones", zonesLabel), ("view", "")]
        metrics.counter(metric, labels).increment()
    }

    public var entryCount: (success: Int, denial: Int) {
        tables.withLock { ($0.success.count, $0.denial.count) }
    }
}
