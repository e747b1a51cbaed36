import APIMachinery
import Testing
@testable import Controllers

@Suite struct SchedulerTests {
    static func node(_ name: String = "labnode", ready: Bool = true, labels: [String: String] = [:], taints: JSON? = nil,
                     cpu: String = "2") -> JSON {
        var l: JSON = ["kubernetes.io/hostname": .string(name)]
        for (k, v) in labels { l[k] = .string(v) }
        var spec: JSON = [:]
        if let taints { spec["taints"] = taints }
        return ["apiVersion": "v1", "kind": "Node", "metadata": ["name": .string(name), "labels": l], "spec": spec,
                "status": ["allocatable": ["cpu": .string(cpu), "memory": "4Gi", "pods": "110"],
                           "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False")]]]]
    }

    static func pod(_ name: String, selector: [String: String] = [:], cpu: String? = nil, tolerations: JSON? = nil) -> JSON {
        var container: JSON = ["name": "c", "image": "busybox"]
        if let cpu { container["resources"] = ["requests": ["cpu": .string(cpu)]] }
        var spec: JSON = ["containers": [container]]
        if !selector.isEmpty { spec["nodeSelector"] = .object(.init(uniqueKeysWithValues: selector.map { ($0, .string($1)) })) }
        if let tolerations { spec["tolerations"] = tolerations }
        return ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "namespace": "default"], "spec": spec]
    }

    @Test func fitRules() {
        let n = Self.node(labels: ["disk": "ssd"])
        #expect(Scheduler.misfit(Self.pod("a"), node: n, running: []) == nil)
        #expect(Scheduler.misfit(Self.pod("a", selector: ["disk": "ssd"]), node: n, running: []) == nil)
        #expect(Scheduler.misfit(Self.pod("a", selector: ["disk": "hdd"]), node: n, running: [])
                == "node(s) didn't match Pod's node affinity/selector")
        #expect(Scheduler.misfit(Self.pod("a", cpu: "3"), node: n, running: []) == "Insufficient cpu")
        #expect(Scheduler.misfit(Self.pod("a", cpu: "1500m"), node: n, running: [Self.pod("b", cpu: "600m")]) == "Insufficient cpu")
        #expect(Scheduler.misfit(Self.pod("a"), node: Self.node(ready: false), running: [])
                == "node(s) had untolerated taint {node.kubernetes.io/not-ready: }")
        let tainted = Self.node(taints: [["key": "dedicated", "value": "gpu", "effect": "NoSchedule"]])
        #expect(Scheduler.misfit(Self.pod("a"), node: tainted, running: []) == "node(s) had untolerated taint {dedicated: gpu}")
        #expect(Scheduler.misfit(Self.pod("a", tolerations: [["key": "dedicated", "operator": "Exists"]]), node: tainted, running: []) == nil)
    }

    @Test func unschedulableMessageIsKubeSchedulers() {
        guard case .failure(let why) = Scheduler.place(Self.pod("a", selector: ["disk": "hdd"]), nodes: [Self.node()], running: []) else {
            Issue.record("expected no fit")
            return
        }
        #expect(why.message == "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
        guard case .failure(let none) = Scheduler.place(Self.pod("a"), nodes: [], running: []) else { return }
        #expect(none.message == "no nodes available to schedule pods")
    }

    @Test func bindsFittingPodsAndExplainsTheOthers() async throws {
        let h = try await Harness { [Scheduler($0)] }
        defer { Task { await h.stop() } }
        _ = try await h.api.create(Resources.nodes, namespace: nil, body: Self.node())
        _ = try await h.create(Resources.pods, Self.pod("fits"))
        _ = try await h.create(Resources.pods, Self.pod("picky", selector: ["disk": "hdd"]))
        #expect(try await h.eventually {
            try await h.api.get(Resources.pods, namespace: "default", name: "fits")[path: "spec", "nodeName"] == "labnode"
        })
        #expect(try await h.eventually {
            let p = try await h.api.get(Resources.pods, namespace: "default", name: "picky")
            let c = p[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "PodScheduled" }
            return c?["status"] == "False" && c?["reason"] == "Unschedulable"
        })
        #expect(try await h.eventually {
            try await h.items(Resources.events).contains { $0["reason"] == "Scheduled" && $0["message"] == "Successfully assigned default/fits to labnode" }
        })
        #expect(try await h.eventually {
            try await h.items(Resources.events).contains { $0["reason"] == "FailedScheduling" && $0[path: "involvedObject", "name"] == "picky" }
        })
        // The node gains the label: the waiting pod is placed.
        var node = try await h.api.get(Resources.nodes, namespace: nil, name: "labnode")
        node[path: "metadata", "labels", "disk"] = "hdd"
        _ = try await h.api.update(Resources.nodes, namespace: nil, name: "labnode", body: node)
        #expect(try await h.eventually {
            try await h.api.get(Resources.pods, namespace: "default", name: "picky")[path: "spec", "nodeName"] == "labnode"
        })
    }
}
