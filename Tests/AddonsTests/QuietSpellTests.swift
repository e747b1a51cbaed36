import Testing
@testable import Addons

/// A trim comes once per quiet period, and not while the activity it follows keeps coming (the
/// daemon's API requests, the DNS add-on's index rebuilds).
/// The decision is fed instants, so a busy test machine cannot change the outcome.
@Suite struct QuietSpellTests {
    @Test func oncePerQuietPeriodAndNotWhileBusy() {
        let start = ContinuousClock.now
        func at(_ ms: Int) -> ContinuousClock.Instant { start + .milliseconds(ms) }
        var d = MemoryTrim.QuietSpell(quiet: .seconds(30), count: 0, at: at(0))
        func look(_ requests: Int, _ ms: Int) -> Bool { d.look(count: requests, at: at(ms)) }

        // Busy: a new request at every look (every 5 s) for two minutes.
        var requests = 0
        for t in stride(from: 5_000, through: 120_000, by: 5_000) {
            requests += 1
            #expect(!look(requests, t), "trimmed while busy at \(t) ms")
        }
        // Quiet: nothing until 30 s after the last request, then one trim, however long it lasts.
        #expect(!look(requests, 145_000))
        #expect(look(requests, 150_000))
        for t in stride(from: 155_000, through: 400_000, by: 5_000) {
            #expect(!look(requests, t), "trimmed twice in one quiet spell at \(t) ms")
        }
        // A request, then quiet again: one more.
        #expect(!look(requests + 1, 405_000))
        #expect(!look(requests + 1, 430_000))
        #expect(look(requests + 1, 435_000))
    }
}
