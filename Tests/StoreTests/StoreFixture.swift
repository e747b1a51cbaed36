import Foundation
import Store
import Testing

/// The stores every conformance test runs against.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case sqlite

    var testDescription: String { rawValue }
}

/// A scratch directory removed when the test is done, even when it fails.
struct ScratchDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("labnode-store-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    var databasePath: String { url.appendingPathComponent("store.db").path }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// Opens a store of `kind`, runs `body` with it, then closes it and removes its files.
func withStore(
    _ kind: StoreKind,
    options: StoreOptions = StoreOptions(),
    _ body: (any KVStore) async throws -> Void
) async throws {
    let scratch = try ScratchDirectory()
    defer { scratch.remove() }
    let store: any KVStore
    switch kind {
    case .memory: store = MemoryStore(options: options)
    case .sqlite: store = try SQLiteStore(path: scratch.databasePath, options: options)
    }
    do {
        try await body(store)
    } catch {
        await store.close()
        throw error
    }
    await store.close()
}

func bytes(_ text: String) -> [UInt8] {
    Array(text.utf8)
}

/// Collects events from `stream` until one with revision `last` arrived or the stream ended.
func collect(_ stream: AsyncStream<WatchEvent>, through last: Int64) async -> [WatchEvent] {
    var events: [WatchEvent] = []
    for await event in stream {
        events.append(event)
        if event.kv.modRevision >= last { break }
    }
    return events
}
