import APIMachinery

/// Binds each pod that has no node to a node that fits it, as kube-scheduler does for
/// `schedulerName: default-scheduler`: the node must be Ready and schedulable, match the pod's
/// nodeSelector and required node affinity, tolerate its NoSchedule taints, and have room for
/// the pod's requests. A pod that fits nowhere stays Pending with PodScheduled=False and a
/// FailedScheduling event in kube-scheduler's words; it is tried again when nodes change.
public final class Scheduler: Reconciler {
    public let name = "default-scheduler"
    public let queue = WorkQueue()
    public var workers: Int { 1 }
    let context: ControllerContext

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let pods = context.informers.pods
        context.informers.pods.onChange { event in
            if case .deleted = event { return }
            if Self.wantsScheduling(event.object) { queue.add(Informer.key(event.object)) }
        }
        context.informers.nodes.onChange { _ in
            for pod in pods.list() where Self.wantsScheduling(pod) { queue.add(Informer.key(pod)) }
        }
    }

    static func wantsScheduling(_ pod: JSON) -> Bool {
        let scheduler = pod[path: "spec", "schedulerName"]?.stringValue ?? "default-scheduler"
        return (pod[path: "spec", "nodeName"]?.stringValue ?? "").isEmpty && pod.deletionTimestamp == nil
            && scheduler == "default-scheduler"
    }

    public func reconcile(_ key: String) async throws {
        guard let pod = context.informers.pods.get(key: key), Self.wantsScheduling(pod) else { return }
        let nodes = context.informers.nodes.list()
        let running = context.informers.pods.list().filter {
            !($0[path: "spec", "nodeName"]?.stringValue ?? "").isEmpty
                && !["Succeeded", "Failed"].contains($0[path: "status", "phase"]?.stringValue ?? "")
        }
        switch Self.place(pod, nodes: nodes, running: running) {
        case .success(let node):
            let binding: JSON = ["apiVersion": "v1", "kind": "Binding",
                                 "metadata": ["name": .string(pod.name ?? ""), "namespace": .string(pod.namespace ?? "")],
                                 "target": ["apiVersion": "v1", "kind": "Node", "name": .string(node)]]
            do {
                _ = try await context.client.create(Resources.pods, namespace: pod.namespace, body: binding,
                                                    options: WriteOptions(fieldManager: name), subresource: "binding")
            } catch {
                // Bound meanwhile (409) or deleted (404): nothing left to do.
                if error.reason == .conflict || error.reason == .notFound { return }
                throw error
            }
            context.events.record(pod, component: name, reason: "Scheduled",
                                  message: "Successfully assigned \(pod.namespace ?? "")/\(pod.name ?? "") to \(node)")
        case .failure(let why):
            context.events.record(pod, component: name, type: "Warning", reason: "FailedScheduling", message: why.message)
            try await markUnschedulable(pod, why.message)
        }
    }

    func markUnschedulable(_ pod: JSON, _ message: String) async throws {
        var conditions = (pod[path: "status", "conditions"]?.arrayValue ?? []).filter { $0["type"]?.stringValue != "PodScheduled" }
        let old = (pod[path: "status", "conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == "PodScheduled" }
        if old?["message"]?.stringValue == message { return }
        conditions.append(["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": .string(message),
                           "lastProbeTime": .null, "lastTransitionTime": .string(Timestamp.rfc3339())])
        var updated = pod
        updated[path: "status", "conditions"] = .array(conditions)
        updated[path: "status", "phase"] = "Pending"
        _ = try await context.client.update(Resources.pods, updated, subresource: "status", manager: name)
    }

    struct Unschedulable: Error { var message: String }

    /// The node for `pod`, or kube-scheduler's message saying why none fits.
    static func place(_ pod: JSON, nodes: [JSON], running: [JSON]) -> Result<String, Unschedulable> {
        guard !nodes.isEmpty else { return .failure(Unschedulable(message: "no nodes available to schedule pods")) }
        var reasons: [String: Int] = [:]
        for node in nodes.sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) {
            if let reason = misfit(pod, node: node, running: running.filter { $0[path: "spec", "nodeName"]?.stringValue == node.name }) {
                reasons[reason, default: 0] += 1
            } else {
                return .success(node.name ?? "")
            }
        }
        let detail = reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        let n = nodes.count
        return .failure(Unschedulable(message: "0/\(n) nodes are available: \(detail). preemption: 0/\(n) nodes are available: \(n) Preemption is not helpful for scheduling."))
    }

    /// Why `pod` cannot go to `node` (upstream's per-plugin reason), or nil when it fits.
    static func misfit(_ pod: JSON, node: JSON, running: [JSON]) -> String? {
        let ready = (node[path: "status", "conditions"]?.arrayValue ?? []).first { $0["type"] == "Ready" }?["status"] == "True"
        if !ready { return "node(s) had untolerated taint {node.kubernetes.io/not-ready: }" }
        if node[path: "spec", "unschedulable"]?.boolValue == true { return "node(s) were unschedulable" }
        let labels = node.labels
        let selector = pod[path: "spec", "nodeSelector"]?.objectValue ?? [:]
        for (k, v) in selector where labels[k] != v.stringValue { return "node(s) didn't match Pod's node affinity/selector" }
        if let terms = pod[path: "spec", "affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution", "nodeSelectorTerms"]?.arrayValue,
           !terms.isEmpty, !terms.contains(where: { matches($0, labels: labels, name: node.name ?? "") }) {
            return "node(s) didn't match Pod's node affinity/selector"
        }
        let tolerations = pod[path: "spec", "tolerations"]?.arrayValue ?? []
        for taint in node[path: "spec", "taints"]?.arrayValue ?? [] where ["NoSchedule", "NoExecute"].contains(taint["effect"]?.stringValue ?? "") {
            if !tolerations.contains(where: { tolerates($0, taint) }) {
                let key = taint["key"]?.stringValue ?? ""
                return "node(s) had untolerated taint {\(key): \(taint["value"]?.stringValue ?? "")}"
            }
        }
        for resource in ["cpu", "memory"] {
            let allocatable = node[path: "status", "allocatable", resource]?.stringValue.flatMap(Quantity.parse) ?? .infinity
            let used = running.reduce(0.0) { $0 + requests($1, resource) }
            if used + requests(pod, resource) > allocatable { return "Insufficient \(resource)" }
        }
        let maxPods = node[path: "status", "allocatable", "pods"]?.stringValue.flatMap(Double.init) ?? .infinity
        if Double(running.count + 1) > maxPods { return "Too many pods" }
        return nil
    }

    static func requests(_ pod: JSON, _ resource: String) -> Double {
        (pod[path: "spec", "containers"]?.arrayValue ?? []).reduce(0.0) { sum, c in
            sum + (c[path: "resources", "requests", resource]?.stringValue.flatMap(Quantity.parse) ?? 0)
        }
    }

    static func matches(_ term: JSON, labels: [String: String], name: String) -> Bool {
        let expressions = term["matchExpressions"]?.arrayValue ?? []
        let fields = term["matchFields"]?.arrayValue ?? []
        guard !expressions.isEmpty || !fields.isEmpty else { return false }
        func check(_ e: JSON, _ value: String?) -> Bool {
            let values = (e["values"]?.arrayValue ?? []).compactMap(\.stringValue)
            switch e["operator"]?.stringValue ?? "" {
            case "In": return value.map(values.contains) ?? false
            case "NotIn": return !(value.map(values.contains) ?? false)
            case "Exists": return value != nil
            case "DoesNotExist": return value == nil
            case "Gt": return (value.flatMap(Int.init) ?? .min) > (values.first.flatMap(Int.init) ?? .max)
            case "Lt": return (value.flatMap(Int.init) ?? .max) < (values.first.flatMap(Int.init) ?? .min)
            default: return false
            }
        }
        return expressions.allSatisfy { check($0, labels[$0["key"]?.stringValue ?? ""]) }
            && fields.allSatisfy { check($0, $0["key"]?.stringValue == "metadata.name" ? name : nil) }
    }

    static func tolerates(_ toleration: JSON, _ taint: JSON) -> Bool {
        if let effect = toleration["effect"]?.stringValue, !effect.isEmpty, effect != taint["effect"]?.stringValue { return false }
        let key = toleration["key"]?.stringValue ?? ""
        if toleration["operator"]?.stringValue == "Exists" { return key.isEmpty || key == taint["key"]?.stringValue }
        return key == taint["key"]?.stringValue && (toleration["value"]?.stringValue ?? "") == (taint["value"]?.stringValue ?? "")
    }
}
