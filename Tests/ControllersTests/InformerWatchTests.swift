import APIMachinery
import Logging
import Synchronization
import Testing
@testable import Controllers

/// When an informer lists and when it only watches again: the server ends every watch after
/// 5-10 minutes, and a relist each time would decode every object again.
@Suite("informer list and watch")
struct InformerWatchTests {
    /// An API client that answers lists with one Service and plays the scripted watch streams
    /// in turn, recording each request; the last stream stays open until cancelled.
    final class ScriptedClient: APIClient {
        struct Calls {
            var lists = 0
            var watchedFrom: [String] = []
        }
        let calls = Mutex(Calls())
        let streams: [[APIWatchEvent]]

        init(streams: [[APIWatchEvent]]) { self.streams = streams }

        func list(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> ListResult {
            let n = calls.withLock { c -> Int in
                c.lists += 1
                return c.lists
            }
            return ListResult(items: [InformerWatchTests.service("listed", rv: 10 * n)], resourceVersion: Int64(10 * n))
        }

        func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent> {
            let index = calls.withLock { c -> Int in
                c.watchedFrom.append(options.resourceVersion ?? "")
                return c.watchedFrom.count - 1
            }
            let (stream, continuation) = AsyncStream<APIWatchEvent>.makeStream()
            guard index < streams.count else { return stream }  // open until the informer stops
            for event in streams[index] { continuation.yield(event) }
            // The server ends the watch a moment later (a stream ending at once is backed off).
            Task {
                try? await Task.sleep(for: .milliseconds(1100))
                continuation.finish()
            }
            return stream
        }

        func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) async throws(APIError) -> JSON {
            throw APIError.notFound(r.resource, name: name)
        }
        func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions,
                    subresource: String?) async throws(APIError) -> JSON {
            throw APIError.methodNotAllowed("create")
        }
        func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String?,
                    options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
            throw APIError.methodNotAllowed("update")
        }
        func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
                   subresource: String?, options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
            throw APIError.methodNotAllowed("patch")
        }
        func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions) async throws(APIError) -> DeleteResult {
            throw APIError.methodNotAllowed("delete")
        }
    }

    static func service(_ name: String, rv: Int) -> JSON {
        ["apiVersion": "v1", "kind": "Service",
         "metadata": ["name": .string(name), "namespace": "default", "resourceVersion": .string(String(rv))]]
    }

    static func bookmark(rv: Int) -> APIWatchEvent {
        APIWatchEvent(type: .bookmark, object: ["kind": "Service", "metadata": ["resourceVersion": .string(String(rv))]])
    }

    @Test("a watch the server ends resumes from the last revision seen; only an ERROR lists again")
    func resumesWithoutRelisting() async throws {
        let gone = APIWatchEvent(type: .error, object: ["kind": "Status", "code": 410, "reason": "Expired",
                                                         "message": "too old resource version: 12 (40)"])
        let client = ScriptedClient(streams: [
            [APIWatchEvent(type: .added, object: Self.service("added", rv: 12))],  // then the server ends it
            [Self.bookmark(rv: 15)],                                                 // ends again, quietly
            [gone],                                                                  // 410: list again
        ])
        let informer = Informer(Resources.services)
        var logger = Logger(label: "labnode.test")
        logger.logLevel = .critical
        let running = Task { [logger] in await informer.run(client: client, logger: logger) }
        defer { running.cancel() }

        for _ in 0..<100 where informer.watches < 4 {
            try await Task.sleep(for: .milliseconds(100))
        }
        let calls = client.calls.withLock { $0 }
        // One list at the start, none when the watch ended after an event or a bookmark, a
        // second one after the 410, whose revision (20) the next watch starts from.
        #expect(calls.lists == 2, "\(calls)")
        #expect(informer.lists == 2 && informer.watches == 4)
        #expect(calls.watchedFrom == ["10", "12", "15", "20"], "\(calls)")
        #expect(informer.get(namespace: "default", name: "listed") != nil)
        // The relist replaced the copy: "added" was not in the second list.
        #expect(informer.get(namespace: "default", name: "added") == nil)
        running.cancel()
        await running.value
    }
}
