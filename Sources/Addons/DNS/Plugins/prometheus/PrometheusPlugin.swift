import Prometheus
import Synchronization

/// Records CoreDNS's request and response metrics for its server block and serves the
/// process's metrics at `/metrics` on its address (default `localhost:9153`).
///
/// A query's five series are found once per kind of query (zone, type, transport, family,
/// rcode, answering plugin) and kept here under an integer key, so a query costs one lookup
/// and one locked update of the metrics' `QueryMetricsTable`, with no label arrays, string
/// hashing or reference counting.
public final class PrometheusPlugin: DNSPlugin, ShortcutObserver {
    struct Collectors {
        var series: [UInt64: QueryMetricsTable.QuerySeries] = [:]
        var pluginNames: [String] = []

        mutating func pluginIndex(_ name: String) -> UInt64 {
            if let i = pluginNames.firstIndex(of: name) { return UInt64(i) }
            pluginNames.append(name)
            return UInt64(pluginNames.count - 1)
        }
    }
    let collectors = Mutex(Collectors())

    public let name = "prometheus"
    public let address: String
    let metrics: DNSMetrics
    let shared: SharedPlugins
    let zones: [DNSName]
    let serverLabel: String

    public init(address: String, metrics: DNSMetrics, shared: SharedPlugins, zones: [DNSName], serverLabel: String) {
        self.address = address
        self.metrics = metrics
        self.shared = shared
        self.zones = zones
        self.serverLabel = serverLabel
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.count <= 1 else { throw PluginSetupError("prometheus", line: d.line, "prometheus takes at most one address") }
        return PrometheusPlugin(address: d.args.first ?? "localhost:9153", metrics: s.metrics, shared: s.shared, zones: s.zones,
                                serverLabel: s.serverLabel)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }

    public func written(_ request: DNSRequest, _ response: DNSResponse, size: Int, duration: Duration) {
        record(Exchange(zone: request.zone, type: request.question.type, transport: request.transport, isIPv6: request.isIPv6,
                        requestSize: request.size), response, size: size, duration: duration)
    }

    public func written(_ exchange: ShortcutExchange, size: Int, duration: Duration) {
        record(Exchange(zone: exchange.zone, type: exchange.type, transport: exchange.transport, isIPv6: exchange.isIPv6,
                        requestSize: exchange.requestSize), exchange.response, size: size, duration: duration)
    }

    /// What the series of a query depend on, however it was answered.
    struct Exchange {
        var zone: DNSName
        var type: DNSType
        var transport: DNSTransport
        var isIPv6: Bool
        var requestSize: Int
    }

    func record(_ e: Exchange, _ response: DNSResponse, size: Int, duration: Duration) {
        let (whole, atto) = duration.components
        let seconds = Double(whole) + Double(atto) / 1e18
        let family: UInt64 = e.isIPv6 ? 1 : 0
        let zoneIndex = UInt64(zones.count > 1 ? (zones.firstIndex(of: e.zone) ?? 0) : 0)
        let rcode = response.message.rcode
        let series = collectors.withLock { t in
            t.series[Self.key(e, zoneIndex: zoneIndex, rcode: rcode, plugin: t.pluginIndex(response.plugin), family: family)]
        } ?? makeSeries(e, response, family: family, zoneIndex: zoneIndex)
        metrics.perQuery.record(series, seconds: seconds, requestSize: Double(e.requestSize), responseSize: Double(size))
    }

    static func key(_ e: Exchange, zoneIndex: UInt64, rcode: DNSRcode, plugin: UInt64, family: UInt64) -> UInt64 {
        zoneIndex << 48 | UInt64(rcode.rawValue) << 36 | plugin << 20 | UInt64(e.type.rawValue) << 2
            | (e.transport == .tcp ? 2 : 0) | family
    }

    /// The first query of its kind: its series, by CoreDNS's names and labels.
    func makeSeries(_ e: Exchange, _ response: DNSResponse, family: UInt64, zoneIndex: UInt64) -> QueryMetricsTable.QuerySeries {
        let table = metrics.perQuery
        let zone = e.zone.description
        let type = DNSMetrics.typeLabel(e.type)
        let proto = e.transport.label
        let rcode = response.message.rcode
        let made = QueryMetricsTable.QuerySeries(
            requests: table.counter("coredns_dns_requests_total",
                                    [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto),
                                     ("family", family == 1 ? "2" : "1"), ("type", type)],
                                    help: "Counter of DNS requests made per zone, protocol and family."),
            responses: table.counter("coredns_dns_responses_total",
                                     [("server", serverLabel), ("zone", zone), ("view", ""),
                                      ("rcode", rcode.description), ("plugin", response.plugin)],
                                     help: "Counter of response status codes."),
            duration: table.histogram("coredns_dns_request_duration_seconds",
                                      [("server", serverLabel), ("zone", zone), ("view", ""), ("type", type)],
                                      bounds: DNSMetrics.durationBuckets,
                                      help: "Histogram of the time (in seconds) each request took per zone."),
            requestSize: table.histogram("coredns_dns_request_size_bytes",
                                         [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto)],
                                         bounds: DNSMetrics.sizeBuckets,
                                         help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol."),
            responseSize: table.histogram("coredns_dns_response_size_bytes",
                                          [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto)],
                                          bounds: DNSMetrics.sizeBuckets, help: "Size of the returned response in bytes."))
        collectors.withLock { t in
            t.series[Self.key(e, zoneIndex: zoneIndex, rcode: rcode, plugin: t.pluginIndex(response.plugin), family: family)] = made
        }
        return made
    }

    public func start(_ context: PluginContext) async throws {
        metrics.gauge("coredns_build_info", [("version", DNSVersion.coreDNSCompatible), ("revision", DNSVersion.revision),
                                             ("goversion", DNSVersion.runtime)],
                      help: "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.")
            .set(Int64(1))
        for zone in zones {
            metrics.gauge("coredns_plugin_enabled", [("server", serverLabel), ("zone", zone.description), ("view", ""), ("name", "prometheus")],
                          help: "A metric that indicates whether a plugin is enabled on per server and zone basis.").set(Int64(1))
        }
        metrics.counter("coredns_panics_total", [], help: "A metrics that counts the number of panics.").increment(by: Int64(0))
        let metrics = metrics
        try await shared.serve(address: address, path: "/metrics") {
            (.ok, "text/plain; version=0.0.4; charset=utf-8", metrics.exposition())
        }
    }
}

/// What the add-on says it is (start-up lines, build_info).
public enum DNSVersion {
    public static let coreDNSCompatible = "1.11.1"
    public static let revision = "labnode"
    public static let runtime = "swift6"
}
