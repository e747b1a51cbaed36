import Prometheus
import Synchronization

/// CoreDNS's metrics, by CoreDNS's names and labels, in one swift-prometheus registry per
/// process (the prometheus plugin serves it).
///
/// Collectors are looked up once per label set and kept: the registry's own lookup builds
/// label arrays and takes its lock, which is too slow for every query.
public final class DNSMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// The per-query counters and histograms, outside the registry (see `QueryMetricsTable`).
    public let perQuery = QueryMetricsTable()
    private let counters = Mutex<[[String]: Counter]>([:])
    private let histograms = Mutex<[[String]: ValueHistogram]>([:])
    private let gauges = Mutex<[[String]: Gauge]>([:])

    /// CoreDNS's request-duration buckets: 0.25 ms doubling 16 times.
    static let durationBuckets: [Double] = (0..<16).map { 0.00025 * Double(1 << $0) }
    static let sizeBuckets: [Double] = [0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16e3, 32e3, 48e3, 64e3]

    public init() {}

    public func counter(_ name: String, _ labels: [(String, String)], help: String = "") -> Counter {
        let key = [name] + labels.flatMap { [$0.0, $0.1] }
        if let c = counters.withLock({ $0[key] }) { return c }
        let c = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        counters.withLock { $0[key] = c }
        return c
    }

    public func gauge(_ name: String, _ labels: [(String, String)], help: String = "") -> Gauge {
        let key = [name] + labels.flatMap { [$0.0, $0.1] }
        if let g = gauges.withLock({ $0[key] }) { return g }
        let g = registry.makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        gauges.withLock { $0[key] = g }
        return g
    }

    public func histogram(_ name: String, _ labels: [(String, String)], buckets: [Double], help: String = "") -> ValueHistogram {
        let key = [name] + labels.flatMap { [$0.0, $0.1] }
        if let h = histograms.withLock({ $0[key] }) { return h }
        let h = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels, buckets: buckets)
        histograms.withLock { $0[key] = h }
        return h
    }

    /// The text `/metrics` serves: the registry's families, then the per-query ones.
    public func exposition() -> [UInt8] {
        var out = registry.emitToBuffer()
        perQuery.emit(into: &out)
        return out
    }

    /// The `type` label: the common types by name, everything else `other`.
    public static func typeLabel(_ t: DNSType) -> String {
        switch t {
        case .a, .aaaa, .mx, .soa, .cname, .ptr, .txt, .ns, .srv, .ds, .dnskey, .rrsig, .nsec, .nsec3, .https, .ixfr, .axfr, .any:
            t.description
        default:
            "other"
        }
    }
}

/// The metrics every query updates: requests_total and responses_total, and the request
/// duration, request size and response size histograms, in one table under one lock.
///
/// swift-prometheus's histogram takes a lock and walks all of its buckets for each
/// observation, and its counters are one atomic each: three histograms and two counters per
/// query were a fifth of the answer path's time on a cache hit. Here a query's five updates
/// are one lock and a bucket index per histogram; the counts are made cumulative only when
/// `/metrics` is read. Output as the Prometheus text format, as CoreDNS's Go client writes it
/// (`le="100"`, not `100.0`), after the registry's families.
public final class QueryMetricsTable: Sendable {
    struct Family {
        let name: String
        let help: String
        /// Nil for a counter.
        let bounds: [Double]?
    }

    struct Series {
        let family: Int
        /// Rendered `name="value",...`.
        let labels: String
    }

    /// Where a query's update goes: plain integers, so reading one per update retains nothing
    /// (a `Series` copy would retain its label text and bounds, several times per query).
    struct Slot {
        /// Where its counts start in `State.counts`: one for a counter; for a histogram one per
        /// bucket, not cumulative, the last above every bound (+Inf).
        let offset: Int
        /// Its bounds in `State.bounds`.
        let boundsStart: Int
        let boundsCount: Int
    }

    struct State {
        var families: [Family] = []
        var series: [Series] = []
        var slots: [Slot] = []
        /// Every histogram series' bounds, one after another.
        var bounds: [Double] = []
        var index: [String: Int] = [:]
        var counts: [Int] = []
        /// Per series (histograms only use theirs).
        var sums: [Double] = []
    }

    /// The five series one query updates.
    public struct QuerySeries: Sendable {
        public var requests: Int
        public var responses: Int
        public var duration: Int
        public var requestSize: Int
        public var responseSize: Int
    }

    let state = Mutex(State())

    public init() {}

    /// A counter series for a family and label set, made on first use.
    public func counter(_ name: String, _ labels: [(String, String)], help: String) -> Int {
        series(name, labels, bounds: nil, help: help)
    }

    /// A histogram series for a family and label set, made on first use.
    public func histogram(_ name: String, _ labels: [(String, String)], bounds: [Double], help: String) -> Int {
        series(name, labels, bounds: bounds, help: help)
    }

    func series(_ name: String, _ labels: [(String, String)], bounds: [Double]?, help: String) -> Int {
        let rendered = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
        let key = name + "{" + rendered
        return state.withLock { s in
            if let i = s.index[key] { return i }
            let family: Int
            if let f = s.families.firstIndex(where: { $0.name == name }) {
                family = f
            } else {
                s.families.append(Family(name: name, help: help, bounds: bounds))
                family = s.families.count - 1
            }
            let familyBounds = s.families[family].bounds
            s.series.append(Series(family: family, labels: rendered))
            s.slots.append(Slot(offset: s.counts.count, boundsStart: s.bounds.count, boundsCount: familyBounds?.count ?? 0))
            s.bounds += familyBounds ?? []
            s.counts += Array(repeating: 0, count: familyBounds.map { $0.count + 1 } ?? 1)
            s.sums.append(0)
            s.index[key] = s.series.count - 1
            return s.series.count - 1
        }
    }

    /// One query: its two counters and three observations.
    public func record(_ q: QuerySeries, seconds: Double, requestSize: Double, responseSize: Double) {
        state.withLock { s in
            s.counts[s.slots[q.requests].offset] += 1
            s.counts[s.slots[q.responses].offset] += 1
            s.observe(q.duration, seconds)
            s.observe(q.requestSize, requestSize)
            s.observe(q.responseSize, responseSize)
        }
    }

    func emit(into out: inout [UInt8]) {
        let s = state.withLock { $0 }
        for (f, family) in s.families.enumerated() {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) \(family.bounds == nil ? "counter" : "histogram")\n".utf8
            for (i, series) in s.series.enumerated() where series.family == f {
                let braced = series.labels.isEmpty ? "" : "{\(series.labels)}"
                guard let bounds = family.bounds else {
                    out += "\(family.name)\(braced) \(s.counts[s.slots[i].offset])\n".utf8
                    continue
                }
                let sep = series.labels.isEmpty ? "" : ","
                var cumulative = 0
                for (b, bound) in bounds.enumerated() {
                    cumulative += s.counts[s.slots[i].offset + b]
                    out += "\(family.name)_bucket{\(series.labels)\(sep)le=\"\(Self.number(bound))\"} \(cumulative)\n".utf8
                }
                cumulative += s.counts[s.slots[i].offset + bounds.count]
                out += "\(family.name)_bucket{\(series.labels)\(sep)le=\"+Inf\"} \(cumulative)\n".utf8
                out += "\(family.name)_sum\(braced) \(Self.number(s.sums[i]))\n".utf8
                out += "\(family.name)_count\(braced) \(cumulative)\n".utf8
            }
        }
    }

    /// Go's shortest form: whole numbers without `.0`.
    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return v.description
    }

    /// A label value as the text format quotes it.
    static func escaped(_ v: String) -> String {
        var out = ""
        for c in v {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }
}

extension QueryMetricsTable.State {
    mutating func observe(_ index: Int, _ value: Double) {
        let slot = slots[index]
        var b = 0
        while b < slot.boundsCount, value > bounds[slot.boundsStart + b] { b += 1 }
        counts[slot.offset + b] += 1
        sums[index] += value
    }
}
