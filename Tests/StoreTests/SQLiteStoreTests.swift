import Foundation
@testable import Store
import Testing

@Suite("SQLiteStore", .timeLimit(.minutes(3)))
struct SQLiteStoreTests {
    @Test func reopenFindsEveryKeyAndTheRevision() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        var expected: [KeyValue] = []
        do {
            let store = try SQLiteStore(path: scratch.databasePath)
            for index in 0..<50 {
                _ = try await store.create("/objects/\(index)", value: bytes("v\(index)"))
            }
            for index in stride(from: 0, to: 50, by: 5) {
                _ = try await store.update("/objects/\(index)", value: bytes("updated\(index)"), ifModRevision: nil)
            }
            for index in stride(from: 1, to: 50, by: 7) {
                _ = try await store.delete("/objects/\(index)", ifModRevision: nil)
            }
            // A delete last: the revision it took leaves no row behind, only the meta row.
            _ = try await store.create("/objects/z", value: [])
            _ = try await store.delete("/objects/z", ifModRevision: nil)
            expected = try await store.list(prefix: "", after: nil, limit: nil).items
            #expect(await store.revision == 69)
            await store.close()
        }

        let reopened = try SQLiteStore(path: scratch.databasePath)
        #expect(await reopened.revision == 69)
        #expect(try await reopened.list(prefix: "", after: nil, limit: nil).items == expected)
        #expect(try await reopened.get("/objects/5")?.value == bytes("updated5"))
        #expect(try await reopened.get("/objects/1") == nil)

        // History does not survive a restart: only what comes after the reopen is watchable.
        #expect(await reopened.oldestWatchableRevision == 69)
        await #expect(throws: StoreError.compacted(requested: 68, oldest: 69)) {
            try await reopened.watch(prefix: "", afterRevision: 68)
        }
        let live = try await reopened.watch(prefix: "", afterRevision: 69)
        let next = try await reopened.create("/objects/after-reopen", value: [])
        #expect(next.modRevision == 70)
        #expect(await collect(live, through: 70).map(\.kv.key) == ["/objects/after-reopen"])
        await reopened.close()
    }

    @Test func concurrentCreatesAreAllDurable() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SQLiteStore(path: scratch.databasePath)
        let created = try await withThrowingTaskGroup(of: KeyValue.self) { group in
            for index in 0..<200 {
                group.addTask { try await store.create("/stress/\(index)", value: bytes("\(index)")) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        await store.close()
        #expect(Set(created.map(\.modRevision)).count == 200)

        let reopened = try SQLiteStore(path: scratch.databasePath)
        for kv in created {
            #expect(try await reopened.get(kv.key) == kv)
        }
        #expect(await reopened.revision == 200)
        await reopened.close()
    }

    @Test func writesAcceptedBeforeCloseAreCommitted() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store = try SQLiteStore(path: scratch.databasePath)
        let writes = Task {
            await withTaskGroup(of: Result<KeyValue, StoreError>.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        do throws(StoreError) {
                            return .success(try await store.create("/closing/\(index)", value: []))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
        }
        await Task.yield()
        await store.close()
        let results = await writes.value
        var acknowledged: [KeyValue] = []
        for result in results {
            switch result {
            case .success(let kv): acknowledged.append(kv)
            case .failure(let error): #expect(error == .closed)
            }
        }
        let reopened = try SQLiteStore(path: scratch.databasePath)
        #expect(await reopened.revision == Int64(acknowledged.count))
        for kv in acknowledged {
            #expect(try await reopened.get(kv.key) == kv)
        }
        await reopened.close()
    }

    @Test func aSecondOpenOfTheSameFileFailsWhileTheFirstIsOpen() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let first = try SQLiteStore(path: scratch.databasePath)
        _ = try await first.create("k", value: [])
        #expect {
            _ = try SQLiteStore(path: scratch.databasePath)
        } throws: { error in
            guard case StoreError.backend(_, let reason)? = error as? StoreError else { return false }
            return reason.contains("in use by another process")
        }
        await first.close()
        let second = try SQLiteStore(path: scratch.databasePath)
        #expect(try await second.get("k") != nil)
        await second.close()
    }

    @Test(arguments: [SQLiteStore.Synchronous.full, .normal])
    func opensInANewDirectoryWithWALExclusiveLockingAndTheSynchronousLevel(synchronous: SQLiteStore.Synchronous) async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let path = scratch.url.appendingPathComponent("data/dir/store.db").path
        let store = try SQLiteStore(path: path, options: StoreOptions(), synchronous: synchronous)
        _ = try await store.create("k", value: bytes("v"))
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(try store.backend.pragma("journal_mode") == "wal")
        #expect(try store.backend.pragma("locking_mode") == "exclusive")
        // SQLite reports the level as a number: 1 NORMAL, 2 FULL.
        #expect(try store.backend.pragma("synchronous") == (synchronous == .full ? "2" : "1"))
        await store.close()
    }

    @Test func aFileThatIsNotADatabaseIsRefusedWithTheReason() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        try Data(repeating: 0x42, count: 4096).write(to: URL(fileURLWithPath: scratch.databasePath))
        #expect {
            _ = try SQLiteStore(path: scratch.databasePath)
        } throws: { error in
            guard case StoreError.backend(let operation, let reason)? = error as? StoreError else { return false }
            return operation.contains(scratch.databasePath) && !reason.isEmpty
        }
    }

    // MARK: kill -9

    /// The environment variable that turns `killNineChildWriter` on, naming its database.
    static let childDatabaseVariable = "LABNODE_STORE_KILL9_DB"

    /// Writes keys until killed; every line `ACK <key> <revision>` on stdout is a write that
    /// returned. The parent test below runs it in a child process (see there).
    @Test(.enabled(if: ProcessInfo.processInfo.environment[childDatabaseVariable] != nil,
                   "only runs as the child process of acknowledgedWritesSurviveKillNine"))
    func killNineChildWriter() async throws {
        let path = try #require(ProcessInfo.processInfo.environment[Self.childDatabaseVariable])
        let store = try SQLiteStore(path: path)
        let padding = String(repeating: "x", count: 1000)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    // Bounded, so an orphaned child (its parent died) stops by itself.
                    for index in 0..<20_000 {
                        let key = "/kill9/\(writer)/\(index)"
                        let kv = try await store.create(key, value: bytes(key + padding))
                        // One write(2) per line: a pipe keeps writes this small whole.
                        FileHandle.standardOutput.write(Data("ACK \(key) \(kv.modRevision)\n".utf8))
                    }
                }
            }
            try await group.waitForAll()
        }
        await store.close()
    }

    /// Re-runs this test binary as a child process in which only `killNineChildWriter` is
    /// enabled, kills it with SIGKILL while its writers are mid-flight, and checks that every
    /// write it acknowledged is in the reopened database.
    ///
    /// Why re-executing works: on Linux `swift test` runs the `.xctest` bundle, which is a plain
    /// executable, as `<bundle> --testing-library swift-testing`; `CommandLine.arguments[0]` is
    /// its path. Running it again with `--filter` and the environment variable runs just the
    /// writer, in a separate process, so the test target needs no extra executable.
    @Test(.enabled(if: isLinux, "re-executing the test binary relies on how swift test runs tests on Linux"))
    func acknowledgedWritesSurviveKillNine() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = ["--testing-library", "swift-testing", "--filter", "SQLiteStoreTests/killNineChildWriter"]
        var environment = ProcessInfo.processInfo.environment
        environment[Self.childDatabaseVariable] = scratch.databasePath
        child.environment = environment
        let output = Pipe()
        child.standardOutput = output
        child.standardError = FileHandle.nullDevice
        try child.run()
        let pid = child.processIdentifier

        // A child that never gets going must not hang the test: kill it after a deadline.
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: watchdog)
        let acknowledged = await readAcknowledgements(from: output.fileHandleForReading, atLeast: 400)
        kill(pid, SIGKILL)
        watchdog.cancel()
        child.waitUntilExit()

        #expect(child.terminationReason == .uncaughtSignal)
        #expect(child.terminationStatus == SIGKILL)
        try #require(acknowledged.count >= 400, "the child acknowledged only \(acknowledged.count) writes")

        let reopened = try SQLiteStore(path: scratch.databasePath)
        var missing: [String] = []
        for (key, revision) in acknowledged {
            let kv = try await reopened.get(key)
            if kv?.modRevision != revision || kv?.value != bytes(key + String(repeating: "x", count: 1000)) {
                missing.append(key)
            }
        }
        #expect(missing.isEmpty, "acknowledged but lost: \(missing.prefix(10))")
        let highest = acknowledged.map(\.revision).max() ?? 0
        #expect(await reopened.revision >= highest)
        // Writes that committed without being acknowledged are fine; gaps in revisions are not.
        let stored = try await reopened.list(prefix: "/kill9/", after: nil, limit: nil).items
        let reopenedRevision = await reopened.revision
        #expect(Set(stored.map(\.modRevision)) == Set(1...reopenedRevision))
        await reopened.close()
    }
}

#if os(Linux)
private let isLinux = true
#else
private let isLinux = false
#endif

/// Reads `ACK <key> <revision>` lines until `atLeast` of them arrived or the pipe closed.
/// Reading blocks, so it runs on a dispatch thread rather than the cooperative pool.
private func readAcknowledgements(from handle: FileHandle, atLeast wanted: Int) async -> [(key: String, revision: Int64)] {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            var acknowledged: [(key: String, revision: Int64)] = []
            var pending = Data()
            while acknowledged.count < wanted {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    // Ignore the test runner's own output around the acknowledgements.
                    guard let start = line.range(of: "ACK ") else { continue }
                    let fields = line[start.upperBound...].split(separator: " ")
                    if fields.count == 2, let revision = Int64(fields[1]) {
                        acknowledged.append((String(fields[0]), revision))
                    }
                }
            }
            continuation.resume(returning: acknowledged)
        }
    }
}
