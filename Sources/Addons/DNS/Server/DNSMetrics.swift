import Prometheus
import Synchronization

/// CoreDNS's metrics, by CoreDNS's names and labels, in one swift-prometheus registry per
/// process (the prometheus plugin serves it).
///
/// Collectors are looked up once per label set and kept: the registry's own lookup builds
/// label arrays and takes its lock, which is too slow for every query.
public final class DNSMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    /// The per-query histograms, outside the registry (see `HistogramTable`).
    public let queryHistograms = HistogramTable()
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

    /// The text `/metrics` serves: the registry's families, then the per-query histograms.
    public func exposition() -> [UInt8] {
        var out = registry.emitToBuffer()
        queryHistograms.emit(into: &out)
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

/// The histograms every query updates (request duration, request size, response size), in one
/// table under one lock.
///
/// swift-prometheus's histogram takes a lock and walks all of its buckets for each
/// observation; three of them per query cost a fifth of the answer path's time on a cache hit.
/// Here a query's three observations are one lock and a bucket index each; the counts are
/// made cumulative only when `/metrics` is read. Output as the Prometheus text format, as
/// CoreDNS's Go client writes it (`le="100"`, not `100.0`).
public final class HistogramTable: Sendable {
    struct Family {
        let name: String
        let help: String
        let bounds: [Double]
    }

    struct Series {
        let family: Int
        /// Rendered `name="value",...`.
        let labels: String
        /// Per bucket, not cumulative; the last one is above every bound (+Inf).
        var counts: [Int]
        var sum: Double = 0
    }

    struct State {
        var families: [Family] = []
        var series: [Series] = []
        var index: [String: Int] = [:]
    }

    let state = Mutex(State())

    public init() {}

    /// The series for a family and label set, made on first use: what `observe` takes.
    public func series(_ name: String, _ labels: [(String, String)], bounds: [Double], help: String) -> Int {
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
            s.series.append(Series(family: family, labels: rendered, counts: Array(repeating: 0, count: s.families[family].bounds.count + 1)))
            s.index[key] = s.series.count - 1
            return s.series.count - 1
        }
    }

    /// One query's three observations.
    public func observe(_ a: (series: Int, value: Double), _ b: (series: Int, value: Double), _ c: (series: Int, value: Double)) {
        state.withLock { s in
            s.record(a)
            s.record(b)
            s.record(c)
        }
    }

    func emit(into out: inout [UInt8]) {
        let s = state.withLock { $0 }
        for (f, family) in s.families.enumerated() {
            out += "# HELP \(family.name) \(family.help)\n# TYPE \(family.name) histogram\n".utf8
            for series in s.series where series.family == f {
                let sep = series.labels.isEmpty ? "" : ","
                var cumulative = 0
                for (i, bound) in family.bounds.enumerated() {
                    cumulative += series.counts[i]
                    out += "\(family.name)_bucket{\(series.labels)\(sep)le=\"\(Self.number(bound))\"} \(cumulative)\n".utf8
                }
                cumulative += series.counts[family.bounds.count]
                out += "\(family.name)_bucket{\(series.labels)\(sep)le=\"+Inf\"} \(cumulative)\n".utf8
                let braced = series.labels.isEmpty ? "" : "{\(series.labels)}"
                out += "\(family.name)_sum\(braced) \(Self.number(series.sum))\n".utf8
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

extension HistogramTable.State {
    mutating func record(_ o: (series: Int, value: Double)) {
        let bounds = families[series[o.series].family].bounds
        var b = 0
        while b < bounds.count, o.value > bounds[b] { b += 1 }
        series[o.series].counts[b] += 1
        series[o.series].sum += o.value
    }
}
