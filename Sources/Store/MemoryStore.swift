import Logging

/// A `KVStore` that keeps everything in memory and loses it at exit: for tests, and for
/// anything that wants etcd semantics without a file.
///
/// It runs the same engine as `SQLiteStore` (group commit, watch history, slow-watcher
/// limits), minus the disk, so tests against it exercise the real write path.
public final class MemoryStore: KVStore, EngineBackedStore, ImmediateReading {
    let engine: StoreEngine

    /// An empty store at revision 0.
    public init(options: StoreOptions = StoreOptions()) {
        engine = StoreEngine(
            contents: [], revision: 0, backend: NoBackend(), options: options,
            logger: Logger(label: "labnode.store"))
    }
}
