import APIServer
import Addons
import Logging
import ServiceLifecycle

/// Gives memory back once the API has had no request for `quiet` (30 s): what serving
/// kubectl brought in (the code of discovery, OpenAPI, apply, tables, ...) is not needed to sit
/// idle. The same trim as after start-up (`MemoryTrim`); pages still in use come back on first
/// use, from the page cache, at the cost of a minor fault. Once per quiet period, not again
/// until a request has come.
struct IdleTrim: Service {
    let activity: RequestActivity
    /// Awaited before watching: start-up ends with a trim of its own.
    let startAfter: @Sendable () async -> Void
    let logger: Logger
    var quiet: Duration = .seconds(30)
    var period: Duration = .seconds(5)
    var trim: @Sendable () -> MemoryTrim.Report = { MemoryTrim.afterStartUp() }

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
                    logger.info("idle: memory given back", metadata: [
                        "pagedOutMB": "\(report.advisedBytes >> 20)", "unmappedMB": "\(report.unmappedBytes >> 20)"])
                }
            }
        }
    }
}
