import Hummingbird
import Logging
import Prometheus

/// kube-proxy's metrics port (127.0.0.1:10249, its --metrics-bind-address default):
/// `/proxyMode` names the mode, `/healthz` and `/livez` answer while the proxy runs, and
/// `/metrics` has kube-proxy's sync metrics. Course material checks the mode with
/// `curl localhost:10249/proxyMode`, so it answers the same here.
struct ProxyMetricsServer: Sendable {
    static let defaultPort = 10249
    let mode: String
    let port: Int
    let logger: Logger
    let metrics: PrometheusCollectorRegistry

    func run() async throws {
        let router = Router()
        let mode = self.mode
        router.get("proxyMode") { _, _ in mode }
        router.get("healthz") { _, _ in "ok" }
        router.get("livez") { _, _ in "ok" }
        let metrics = self.metrics
        router.get("metrics") { _, _ in
            var text: [UInt8] = []
            metrics.emit(into: &text)
            return String(decoding: text, as: UTF8.self)
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: nil),
                              logger: logger)
        try await app.run()
    }
}
