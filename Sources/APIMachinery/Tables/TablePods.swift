extension TablePrinter {
    static let podPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Ready", type: "string",
                   description: "Ready containers out of all containers of the pod (sidecar init containers included)."),
            Column(name: "Status", type: "string",
                   description: "One word for the pod's state, from its phase and its containers' states (Running, ContainerCreating, CrashLoopBackOff, Init:0/1, Completed, Terminating, ...)."),
            Column(name: "Restarts", type: "string",
                   description: "How often the pod's containers restarted, and how long ago the last restart was."),
            Column.age,
            Column.wide("IP", "The pod's first IP address."),
            Column.wide("Node", "The node the pod is bound to."),
            Column.wide("Nominated Node", "The node a preempting scheduler reserved for the pod."),
            Column.wide("Readiness Gates", "Readiness gate conditions that are True, out of all the pod declares."),
        ],
        row: { pod, context in podRow(pod, context) }
    )

    /// The Status word, READY count and RESTARTS text, computed the way kube-apiserver does:
    /// init containers first (a failing or unfinished one decides the status), then the regular
    /// containers from last to first, so the first container's state wins.
    static func podRow(_ pod: Fields, _ context: Context) -> Row {
        let spec = pod["spec"]
        let status = pod["status"]
        let phase = status.string("phase")
        let conditions = status.array("conditions")

        var reason = status.string("reason").isEmpty ? phase : status.string("reason")
        if conditions.contains(where: { $0.string("type") == "PodScheduled" && $0.string("reason") == "SchedulingGated" }) {
            reason = "SchedulingGated"
        }

        var rowConditions: [JSON] = []
        switch phase {
        case "Succeeded":
            rowConditions = [completedCondition(reason: "Succeeded", message: "All containers of the pod exited successfully.")]
        case "Failed":
            rowConditions = [completedCondition(reason: "Failed", message: "The pod has terminated with a failure.")]
        default: break
        }

        // Sidecars are init containers with restartPolicy Always: they keep running next to the
        // regular containers, so they count towards READY and RESTARTS like those.
        let initSpecs = spec.array("initContainers")
        var sidecarNames = Set<String>()
        for container in initSpecs {
            let name = container.string("name")
            // A later duplicate name replaces an earlier one, as a map would.
            if container.string("restartPolicy") == "Always" { sidecarNames.insert(name) } else { sidecarNames.remove(name) }
        }
        let totalContainers = Int64(spec.array("containers").count)
            + Int64(initSpecs.filter { $0.string("restartPolicy") == "Always" }.count)
        var readyContainers: Int64 = 0
        var restarts: Int64 = 0
        var sidecarRestarts: Int64 = 0
        var lastRestart: Double?
        var lastSidecarRestart: Double?

        var initializing = false
        for (index, container) in status.array("initContainerStatuses").enumerated() {
            restarts += container.int("restartCount")
            let finishedAt = lastTerminationTime(container)
            lastRestart = later(lastRestart, finishedAt)
            let isSidecar = sidecarNames.contains(container.string("name"))
            if isSidecar {
                sidecarRestarts += container.int("restartCount")
                lastSidecarRestart = later(lastSidecarRestart, finishedAt)
            }
            let terminated = container["state"]["terminated"]
            let waiting = container["state"]["waiting"]
            if terminated.isSet && terminated.int("exitCode") == 0 { continue }
            if isSidecar && container.bool("started") {
                if container.bool("ready") { readyContainers += 1 }
                continue
            }
            if terminated.isSet {
                let terminatedReason = terminated.string("reason")
                if !terminatedReason.isEmpty {
                    reason = "Init:" + terminatedReason
                } else if terminated.int("signal") != 0 {
                    reason = "Init:Signal:\(terminated.int("signal"))"
                } else {
                    reason = "Init:ExitCode:\(terminated.int("exitCode"))"
                }
            } else if waiting.isSet && !waiting.string("reason").isEmpty && waiting.string("reason") != "PodInitializing" {
                reason = "Init:" + waiting.string("reason")
            } else {
                reason = "Init:\(index)/\(initSpecs.count)"
            }
            initializing = true
            break
        }

        let initialized = conditions.first { $0.string("type") == "Initialized" }?.string("status") == "True"
        if !initializing || initialized {
            // Init container restarts no longer matter once the pod runs; sidecars' still do.
            restarts = sidecarRestarts
            lastRestart = lastSidecarRestart
            var hasRunning = false
            for container in status.array("containerStatuses").reversed() {
                restarts += container.int("restartCount")
                lastRestart = later(lastRestart, lastTerminationTime(container))
                let waiting = container["state"]["waiting"]
                let terminated = container["state"]["terminated"]
                if waiting.isSet && !waiting.string("reason").isEmpty {
                    reason = waiting.string("reason")
                } else if terminated.isSet && !terminated.string("reason").isEmpty {
                    reason = terminated.string("reason")
                } else if terminated.isSet {
                    let signal = terminated.int("signal")
                    reason = signal != 0 ? "Signal:\(signal)" : "ExitCode:\(terminated.int("exitCode"))"
                } else if container.bool("ready") && container["state"]["running"].isSet {
                    hasRunning = true
                    readyContainers += 1
                }
            }
            // A finished container must not make a pod with live containers look done.
            if reason == "Completed" && hasRunning {
                let podReady = conditions.contains { $0.string("type") == "Ready" && $0.string("status") == "True" }
                reason = podReady ? "Running" : "NotReady"
            }
        }

        if pod.has("metadata", "deletionTimestamp") {
            if status.string("reason") == "NodeLost" {
                reason = "Unknown"
            } else if phase != "Succeeded" && phase != "Failed" {
                reason = "Terminating"
            }
        }

        var restartsText = String(restarts)
        if restarts != 0, let lastRestart {
            restartsText += " (\(context.age(lastRestart)) ago)"
        }

        // The v1 -> internal conversion fills podIPs from podIP when only the latter is set.
        var podIP = status.array("podIPs").first?.string("ip") ?? status.string("podIP")
        if podIP.isEmpty { podIP = "<none>" }
        let nodeName = spec.string("nodeName")
        let nominated = status.string("nominatedNodeName")

        var readinessGates = "<none>"
        let gates = spec.array("readinessGates")
        if !gates.isEmpty {
            let trueCount = gates.filter { gate in
                let type = gate.string("conditionType")
                return conditions.first { $0.string("type") == type }?.string("status") == "True"
            }.count
            readinessGates = "\(trueCount)/\(gates.count)"
        }

        return Row(
            cells: [
                .string(pod.string("metadata", "name")),
                .string("\(readyContainers)/\(totalContainers)"),
                .string(reason),
                .string(restartsText),
                .string(context.age(of: pod)),
                .string(podIP),
                .string(nodeName.isEmpty ? "<none>" : nodeName),
                .string(nominated.isEmpty ? "<none>" : nominated),
                .string(readinessGates),
            ],
            conditions: rowConditions
        )
    }

    static func completedCondition(reason: String, message: String) -> JSON {
        ["type": "Completed", "status": "True", "reason": .string(reason), "message": .string(message)]
    }

    /// When the container last terminated before its current run, if it did.
    static func lastTerminationTime(_ containerStatus: Fields) -> Double? {
        let terminated = containerStatus["lastState"]["terminated"]
        return terminated.isSet ? terminated.timestamp("finishedAt") : nil
    }

    static func later(_ a: Double?, _ b: Double?) -> Double? {
        guard let b else { return a }
        guard let a else { return b }
        return max(a, b)
    }
}
