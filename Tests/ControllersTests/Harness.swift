import APIMachinery
import APIServer
import Foundation
import Logging
import Store
@testable import Controllers

/// A real API server core on an in-memory store, with the given controllers running against
/// it in-process, as in the cluster (no HTTP). Stop it with `stop()` at the end of a test.
final class Harness: Sendable {
    let api: APIService
    let context: ControllerContext
    let task: Task<Void, Never>
    let controllers: [any Reconciler]

    /// - Parameter make: builds the controllers under test from the shared context.
    init(settings: ControllerSettings = Harness.settings,
         _ make: (ControllerContext) -> [any Reconciler]) async throws {
        api = APIService(store: MemoryStore(), serviceAllocator: ServiceAllocator(
            ranges: ServiceRanges(network: 0x0A60_0000, prefixLength: 12, nodePorts: 30000...32767)))
        for ns in ["default", "kube-system"] {
            _ = try await api.create(Resources.namespaces, namespace: nil,
                                     body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        }
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        context = ControllerContext(client: api, informers: Informers(), events: EventRecorder(client: api),
                                    settings: settings, logger: logger)
        let controllers = make(context)
        self.controllers = controllers
        let manager = ControllerManager(context: context, controllers: controllers)
        task = Task { try? await manager.run() }
        for informer in context.informers.all { await informer.waitSynced() }
    }

    static let settings = ControllerSettings(nodeIP: "192.168.77.10", nodeName: "labnode", apiPort: 6443,
                                             kubernetesServiceIP: "10.96.0.1")

    func stop() async {
        for c in controllers { c.queue.shutDown() }
        task.cancel()
        await task.value
    }

    func create(_ r: ResourceInfo, _ obj: JSON) async throws -> JSON {
        try await api.create(r, namespace: obj.namespace, body: obj)
    }

    func items(_ r: ResourceInfo, namespace: String = "default", selector: String = "") async throws -> [JSON] {
        var options = ListOptions()
        if !selector.isEmpty { options.labelSelector = try LabelSelector.parse(selector) }
        return try await api.list(r, namespace: namespace, options: options).items
    }

    /// Polls `condition` until it holds or `timeout` passes; returns whether it held. The
    /// timeout only matters when something is wrong: it is generous for loaded CI machines.
    func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return try await condition()
    }

    /// Plays the node agent for tests: binds pods to the node and reports them running and
    /// Ready with an address, as the kubelet would once their containers start.
    func markReady(_ pod: JSON, ip: String, ready: Bool = true) async throws -> JSON {
        let name = pod.name ?? ""
        let ns = pod.namespace ?? "default"
        var current = try await api.get(Resources.pods, namespace: ns, name: name)
        if (current[path: "spec", "nodeName"]?.stringValue ?? "").isEmpty {
            _ = try await api.create(Resources.pods, namespace: ns, body: [
                "apiVersion": "v1", "kind": "Binding", "metadata": ["name": .string(name)],
                "target": ["apiVersion": "v1", "kind": "Node", "name": "labnode"]], subresource: "binding")
            current = try await api.get(Resources.pods, namespace: ns, name: name)
        }
        let now = Timestamp.rfc3339()
        let status: JSON = .string(ready ? "True" : "False")
        current["status"] = [
            "phase": "Running", "podIP": .string(ip), "podIPs": [["ip": .string(ip)]], "hostIP": "192.168.77.10",
            "startTime": .string(now),
            "conditions": [
                ["type": "Initialized", "status": "True", "lastTransitionTime": .string(now)],
                ["type": "Ready", "status": status, "lastTransitionTime": .string(now)],
                ["type": "ContainersReady", "status": status, "lastTransitionTime": .string(now)],
                ["type": "PodScheduled", "status": "True", "lastTransitionTime": .string(now)],
            ],
        ]
        return try await api.update(Resources.pods, namespace: ns, name: name, body: current, subresource: "status").object
    }
}
