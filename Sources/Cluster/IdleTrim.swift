import APIServer
import Addons
import Logging
import ServiceLifecycle

/// Gives memory back once the API has had no request for `quiet` (30 s): what serving
/// kubectl brought in (the code of discovery, OpenAPI, apply, tables, ...) is not needed to sit
/// idle. `MemoryTrim.whileIdle`: unlike the trim after start-up it evicts nothing from the page
/// cache, so the code comes back on first use as minor faults, not disk reads. Once per quiet
/// period, not again until a request has come.
struct IdleTrim: Service {
    let activity: RequestActivity
    /// Awaited before watching: start-up ends with a trim of its own.
    let startAfter: @Sendable () async -> Void
    let logger: Logger
    var quiet: Duration = .seconds(30)
    var period: Duration = .seconds(5)

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await startAfter()
            var decision = MemoryTrim.QuietSpell(quiet: quiet, count: activity.requests, at: .now)
            while !Task.isCancelled {
                try await Task.sleep(for: period)
                guard decision.look(count: activity.requests, at: .now) else { continue }
                let report = MemoryTrim.whileIdle()
                logger.info("idle: memory given back", metadata: ["unmappedMB": "\(report.unmappedBytes >> 20)"])
            }
        }
    }
}
