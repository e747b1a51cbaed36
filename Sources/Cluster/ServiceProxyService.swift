import APIServer
import Logging
import ServiceLifecycle
import ServiceProxy

/// Runs the service proxy once the node agent has made the pod bridge (the service range is
/// routed through it), and removes its rules on shutdown. It ends the start-up progress.
struct ServiceProxyService: Service {
    let config: ClusterConfig
    let api: APIService
    let startAfter: @Sendable () async -> Bool
    let progress: ProgressReporter
    /// Called after the first sync, or when the proxy will not sync at all (pods wait for it).
    let onSynced: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        defer { onSynced() }
        // A service that returns would stop the whole group: wait for shutdown instead.
        guard await startAfter() else {
            // No node agent, so no bridge to route through: start-up is over for the proxy.
            progress.states?.set("kube-proxy", "failed", "the node agent did not start")
            progress.finish()
            try? await gracefulShutdown()
            return
        }
        guard let mode = ServiceProxyRunner.Mode(rawValue: config.proxyMode) else {
            // ClusterConfig.validate refuses other modes; this is only a safety net.
            fail("--proxy-mode \(config.proxyMode) cannot run here")
            try? await gracefulShutdown()
            return
        }
        var settings = ProxySettings(nodeName: config.nodeName, clusterCIDR: config.clusterCIDR,
                                     serviceCIDR: config.serviceClusterIPRange)
        settings.localhostNodePorts = config.localhostNodePorts ?? false
        let runner: ServiceProxyRunner
        do {
            runner = try ServiceProxyRunner(settings: settings, mode: mode, bridge: "cni0", stateDirectory: config.dataDir + "/network",
                                            client: api, logger: logger, nodeIP: config.nodeIP)
        } catch {
            fail("\(error)")
            try? await gracefulShutdown()
            return
        }
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await runner.run {
                            onSynced()
                            progress.ready("kube-proxy", mode.rawValue)
                            progress.finish()
                        }
                    }
                    group.addTask {
                        // A port taken by something else costs only this endpoint, not the proxy.
                        do {
                            try await ProxyMetricsServer(mode: config.proxyMode, port: ProxyMetricsServer.defaultPort, logger: logger,
                                                   metrics: runner.metrics).run()
                        } catch is CancellationError {
                        } catch {
                            logger.warning("kube-proxy metrics port 127.0.0.1:\(ProxyMetricsServer.defaultPort) is not served: \(error)")
                        }
                        // Stay in the group until the proxy ends; only the runner ending ends the group.
                        try await Task.sleep(for: .seconds(100 * 365 * 86_400))
                    }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
        } catch {
            fail("\(error)")
            try? await gracefulShutdown()
        }
        await runner.cleanup()
    }

    func fail(_ message: String) {
        logger.error("the service proxy stopped: \(message)")
        progress.fail("kube-proxy", "service proxy: \(message)")
        progress.finish()
    }
}
