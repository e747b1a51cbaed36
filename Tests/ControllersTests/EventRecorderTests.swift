import APIMachinery
import Testing
@testable import Controllers

@Suite struct EventRecorderTests {
    @Test func repeatedEventsAreCountedNotDuplicated() async throws {
        let h = try await Harness { _ in [] }
        defer { Task { await h.stop() } }
        let cm = try await h.create(Resources.configMaps, ["apiVersion": "v1", "kind": "ConfigMap",
                                                           "metadata": ["name": "x", "namespace": "default"]])
        for _ in 0..<3 {
            h.context.events.record(cm, component: "test-controller", type: "Warning", reason: "Broken", message: "it broke")
        }
        h.context.events.record(cm, component: "test-controller", reason: "Fixed", message: "fixed")
        #expect(try await h.eventually { try await h.items(Resources.events).count == 2 })
        let events = try await h.items(Resources.events)
        let broken = try #require(events.first { $0["reason"] == "Broken" })
        #expect(try await h.eventually {
            try await h.api.get(Resources.events, namespace: "default", name: broken.name ?? "")["count"] == 3
        })
        #expect(broken["involvedObject"]?["name"] == "x")
        #expect(broken["involvedObject"]?["kind"] == "ConfigMap")
        #expect(broken["involvedObject"]?["uid"] == cm["metadata"]?["uid"])
        #expect(broken["source"]?["component"] == "test-controller")
        #expect(broken["type"] == "Warning")
        #expect(broken.name?.hasPrefix("x.") == true)
    }
}
