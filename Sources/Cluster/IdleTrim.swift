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

    /// When to trim, decided from the request count seen at each look.
    struct Decision {
        let quiet: Duration
        var seen: Int
        var lastChange: ContinuousClock.Instant
        var trimmed = false

        init(quiet: Duration, requests: Int, at now: ContinuousClock.Instant) {
            self.quiet = quiet
            seen = requests
            lastChange = now
        }

        /// True when this look should trim: no request for `quiet`, and none trimmed since.
        mutating func look(requests: Int, at now: ContinuousClock.Instant) -> Bool {
            if requests != seen {
                (seen, lastChange, trimmed) = (requests, now, false)
                return false
            }
            guard !trimmed, now - lastChange >= quiet else { return false }
            trimmed = true
            return true
        }
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            await startAfter()
            var decision = Decision(quiet: quiet, requests: activity.requests, at: .now)
            while !Task.isCancelled {
                try await Task.sleep(for: period)
                guard decision.look(requests: activity.requests, at: .now) else { continue }
                let report = MemoryTrim.whileIdle()
                logger.info("idle: memory given back", metadata: ["unmappedMB": "\(report.unmappedBytes >> 20)"])
            }
        }
    }
}
