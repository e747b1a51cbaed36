import Foundation
import Store
import Testing

/// The behaviour every `KVStore` must have, run against each implementation. An external
/// datastore (etcd) would join `StoreKind` and pass these same tests.
@Suite("KVStore conformance", .timeLimit(.minutes(2)))
struct KVStoreConformanceTests {
    @Test(arguments: StoreKind.allCases)
    func createThenGet(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(await store.revision == 0)
            #expect(try await store.get("/pods/default/a") == nil)

            let created = try await store.create("/pods/default/a", value: bytes("one"))
            #expect(created == KeyValue(key: "/pods/default/a", value: bytes("one"), createRevision: 1, modRevision: 1))
            #expect(try await store.get("/pods/default/a") == created)
            #expect(await store.revision == 1)
        }
    }

    /// What the API's event-loop fast path reads: the same as `get` and `revision`, after every
    /// kind of write, including a failed one.
    @Test(arguments: StoreKind.allCases)
    func immediateReadsAgreeWithAsyncOnes(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let immediate = try #require(store as? any ImmediateReading, "\(kind) keeps every key in memory")
            func agree(_ key: String) async throws {
                #expect(try immediate.getImmediately(key) == (try await store.get(key)))
                #expect(immediate.revisionImmediately == (await store.revision))
            }
            try await agree("k")
            _ = try await store.create("k", value: bytes("v1"))
            try await agree("k")
            _ = try await store.update("k", value: bytes("v2"), ifModRevision: nil)
            try await agree("k")
            _ = try? await store.update("k", value: bytes("stale"), ifModRevision: 1)
            try await agree("k")
            #expect(try immediate.getImmediately("k")?.value == bytes("v2"))
            _ = try await store.delete("k", ifModRevision: nil)
            try await agree("k")
            #expect(try immediate.getImmediately("k") == nil && immediate.revisionImmediately == 3)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func createOfAnExistingKeyFailsWithoutBumpingTheRevision(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.create("k", value: bytes("first"))
            await #expect(throws: StoreError.alreadyExists(key: "k")) {
                try await store.create("k", value: bytes("second"))
            }
            #expect(try await store.get("k")?.value == bytes("first"))
            #expect(await store.revision == 1)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func updateKeepsCreateRevisionAndChecksModRevision(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.create("k", value: bytes("v1"))
            _ = try await store.create("other", value: bytes("x"))

            let unconditional = try await store.update("k", value: bytes("v2"), ifModRevision: nil)
            #expect(unconditional == KeyValue(key: "k", value: bytes("v2"), createRevision: 1, modRevision: 3))

            let conditional = try await store.update("k", value: bytes("v3"), ifModRevision: 3)
            #expect(conditional == KeyValue(key: "k", value: bytes("v3"), createRevision: 1, modRevision: 4))

            await #expect(throws: StoreError.conflict(key: "k", expected: 3, actual: 4)) {
                try await store.update("k", value: bytes("stale"), ifModRevision: 3)
            }
            await #expect(throws: StoreError.notFound(key: "missing")) {
                try await store.update("missing", value: bytes("x"), ifModRevision: nil)
            }
            #expect(try await store.get("k") == conditional)
            #expect(await store.revision == 4)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func deleteReturnsTheLastValueAtTheDeletionRevision(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.create("k", value: bytes("v1"))
            _ = try await store.update("k", value: bytes("v2"), ifModRevision: nil)

            await #expect(throws: StoreError.conflict(key: "k", expected: 1, actual: 2)) {
                try await store.delete("k", ifModRevision: 1)
            }
            let deleted = try await store.delete("k", ifModRevision: 2)
            #expect(deleted == KeyValue(key: "k", value: bytes("v2"), createRevision: 1, modRevision: 3))
            #expect(try await store.get("k") == nil)
            await #expect(throws: StoreError.notFound(key: "k")) {
                try await store.delete("k", ifModRevision: nil)
            }

            // A key created again is a new key: its createRevision starts over.
            let recreated = try await store.create("k", value: bytes("v3"))
            #expect(recreated.createRevision == 4)
            #expect(recreated.modRevision == 4)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func everySuccessfulWriteBumpsTheRevisionByOneAndFailuresDoNot(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            var expected: Int64 = 0
            for step in 0..<30 {
                let key = "k\(step % 4)"
                let current = try await store.get(key)
                let result: KeyValue
                switch (step % 3, current) {
                case (_, nil):
                    result = try await store.create(key, value: bytes("\(step)"))
                case (0, let kv?):
                    result = try await store.delete(key, ifModRevision: kv.modRevision)
                default:
                    result = try await store.update(key, value: bytes("\(step)"), ifModRevision: nil)
                }
                expected += 1
                #expect(result.modRevision == expected)
                #expect(await store.revision == expected)

                // A failing write leaves the revision alone.
                _ = try? await store.update("never-created", value: [], ifModRevision: nil)
                #expect(await store.revision == expected)
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func emptyAndBinaryValuesRoundTrip(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let binary: [UInt8] = [0, 255, 10, 13, 0, 128]
            _ = try await store.create("empty", value: [])
            _ = try await store.create("binary", value: binary)
            #expect(try await store.get("empty")?.value == [])
            #expect(try await store.get("binary")?.value == binary)
        }
    }

    struct ListCase: Sendable, CustomTestStringConvertible {
        let prefix: String
        let after: String?
        let limit: Int?
        let keys: [String]
        let more: Bool

        var testDescription: String { "prefix \(prefix) after \(after ?? "-") limit \(limit.map(String.init) ?? "-")" }
    }

    static let listKeys = ["/a", "/a/1", "/a/2", "/a/3", "/ab/1", "/b/1", "/b/2"]

    static let listCases: [ListCase] = [
        ListCase(prefix: "/a/", after: nil, limit: nil, keys: ["/a/1", "/a/2", "/a/3"], more: false),
        ListCase(prefix: "/a", after: nil, limit: nil, keys: ["/a", "/a/1", "/a/2", "/a/3", "/ab/1"], more: false),
        ListCase(prefix: "", after: nil, limit: nil, keys: listKeys, more: false),
        ListCase(prefix: "/a/", after: nil, limit: 2, keys: ["/a/1", "/a/2"], more: true),
        ListCase(prefix: "/a/", after: "/a/2", limit: 2, keys: ["/a/3"], more: false),
        ListCase(prefix: "/a/", after: "/a/1", limit: 1, keys: ["/a/2"], more: true),
        ListCase(prefix: "/a/", after: "/a/3", limit: nil, keys: [], more: false),
        ListCase(prefix: "/a/", after: nil, limit: 3, keys: ["/a/1", "/a/2", "/a/3"], more: false),
        ListCase(prefix: "/a/", after: nil, limit: 0, keys: [], more: true),
        // `after` need not be a key, nor sit inside the prefix.
        ListCase(prefix: "/a/", after: "/a/15", limit: nil, keys: ["/a/2", "/a/3"], more: false),
        ListCase(prefix: "/b/", after: "/a/9", limit: nil, keys: ["/b/1", "/b/2"], more: false),
        ListCase(prefix: "/a/", after: "/z", limit: nil, keys: [], more: false),
        ListCase(prefix: "/c/", after: nil, limit: nil, keys: [], more: false),
    ]

    @Test(arguments: StoreKind.allCases, listCases)
    func listByPrefixAfterAndLimit(kind: StoreKind, listCase: ListCase) async throws {
        try await withStore(kind) { store in
            // Created out of order, so the order of the result comes from the store.
            for key in Self.listKeys.reversed() {
                _ = try await store.create(key, value: bytes(key))
            }
            _ = try await store.delete("/b/2", ifModRevision: nil)
            _ = try await store.create("/b/2", value: bytes("/b/2"))

            let result = try await store.list(prefix: listCase.prefix, after: listCase.after, limit: listCase.limit)
            #expect(result.items.map(\.key) == listCase.keys)
            #expect(result.items.allSatisfy { $0.value == bytes($0.key) })
            #expect(result.more == listCase.more)
            #expect(result.revision == Int64(Self.listKeys.count + 2))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func keysAreOrderedAndDistinguishedByTheirBytes(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let precomposed = "/k/\u{E9}"      // é as one scalar: C3 A9
            let decomposed = "/k/e\u{301}"     // e + combining acute: 65 CC 81
            // Swift calls these two strings equal; a byte-keyed store must not.
            let keys = ["/k/b", "/k/B", precomposed, decomposed, "/k/a", "/k/a/x", "/k/a0", "/k/~"]
            for key in keys {
                _ = try await store.create(key, value: bytes(key))
            }
            let listed = try await store.list(prefix: "/k/", after: nil, limit: nil).items
            let byteOrder = keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            #expect(listed.count == keys.count)
            #expect(listed.map { Array($0.key.utf8) } == byteOrder.map { Array($0.utf8) })
            #expect(try await store.get(decomposed)?.value == bytes(decomposed))
            #expect(try await store.get(precomposed)?.value == bytes(precomposed))
        }
    }

    @Test(arguments: StoreKind.allCases)
    func concurrentCreatesGetDistinctConsecutiveRevisions(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let created = try await withThrowingTaskGroup(of: KeyValue.self) { group in
                for index in 0..<200 {
                    group.addTask { try await store.create("/stress/\(index)", value: bytes("\(index)")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(created.map(\.modRevision)) == Set(1...200))
            #expect(await store.revision == 200)
            for kv in created {
                #expect(try await store.get(kv.key) == kv)
            }
        }
    }

    // MARK: Watch

    @Test(arguments: StoreKind.allCases)
    func watchReplaysThenStreamsLiveInRevisionOrder(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.create("/w/a", value: bytes("1"))
            _ = try await store.update("/w/a", value: bytes("2"), ifModRevision: 1)
            _ = try await store.create("/w/b", value: bytes("3"))

            let stream = try await store.watch(prefix: "/w/", afterRevision: 1)
            _ = try await store.delete("/w/a", ifModRevision: nil)
            _ = try await store.create("/w/c", value: bytes("5"))

            let events = await collect(stream, through: 5)
            #expect(events == [
                WatchEvent(kind: .put, kv: KeyValue(key: "/w/a", value: bytes("2"), createRevision: 1, modRevision: 2)),
                WatchEvent(kind: .put, kv: KeyValue(key: "/w/b", value: bytes("3"), createRevision: 3, modRevision: 3)),
                WatchEvent(kind: .delete, kv: KeyValue(key: "/w/a", value: bytes("2"), createRevision: 1, modRevision: 4)),
                WatchEvent(kind: .put, kv: KeyValue(key: "/w/c", value: bytes("5"), createRevision: 5, modRevision: 5)),
            ])
            #expect(events.map(\.isCreate) == [false, true, false, true])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func watchesStartedWhileWritesRaceSeeEveryRevisionOnce(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let writers = 8
            let perWriter = 40
            let total = Int64(writers * perWriter)
            let writing = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<writers {
                        group.addTask {
                            for index in 0..<perWriter {
                                let key = "/race/\(writer)/\(index)"
                                _ = try await store.create(key, value: bytes(key))
                                if index % 3 == 0 {
                                    _ = try await store.delete(key, ifModRevision: nil)
                                    _ = try await store.create(key, value: bytes(key))
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Watches start at staggered moments, each after the revision it just read, so
            // writes keep landing between the read and the registration.
            var watches: [(after: Int64, stream: AsyncStream<WatchEvent>)] = []
            for _ in 0..<6 {
                let after = await store.revision
                watches.append((after, try await store.watch(prefix: "/race/", afterRevision: after)))
                try await Task.sleep(for: .milliseconds(kind == .memory ? 1 : 20))
            }
            try await writing.value
            let last = await store.revision
            #expect(last > total)
            for watch in watches {
                let revisions = await collect(watch.stream, through: last).map(\.kv.modRevision)
                #expect(revisions == Array((watch.after + 1)...last), "watch after \(watch.after)")
            }
        }
    }

    @Test(arguments: StoreKind.allCases)
    func watchOnlyDeliversKeysUnderItsPrefix(kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let pods = try await store.watch(prefix: "/pods/", afterRevision: 0)
            let all = try await store.watch(prefix: "", afterRevision: 0)
            _ = try await store.create("/pods/a", value: [])
            _ = try await store.create("/podsx/b", value: [])
            _ = try await store.create("/services/c", value: [])
            _ = try await store.delete("/pods/a", ifModRevision: nil)
            _ = try await store.create("/pods/d", value: [])

            let podEvents = await collect(pods, through: 5)
            #expect(podEvents.map(\.kv.key) == ["/pods/a", "/pods/a", "/pods/d"])
            #expect(podEvents.map(\.kind) == [.put, .delete, .put])
            #expect(podEvents.map(\.kv.modRevision) == [1, 4, 5])
            #expect(await collect(all, through: 5).map(\.kv.modRevision) == [1, 2, 3, 4, 5])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func watchBeforeTheRetainedHistoryIsCompacted(kind: StoreKind) async throws {
        try await withStore(kind, options: StoreOptions(historyLimit: 5)) { store in
            // An untouched store can replay from its very beginning.
            #expect(await store.oldestWatchableRevision == 0)
            await #expect(throws: StoreError.compacted(requested: -1, oldest: 0)) {
                try await store.watch(prefix: "", afterRevision: -1)
            }
            for index in 1...10 {
                _ = try await store.create("k\(index)", value: [])
            }
            // Revisions 6...10 are retained, so a watch can start after 5 but not after 4.
            #expect(await store.oldestWatchableRevision == 5)
            let fromOldest = try await store.watch(prefix: "", afterRevision: 5)
            #expect(await collect(fromOldest, through: 10).map(\.kv.modRevision) == [6, 7, 8, 9, 10])
            await #expect(throws: StoreError.compacted(requested: 4, oldest: 5)) {
                try await store.watch(prefix: "", afterRevision: 4)
            }
            // Starting at the current revision replays nothing and then goes live.
            let live = try await store.watch(prefix: "", afterRevision: 10)
            _ = try await store.create("k11", value: [])
            #expect(await collect(live, through: 11).map(\.kv.modRevision) == [11])
            #expect(await store.oldestWatchableRevision == 6)
        }
    }

    @Test(arguments: StoreKind.allCases)
    func withoutHistoryOnlyTheCurrentRevisionIsWatchable(kind: StoreKind) async throws {
        try await withStore(kind, options: StoreOptions(historyLimit: 0)) { store in
            _ = try await store.create("a", value: [])
            _ = try await store.create("b", value: [])
            #expect(await store.oldestWatchableRevision == 2)
            await #expect(throws: StoreError.compacted(requested: 1, oldest: 2)) {
                try await store.watch(prefix: "", afterRevision: 1)
            }
            let live = try await store.watch(prefix: "", afterRevision: 2)
            _ = try await store.create("c", value: [])
            #expect(await collect(live, through: 3).map(\.kv.key) == ["c"])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func aWatcherThatFallsTooFarBehindIsEndedWithoutAGap(kind: StoreKind) async throws {
        try await withStore(kind, options: StoreOptions(watchBufferLimit: 3)) { store in
            _ = try await store.create("before", value: [])
            // Replayed events do not count against the limit of live events.
            let slow = try await store.watch(prefix: "", afterRevision: 0)
            let fast = try await store.watch(prefix: "", afterRevision: 1)
            var fastEvents = fast.makeAsyncIterator()
            var fastSeen: [Int64] = []
            for index in 2...10 {
                _ = try await store.create("k\(index)", value: [])
                if let event = await fastEvents.next() {
                    fastSeen.append(event.kv.modRevision)
                }
            }
            // Writers were never held up, and the consumer that kept up missed nothing.
            #expect(fastSeen == Array(2...10))
            var slowSeen: [Int64] = []
            for await event in slow {
                slowSeen.append(event.kv.modRevision)
            }
            #expect(slowSeen == [1, 2, 3, 4])
        }
    }

    @Test(arguments: StoreKind.allCases)
    func closeEndsWatchesAndRefusesLaterCalls(kind: StoreKind) async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let store: any KVStore = switch kind {
        case .memory: MemoryStore()
        case .sqlite: try SQLiteStore(path: scratch.databasePath)
        }
        _ = try await store.create("k", value: [])
        let stream = try await store.watch(prefix: "", afterRevision: 0)
        let consumer = Task { await collect(stream, through: Int64.max).count }

        await store.close()
        #expect(await consumer.value == 1)
        await #expect(throws: StoreError.closed) { try await store.get("k") }
        await #expect(throws: StoreError.closed) { try await store.list(prefix: "", after: nil, limit: nil) }
        await #expect(throws: StoreError.closed) { try await store.create("new", value: []) }
        await #expect(throws: StoreError.closed) { try await store.update("k", value: [], ifModRevision: nil) }
        await #expect(throws: StoreError.closed) { try await store.delete("k", ifModRevision: nil) }
        await #expect(throws: StoreError.closed) { try await store.watch(prefix: "", afterRevision: 1) }
        #expect(await store.revision == 1)
        await store.close()
    }
}
