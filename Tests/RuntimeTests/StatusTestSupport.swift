import APIMachinery
@testable import Runtime

/// Pods, runtime snapshots and readers of the resulting status, shared by the status tests.
enum StatusFixtures {
    static let t0: Double = 1_767_225_600  // 2026-01-01T00:00:00Z
    static let podUID = "0d9c5d5e-1111-4222-8333-944455556666"

    static func container(_ name: String, image: String = "nginx", readiness: Bool = false, startup: Bool = false,
                          liveness: Bool = false, restartPolicy: String? = nil) -> JSON {
        var c: JSON = ["name": .string(name), "image": .string(image)]
        let probe: JSON = ["httpGet": ["path": "/", "port": 80], "periodSeconds": 10]
        if readiness { c["readinessProbe"] = probe }
        if startup { c["startupProbe"] = probe }
        if liveness { c["livenessProbe"] = probe }
        if let restartPolicy { c["restartPolicy"] = .string(restartPolicy) }
        return c
    }

    static func pod(_ containers: [JSON], initContainers: [JSON] = [], restartPolicy: String = "Always",
                    status: JSON? = nil, deleting: Bool = false, extraSpec: JSON = [:]) -> JSON {
        var spec: JSON = ["containers": .array(containers), "restartPolicy": .string(restartPolicy), "nodeName": "labnode"]
        if !initContainers.isEmpty { spec["initContainers"] = .array(initContainers) }
        for (k, v) in extraSpec.objectValue ?? [:] { spec[k] = v }
        var metadata: JSON = ["name": "web", "namespace": "default", "uid": .string(podUID),
                              "creationTimestamp": .string(Timestamp.format(t0))]
        if deleting { metadata["deletionTimestamp"] = .string(Timestamp.format(t0 + 500)) }
        var pod: JSON = ["metadata": metadata, "spec": spec]
        if let status { pod["status"] = status }
        return pod
    }

    static func running(_ name: String, id: String? = nil, at start: Double = t0 + 5, restarts: Int = 0,
                        last: ContainerTermination? = nil) -> ContainerObservation {
        ContainerObservation(name: name, state: .running(containerID: id ?? "\(name)-run\(restarts)", startedAt: start),
                             lastTermination: last, restartCount: restarts,
                             image: "docker.io/library/nginx:latest",
                             imageID: "docker.io/library/nginx@sha256:0123")
    }

    static func exited(_ name: String, code: Int32, oom: Bool = false, restarts: Int = 0, reason: String? = nil,
                       last: ContainerTermination? = nil) -> ContainerObservation {
        ContainerObservation(name: name, state: .exited(termination(name, code: code, oom: oom, run: restarts, reason: reason)),
                             lastTermination: last, restartCount: restarts, imageID: "docker.io/library/busybox@sha256:abcd")
    }

    static func termination(_ name: String, code: Int32, oom: Bool = false, run: Int = 0, reason: String? = nil) -> ContainerTermination {
        ContainerTermination(containerID: "\(name)-run\(run)", exitCode: code, reason: reason, startedAt: t0 + 5,
                             finishedAt: t0 + 20, oomKilled: oom)
    }

    static func waiting(_ name: String, reason: String, message: String? = nil, restarts: Int = 0,
                        last: ContainerTermination? = nil) -> ContainerObservation {
        ContainerObservation(name: name, state: .waiting(reason: reason, message: message), lastTermination: last,
                             restartCount: restarts)
    }

    static func snapshot(_ containers: [ContainerObservation], probes: [String: ContainerProbeResults] = [:],
                         sandbox: Bool = true, terminal: Bool = false) -> PodRuntimeSnapshot {
        PodRuntimeSnapshot(sandboxReady: sandbox, podIPs: sandbox ? ["10.244.0.5"] : [], hostIPs: ["192.168.1.10"],
                           containers: containers, probes: probes, podIsTerminal: terminal)
    }

    /// The pod with its freshly built status.
    static func withStatus(_ pod: JSON, _ snapshot: PodRuntimeSnapshot, now: Double = t0 + 30) -> JSON {
        var copy = pod
        copy["status"] = PodStatusBuilder.build(pod: pod, runtime: snapshot, now: now)
        return copy
    }

    /// `kubectl get pods` cells: READY, STATUS, RESTARTS, computed by the shared Table printer.
    static func tableCells(_ pod: JSON, now: Double = t0 + 60) -> (ready: String, status: String, restarts: String) {
        let table = TablePrinter.table(resource: Resources.pods, objects: [pod], listResourceVersion: nil,
                                       continueToken: nil, includeObject: .none, now: now)
        let cells = table["rows"]?.arrayValue?.first?["cells"]?.arrayValue ?? []
        func cell(_ i: Int) -> String { i < cells.count ? cells[i].stringValue ?? "" : "" }
        return (cell(1), cell(2), cell(3))
    }

    static func condition(_ status: JSON, _ type: String) -> JSON? {
        status["conditions"]?.arrayValue?.first { $0["type"]?.stringValue == type }
    }

    /// `True`, or `False/Reason` for a condition.
    static func conditionSummary(_ status: JSON, _ type: String) -> String {
        guard let c = condition(status, type) else { return "missing" }
        let s = c["status"]?.stringValue ?? ""
        let reason = c["reason"]?.stringValue ?? ""
        return reason.isEmpty ? s : "\(s)/\(reason)"
    }

    /// `waiting:Reason`, `running` or `terminated:Reason:code` of a container status.
    static func stateSummary(_ containerStatus: JSON?) -> String {
        guard let state = containerStatus?["state"] else { return "missing" }
        if let w = state["waiting"] { return "waiting:" + (w["reason"]?.stringValue ?? "") }
        if state["running"] != nil { return "running" }
        if let t = state["terminated"] {
            return "terminated:\(t["reason"]?.stringValue ?? ""):\(t["exitCode"]?.intValue ?? -1)"
        }
        return "empty"
    }

    static func containerStatus(_ status: JSON, _ name: String, init isInit: Bool = false) -> JSON? {
        status[isInit ? "initContainerStatuses" : "containerStatuses"]?.arrayValue?.first { $0["name"]?.stringValue == name }
    }
}
