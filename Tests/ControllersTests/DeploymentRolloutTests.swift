import APIMachinery
import Testing
@testable import Controllers

@Suite struct DeploymentRolloutTests {
    // MARK: maxSurge / maxUnavailable

    struct FencepostCase: Sendable, CustomStringConvertible {
        var surge: JSON?
        var unavailable: JSON?
        var replicas: Int
        var expected: (surge: Int, unavailable: Int)
        var description: String { "\(surge?.text ?? "nil")/\(unavailable?.text ?? "nil") of \(replicas)" }
    }

    @Test(arguments: [
        FencepostCase(surge: "25%", unavailable: "25%", replicas: 3, expected: (1, 0)),   // surge rounds up, unavailable down
        FencepostCase(surge: "25%", unavailable: "25%", replicas: 4, expected: (1, 1)),
        FencepostCase(surge: "25%", unavailable: "25%", replicas: 10, expected: (3, 2)),
        FencepostCase(surge: "50%", unavailable: 2, replicas: 5, expected: (3, 2)),
        FencepostCase(surge: 1, unavailable: 0, replicas: 3, expected: (1, 0)),
        FencepostCase(surge: 0, unavailable: 0, replicas: 5, expected: (0, 1)),           // both zero: one may be unavailable
        FencepostCase(surge: "0%", unavailable: "1%", replicas: 2, expected: (0, 1)),     // rounds to zero: same rule
        FencepostCase(surge: nil, unavailable: nil, replicas: 3, expected: (0, 1)),
        FencepostCase(surge: "100%", unavailable: "0%", replicas: 1, expected: (1, 0)),
        FencepostCase(surge: "30%", unavailable: "30%", replicas: 0, expected: (0, 1)),
    ])
    func fenceposts(_ c: FencepostCase) {
        let r = RolloutMath.resolveFenceposts(maxSurge: c.surge, maxUnavailable: c.unavailable, desired: c.replicas)
        #expect(r.surge == c.expected.surge && r.unavailable == c.expected.unavailable, "got \(r)")
    }

    @Test func maxUnavailableIsCappedAndZeroForRecreateOrNoReplicas() {
        #expect(DeploymentParams(replicas: 2, maxSurge: 0, maxUnavailable: 5).maxUnavailable == 2)
        #expect(DeploymentParams(replicas: 0, maxSurge: 1, maxUnavailable: 1).maxUnavailable == 0)
        let recreate = DeploymentParams(replicas: 4, rolling: false)
        #expect(recreate.maxUnavailable == 0 && recreate.maxSurge == 0 && recreate.minAvailable == 0)
        #expect(DeploymentParams(replicas: 10).minAvailable == 8)
    }

    @Test func paramsReadTheDeploymentSpec() throws {
        let d = try JSON.parse(#"{"spec":{"replicas":7,"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":2,"maxUnavailable":"50%"}}}}"#)
        let p = DeploymentParams(d)
        #expect(p.replicas == 7 && p.rolling && p.maxSurge == 2 && p.maxUnavailable == 3)
        let r = try JSON.parse(#"{"spec":{"replicas":2,"strategy":{"type":"Recreate"}}}"#)
        #expect(!DeploymentParams(r).rolling)
    }

    // MARK: One step of a rolling update

    struct NewSizeCase: Sendable {
        var params: DeploymentParams
        var all: Int
        var new: Int
        var expected: Int
    }

    @Test(arguments: [
        NewSizeCase(params: DeploymentParams(replicas: 3), all: 3, new: 0, expected: 1),    // one surge pod
        NewSizeCase(params: DeploymentParams(replicas: 3), all: 4, new: 1, expected: 1),    // at replicas + surge: wait
        NewSizeCase(params: DeploymentParams(replicas: 3), all: 3, new: 1, expected: 2),    // an old pod went: one more
        NewSizeCase(params: DeploymentParams(replicas: 10), all: 10, new: 0, expected: 3),
        NewSizeCase(params: DeploymentParams(replicas: 10), all: 0, new: 0, expected: 10),  // first rollout: all at once
        NewSizeCase(params: DeploymentParams(replicas: 3), all: 3, new: 3, expected: 3),    // never past replicas
        NewSizeCase(params: DeploymentParams(replicas: 5, rolling: false), all: 5, new: 0, expected: 5),
        NewSizeCase(params: DeploymentParams(replicas: 4, maxSurge: 0, maxUnavailable: 1), all: 4, new: 0, expected: 0),
        NewSizeCase(params: DeploymentParams(replicas: 4, maxSurge: 0, maxUnavailable: 1), all: 3, new: 0, expected: 1),
    ])
    func newReplicaSetSize(_ c: NewSizeCase) {
        #expect(RolloutMath.newReplicaSetSize(c.params, allReplicas: c.all, newReplicas: c.new) == c.expected)
    }

    struct BudgetCase: Sendable {
        var params: DeploymentParams
        var all: Int
        var new: Int
        var newAvailable: Int
        var expected: Int
    }

    @Test(arguments: [
        BudgetCase(params: DeploymentParams(replicas: 3), all: 4, new: 1, newAvailable: 0, expected: 0),
        BudgetCase(params: DeploymentParams(replicas: 3), all: 4, new: 1, newAvailable: 1, expected: 1),
        // 10 replicas, surge 3, unavailable 2: a crash-looping new set blocks scale-down...
        BudgetCase(params: DeploymentParams(replicas: 10, maxSurge: 3, maxUnavailable: 2), all: 13, new: 5, newAvailable: 0, expected: 0),
        // ...but after rolling back to a healthy set only its unavailable pods count.
        BudgetCase(params: DeploymentParams(replicas: 10, maxSurge: 3, maxUnavailable: 2), all: 13, new: 5, newAvailable: 4, expected: 4),
        BudgetCase(params: DeploymentParams(replicas: 4, maxSurge: 0, maxUnavailable: 1), all: 4, new: 0, newAvailable: 0, expected: 1),
    ])
    func oldScaleDownBudget(_ c: BudgetCase) {
        #expect(RolloutMath.oldScaleDownBudget(c.params, allReplicas: c.all, newReplicas: c.new, newAvailable: c.newAvailable) == c.expected)
    }

    @Test func unhealthyOldPodsGoFirstOldestSetFirst() {
        let old = [
            ReplicaSetFigures(name: "b", created: 200, replicas: 2, available: 2),
            ReplicaSetFigures(name: "a", created: 100, replicas: 3, available: 1),
            ReplicaSetFigures(name: "c", created: 300, replicas: 2, available: 0),
        ]
        let all = RolloutMath.cleanupUnhealthy(old: old, budget: 10)
        #expect(all.map(\.name) == ["a", "c"] && all.map(\.replicas) == [1, 0])
        let limited = RolloutMath.cleanupUnhealthy(old: old, budget: 1)
        #expect(limited.map(\.name) == ["a"] && limited.map(\.replicas) == [2])
    }

    struct ScaleDownCase: Sendable {
        var old: [ReplicaSetFigures]
        var available: Int
        var minAvailable: Int
        var expected: [String: Int]
    }

    @Test(arguments: [
        ScaleDownCase(old: [ReplicaSetFigures(name: "a", created: 1, replicas: 3)], available: 4, minAvailable: 3, expected: ["a": 2]),
        ScaleDownCase(old: [ReplicaSetFigures(name: "a", created: 1, replicas: 3)], available: 3, minAvailable: 3, expected: [:]),
        ScaleDownCase(old: [ReplicaSetFigures(name: "b", created: 2, replicas: 3), ReplicaSetFigures(name: "a", created: 1, replicas: 2)],
                      available: 6, minAvailable: 3, expected: ["a": 0, "b": 2]),
        ScaleDownCase(old: [ReplicaSetFigures(name: "a", created: 1, replicas: 0), ReplicaSetFigures(name: "b", created: 2, replicas: 4)],
                      available: 9, minAvailable: 3, expected: ["b": 0]),
    ])
    func scaleDownOld(_ c: ScaleDownCase) {
        let steps = RolloutMath.scaleDownOld(old: c.old, availableTotal: c.available, minAvailable: c.minAvailable)
        #expect(Dictionary(uniqueKeysWithValues: steps.map { ($0.name, $0.replicas) }) == c.expected)
    }

    // MARK: Proportional scaling

    struct ProportionCase: Sendable, CustomStringConvertible {
        var label: String
        var params: DeploymentParams
        var sets: [ReplicaSetFigures]
        var statusReplicas: Int
        var direction: String
        var expected: [String: Int]
        var description: String { label }
    }

    /// Sets with creation times 1 (oldest) ... n, annotated with the size they were given.
    static func sets(_ sizes: [(String, Int)], annotated: Int?) -> [ReplicaSetFigures] {
        sizes.enumerated().map { i, s in
            ReplicaSetFigures(name: s.0, created: Double(i + 1), replicas: s.1, maxReplicasAnnotation: annotated)
        }
    }

    @Test(arguments: [
        ProportionCase(label: "5 -> 10", params: DeploymentParams(replicas: 10, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 3), ("v2", 2)], annotated: 5), statusReplicas: 5, direction: "up",
                       expected: ["v1": 6, "v2": 4]),
        ProportionCase(label: "5 -> 3", params: DeploymentParams(replicas: 3, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 3), ("v2", 2)], annotated: 5), statusReplicas: 5, direction: "down",
                       expected: ["v1": 2, "v2": 1]),
        ProportionCase(label: "9 -> 4", params: DeploymentParams(replicas: 4, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 1), ("v2", 8)], annotated: 9), statusReplicas: 9, direction: "down",
                       expected: ["v1": 0, "v2": 4]),
        ProportionCase(label: "7 -> 10, three sets", params: DeploymentParams(replicas: 10, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 2), ("v2", 3), ("v3", 2)], annotated: 7), statusReplicas: 7, direction: "up",
                       expected: ["v1": 3, "v2": 4, "v3": 3]),
        ProportionCase(label: "13 -> 8, three sets", params: DeploymentParams(replicas: 8, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 3), ("v2", 8), ("v3", 2)], annotated: 13), statusReplicas: 13, direction: "down",
                       expected: ["v1": 2, "v2": 5, "v3": 1]),
        // Rounding leaves 5 over; they go to the largest set.
        ProportionCase(label: "10 -> 20 with surge 3", params: DeploymentParams(replicas: 20, maxSurge: 3, maxUnavailable: 2),
                       sets: sets([("old", 6), ("new", 4)], annotated: 13), statusReplicas: 10, direction: "up",
                       expected: ["old": 16, "new": 7]),
        // Without annotations the deployment's current size is the reference.
        ProportionCase(label: "no annotation", params: DeploymentParams(replicas: 6, maxSurge: 0, maxUnavailable: 1),
                       sets: sets([("v1", 2), ("v2", 1)], annotated: nil), statusReplicas: 3, direction: "up",
                       expected: ["v1": 4, "v2": 2]),
        ProportionCase(label: "to zero", params: DeploymentParams(replicas: 0),
                       sets: sets([("v1", 2), ("v2", 3)], annotated: 5), statusReplicas: 5, direction: "down",
                       expected: ["v1": 0, "v2": 0]),
        ProportionCase(label: "nothing to add", params: DeploymentParams(replicas: 4, maxSurge: 1, maxUnavailable: 0),
                       sets: sets([("v1", 2), ("v2", 3)], annotated: 5), statusReplicas: 5, direction: "",
                       expected: ["v1": 2, "v2": 3]),
    ])
    func proportionalScaling(_ c: ProportionCase) {
        let plan = RolloutMath.proportionalSizes(active: c.sets, c.params, statusReplicas: c.statusReplicas)
        #expect(plan.direction == c.direction)
        #expect(Dictionary(uniqueKeysWithValues: plan.sizes.map { ($0.name, $0.replicas) }) == c.expected)
        let total = plan.sizes.reduce(0) { $0 + $1.replicas }
        let allowed = c.params.replicas > 0 ? c.params.replicas + c.params.maxSurge : 0
        #expect(c.direction.isEmpty || total == allowed, "the sets add up to replicas + surge")
    }

    @Test func sizeOrderingsBreakTiesByAge() {
        let s = [ReplicaSetFigures(name: "old", created: 1, replicas: 2), ReplicaSetFigures(name: "big", created: 2, replicas: 5),
                 ReplicaSetFigures(name: "new", created: 3, replicas: 2)]
        #expect(RolloutMath.bySizeNewer(s).map(\.name) == ["big", "new", "old"])
        #expect(RolloutMath.bySizeOlder(s).map(\.name) == ["big", "old", "new"])
        let sameTime = [ReplicaSetFigures(name: "b", created: 1, replicas: 1), ReplicaSetFigures(name: "a", created: 1, replicas: 1)]
        #expect(RolloutMath.byCreation(sameTime).map(\.name) == ["a", "b"])
    }

    // MARK: Templates and hashes

    static let template: JSON = [
        "metadata": ["labels": ["app": "web"], "creationTimestamp": nil],
        "spec": ["containers": [["name": "web", "image": "nginx:1.25", "ports": []]], "restartPolicy": "Always"],
    ]

    @Test func templateHashIsStableAndIgnoresFormAndHashLabel() throws {
        let h = PodTemplates.hash(Self.template, collisionCount: nil)
        #expect(!h.isEmpty && h.count <= 10)
        #expect(h.allSatisfy { "bcdfghjklmnpqrstvwxz2456789".contains($0) })
        #expect(PodTemplates.hash(Self.template, collisionCount: nil) == h)
        // The same template written differently: other member order, no nulls or empty lists, a hash label.
        let reordered = try JSON.parse(#"{"spec":{"restartPolicy":"Always","containers":[{"image":"nginx:1.25","name":"web"}]},"metadata":{"labels":{"pod-template-hash":"xyz","app":"web"}}}"#)
        #expect(PodTemplates.hash(reordered, collisionCount: nil) == h)
        #expect(PodTemplates.equalIgnoringHash(reordered, Self.template))

        var other = Self.template
        other[path: "spec", "containers"] = [["name": "web", "image": "nginx:1.26"]]
        #expect(PodTemplates.hash(other, collisionCount: nil) != h)
        #expect(!PodTemplates.equalIgnoringHash(other, Self.template))
        #expect(PodTemplates.hash(Self.template, collisionCount: 1) != h, "a collision changes the hash")
        #expect(PodTemplates.hash(Self.template, collisionCount: 0) != PodTemplates.hash(Self.template, collisionCount: 1))
    }

    // MARK: Status bookkeeping

    @Test func conditionsKeepTransitionTimeWhileStatusHolds() {
        var s = DeploymentStatus()
        s.set(DeploymentCondition(type: "Progressing", status: "True", reason: "NewReplicaSetCreated", message: "a", now: "T1"))
        s.set(DeploymentCondition(type: "Available", status: "False", reason: "MinimumReplicasUnavailable", message: "b", now: "T1"))
        s.set(DeploymentCondition(type: "Progressing", status: "True", reason: "NewReplicaSetCreated", message: "other", now: "T2"))
        #expect(s.condition("Progressing")?.message == "a", "same status and reason: unchanged")
        s.set(DeploymentCondition(type: "Progressing", status: "True", reason: "NewReplicaSetAvailable", message: "c", now: "T3"))
        let p = s.condition("Progressing")
        #expect(p?.lastTransitionTime == "T1" && p?.lastUpdateTime == "T3")
        #expect(s.conditions.map(\.type) == ["Available", "Progressing"], "a changed condition moves last")
        s.set(DeploymentCondition(type: "Available", status: "True", reason: "MinimumReplicasAvailable", message: "d", now: "T4"))
        #expect(s.condition("Available")?.lastTransitionTime == "T4")
        #expect(DeploymentStatus(s.json) == s, "round trip through JSON")
    }

    @Test func completenessAndProgress() {
        var s = DeploymentStatus()
        s.observedGeneration = 2
        s.replicas = 3
        s.updatedReplicas = 3
        s.availableReplicas = 3
        #expect(s.isComplete(replicas: 3, generation: 2))
        #expect(!s.isComplete(replicas: 3, generation: 3), "a newer spec is not observed yet")
        var old = s
        old.replicas = 4
        old.updatedReplicas = 2
        #expect(s.progressed(since: old))
        #expect(!s.progressed(since: s))
    }

    @Test func revisionHistoryAppendsAndTrims() {
        #expect(DeploymentSync.appendHistory("", "1") == "1")
        #expect(DeploymentSync.appendHistory("1,3", "4") == "1,3,4")
        let long = (1...700).map(String.init).joined(separator: ",")
        let trimmed = DeploymentSync.appendHistory(long, "701")
        #expect(trimmed?.hasSuffix(",700,701") == true)
        #expect((trimmed?.count ?? 9999) <= DeploymentKeys.revisionHistoryLimitChars)
    }
}
