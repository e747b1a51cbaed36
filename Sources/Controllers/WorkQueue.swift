import DequeModule
import Synchronization

/// Keys of objects to reconcile, each at most once in the queue and never handed to two
/// workers at a time (a key added while it is being processed runs again afterwards),
/// with per-key exponential backoff for retries: client-go's rate-limited work queue.
public final class WorkQueue: Sendable {
    struct State {
        var queue = Deque<String>()
        var queued = Set<String>()
        var processing = Set<String>()
        var dirtyWhileProcessing = Set<String>()
        var failures: [String: Int] = [:]
        var waiters: [CheckedContinuation<String?, Never>] = []
        var shutDown = false
    }
    let state = Mutex(State())
    let baseDelay: Duration
    let maxDelay: Duration

    public init(baseDelay: Duration = .milliseconds(5), maxDelay: Duration = .seconds(30)) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    public func add(_ key: String) {
        let waiter = state.withLock { s -> CheckedContinuation<String?, Never>? in
            guard !s.shutDown else { return nil }
            if s.processing.contains(key) {
                s.dirtyWhileProcessing.insert(key)
                return nil
            }
            guard !s.queued.contains(key) else { return nil }
            if !s.waiters.isEmpty {
                s.processing.insert(key)
                return s.waiters.removeFirst()
            }
            s.queued.insert(key)
            s.queue.append(key)
            return nil
        }
        waiter?.resume(returning: key)
    }

    /// Adds the key after `delay` (for time-based work such as a progress deadline).
    public func add(_ key: String, after delay: Duration) {
        Task {
            try? await Task.sleep(for: delay)
            self.add(key)
        }
    }

    /// The next key to process; nil once the queue is shut down.
    public func next() async -> String? {
        await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            let ready = state.withLock { s -> String?? in
                if s.shutDown { return .some(nil) }
                if let key = s.queue.popFirst() {
                    s.queued.remove(key)
                    s.processing.insert(key)
                    return .some(key)
                }
                s.waiters.append(c)
                return nil
            }
            if let ready { c.resume(returning: ready) }
        }
    }

    /// Marks the key processed; it runs again if it was added meanwhile.
    public func done(_ key: String) {
        let again = state.withLock { s -> Bool in
            s.processing.remove(key)
            return s.dirtyWhileProcessing.remove(key) != nil
        }
        if again { add(key) }
    }

    /// Schedules a retry with a delay that doubles with each consecutive failure.
    public func retry(_ key: String) {
        let n = state.withLock { s -> Int in
            s.failures[key, default: 0] += 1
            return s.failures[key] ?? 1
        }
        var delay = baseDelay
        for _ in 1..<min(n, 24) where delay < maxDelay { delay = delay * 2 }
        add(key, after: min(delay, maxDelay))
    }

    /// Forgets the failures of a key that succeeded.
    public func forget(_ key: String) {
        state.withLock { _ = $0.failures.removeValue(forKey: key) }
    }

    public func shutDown() {
        let waiters = state.withLock { s -> [CheckedContinuation<String?, Never>] in
            s.shutDown = true
            let w = s.waiters
            s.waiters = []
            return w
        }
        for w in waiters { w.resume(returning: nil) }
    }

    public var length: Int { state.withLock { $0.queue.count } }
}
