/// A key-value store with etcd's semantics, which is what the API server is written against.
///
/// - Every successful write bumps one global `revision` by exactly one; the written key's
///   `modRevision` becomes that revision (a delete too: the event carries it).
/// - `createRevision` is the revision of the write that created the key.
/// - Writes can be conditional on the key's current `modRevision` (optimistic concurrency).
/// - A watch replays every change after a given revision, in order, then streams new ones;
///   a revision older than the retained history fails with `.compacted`.
/// - A write returns only once it is durable (for stores that persist).
public protocol KVStore: Sendable {
    /// The revision of the latest write (0 for an empty, never-written store).
    var revision: Int64 { get async }

    func get(_ key: String) async throws(StoreError) -> KeyValue?

    /// Keys with `prefix`, in byte order of the key, starting strictly after `after` when given,
    /// at most `limit` of them (nil = all). `more` says whether keys remained past the limit.
    func list(prefix: String, after: String?, limit: Int?) async throws(StoreError) -> ListResult

    /// Creates `key`; fails with `.alreadyExists` when it is present.
    func create(_ key: String, value: [UInt8]) async throws(StoreError) -> KeyValue

    /// Replaces `key`'s value. With `ifModRevision`, fails with `.conflict` unless the key's
    /// current modRevision equals it. Fails with `.notFound` when absent.
    func update(_ key: String, value: [UInt8], ifModRevision: Int64?) async throws(StoreError) -> KeyValue

    /// Deletes `key`, returning its last value with `modRevision` set to the deletion's revision.
    func delete(_ key: String, ifModRevision: Int64?) async throws(StoreError) -> KeyValue

    /// Events for keys with `prefix` whose revision is > `afterRevision`, oldest first, then live.
    /// The stream ends when the store closes or the consumer stops iterating.
    func watch(prefix: String, afterRevision: Int64) async throws(StoreError) -> AsyncStream<WatchEvent>

    /// The oldest revision a watch can start after (older ones are `.compacted`).
    var oldestWatchableRevision: Int64 { get async }

    /// Flushes and releases resources; later calls fail with `.closed`.
    func close() async
}

public struct KeyValue: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var createRevision: Int64
    public var modRevision: Int64

    public init(key: String, value: [UInt8], createRevision: Int64, modRevision: Int64) {
        self.key = key
        self.value = value
        self.createRevision = createRevision
        self.modRevision = modRevision
    }
}

public struct ListResult: Sendable, Equatable {
    public var items: [KeyValue]
    /// The store revision the list was read at.
    public var revision: Int64
    public var more: Bool

    public init(items: [KeyValue], revision: Int64, more: Bool) {
        self.items = items
        self.revision = revision
        self.more = more
    }
}

public struct WatchEvent: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case put, delete }
    public var kind: Kind
    /// For `.put` the new value; for `.delete` the last value. `modRevision` is the event's revision.
    public var kv: KeyValue
    /// Whether this put created the key (createRevision == modRevision).
    public var isCreate: Bool { kind == .put && kv.createRevision == kv.modRevision }

    public init(kind: Kind, kv: KeyValue) {
        self.kind = kind
        self.kv = kv
    }
}

public enum StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case notFound(key: String)
    case alreadyExists(key: String)
    case conflict(key: String, expected: Int64, actual: Int64)
    case compacted(requested: Int64, oldest: Int64)
    case closed
    /// The backend failed (disk full, corrupt file ...): what was being done and why.
    case backend(operation: String, reason: String)

    public var description: String {
        switch self {
        case .notFound(let k): return "key \(k) not found"
        case .alreadyExists(let k): return "key \(k) already exists"
        case .conflict(let k, let e, let a): return "key \(k) is at revision \(a), not \(e)"
        case .compacted(let r, let o): return "revision \(r) is compacted; oldest watchable is \(o)"
        case .closed: return "store is closed"
        case .backend(let op, let why): return "store \(op) failed: \(why)"
        }
    }
}
