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
    var trim: @Sendable () -> MemoryTrim.Report = { MemoryTrim.whileIdle() }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await startAfter()
            var seen = activity.requests
            var lastChange = ContinuousClock.now
            var trimmed = false
            while !Task.isCancelled {
                try await Task.sleep(for: period)
                let now = activity.requests
                if now != seen {
                    (seen, lastChange, trimmed) = (now, .now, false)
                } else if !trimmed && ContinuousClock.now - lastChange >= quiet {
                    trimmed = true
                    let report = trim()
                    logger.info("idle: memory given back", metadata: ["unmappedMB": "\(report.unmappedBytes >> 20)"])
                }
            }
        }
    }
}
