import Foundation
import Synchronization

/// Wall-clock time in unix seconds (the unit of Kubernetes timestamps) and sleeping until a
/// moment. Probe timing and restart back-off are written against this so tests can drive time
/// by hand with ``ManualWallClock`` instead of waiting.
public protocol WallClock: Sendable {
    /// Unix seconds now.
    var now: Double { get }
    /// Suspends until `now >= deadline`; throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: Double) async throws
}

/// The machine's clock.
public struct SystemWallClock: WallClock {
    public init() {}

    public var now: Double { Date().timeIntervalSince1970 }

    public func sleep(until deadline: Double) async throws {
        let delta = deadline - now
        if delta > 0 { try await Task.sleep(for: .seconds(delta)) } else { try Task.checkCancellation() }
    }
}

/// A clock that only moves when told to. Sleepers wake, in deadline order, when ``advance(by:)``
/// or ``advance(to:)`` passes their deadline; ``waitForSleepers(_:)`` lets a test wait until
/// the code under test has gone to sleep, so no test ever depends on real time.
public final class ManualWallClock: WallClock {
    struct Sleeper {
        var id: UInt64
        var deadline: Double
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct Waiter {
        var count: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    struct State {
        var now: Double
        var nextID: UInt64 = 0
        var sleepers: [Sleeper] = []
        var waiters: [Waiter] = []
    }

    let state: Mutex<State>

    public init(now: Double = 1_700_000_000) {
        state = Mutex(State(now: now))
    }

    public var now: Double { state.withLock { $0.now } }

    /// How many tasks are sleeping on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func sleep(until deadline: Double) async throws {
        let id = state.withLock { s -> UInt64 in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, waiters) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
                    if deadline <= s.now || Task.isCancelled { return (true, []) }
                    s.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (false, ManualWallClock.takeSatisfiedWaiters(&s))
                }
                if resumeNow { continuation.resume() }
                for w in waiters { w.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { s -> Sleeper? in
                guard let i = s.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return s.sleepers.remove(at: i)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves time forward by `seconds`, waking every sleeper whose deadline is reached.
    public func advance(by seconds: Double) { advance(to: now + seconds) }

    /// Moves time to `moment` (never backwards), waking every sleeper whose deadline is reached.
    public func advance(to moment: Double) {
        let due = state.withLock { s -> [Sleeper] in
            s.now = max(s.now, moment)
            let now = s.now
            let due = s.sleepers.filter { $0.deadline <= now }.sorted { $0.deadline < $1.deadline }
            s.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Returns once at least `count` tasks are sleeping on this clock.
    public func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s -> Bool in
                if s.sleepers.count >= count { return true }
                s.waiters.append(Waiter(count: count, continuation: continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    static func takeSatisfiedWaiters(_ s: inout State) -> [CheckedContinuation<Void, Never>] {
        let count = s.sleepers.count
        let ready = s.waiters.filter { $0.count <= count }.map(\.continuation)
        s.waiters.removeAll { $0.count <= count }
        return ready
    }
}
