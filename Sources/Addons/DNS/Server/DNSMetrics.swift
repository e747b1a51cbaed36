import Prometheus
import Synchronization

/// CoreDNS's metrics, by CoreDNS's names and labels, in one swift-prometheus registry per
/// process (the prometheus plugin serves it).
///
/// Collectors are looked up once per label set and kept: the registry's own lookup builds
/// label arrays and takes its lock, which is too slow for every query.
public final class DNSMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
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
