import Prometheus
import Synchronization

/// Records CoreDNS's request and response metrics for its server block and serves the
/// process's metrics at `/metrics` on its address (default `localhost:9153`).
///
/// The collectors for each label set are found once and kept here under a small integer key,
/// so a query costs two atomic increments and one locked update of its three histograms, not
/// label arrays and string hashing.
public final class PrometheusPlugin: DNSPlugin, DNSObserver {
    /// A class: taking it out of the table is one retain. The three histograms are series of
    /// the metrics' `HistogramTable`, observed together under its one lock.
    final class RequestCollectors: Sendable {
        let requests: Counter
        let duration: Int
        let requestSize: Int
        let responseSize: Int

        init(requests: Counter, duration: Int, requestSize: Int, responseSize: Int) {
            self.requests = requests
            self.duration = duration
            self.requestSize = requestSize
            self.responseSize = responseSize
        }
    }
    /// Both tables under one lock. Responses are keyed by zone, rcode and the answering
    /// plugin's position in `pluginNames`, so no string is hashed per query.
    struct Collectors {
        var requests: [UInt32: RequestCollectors] = [:]
        var responses: [UInt64: Counter] = [:]
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
        let (s, atto) = duration.components
        let seconds = Double(s) + Double(atto) / 1e18
        let family: UInt32 = request.isIPv6 ? 1 : 0
        let zoneIndex = UInt32(zones.count > 1 ? (zones.firstIndex(of: request.zone) ?? 0) : 0)
        let key = zoneIndex << 18 | UInt32(request.question.type.rawValue) << 2 | (request.transport == .tcp ? 2 : 0) | family
        let rcode = response.message.rcode
        let (found, foundCounter, rkey) = collectors.withLock { t in
            let rkey = UInt64(zoneIndex) << 32 | UInt64(rcode.rawValue) << 16 | t.pluginIndex(response.plugin)
            return (t.requests[key], t.responses[rkey], rkey)
        }
        let histograms = metrics.queryHistograms
        let c = found ?? {
            let zone = request.zone.description
            let type = DNSMetrics.typeLabel(request.question.type)
            let proto = request.transport.label
            let made = RequestCollectors(
                requests: metrics.counter("coredns_dns_requests_total",
                                          [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto),
                                           ("family", family == 1 ? "2" : "1"), ("type", type)],
                                          help: "Counter of DNS requests made per zone, protocol and family."),
                duration: histograms.series("coredns_dns_request_duration_seconds",
                                            [("server", serverLabel), ("zone", zone), ("view", ""), ("type", type)],
                                            bounds: DNSMetrics.durationBuckets,
                                            help: "Histogram of the time (in seconds) each request took per zone."),
                requestSize: histograms.series("coredns_dns_request_size_bytes",
                                               [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto)],
                                               bounds: DNSMetrics.sizeBuckets,
                                               help: "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol."),
                responseSize: histograms.series("coredns_dns_response_size_bytes",
                                                [("server", serverLabel), ("zone", zone), ("view", ""), ("proto", proto)],
                                                bounds: DNSMetrics.sizeBuckets, help: "Size of the returned response in bytes."))
            collectors.withLock { $0.requests[key] = made }
            return made
        }()
        c.requests.increment()
        histograms.observe((c.duration, seconds), (c.requestSize, Double(request.size)), (c.responseSize, Double(size)))
        let counter = foundCounter ?? {
            let zone = request.zone.description
            let made = metrics.counter("coredns_dns_responses_total",
                                       [("server", serverLabel), ("zone", zone), ("view", ""),
                                        ("rcode", rcode.description), ("plugin", response.plugin)],
                                       help: "Counter of response status codes.")
            collectors.withLock { $0.responses[rkey] = made }
            return made
        }()
        counter.increment()
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
