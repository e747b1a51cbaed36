import Foundation
import Store
import Testing

/// Throughput figures for reports, not assertions. Run with
/// `LABNODE_STORE_BENCHMARK=1 swift test -c release -Xswiftc -enable-testing --filter StoreBenchmark`
/// (`full` or `normal` instead of `1` measures one synchronous level only).
@Suite("Store benchmark")
struct StoreBenchmarkTests {
    static let setting = ProcessInfo.processInfo.environment["LABNODE_STORE_BENCHMARK"]

    @Test(.enabled(if: setting != nil, "set LABNODE_STORE_BENCHMARK=1 to measure"))
    func sqliteCreatesWithOneKilobyteValues() async throws {
        let levels: [SQLiteStore.Synchronous] = switch Self.setting {
        case "full": [.full]
        case "normal": [.normal]
        default: [.full, .normal]
        }
        // One after the other: the figures are about the disk, so runs must not overlap.
        for synchronous in levels {
            for (concurrency, count) in [(1, 500), (16, 8_000)] {
                let scratch = try ScratchDirectory()
                defer { scratch.remove() }
                let store = try SQLiteStore(path: scratch.databasePath, options: StoreOptions(), synchronous: synchronous)
                let perSecond = await StoreBenchmark.creates(store: store, concurrency: concurrency, count: count)
                print("SQLiteStore synchronous=\(synchronous.rawValue) concurrency=\(concurrency): \(Int(perSecond)) creates/s")
                await store.close()
            }
        }
        let memory = MemoryStore()
        print("MemoryStore concurrency=16: \(Int(await StoreBenchmark.creates(store: memory, concurrency: 16, count: 20_000))) creates/s")
        await memory.close()
    }
}
