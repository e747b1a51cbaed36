import Foundation
@testable import Store
import Testing

/// A backend that records the size of every commit, can be slowed down (to let writers pile
/// up like they do behind an fsync) and made to fail.
final class RecordingBackend: StoreBackend, @unchecked Sendable {
    // Guarded by `lock` (NSLock rather than Mutex: tests import only Foundation and Testing).
    private let lock = NSLock()
    private var recorded: [Int] = []
    private var failing = false
    let commitDelay: Duration

    init(commitDelay: Duration = .zero) {
        self.commitDelay = commitDelay
    }

    var batches: [Int] { lock.withLock { recorded } }

    func setFailing(_ failing: Bool) {
        lock.withLock { self.failing = failing }
    }

    func commit(_ mutations: [Mutation], revision: Int64) throws(StoreError) {
        if commitDelay > .zero {
            let (seconds, attoseconds) = commitDelay.components
            Thread.sleep(forTimeInterval: Double(seconds) + Double(attoseconds) / 1e18)
        }
        let fail = lock.withLock {
            if !failing { recorded.append(mutations.count) }
            return failing
        }
        if fail {
            throw .backend(operation: "commit", reason: "injected failure")
        }
    }

    func close() throws(StoreError) {}
}

private func makeEngine(_ backend: RecordingBackend, options: StoreOptions = StoreOptions()) -> StoreEngine {
    StoreEngine(contents: [], revision: 0, backend: backend, options: options, logger: .init(label: "test"))
}

@Suite("StoreEngine", .timeLimit(.minutes(1)))
struct StoreEngineTests {
    @Test func serialWritesCostOneCommitEach() async throws {
        let backend = RecordingBackend()
        let engine = makeEngine(backend)
        for index in 0..<5 {
            _ = try await engine.submit(.create(key: "k\(index)", value: []))
        }
        #expect(backend.batches == [1, 1, 1, 1, 1])
        await engine.close()
    }

    @Test func concurrentWritersShareCommits() async throws {
        let backend = RecordingBackend(commitDelay: .milliseconds(50))
        let engine = makeEngine(backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<16 {
                group.addTask { _ = try await engine.submit(.create(key: "k\(index)", value: [])) }
            }
            try await group.waitForAll()
        }
        let batches = backend.batches
        #expect(batches.reduce(0, +) == 16)
        #expect(batches.count < 16, "commit sizes \(batches)")
        #expect((batches.max() ?? 0) > 1, "commit sizes \(batches)")
        #expect(engine.revision == 16)
        await engine.close()
    }

    @Test func aBatchIsValidatedInOrderAgainstItsOwnEarlierWrites() {
        var existing = KeySpace()
        existing.put(KeyValue(key: "old", value: [1], createRevision: 1, modRevision: 1))
        let plan = BatchPlan([
            .create(key: "k", value: [1]),
            .create(key: "k", value: [2]),
            .update(key: "k", value: [3], ifModRevision: 11),
            .update(key: "k", value: [4], ifModRevision: 11),
            .delete(key: "k", ifModRevision: 12),
            .update(key: "k", value: [5], ifModRevision: nil),
            .create(key: "old", value: []),
            .delete(key: "old", ifModRevision: 1),
        ], against: existing, revision: 10)

        #expect(plan.revision == 14)
        #expect(plan.outcomes == [
            .success(KeyValue(key: "k", value: [1], createRevision: 11, modRevision: 11)),
            .failure(.alreadyExists(key: "k")),
            .success(KeyValue(key: "k", value: [3], createRevision: 11, modRevision: 12)),
            .failure(.conflict(key: "k", expected: 11, actual: 12)),
            .success(KeyValue(key: "k", value: [3], createRevision: 11, modRevision: 13)),
            .failure(.notFound(key: "k")),
            .failure(.alreadyExists(key: "old")),
            .success(KeyValue(key: "old", value: [1], createRevision: 1, modRevision: 14)),
        ])
        #expect(plan.mutations == [
            .put(KeyValue(key: "k", value: [1], createRevision: 11, modRevision: 11)),
            .put(KeyValue(key: "k", value: [3], createRevision: 11, modRevision: 12)),
            .delete(key: "k"),
            .delete(key: "old"),
        ])
        #expect(plan.events.map(\.kind) == [.put, .put, .delete, .delete])
    }

    @Test func aFailedCommitChangesNothingAndTheStoreCarriesOn() async throws {
        let backend = RecordingBackend()
        let engine = makeEngine(backend)
        let first = try await engine.submit(.create(key: "a", value: [1]))
        let watch = try engine.watch(prefix: "", afterRevision: 0)

        backend.setFailing(true)
        await #expect(throws: StoreError.backend(operation: "commit", reason: "injected failure")) {
            try await engine.submit(.update(key: "a", value: [2], ifModRevision: nil))
        }
        await #expect(throws: StoreError.backend(operation: "commit", reason: "injected failure")) {
            try await engine.submit(.create(key: "b", value: []))
        }
        #expect(engine.revision == 1)
        #expect(try engine.get("a") == first)
        #expect(try engine.get("b") == nil)

        backend.setFailing(false)
        let next = try await engine.submit(.create(key: "b", value: []))
        #expect(next.modRevision == 2)
        #expect(await collect(watch, through: 2).map(\.kv.key) == ["a", "b"])
        await engine.close()
    }

    @Test func watchersAreForgottenWhenTheirConsumerGoesAway() async throws {
        let engine = makeEngine(RecordingBackend())
        let cancelled = try engine.watch(prefix: "", afterRevision: 0)
        let consumer = Task { for await _ in cancelled {} }
        do {
            _ = try engine.watch(prefix: "", afterRevision: 0)  // dropped unread
        }
        let kept = try engine.watch(prefix: "", afterRevision: 0)
        consumer.cancel()
        await consumer.value
        #expect(engine.watcherCount == 1)
        _ = try await engine.submit(.create(key: "k", value: []))
        #expect(await collect(kept, through: 1).count == 1)
        await engine.close()
        #expect(engine.watcherCount == 0)
    }

    @Test func aWatchAfterAFutureRevisionWaitsForIt() async throws {
        let engine = makeEngine(RecordingBackend())
        let future = try engine.watch(prefix: "", afterRevision: 3)
        for index in 1...5 {
            _ = try await engine.submit(.create(key: "k\(index)", value: []))
        }
        #expect(await collect(future, through: 5).map(\.kv.modRevision) == [4, 5])
        await engine.close()
    }
}
