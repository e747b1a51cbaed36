import NIOHTTP1

/// `GET :8080/health` answers 200 "OK" while the process runs; with `lameduck D` the server
/// keeps answering (DNS and health) for D after it is told to stop, so a rolling update
/// never sends queries to a process that has already closed its sockets.
public final class HealthPlugin: DNSPlugin {
    public let name = "health"
    public let address: String
    public let lameduck: Duration
    let shared: SharedPlugins
    let metrics: DNSMetrics

    public init(address: String, lameduck: Duration, shared: SharedPlugins, metrics: DNSMetrics) {
        self.address = address
        self.lameduck = lameduck
        self.shared = shared
        self.metrics = metrics
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        var lameduck = Duration.zero
        for sub in d.block {
            guard sub.name == "lameduck", let v = sub.args.first.flatMap(parseDuration) else {
                throw PluginSetupError("health", line: sub.line, "unknown property '\(sub.name)' or bad duration")
            }
            lameduck = v
        }
        guard d.args.count <= 1 else { throw PluginSetupError("health", line: d.line, "health takes at most one address") }
        return HealthPlugin(address: d.args.first ?? ":8080", lameduck: lameduck, shared: s.shared, metrics: s.metrics)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }

    public func start(_ context: PluginContext) async throws {
        let metrics = self.metrics
        try await shared.serve(address: address, path: "/health") {
            let started = ContinuousClock.now
            defer {
                let (s, atto) = (ContinuousClock.now - started).components
                metrics.histogram("coredns_health_request_duration_seconds", [], buckets: DNSMetrics.durationBuckets,
                                  help: "Histogram of the time (in seconds) each request took.")
                    .record(Double(s) + Double(atto) / 1e18)
            }
            return (.ok, "text/plain; charset=utf-8", Array("OK".utf8))
        }
    }
}
