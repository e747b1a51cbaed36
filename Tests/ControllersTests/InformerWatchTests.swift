import APIMachinery
import Logging
import Synchronization
import TestSupport
import Testing
@testable import Controllers

/// When an informer lists and when it only watches again: the server ends every watch after
/// 5-10 minutes, and a relist each time would decode every object again.
@Suite("informer list and watch")
struct InformerWatchTests {
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
        let client = ScriptedAPIClient(streams: [
            [APIWatchEvent(type: .added, object: Self.service("added", rv: 12))],  // then the server ends it
            [Self.bookmark(rv: 15)],                                                 // ends again, quietly
            [gone],                                                                  // 410: list again
        ], listed: { _, n in [Self.service("listed", rv: 10 * n)] })
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
