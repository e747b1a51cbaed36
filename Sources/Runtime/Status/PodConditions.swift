import APIMachinery

/// The conditions the kubelet owns, generated as `pkg/kubelet/status/generate.go` does, with
/// `lastTransitionTime` carried over from the previous status while a condition's status stays
/// the same (the status manager's rule), so `describe` does not show every condition as new.
enum PodConditions {
    struct Condition: Equatable {
        var type: String
        var status: String
        var reason: String?
        var message: String?
    }

    /// Types the kubelet writes; any other condition on the pod (readiness gates, DisruptionTarget,
    /// ones added by controllers) is kept as it was.
    static let kubeletOwned: Set<String> = [
        "PodScheduled", "Ready", "Initialized", "ContainersReady", "PodReadyToStartContainers",
        "PodResizePending", "PodResizeInProgress",
    ]

    /// Go's `%s` of a []string: `[a b]`.
    static func goList(_ names: [String]) -> String { "[" + names.joined(separator: " ") + "]" }

    static func initialized(spec: JSON, initStatuses: [ContainerStatusRecord], statuses: [ContainerStatusRecord],
                            phase: String) -> Condition {
        let byName = Dictionary(initStatuses.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var unknown: [String] = []
        var incomplete: [String] = []
        for container in spec["initContainers"]?.arrayValue ?? [] {
            let name = container["name"]?.stringValue ?? ""
            guard let status = byName[name] else {
                unknown.append(name)
                continue
            }
            // A sidecar counts once started; a regular init container once it succeeded.
            let done = PodPhase.isSidecar(container) ? status.started : status.ready
            if !done { incomplete.append(name) }
        }
        if phase == "Succeeded" && unknown.isEmpty {
            return Condition(type: "Initialized", status: "True", reason: "PodCompleted")
        }
        if PodPhase.anyRegularContainerStarted(spec: spec, statuses: statuses) {
            return Condition(type: "Initialized", status: "True")
        }
        var messages: [String] = []
        if !unknown.isEmpty { messages.append("containers with unknown status: \(goList(unknown))") }
        if !incomplete.isEmpty { messages.append("containers with incomplete status: \(goList(incomplete))") }
        if !messages.isEmpty {
            return Condition(type: "Initialized", status: "False", reason: "ContainersNotInitialized",
                             message: messages.joined(separator: ", "))
        }
        return Condition(type: "Initialized", status: "True")
    }

    static func containersReady(spec: JSON, initStatuses: [ContainerStatusRecord], statuses: [ContainerStatusRecord],
                                phase: String) -> Condition {
        let initByName = Dictionary(initStatuses.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let byName = Dictionary(statuses.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var unknown: [String] = []
        var unready: [String] = []
        for container in spec["initContainers"]?.arrayValue ?? [] where PodPhase.isSidecar(container) {
            let name = container["name"]?.stringValue ?? ""
            if let status = initByName[name] {
                if !status.ready { unready.append(name) }
            } else {
                unknown.append(name)
            }
        }
        for container in spec["containers"]?.arrayValue ?? [] {
            let name = container["name"]?.stringValue ?? ""
            if let status = byName[name] {
                if !status.ready { unready.append(name) }
            } else {
                unknown.append(name)
            }
        }
        if phase == "Succeeded" && unknown.isEmpty {
            return Condition(type: "ContainersReady", status: "False", reason: "PodCompleted")
        }
        if phase == "Failed" {
            return Condition(type: "ContainersReady", status: "False", reason: "PodFailed")
        }
        var messages: [String] = []
        if !unknown.isEmpty { messages.append("containers with unknown status: \(goList(unknown))") }
        if !unready.isEmpty { messages.append("containers with unready status: \(goList(unready))") }
        if !messages.isEmpty {
            return Condition(type: "ContainersReady", status: "False", reason: "ContainersNotReady",
                             message: messages.joined(separator: ", "))
        }
        return Condition(type: "ContainersReady", status: "True")
    }

    /// Ready mirrors ContainersReady, then also needs every readiness gate's condition True.
    static func ready(spec: JSON, containersReady: Condition, otherConditions: [JSON]) -> Condition {
        guard containersReady.status == "True" else {
            return Condition(type: "Ready", status: containersReady.status, reason: containersReady.reason,
                             message: containersReady.message)
        }
        var messages: [String] = []
        for gate in spec["readinessGates"]?.arrayValue ?? [] {
            let type = gate["conditionType"]?.stringValue ?? ""
            if let condition = otherConditions.first(where: { $0["type"]?.stringValue == type }) {
                let status = condition["status"]?.stringValue ?? ""
                if status != "True" {
                    messages.append("the status of pod readiness gate \(GoQuote.quote(type)) is not \"True\", but \(status)")
                }
            } else {
                messages.append("corresponding condition of pod readiness gate \(GoQuote.quote(type)) does not exist.")
            }
        }
        if !messages.isEmpty {
            return Condition(type: "Ready", status: "False", reason: "ReadinessGatesNotReady",
                             message: messages.joined(separator: ", "))
        }
        return Condition(type: "Ready", status: "True")
    }

    /// The condition as JSON, keeping the previous `lastTransitionTime` when the status is unchanged.
    static func json(_ condition: Condition, previous: [JSON], now: Double) -> JSON {
        let old = previous.first { $0["type"]?.stringValue == condition.type }
        var transition: JSON = .string(Timestamp.format(now))
        if let old, old["status"]?.stringValue == condition.status, let kept = old["lastTransitionTime"], !kept.isNull {
            transition = kept
        }
        // Field order of Go's PodCondition; lastProbeTime is a non-pointer metav1.Time, so the
        // kubelet always sends it, as null.
        var o: JSONObject = ["type": .string(condition.type), "status": .string(condition.status)]
        o["lastProbeTime"] = .null
        o["lastTransitionTime"] = transition
        if let reason = condition.reason, !reason.isEmpty { o["reason"] = .string(reason) }
        if let message = condition.message, !message.isEmpty { o["message"] = .string(message) }
        return .object(o)
    }
}
