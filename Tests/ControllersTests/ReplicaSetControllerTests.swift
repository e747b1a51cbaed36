import APIMachinery
import APIServer
import Foundation
import Logging
import Store
import Synchronization
import Testing
@testable import Controllers

/// Test fixtures shared by the ReplicaSet and Deployment controller tests.
enum Fixture {
    static func replicaSet(_ name: String, replicas: Int, app: String = "web", minReadySeconds: Int = 0) -> JSON {
        var rs: JSON = [
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": ["name": .string(name), "namespace": "default"],
            "spec": [
                "replicas": .int(Int64(replicas)),
                "selector": ["matchLabels": ["app": .string(app)]],
                "template": [
                    "metadata": ["labels": ["app": .string(app), "tier": "front"], "annotations": ["note": "kept"]],
                    "spec": ["containers": [["name": "web", "image": "nginx:1.25"]]],
                ],
            ],
        ]
        if minReadySeconds > 0 { rs[path: "spec", "minReadySeconds"] = .int(Int64(minReadySeconds)) }
        return rs
    }

    static func pod(_ name: String, labels: [String: String]) -> JSON {
        var labelsJSON: JSON = .object([:])
        for (k, v) in labels { labelsJSON[k] = .string(v) }
        return ["apiVersion": "v1", "kind": "Pod",
                "metadata": ["name": .string(name), "namespace": "default", "labels": labelsJSON],
                "spec": ["containers": [["name": "web", "image": "nginx:1.25"]]]]
    }

    /// Pods controlled by the object with `uid` that are not being deleted.
    static func activePods(_ h: Harness, ownedBy uid: String?) async throws -> [JSON] {
        try await h.items(Resources.pods).filter { ControllerRef(of: $0)?.uid == uid && $0.deletionTimestamp == nil }
    }

    static func events(_ h: Harness, about name: String, reason: String) async throws -> [JSON] {
        try await h.items(Resources.events).filter {
            $0[path: "involvedObject", "name"]?.stringValue == name && $0["reason"]?.stringValue == reason
        }
    }

    static let ipCounter = Mutex(10)

    /// A fresh pod address for `markReady`.
    static func nextIP() -> String {
        let n = ipCounter.withLock { n -> Int in
            n += 1
            return n
        }
        return "10.244.\(n / 250).\(n % 250 + 1)"
    }
}

@Suite struct ReplicaSetControllerTests {
    static func harness() async throws -> Harness {
        try await Harness { [ReplicaSetController($0)] }
    }

    @Test func createsPodsFromTheTemplateAndReportsStatus() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let rs = try await h.create(Resources.replicaSets, Fixture.replicaSet("web", replicas: 3))

        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: rs.uid).count == 3 })
        let pods = try await Fixture.activePods(h, ownedBy: rs.uid)
        for pod in pods {
            #expect(pod.name?.hasPrefix("web-") == true && pod.name?.count == "web-".count + 5)
            #expect(pod.labels == ["app": "web", "tier": "front"])
            #expect(pod[path: "metadata", "annotations", "note"] == "kept")
            #expect(pod[path: "spec", "containers"]?.arrayValue?.first?["image"] == "nginx:1.25")
            let ref = pod[path: "metadata", "ownerReferences"]?.arrayValue?.first
            #expect(ref?["apiVersion"] == "apps/v1" && ref?["kind"] == "ReplicaSet" && ref?["name"] == "web")
            #expect(ref?["uid"]?.stringValue == rs.uid && ref?["controller"] == true && ref?["blockOwnerDeletion"] == true)
        }
        #expect(try await h.eventually {
            let s = try await h.api.get(Resources.replicaSets, namespace: "default", name: "web")["status"]
            return s?["replicas"] == 3 && s?["fullyLabeledReplicas"] == 3 && s?["observedGeneration"] == 1
                && s?["readyReplicas"] == nil
        })

        for pod in pods { _ = try await h.markReady(pod, ip: Fixture.nextIP()) }
        #expect(try await h.eventually {
            let s = try await h.api.get(Resources.replicaSets, namespace: "default", name: "web")["status"]
            return s?["readyReplicas"] == 3 && s?["availableReplicas"] == 3
        })

        // One SuccessfulCreate per pod, naming it, from the replicaset controller.
        #expect(try await h.eventually { try await Fixture.events(h, about: "web", reason: "SuccessfulCreate").count == 3 })
        let messages = Set(try await Fixture.events(h, about: "web", reason: "SuccessfulCreate").compactMap { $0["message"]?.stringValue })
        #expect(messages == Set(pods.map { "Created pod: \($0.name ?? "")" }))
        let source = try await Fixture.events(h, about: "web", reason: "SuccessfulCreate").first?[path: "source", "component"]
        #expect(source == "replicaset-controller")
    }

    @Test func scalingDownDeletesNotReadyPodsFirst() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let rs = try await h.create(Resources.replicaSets, Fixture.replicaSet("web", replicas: 4))
        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: rs.uid).count == 4 })
        let pods = try await Fixture.activePods(h, ownedBy: rs.uid)
        // Two ready, one bound but not ready, one never scheduled.
        let ready = [pods[0].name ?? "", pods[1].name ?? ""]
        _ = try await h.markReady(pods[0], ip: Fixture.nextIP())
        _ = try await h.markReady(pods[1], ip: Fixture.nextIP())
        _ = try await h.markReady(pods[2], ip: Fixture.nextIP(), ready: false)
        #expect(try await h.eventually {
            try await h.api.get(Resources.replicaSets, namespace: "default", name: "web")[path: "status", "readyReplicas"] == 2
        })

        _ = try await h.api.mergePatch(Resources.replicaSets, namespace: "default", name: "web", ["spec": ["replicas": 2]],
                                       subresource: "scale", manager: "test")
        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: rs.uid).count == 2 })
        let left = try await Fixture.activePods(h, ownedBy: rs.uid).compactMap(\.name)
        #expect(Set(left) == Set(ready))
        #expect(try await h.eventually { try await Fixture.events(h, about: "web", reason: "SuccessfulDelete").count == 2 })
        #expect(try await h.eventually {
            try await h.api.get(Resources.replicaSets, namespace: "default", name: "web")[path: "status", "replicas"] == 2
        })
    }

    @Test func adoptsMatchingOrphansAndReleasesPodsThatStopMatching() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        _ = try await h.create(Resources.pods, Fixture.pod("stray", labels: ["app": "web"]))
        _ = try await h.create(Resources.pods, Fixture.pod("other", labels: ["app": "db"]))
        let rs = try await h.create(Resources.replicaSets, Fixture.replicaSet("web", replicas: 2))

        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: rs.uid).count == 2 })
        let stray = try await h.api.get(Resources.pods, namespace: "default", name: "stray")
        #expect(ControllerRef(of: stray)?.uid == rs.uid, "the orphan was adopted instead of creating a second pod")
        #expect(try await Fixture.events(h, about: "web", reason: "SuccessfulCreate").count <= 1)
        let other = try await h.api.get(Resources.pods, namespace: "default", name: "other")
        #expect(ControllerRef(of: other) == nil)

        // Relabel the adopted pod: it is released and replaced.
        var relabeled = stray
        relabeled[path: "metadata", "labels", "app"] = "debug"
        _ = try await h.api.update(Resources.pods, namespace: "default", name: "stray", body: relabeled)
        #expect(try await h.eventually {
            let p = try await h.api.get(Resources.pods, namespace: "default", name: "stray")
            return ControllerRef(of: p) == nil
        })
        #expect(try await h.eventually {
            let owned = try await Fixture.activePods(h, ownedBy: rs.uid)
            return owned.count == 2 && !owned.contains { $0.name == "stray" }
        })
    }

    @Test func minReadySecondsDelaysAvailability() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let rs = try await h.create(Resources.replicaSets, Fixture.replicaSet("slow", replicas: 1, minReadySeconds: 2))
        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: rs.uid).count == 1 })
        let pod = try #require(try await Fixture.activePods(h, ownedBy: rs.uid).first)
        let readyAt = ContinuousClock.now
        _ = try await h.markReady(pod, ip: Fixture.nextIP())
        #expect(try await h.eventually {
            try await h.api.get(Resources.replicaSets, namespace: "default", name: "slow")[path: "status", "readyReplicas"] == 1
        })
        let early = try await h.api.get(Resources.replicaSets, namespace: "default", name: "slow")
        // Ready-since times have whole seconds, so availability comes 1 to 2 s after readiness;
        // on a loaded machine the read above may already be later than that.
        if ContinuousClock.now - readyAt < .milliseconds(900) {
            #expect(early[path: "status", "availableReplicas"] == nil, "ready, but not yet for minReadySeconds")
        }
        #expect(try await h.eventually(timeout: .seconds(20)) {
            try await h.api.get(Resources.replicaSets, namespace: "default", name: "slow")[path: "status", "availableReplicas"] == 1
        })
    }

    @Test func hundredReplicasAppearFast() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let start = ContinuousClock.now
        let rs = try await h.create(Resources.replicaSets, Fixture.replicaSet("many", replicas: 100))
        let done = try await h.eventually(timeout: .seconds(60)) { try await Fixture.activePods(h, ownedBy: rs.uid).count == 100 }
        let elapsed = ContinuousClock.now - start
        print("ReplicaSet: 100 pod objects after \(elapsed)")
        #expect(done)
        // The figure is the benchmark's business (Benchmarks/controllers.sh); this only bounds a hang.
        #expect(elapsed < .seconds(60))
        #expect(try await h.eventually {
            try await h.api.get(Resources.replicaSets, namespace: "default", name: "many")[path: "status", "replicas"] == 100
        })
    }

    struct SlowStartCase: Sendable {
        var count: Int
        var succeedFirst: Int
        var calls: Int
        var successes: Int
    }

    @Test(arguments: [
        SlowStartCase(count: 100, succeedFirst: 1000, calls: 100, successes: 100),
        SlowStartCase(count: 5, succeedFirst: 0, calls: 1, successes: 0),    // first batch of one fails: stop
        SlowStartCase(count: 20, succeedFirst: 3, calls: 7, successes: 3),   // batches 1, 2 succeed; 4 fail
        SlowStartCase(count: 0, succeedFirst: 0, calls: 0, successes: 0),
    ])
    func slowStartBatches(_ c: SlowStartCase) async {
        let calls = Counter()
        let outcome = await ReplicaSetController.slowStart(c.count) {
            let n = calls.value.withLock { n -> Int in
                n += 1
                return n
            }
            return n <= c.succeedFirst ? .success(Int64(n)) : .failure(APIError.internalError("refused"))
        }
        #expect(calls.value.withLock { $0 } == c.calls)
        #expect(outcome.successes == c.successes)
        #expect((outcome.error == nil) == (c.successes == c.count))
    }

    @Test func failedCreatesAreReportedAndRetried() async throws {
        let refusing = RefusingPodCreates(base: APIService(store: MemoryStore()))
        let h = try await CustomHarness(client: refusing) { [ReplicaSetController($0)] }
        defer { Task { await h.stop() } }
        _ = try await refusing.base.create(Resources.namespaces, namespace: nil,
                                           body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        _ = try await refusing.base.create(Resources.replicaSets, namespace: "default", body: Fixture.replicaSet("web", replicas: 5))

        #expect(try await h.eventually {
            let s = try await refusing.base.get(Resources.replicaSets, namespace: "default", name: "web")["status"]
            let c = s?["conditions"]?.arrayValue?.first
            return c?["type"] == "ReplicaFailure" && c?["reason"] == "FailedCreate" && c?["status"] == "True"
                && c?["message"]?.stringValue?.contains("exceeded quota") == true
        })
        // Same failure again and again: one Event whose count grows.
        #expect(try await h.eventually {
            let events = try await refusing.base.list(Resources.events, namespace: "default").items
                .filter { $0["reason"] == "FailedCreate" }
            return events.count == 1 && (events.first?["count"]?.intValue ?? 0) >= 2
                && events.first?["type"] == "Warning"
                && events.first?["message"]?.stringValue?.hasPrefix("Error creating: ") == true
        })
        // Once creates work again the condition goes.
        refusing.refuse.withLock { $0 = false }
        #expect(try await h.eventually(timeout: .seconds(40)) {
            let s = try await refusing.base.get(Resources.replicaSets, namespace: "default", name: "web")["status"]
            return s?["replicas"] == 5 && s?["conditions"] == nil
        })
    }

    // MARK: Deletion order

    static func rankPod(_ name: String, node: String? = nil, phase: String = "Pending", ready: Bool = false,
                        readySince: String? = nil, created: String = "2025-01-01T00:00:00Z", restarts: Int64 = 0,
                        cost: String? = nil) -> JSON {
        var pod: JSON = ["metadata": ["name": .string(name), "uid": .string(name), "creationTimestamp": .string(created)],
                         "spec": [:], "status": ["phase": .string(phase)]]
        if let node { pod[path: "spec", "nodeName"] = .string(node) }
        if let cost { pod[path: "metadata", "annotations"] = ["controller.kubernetes.io/pod-deletion-cost": .string(cost)] }
        pod[path: "status", "conditions"] = [["type": "Ready", "status": ready ? "True" : "False",
                                              "lastTransitionTime": .string(readySince ?? created)]]
        pod[path: "status", "containerStatuses"] = [["name": "c", "restartCount": .int(restarts)]]
        return pod
    }

    struct RankCase: Sendable, CustomStringConvertible {
        var label: String
        var first: JSON
        var second: JSON
        var description: String { label }
    }

    /// `first` must be deleted before `second`, whatever their order in the input.
    @Test(arguments: [
        RankCase(label: "unscheduled before scheduled",
                 first: rankPod("a"), second: rankPod("b", node: "n", phase: "Running", ready: true)),
        RankCase(label: "pending before running",
                 first: rankPod("a", node: "n", phase: "Pending"), second: rankPod("b", node: "n", phase: "Running")),
        RankCase(label: "unknown before running",
                 first: rankPod("a", node: "n", phase: "Unknown"), second: rankPod("b", node: "n", phase: "Running")),
        RankCase(label: "not ready before ready",
                 first: rankPod("a", node: "n", phase: "Running"), second: rankPod("b", node: "n", phase: "Running", ready: true)),
        RankCase(label: "lower deletion cost first",
                 first: rankPod("a", node: "n", phase: "Running", ready: true, cost: "-5"),
                 second: rankPod("b", node: "n", phase: "Running", ready: true)),
        RankCase(label: "ready more recently first",
                 first: rankPod("a", node: "n", phase: "Running", ready: true, readySince: "2025-01-01T11:59:00Z"),
                 second: rankPod("b", node: "n", phase: "Running", ready: true, readySince: "2025-01-01T06:00:00Z")),
        RankCase(label: "more restarts first",
                 first: rankPod("b", node: "n", phase: "Running", restarts: 5), second: rankPod("a", node: "n", phase: "Running")),
        RankCase(label: "newer first",
                 first: rankPod("b", node: "n", phase: "Running", created: "2025-01-01T11:00:00Z"),
                 second: rankPod("a", node: "n", phase: "Running", created: "2025-01-01T00:00:00Z")),
    ])
    func deletionRanking(_ c: RankCase) {
        let now = Timestamp.parse("2025-01-01T12:00:00Z") ?? 0
        #expect(PodFacts.podsToDelete([c.first, c.second], count: 1, now: now).first?.name == c.first.name)
        #expect(PodFacts.podsToDelete([c.second, c.first], count: 1, now: now).first?.name == c.first.name)
    }

    @Test func podActivityAndAvailability() {
        let now = Timestamp.parse("2025-01-01T12:00:00Z") ?? 0
        let ready = Self.rankPod("a", node: "n", phase: "Running", ready: true, readySince: "2025-01-01T11:59:58Z")
        #expect(PodFacts.isAvailable(ready, minReadySeconds: 0, now: now))
        #expect(PodFacts.isAvailable(ready, minReadySeconds: 1, now: now))
        #expect(!PodFacts.isAvailable(ready, minReadySeconds: 2, now: now))
        #expect(!PodFacts.isActive(Self.rankPod("f", phase: "Failed")))
        #expect(!PodFacts.isActive(Self.rankPod("s", phase: "Succeeded")))
        var terminating = ready
        terminating[path: "metadata", "deletionTimestamp"] = "2025-01-01T12:00:30Z"
        #expect(!PodFacts.isActive(terminating) && PodFacts.isActive(ready))
    }
}

final class Counter: Sendable {
    let value = Mutex(0)
}

/// An API client that refuses pod creation (as a quota would) while `refuse` is set.
final class RefusingPodCreates: APIClient {
    let base: APIService
    let refuse = Mutex(true)

    init(base: APIService) { self.base = base }

    func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) async throws(APIError) -> JSON {
        try await base.get(r, namespace: namespace, name: name, subresource: subresource)
    }

    func list(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> APIMachinery.ListResult {
        try await base.list(r, namespace: namespace, options: options)
    }

    func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions,
                subresource: String?) async throws(APIError) -> JSON {
        if r.resource == "pods", subresource == nil, refuse.withLock({ $0 }) {
            throw APIError(code: 403, reason: .forbidden,
                           message: "pods \"\(body[path: "metadata", "generateName"]?.stringValue ?? "")\" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=0, limited: pods=0")
        }
        return try await base.create(r, namespace: namespace, body: body, options: options, subresource: subresource)
    }

    func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String?,
                options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        try await base.update(r, namespace: namespace, name: name, body: body, subresource: subresource, options: options)
    }

    func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
               subresource: String?, options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        try await base.patch(r, namespace: namespace, name: name, type: type, body: body, subresource: subresource, options: options)
    }

    func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions) async throws(APIError) -> DeleteResult {
        try await base.delete(r, namespace: namespace, name: name, options: options)
    }

    func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent> {
        try await base.watch(r, namespace: namespace, options: options)
    }
}

/// Like `Harness`, but with the controllers talking to the given client.
final class CustomHarness: Sendable {
    let task: Task<Void, Never>
    let controllers: [any Reconciler]

    init(client: any APIClient, _ make: (ControllerContext) -> [any Reconciler]) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let context = ControllerContext(client: client, informers: Informers(), events: EventRecorder(client: client),
                                        settings: Harness.settings, logger: logger)
        let controllers = make(context)
        self.controllers = controllers
        let manager = ControllerManager(context: context, controllers: controllers)
        task = Task { try? await manager.run() }
        for informer in context.informers.all { await informer.waitSynced() }
    }

    /// Same bound as `Harness.eventually`: a busy parallel run can delay a controller's sync by seconds.
    func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }

    func stop() async {
        for c in controllers { c.queue.shutDown() }
        task.cancel()
        await task.value
    }
}
