import Logging

/// A `KVStore` that keeps everything in memory and loses it at exit: for tests, and for
/// anything that wants etcd semantics without a file.
///
/// It runs the same engine as `SQLiteStore` (group commit, watch history, slow-watcher
/// limits), minus the disk, so tests against it exercise the real write path.
public final class MemoryStore: KVStore {
    private let engine: StoreEngine

    /// An empty store at revision 0.
    public init(options: StoreOptions = StoreOptions()) {
        engine = StoreEngine(
            contents: [], revision: 0, backend: NoBackend(), options: options,
            logger: Logger(label: "labnode.store"))
    }

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
