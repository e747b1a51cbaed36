import APIMachinery
import APIServer
import Foundation
import Testing
@testable import Controllers

@Suite struct DeploymentControllerTests {
    static func harness() async throws -> Harness {
        try await Harness { [ReplicaSetController($0), DeploymentController($0)] }
    }

    static func deployment(_ name: String, replicas: Int, image: String = "nginx:1.25", strategy: JSON? = nil) -> JSON {
        var d: JSON = [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": .string(name), "namespace": "default"],
            "spec": [
                "replicas": .int(Int64(replicas)),
                "selector": ["matchLabels": ["app": .string(name)]],
                "template": [
                    "metadata": ["labels": ["app": .string(name)]],
                    "spec": ["containers": [["name": "web", "image": .string(image)]]],
                ],
            ],
        ]
        if let strategy { d[path: "spec", "strategy"] = strategy }
        return d
    }

    static func get(_ h: Harness, _ name: String) async throws -> JSON {
        try await h.api.get(Resources.deployments, namespace: "default", name: name)
    }

    /// The ReplicaSets a Deployment controls, oldest revision first.
    static func sets(_ h: Harness, _ d: JSON) async throws -> [JSON] {
        try await h.items(Resources.replicaSets)
            .filter { ControllerRef(of: $0)?.uid == d.uid }
            .sorted { (DeploymentSync.revision($0) ?? 0) < (DeploymentSync.revision($1) ?? 0) }
    }

    static func annotation(_ obj: JSON?, _ key: String) -> String? {
        obj?[path: "metadata", "annotations", key]?.stringValue
    }

    static func setImage(_ h: Harness, _ name: String, _ image: String) async throws {
        _ = try await h.api.mergePatch(Resources.deployments, namespace: "default", name: name,
                                       ["spec": ["template": ["spec": ["containers": [["name": "web", "image": .string(image)]]]]]],
                                       manager: "kubectl-set")
    }

    static func scale(_ h: Harness, _ name: String, to replicas: Int) async throws {
        _ = try await h.api.mergePatch(Resources.deployments, namespace: "default", name: name,
                                       ["spec": ["replicas": .int(Int64(replicas))]], subresource: "scale", manager: "kubectl-scale")
    }

    /// kubectl rollout status's verdict: the latest spec observed, every replica updated and
    /// available, no old replica left.
    static func rolledOut(_ d: JSON) -> Bool {
        let s = DeploymentStatus(d["status"])
        let want = Int(d[path: "spec", "replicas"]?.intValue ?? 1)
        let generation = d[path: "metadata", "generation"]?.intValue ?? 0
        return generation <= s.observedGeneration && s.updatedReplicas >= want && s.replicas <= s.updatedReplicas
            && s.availableReplicas >= s.updatedReplicas
    }

    /// Whether the ReplicaSet controller has caught up with every set: the status counts the
    /// pods the spec asks for. The test kubelet acts only then, so each step of the rollout is
    /// decided on settled numbers.
    static func settled(_ sets: [JSON]) -> Bool {
        sets.allSatisfy { rs in
            rs[path: "status", "observedGeneration"]?.intValue == rs[path: "metadata", "generation"]?.intValue
                && (rs[path: "status", "replicas"]?.intValue ?? 0) == (rs[path: "spec", "replicas"]?.intValue ?? 1)
        }
    }

    /// Plays the node agent for one step: removes pods whose deletion began, and starts at
    /// most `limit` pods (makes them ready).
    static func kubelet(_ h: Harness, limit: Int = .max) async throws {
        var started = 0
        for pod in try await h.items(Resources.pods) {
            if pod.deletionTimestamp != nil {
                _ = try? await h.api.delete(Resources.pods, namespace: "default", name: pod.name ?? "",
                                            options: DeleteOptions(gracePeriodSeconds: 0))
            } else if !PodFacts.isReady(pod), started < limit {
                _ = try? await h.markReady(pod, ip: Fixture.nextIP())
                started += 1
            }
        }
    }

    /// Runs the test kubelet until the rollout is done.
    static func rollOut(_ h: Harness, _ name: String, timeout: Duration = .seconds(15)) async throws -> Bool {
        try await h.eventually(timeout: timeout) {
            let d = try await get(h, name)
            if rolledOut(d) { return true }
            try await kubelet(h)
            return false
        }
    }

    static func events(_ h: Harness, _ name: String) async throws -> [String: Int64] {
        var out: [String: Int64] = [:]
        for e in try await Fixture.events(h, about: name, reason: "ScalingReplicaSet") {
            out[e["message"]?.stringValue ?? "", default: 0] += e["count"]?.intValue ?? 1
        }
        return out
    }

    // MARK: Tests

    @Test func createRollOutUndoAndScale() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let d = try await h.create(Resources.deployments, Self.deployment("web", replicas: 3))

        // One ReplicaSet named after the template hash, three pods.
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            guard sets.count == 1 else { return false }
            return try await Fixture.activePods(h, ownedBy: sets[0].uid).count == 3
        })
        let first = try #require(try await Self.sets(h, d).first)
        let hash = try #require(first.labels["pod-template-hash"])
        #expect(first.name == "web-\(hash)" && first.labels["app"] == "web")
        #expect(first[path: "spec", "selector", "matchLabels", "pod-template-hash"]?.stringValue == hash)
        #expect(first[path: "spec", "template", "metadata", "labels", "pod-template-hash"]?.stringValue == hash)
        #expect(first[path: "spec", "replicas"] == 3)
        #expect(Self.annotation(first, DeploymentKeys.revision) == "1")
        #expect(Self.annotation(first, DeploymentKeys.desiredReplicas) == "3")
        #expect(Self.annotation(first, DeploymentKeys.maxReplicas) == "4")
        let ref = first[path: "metadata", "ownerReferences"]?.arrayValue?.first
        #expect(ref?["kind"] == "Deployment" && ref?["name"] == "web" && ref?["uid"]?.stringValue == d.uid
            && ref?["controller"] == true && ref?["blockOwnerDeletion"] == true)
        for pod in try await Fixture.activePods(h, ownedBy: first.uid) {
            #expect(pod.labels == ["app": "web", "pod-template-hash": hash])
        }

        // Ready pods make the Deployment available.
        #expect(try await Self.rollOut(h, "web"))
        #expect(try await h.eventually {
            let s = DeploymentStatus(try await Self.get(h, "web")["status"])
            return s.availableReplicas == 3 && s.readyReplicas == 3 && s.updatedReplicas == 3 && s.unavailableReplicas == 0
                && s.condition("Available")?.status == "True" && s.condition("Available")?.reason == "MinimumReplicasAvailable"
                && s.condition("Progressing")?.reason == "NewReplicaSetAvailable"
        })
        let ready = try await Self.get(h, "web")
        #expect(Self.annotation(ready, DeploymentKeys.revision) == "1")
        #expect(DeploymentStatus(ready["status"]).condition("Progressing")?.message
            == "ReplicaSet \"web-\(hash)\" has successfully progressed.")
        #expect(DeploymentStatus(ready["status"]).condition("Available")?.message == "Deployment has minimum availability.")

        // A new image: a second set, rolled in within maxSurge 1 / maxUnavailable 0.
        try await Self.setImage(h, "web", "nginx:1.26")
        var violations: [String] = []
        var sawSurge = false
        let done = try await h.eventually(timeout: .seconds(20)) {
            let sets = try await Self.sets(h, d)
            let total = sets.reduce(0) { $0 + Int($1[path: "spec", "replicas"]?.intValue ?? 0) }
            if total > 4 { violations.append("\(total) replicas wanted") }
            if total == 4 { sawSurge = true }
            let readyPods = try await h.items(Resources.pods).filter { $0.deletionTimestamp == nil && PodFacts.isReady($0) }
            if readyPods.count < 3 { violations.append("only \(readyPods.count) ready pods") }
            if Self.rolledOut(try await Self.get(h, "web")) && sets.count == 2 { return true }
            if Self.settled(sets) { try await Self.kubelet(h, limit: 1) }
            return false
        }
        #expect(done)
        #expect(violations.isEmpty, "\(violations)")
        #expect(sawSurge)
        let afterUpdate = try await Self.sets(h, d)
        try #require(afterUpdate.count == 2)
        let (old, new) = (afterUpdate[0], afterUpdate[1])
        #expect(old.uid == first.uid && old[path: "spec", "replicas"] == 0 && new[path: "spec", "replicas"] == 3)
        #expect(Self.annotation(old, DeploymentKeys.revision) == "1" && Self.annotation(new, DeploymentKeys.revision) == "2")
        #expect(Self.annotation(try await Self.get(h, "web"), DeploymentKeys.revision) == "2")
        let newPods = try await Fixture.activePods(h, ownedBy: new.uid)
        #expect(newPods.count == 3 && newPods.allSatisfy { $0[path: "spec", "containers"]?.arrayValue?.first?["image"] == "nginx:1.26" })
        #expect(try await Fixture.activePods(h, ownedBy: old.uid).isEmpty)

        // rollout undo: kubectl writes the old set's template (minus its hash label) back.
        let restored = PodTemplates.withoutHashLabel(try #require(old[path: "spec", "template"]))
        let undo: JSON = [["op": "replace", "path": "/spec/template", "value": restored]]
        _ = try await h.api.patch(Resources.deployments, namespace: "default", name: "web", type: .json, body: undo.serialized())
        #expect(try await Self.rollOut(h, "web"))
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            return sets.count == 2 && sets.last?.uid == old.uid && sets.last?[path: "spec", "replicas"] == 3
                && sets.first?[path: "spec", "replicas"] == 0
        })
        let reused = try #require(try await Self.sets(h, d).last)
        #expect(Self.annotation(reused, DeploymentKeys.revision) == "3")
        #expect(Self.annotation(reused, DeploymentKeys.revisionHistory) == "1")
        #expect(try await h.eventually { Self.annotation(try await Self.get(h, "web"), DeploymentKeys.revision) == "3" })

        // Scale 3 -> 5 -> 1 through the scale subresource, as kubectl scale does.
        try await Self.scale(h, "web", to: 5)
        #expect(try await Self.rollOut(h, "web"))
        #expect(try await h.eventually { try await Fixture.activePods(h, ownedBy: old.uid).count == 5 })
        try await Self.scale(h, "web", to: 1)
        #expect(try await Self.rollOut(h, "web"))
        #expect(try await h.eventually {
            let s = DeploymentStatus(try await Self.get(h, "web")["status"])
            let pods = try await Fixture.activePods(h, ownedBy: old.uid)
            return s.replicas == 1 && s.availableReplicas == 1 && pods.count == 1
        })

        let oldName = old.name ?? ""
        let newName = new.name ?? ""
        #expect(try await h.eventually {
            let e = try await Self.events(h, "web")
            return e["Scaled up replica set \(oldName) from 0 to 3"] != nil
                && e["Scaled up replica set \(newName) from 0 to 1"] != nil
                && e["Scaled down replica set \(oldName) from 3 to 2"] != nil
                && e["Scaled up replica set \(oldName) from 3 to 5"] != nil
                && e["Scaled down replica set \(oldName) from 5 to 1"] != nil
        })
    }

    @Test func recreateStopsOldPodsBeforeStartingNewOnes() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let d = try await h.create(Resources.deployments, Self.deployment("rec", replicas: 2, strategy: ["type": "Recreate"]))
        #expect(try await Self.rollOut(h, "rec"))
        let first = try #require(try await Self.sets(h, d).first)

        try await Self.setImage(h, "rec", "nginx:1.26")
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            return sets.count == 1 && sets[0][path: "spec", "replicas"] == 0
        })
        // The old pods are still terminating: no new set yet.
        #expect(try await h.eventually {
            let pods = try await h.items(Resources.pods)
            return pods.count == 2 && pods.allSatisfy { $0.deletionTimestamp != nil }
        })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await Self.sets(h, d).count == 1)

        // Once they are gone the new set starts at full size.
        #expect(try await Self.rollOut(h, "rec"))
        let sets = try await Self.sets(h, d)
        #expect(sets.count == 2 && sets[1][path: "spec", "replicas"] == 2 && sets[0].uid == first.uid)
        let e = try await Self.events(h, "rec")
        #expect(e["Scaled down replica set \(first.name ?? "") from 2 to 0"] != nil)
        #expect(e["Scaled up replica set \(sets[1].name ?? "") from 0 to 2"] != nil)
    }

    @Test func resizingMidRolloutScalesProportionally() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let d = try await h.create(Resources.deployments, Self.deployment("prop", replicas: 3))
        #expect(try await Self.rollOut(h, "prop"))
        try await Self.setImage(h, "prop", "nginx:1.26")
        // The new pod never becomes ready: the rollout stays at old 3, new 1.
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            return sets.count == 2 && sets[0][path: "spec", "replicas"] == 3 && sets[1][path: "spec", "replicas"] == 1
        })
        let sets = try await Self.sets(h, d)
        try await Self.scale(h, "prop", to: 6)
        // 6 + surge 2 = 8 shared 3:1 -> 6:2.
        #expect(try await h.eventually {
            let e = try await Self.events(h, "prop")
            return e["Scaled up replica set \(sets[0].name ?? "") from 3 to 6"] != nil
                && e["Scaled up replica set \(sets[1].name ?? "") from 1 to 2"] != nil
        })
        #expect(try await h.eventually {
            try await Self.sets(h, d).allSatisfy {
                Self.annotation($0, DeploymentKeys.desiredReplicas) == "6" && Self.annotation($0, DeploymentKeys.maxReplicas) == "8"
            }
        })
        #expect(try await Self.rollOut(h, "prop"))
    }

    @Test func pausedDeploymentsScaleButDoNotRollOut() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let d = try await h.create(Resources.deployments, Self.deployment("pause", replicas: 2))
        #expect(try await Self.rollOut(h, "pause"))
        _ = try await h.api.mergePatch(Resources.deployments, namespace: "default", name: "pause", ["spec": ["paused": true]],
                                       manager: "kubectl-rollout")
        #expect(try await h.eventually {
            let c = DeploymentStatus(try await Self.get(h, "pause")["status"]).condition("Progressing")
            return c?.status == "Unknown" && c?.reason == "DeploymentPaused" && c?.message == "Deployment is paused"
        })
        try await Self.setImage(h, "pause", "nginx:1.26")
        try await Self.scale(h, "pause", to: 4)
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            return sets.count == 1 && sets[0][path: "spec", "replicas"] == 4
        })
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await Self.sets(h, d).count == 1)

        _ = try await h.api.mergePatch(Resources.deployments, namespace: "default", name: "pause", ["spec": ["paused": false]],
                                       manager: "kubectl-rollout")
        #expect(try await Self.rollOut(h, "pause"))
        let sets = try await Self.sets(h, d)
        #expect(sets.count == 2 && Self.annotation(sets[1], DeploymentKeys.revision) == "2" && sets[1][path: "spec", "replicas"] == 4)
    }

    @Test func oldSetsBeyondTheHistoryLimitAreDeleted() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        var body = Self.deployment("hist", replicas: 1)
        body[path: "spec", "revisionHistoryLimit"] = 1
        let d = try await h.create(Resources.deployments, body)
        #expect(try await Self.rollOut(h, "hist"))
        let first = try #require(try await Self.sets(h, d).first)
        for image in ["nginx:1.26", "nginx:1.27"] {
            try await Self.setImage(h, "hist", image)
            #expect(try await h.eventually { (try await Self.sets(h, d)).count >= 2 })
            #expect(try await Self.rollOut(h, "hist"))
        }
        #expect(try await h.eventually {
            let sets = try await Self.sets(h, d)
            return sets.count == 2 && !sets.contains { $0.uid == first.uid }
        })
        let revisions = try await Self.sets(h, d).compactMap { Self.annotation($0, DeploymentKeys.revision) }
        #expect(revisions == ["2", "3"])
    }

    @Test func adoptsAMatchingOrphanReplicaSet() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        // A set made before the Deployment with the same template (and no hash label).
        var legacy = Fixture.replicaSet("legacy", replicas: 2, app: "adopt")
        let body = Self.deployment("adopt", replicas: 2)
        legacy[path: "spec", "template"] = body[path: "spec", "template"]
        // Adoption goes by the set's own labels, not its template's.
        legacy[path: "metadata", "labels"] = ["app": "adopt"]
        let rs = try await h.create(Resources.replicaSets, legacy)
        let d = try await h.create(Resources.deployments, body)

        #expect(try await h.eventually {
            let current = try await h.api.get(Resources.replicaSets, namespace: "default", name: "legacy")
            return ControllerRef(of: current)?.uid == d.uid && Self.annotation(current, DeploymentKeys.revision) == "1"
        })
        #expect(try await Self.rollOut(h, "adopt"))
        let all = try await h.items(Resources.replicaSets)
        #expect(all.count == 1 && all[0].uid == rs.uid, "the adopted set is the new one: no second set")

        // Relabeled out of the selector: released, and replaced by a set of the Deployment's own.
        var relabeled = try await h.api.get(Resources.replicaSets, namespace: "default", name: "legacy")
        relabeled[path: "metadata", "labels", "app"] = "retired"
        _ = try await h.api.update(Resources.replicaSets, namespace: "default", name: "legacy", body: relabeled)
        #expect(try await h.eventually {
            let legacyNow = try await h.api.get(Resources.replicaSets, namespace: "default", name: "legacy")
            let owned = try await Self.sets(h, d)
            return ControllerRef(of: legacyNow) == nil && owned.count == 1 && owned[0].name?.hasPrefix("adopt-") == true
        })
    }

    @Test func repeatedScalingEventsAreCounted() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let d = try await h.create(Resources.deployments, Self.deployment("count", replicas: 1))
        #expect(try await Self.rollOut(h, "count"))
        let name = try #require(try await Self.sets(h, d).first?.name)
        for replicas in [2, 1, 2] {
            try await Self.scale(h, "count", to: replicas)
            #expect(try await h.eventually { (try await Self.sets(h, d)).first?[path: "spec", "replicas"]?.intValue == Int64(replicas) })
        }
        #expect(try await h.eventually {
            let up = try await Fixture.events(h, about: "count", reason: "ScalingReplicaSet")
                .filter { $0["message"]?.stringValue == "Scaled up replica set \(name) from 1 to 2" }
            return up.count == 1 && up[0]["count"] == 2 && up[0][path: "source", "component"] == "deployment-controller"
        })
    }

    @Test func aStuckRolloutExceedsItsProgressDeadline() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        var body = Self.deployment("stuck", replicas: 1)
        body[path: "spec", "progressDeadlineSeconds"] = 1
        let d = try await h.create(Resources.deployments, body)
        #expect(try await h.eventually(timeout: .seconds(30)) {
            let c = DeploymentStatus(try await Self.get(h, "stuck")["status"]).condition("Progressing")
            return c?.status == "False" && c?.reason == "ProgressDeadlineExceeded"
        })
        let name = try #require(try await Self.sets(h, d).first?.name)
        let status = DeploymentStatus(try await Self.get(h, "stuck")["status"])
        #expect(status.condition("Progressing")?.message == "ReplicaSet \"\(name)\" has timed out progressing.")
        #expect(status.condition("Available")?.status == "False")
        #expect(status.condition("Available")?.message == "Deployment does not have minimum availability.")
    }

    @Test func hundredReplicasAppearFast() async throws {
        let h = try await Self.harness()
        defer { Task { await h.stop() } }
        let start = ContinuousClock.now
        let d = try await h.create(Resources.deployments, Self.deployment("big", replicas: 100))
        let done = try await h.eventually(timeout: .seconds(60)) {
            guard let rs = try await Self.sets(h, d).first else { return false }
            return try await Fixture.activePods(h, ownedBy: rs.uid).count == 100
        }
        let elapsed = ContinuousClock.now - start
        print("Deployment: 100 pod objects after \(elapsed)")
        #expect(done)
        // The figure is the benchmark's business (Benchmarks/controllers.sh); this only bounds a hang.
        #expect(elapsed < .seconds(60))
        #expect(try await h.eventually { DeploymentStatus(try await Self.get(h, "big")["status"]).replicas == 100 })
    }
}
