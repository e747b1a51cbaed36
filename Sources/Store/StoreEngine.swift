import Dispatch
import Logging
import Synchronization

/// Tuning shared by `MemoryStore` and `SQLiteStore`.
public struct StoreOptions: Sendable, Equatable {
    /// How many recent events stay in memory for watches to replay. A watch may start after
    /// any revision from `revision - historyLimit` on (see `KVStore.oldestWatchableRevision`).
    public var historyLimit: Int
    /// How many live events a watcher may have waiting, unread, before the store ends its
    /// stream. Keep it well below `historyLimit`: a consumer whose stream was ended can then
    /// usually watch again from its last revision instead of listing everything again.
    public var watchBufferLimit: Int
    /// The most writes one transaction groups together.
    public var maxBatchSize: Int

    public init(historyLimit: Int = 10_000, watchBufferLimit: Int = 1_000, maxBatchSize: Int = 1_024) {
        self.historyLimit = max(0, historyLimit)
        self.watchBufferLimit = max(1, watchBufferLimit)
        self.maxBatchSize = max(1, maxBatchSize)
    }
}

/// One change as the backend persists it.
enum Mutation: Sendable, Equatable {
    case put(KeyValue)
    case delete(key: String)
}

/// Where a store's writes become durable. The engine calls it from its single writer queue
/// only, one batch at a time, so an implementation needs no locking of its own.
protocol StoreBackend: Sendable {
    /// Makes `mutations` (in order) and the new store `revision` durable as one transaction,
    /// returning only once they are.
    func commit(_ mutations: [Mutation], revision: Int64) throws(StoreError)
    /// Releases the backend; no commit follows.
    func close() throws(StoreError)
}

/// A backend that keeps nothing: the engine's memory is the whole store.
struct NoBackend: StoreBackend {
    func commit(_ mutations: [Mutation], revision: Int64) throws(StoreError) {}
    func close() throws(StoreError) {}
}

/// A write as a caller asked for it, before validation.
enum WriteRequest: Sendable {
    case create(key: String, value: [UInt8])
    case update(key: String, value: [UInt8], ifModRevision: Int64?)
    case delete(key: String, ifModRevision: Int64?)
}

/// The engine behind both stores: every key lives in memory and reads are served from there;
/// writes go through one writer queue that groups whatever is waiting into one backend commit.
///
/// A write's life:
/// 1. The caller appends it to `writes` and suspends; the first writer to find the queue idle
///    schedules a drain on `writer`, a serial dispatch queue (the backend blocks on fsync, which
///    must not happen on the cooperative thread pool).
/// 2. The drain takes everything waiting, validates each write in order against memory plus
///    the writes before it in the same batch, and gives each valid one the next revision.
/// 3. The backend commits the batch once. Only then does memory change and do watchers get the
///    events (in revision order, under the same lock that registers watchers), and only then
///    are the callers resumed. A reader therefore never sees a write that is not durable.
final class StoreEngine: Sendable {
    private let state: Mutex<EngineState>
    private let writes = Mutex(WriteQueue())
    private let writer = DispatchQueue(label: "labnode.store.writer")
    private let backend: any StoreBackend
    private let options: StoreOptions
    private let logger: Logger

    init(contents: [KeyValue], revision: Int64, backend: any StoreBackend, options: StoreOptions, logger: Logger) {
        self.state = Mutex(EngineState(
            keys: KeySpace(contents),
            revision: revision,
            history: EventHistory(capacity: options.historyLimit)))
        self.backend = backend
        self.options = options
        self.logger = logger
    }

    // MARK: Reads

    var revision: Int64 {
        state.withLock { $0.revision }
    }

    var oldestWatchableRevision: Int64 {
        state.withLock { $0.oldestWatchableRevision }
    }

    func get(_ key: String) throws(StoreError) -> KeyValue? {
        try state.withLock { (s) throws(StoreError) -> KeyValue? in
            guard s.isOpen else { throw .closed }
            return s.keys.get(StoreKey(key))
        }
    }

    func list(prefix: String, after: String?, limit: Int?) throws(StoreError) -> ListResult {
        try state.withLock { (s) throws(StoreError) -> ListResult in
            guard s.isOpen else { throw .closed }
            let (items, more) = s.keys.list(prefix: prefix, after: after, limit: limit)
            return ListResult(items: items, revision: s.revision, more: more)
        }
    }

    // MARK: Watches

    func watch(prefix: String, afterRevision: Int64) throws(StoreError) -> AsyncStream<WatchEvent> {
        // Replay and registration happen under the lock that publishes, so no event can slip
        // between the last replayed one and the first live one, nor arrive twice.
        try state.withLock { (s) throws(StoreError) -> AsyncStream<WatchEvent> in
            guard s.isOpen else { throw .closed }
            let oldest = s.oldestWatchableRevision
            guard afterRevision >= oldest else {
                throw .compacted(requested: afterRevision, oldest: oldest)
            }
            let replay = s.history.events(after: afterRevision, latest: s.revision, prefix: prefix)
            let (stream, continuation) = AsyncStream.makeStream(
                of: WatchEvent.self,
                bufferingPolicy: .bufferingOldest(replay.count + options.watchBufferLimit))
            let id = s.nextWatcherID
            s.nextWatcherID += 1
            continuation.onTermination = { [weak self] _ in
                self?.removeWatcher(id)
            }
            for event in replay {
                continuation.yield(event)
            }
            s.watchers[id] = Watcher(prefix: prefix, afterRevision: afterRevision, continuation: continuation)
            return stream
        }
    }

    /// How many watch streams are registered (for tests: ended streams must not linger).
    var watcherCount: Int {
        state.withLock { $0.watchers.count }
    }

    private func removeWatcher(_ id: UInt64) {
        // Returned, so that the last reference to the continuation (whose release may run
        // the stream's termination handler, which takes this lock) drops outside the lock.
        let removed = state.withLock { $0.watchers.removeValue(forKey: id) }
        _ = removed
    }

    // MARK: Writes

    func submit(_ request: WriteRequest) async throws(StoreError) -> KeyValue {
        let result = await withCheckedContinuation { (reply: CheckedContinuation<Result<KeyValue, StoreError>, Never>) in
            let action = writes.withLock { queue -> EnqueueAction in
                guard !queue.closed else { return .reject }
                queue.pending.append(PendingWrite(request: request, reply: reply))
                guard !queue.drainScheduled else { return .none }
                queue.drainScheduled = true
                return .scheduleDrain
            }
            switch action {
            case .reject:
                reply.resume(returning: .failure(.closed))
            case .none:
                break
            case .scheduleDrain:
                writer.async { self.drain() }
            }
        }
        return try result.get()
    }

    /// Runs on `writer`: commits batches until nothing is waiting.
    private func drain() {
        let maxBatch = options.maxBatchSize
        while true {
            let batch = writes.withLock { queue -> [PendingWrite] in
                guard !queue.pending.isEmpty else {
                    queue.drainScheduled = false
                    return []
                }
                let count = min(queue.pending.count, maxBatch)
                let batch = Array(queue.pending.prefix(count))
                queue.pending.removeFirst(count)
                return batch
            }
            if batch.isEmpty { return }
            process(batch)
        }
    }

    private func process(_ batch: [PendingWrite]) {
        let plan = state.withLock { s in
            BatchPlan(batch.map(\.request), against: s.keys, revision: s.revision)
        }
        if !plan.mutations.isEmpty {
            do {
                try backend.commit(plan.mutations, revision: plan.revision)
            } catch {
                // Nothing of the batch reached memory; every caller learns the write failed,
                // including those whose validation leaned on a write that did not persist.
                logger.error("store commit failed", metadata: [
                    "writes": "\(plan.mutations.count)", "revision": "\(plan.revision)", "error": "\(error)",
                ])
                for pending in batch {
                    pending.reply.resume(returning: .failure(error))
                }
                return
            }
            let lagging = state.withLock { s in
                s.apply(plan)
            }
            for continuation in lagging {
                continuation.finish()
            }
        }
        for (pending, outcome) in zip(batch, plan.outcomes) {
            pending.reply.resume(returning: outcome)
        }
    }

    // MARK: Close

    func close() async {
        let first = writes.withLock { queue in
            defer { queue.closed = true }
            return !queue.closed
        }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            // The writer queue is serial: this runs after every drain already scheduled, so
            // the writes accepted before close are committed before the backend goes away.
            writer.async {
                guard first else {
                    done.resume()
                    return
                }
                self.drain()
                do {
                    try self.backend.close()
                } catch {
                    self.logger.error("store close failed", metadata: ["error": "\(error)"])
                }
                let watchers = self.state.withLock { s in
                    s.isOpen = false
                    defer { s.watchers.removeAll() }
                    return Array(s.watchers.values)
                }
                for watcher in watchers {
                    watcher.continuation.finish()
                }
                done.resume()
            }
        }
    }
}

// MARK: - State

private struct Watcher: Sendable {
    let prefix: String
    /// Events up to here are not wanted; only matters for a watch that starts after a
    /// revision the store has not reached yet (etcd allows that too).
    let afterRevision: Int64
    let continuation: AsyncStream<WatchEvent>.Continuation
}

private struct EngineState: Sendable {
    var keys: KeySpace
    var revision: Int64
    var history: EventHistory
    var watchers: [UInt64: Watcher] = [:]
    var nextWatcherID: UInt64 = 0
    var isOpen = true

    init(keys: KeySpace, revision: Int64, history: EventHistory) {
        self.keys = keys
        self.revision = revision
        self.history = history
    }

    /// The history holds every event from this revision (exclusive) to the current one.
    var oldestWatchableRevision: Int64 {
        revision - Int64(history.count)
    }

    /// Applies a committed batch and hands its events to the watchers. Returns the streams
    /// of watchers that fell too far behind; the caller ends them outside the lock.
    mutating func apply(_ plan: BatchPlan) -> [AsyncStream<WatchEvent>.Continuation] {
        for mutation in plan.mutations {
            switch mutation {
            case .put(let kv): keys.put(kv)
            case .delete(let key): keys.remove(StoreKey(key))
            }
        }
        revision = plan.revision
        for event in plan.events {
            history.append(event)
        }
        var lagging: [UInt64] = []
        for (id, watcher) in watchers {
            for event in plan.events
            where event.kv.modRevision > watcher.afterRevision && StoreKey(event.kv.key).hasPrefix(watcher.prefix) {
                if case .enqueued = watcher.continuation.yield(event) { continue }
                // The buffer is full (the event was not delivered) or the consumer is gone.
                // Ending the stream keeps what was delivered a gap-free prefix.
                lagging.append(id)
                break
            }
        }
        return lagging.compactMap { watchers.removeValue(forKey: $0)?.continuation }
    }
}

private struct PendingWrite: Sendable {
    let request: WriteRequest
    let reply: CheckedContinuation<Result<KeyValue, StoreError>, Never>
}

private struct WriteQueue: Sendable {
    var pending: [PendingWrite] = []
    var drainScheduled = false
    var closed = false
}

private enum EnqueueAction {
    case reject, none, scheduleDrain
}

/// The outcome of validating one batch: each write's result, and for the valid ones the
/// mutations to persist and the events to publish, with consecutive revisions.
struct BatchPlan: Sendable {
    var outcomes: [Result<KeyValue, StoreError>] = []
    var mutations: [Mutation] = []
    var events: [WatchEvent] = []
    /// The store revision once the batch is applied.
    var revision: Int64

    init(_ requests: [WriteRequest], against keys: borrowing KeySpace, revision: Int64) {
        self.revision = revision
        // What the batch so far did to a key: a new value, or nil once deleted.
        var overlay: [StoreKey: KeyValue?] = [:]
        func current(_ key: StoreKey) -> KeyValue? {
            if let written = overlay[key] { return written }
            return keys.get(key)
        }
        for request in requests {
            switch request {
            case .create(let key, let value):
                let storeKey = StoreKey(key)
                guard current(storeKey) == nil else {
                    outcomes.append(.failure(.alreadyExists(key: key)))
                    continue
                }
                let kv = KeyValue(key: key, value: value, createRevision: self.revision + 1, modRevision: self.revision + 1)
                overlay[storeKey] = .some(kv)
                record(.put(kv), event: WatchEvent(kind: .put, kv: kv))

            case .update(let key, let value, let ifModRevision):
                let storeKey = StoreKey(key)
                guard let existing = current(storeKey) else {
                    outcomes.append(.failure(.notFound(key: key)))
                    continue
                }
                if let expected = ifModRevision, expected != existing.modRevision {
                    outcomes.append(.failure(.conflict(key: key, expected: expected, actual: existing.modRevision)))
                    continue
                }
                let kv = KeyValue(key: key, value: value, createRevision: existing.createRevision, modRevision: self.revision + 1)
                overlay[storeKey] = .some(kv)
                record(.put(kv), event: WatchEvent(kind: .put, kv: kv))

            case .delete(let key, let ifModRevision):
                let storeKey = StoreKey(key)
                guard var last = current(storeKey) else {
                    outcomes.append(.failure(.notFound(key: key)))
                    continue
                }
                if let expected = ifModRevision, expected != last.modRevision {
                    outcomes.append(.failure(.conflict(key: key, expected: expected, actual: last.modRevision)))
                    continue
                }
                last.modRevision = self.revision + 1
                overlay[storeKey] = .some(nil)
                record(.delete(key: key), event: WatchEvent(kind: .delete, kv: last))
            }
        }
    }

    private mutating func record(_ mutation: Mutation, event: WatchEvent) {
        revision += 1
        mutations.append(mutation)
        events.append(event)
        outcomes.append(.success(event.kv))
    }
}

/// A store whose KVStore operations are its `StoreEngine`'s; the stores differ only in the
/// backend the engine commits to (SQLite, or none for MemoryStore).
protocol EngineBackedStore: KVStore {
    var engine: StoreEngine { get }
}

/// A store that can read a key without suspending, because every key is in memory. The API
/// server answers a plain GET from this on the connection's event loop, without the two
/// thread hops an async request costs.
public protocol ImmediateReading: Sendable {
    /// What `get` would return now.
    func getImmediately(_ key: String) throws(StoreError) -> KeyValue?
    /// What `revision` would return now.
    var revisionImmediately: Int64 { get }
}

extension EngineBackedStore {
    public var revisionImmediately: Int64 { engine.revision }

    public func getImmediately(_ key: String) throws(StoreError) -> KeyValue? {
        try engine.get(key)
    }
}

extension EngineBackedStore {
    public var revision: Int64 {
        get async { engine.revision }
    }

    public var oldestWatchableRevision: Int64 {
        get async { engine.oldestWatchableRevision }
    }

    public func get(_ key: String) async throws(StoreError) -> KeyValue? {
        try engine.get(key)
    }

    public func list(prefix: String, after: String?, limit: Int?) async throws(StoreError) -> ListResult {
        try engine.list(prefix: prefix, after: after, limit: limit)
    }

    public func create(_ key: String, value: [UInt8]) async throws(StoreError) -> KeyValue {
        try await engine.submit(.create(key: key, value: value))
    }

    public func update(_ key: String, value: [UInt8], ifModRevision: Int64?) async throws(StoreError) -> KeyValue {
        try await engine.submit(.update(key: key, value: value, ifModRevision: ifModRevision))
    }

    public func delete(_ key: String, ifModRevision: Int64?) async throws(StoreError) -> KeyValue {
        try await engine.submit(.delete(key: key, ifModRevision: ifModRevision))
    }

    public func watch(prefix: String, afterRevision: Int64) async throws(StoreError) -> AsyncStream<WatchEvent> {
        try engine.watch(prefix: prefix, afterRevision: afterRevision)
    }

    public func close() async {
        await engine.close()
    }
}
