import APIServer
@testable import Addons
import Logging
import Synchronization
import Testing
@testable import Cluster

/// The daemon trims once per quiet period of the API, and not while requests keep coming.
@Suite struct IdleTrimTests {
    final class Trims: Sendable {
        let count = Atomic<Int>(0)
    }

    @Test func oncePerQuietPeriodAndNotWhileBusy() async throws {
        let activity = RequestActivity()
        let trims = Trims()
        var idle = IdleTrim(activity: activity, startAfter: {}, logger: Logger(label: "test"))
        idle.quiet = .milliseconds(300)
        idle.period = .milliseconds(20)
        idle.trim = {
            trims.count.add(1, ordering: .relaxed)
            return MemoryTrim.Report(advisedBytes: 0, refused: 0)
        }
        let task = Task { [idle] in try await idle.run() }
        defer { task.cancel() }

        // Busy: a request every 50 ms for a second, never quiet for 300 ms.
        for _ in 0..<20 {
            activity.noteRequest()
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(trims.count.load(ordering: .relaxed) == 0)
        // Quiet: one trim, however long the quiet lasts.
        try await waitUntil { trims.count.load(ordering: .relaxed) == 1 }
        try await Task.sleep(for: .milliseconds(700))
        #expect(trims.count.load(ordering: .relaxed) == 1)
        // A request, then quiet again: one more.
        activity.noteRequest()
        try await waitUntil { trims.count.load(ordering: .relaxed) == 2 }
    }

    func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }
}
