import APIMachinery

/// Computes a pod's `status` exactly as the kubelet reports it, from what the node agent
/// observed. Pure: no clock, no host, no API calls; the same inputs give the same JSON.
///
/// kubectl derives everything it shows from these fields (the STATUS word of `get pods`,
/// READY, RESTARTS, `describe`'s State/Last State/Conditions), so each rule follows upstream:
/// - container statuses: `convertToAPIContainerStatuses` in pkg/kubelet/kubelet_pods.go
///   (default waiting reason, last state, regular containers sorted by name, init containers
///   in spec order, `labnode://` container IDs);
/// - `started`/`ready`: the probe manager's `UpdatePodStatus` (a startup probe gates
///   started; readiness defaults to true when no readiness probe is declared; a regular init
///   container is ready once it exited 0);
/// - phase: `getPhase`, and a pod never leaves Succeeded/Failed once reported;
/// - conditions: pkg/kubelet/status/generate.go, in the kubelet's order after any conditions
///   it does not own, with `lastTransitionTime` kept while a condition's status is unchanged;
/// - `qosClass`: the stored value, else upstream's `ComputePodQOS`.
public enum PodStatusBuilder {
    /// Options that follow the Kubernetes version being imitated.
    public struct Options: Sendable {
        /// Report `resources` in container statuses (InPlacePodVerticalScaling, on by default since 1.33).
        public var reportContainerResources: Bool
        /// Report `volumeMounts` in container statuses (RecursiveReadOnlyMounts, on since 1.31).
        public var reportVolumeMounts: Bool
        /// Include the `PodReadyToStartContainers` condition (on by default since 1.29).
        public var reportReadyToStartContainers: Bool

        public init(reportContainerResources: Bool = true, reportVolumeMounts: Bool = true,
                    reportReadyToStartContainers: Bool = true) {
            self.reportContainerResources = reportContainerResources
            self.reportVolumeMounts = reportVolumeMounts
            self.reportReadyToStartContainers = reportReadyToStartContainers
        }
    }

    /// The pod's new `status`.
    ///
    /// - Parameters:
    ///   - pod: the pod as stored (spec, metadata and the current `status`, which is the previous
    ///     report: its conditions' transition times, startTime, qosClass and terminal phase carry over).
    ///   - runtime: what the node agent knows about the sandbox, the containers and the probes.
    ///   - now: unix seconds, for new transition times and a first `startTime`.
    public static func build(pod: JSON, runtime: PodRuntimeSnapshot, now: Double, options: Options = Options()) -> JSON {
        let spec = pod["spec"] ?? .object([:])
        let previous = pod["status"] ?? .object([:])
        let deleting = pod.deletionTimestamp != nil
        let hasInitContainers = !(spec["initContainers"]?.arrayValue ?? []).isEmpty

        let initSpecs = spec["initContainers"]?.arrayValue ?? []
        var initStatuses = initSpecs.map { container in
            record(for: container, runtime: runtime, previous: previous["initContainerStatuses"]?.arrayValue ?? [],
                   hasInitContainers: hasInitContainers, deleting: deleting, options: options)
        }
        var statuses = (spec["containers"]?.arrayValue ?? []).map { container in
            record(for: container, runtime: runtime, previous: previous["containerStatuses"]?.arrayValue ?? [],
                   hasInitContainers: hasInitContainers, deleting: deleting, options: options)
        }
        statuses.sort { $0.name < $1.name }

        for i in initStatuses.indices {
            let container = initSpecs[i]
            if PodPhase.isSidecar(container) {
                applyProbeResults(&initStatuses[i], container: container, runtime: runtime)
            } else {
                initStatuses[i].started = startedByProbes(initStatuses[i], container: container, runtime: runtime)
                if let t = initStatuses[i].terminated, t.exitCode == 0 { initStatuses[i].ready = true }
            }
        }
        let containerSpecs = Dictionary((spec["containers"]?.arrayValue ?? []).map { ($0["name"]?.stringValue ?? "", $0) },
                                        uniquingKeysWith: { a, _ in a })
        for i in statuses.indices {
            applyProbeResults(&statuses[i], container: containerSpecs[statuses[i].name] ?? .object([:]), runtime: runtime)
        }

        var phase = PodPhase.phase(spec: spec, initStatuses: initStatuses, statuses: statuses,
                                   podIsTerminal: runtime.podIsTerminal)
        let previousPhase = previous["phase"]?.stringValue ?? ""
        // Succeeded and Failed are final: the kubelet refuses any transition out of them.
        if previousPhase == "Succeeded" || previousPhase == "Failed" { phase = previousPhase }

        // Conditions.
        let previousConditions = previous["conditions"]?.arrayValue ?? []
        let otherConditions = previousConditions.filter {
            !PodConditions.kubeletOwned.contains($0["type"]?.stringValue ?? "")
        }
        var generated: [PodConditions.Condition] = []
        if options.reportReadyToStartContainers {
            generated.append(PodConditions.Condition(type: "PodReadyToStartContainers",
                                                     status: runtime.sandboxReady ? "True" : "False"))
        }
        generated.append(PodConditions.initialized(spec: spec, initStatuses: initStatuses, statuses: statuses, phase: phase))
        let containersReady = PodConditions.containersReady(spec: spec, initStatuses: initStatuses,
                                                            statuses: statuses, phase: phase)
        generated.append(PodConditions.ready(spec: spec, containersReady: containersReady, otherConditions: otherConditions))
        generated.append(containersReady)
        generated.append(PodConditions.Condition(type: "PodScheduled", status: "True"))
        let conditions = otherConditions + generated.map { PodConditions.json($0, previous: previousConditions, now: now) }

        // Addresses.
        let hostIPs = runtime.hostIPs
        var podIPs = sortedPodIPs(runtime.podIPs)
        if spec["hostNetwork"]?.boolValue == true, podIPs.isEmpty { podIPs = sortedPodIPs(hostIPs) }
        if podIPs.isEmpty {
            // An address, once given, is the pod's for life; a sandbox torn down after the pod
            // finished must not blank the IP column of `get pods -o wide`.
            podIPs = (previous["podIPs"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }
        }

        // Assemble in the field order of Go's PodStatus.
        var status: JSONObject = ["phase": .string(phase), "conditions": .array(conditions)]
        if phase == previousPhase {
            if let message = previous["message"]?.stringValue, !message.isEmpty { status["message"] = .string(message) }
            if let reason = previous["reason"]?.stringValue, !reason.isEmpty { status["reason"] = .string(reason) }
        }
        if let nominated = previous["nominatedNodeName"]?.stringValue, !nominated.isEmpty {
            status["nominatedNodeName"] = .string(nominated)
        }
        if let first = hostIPs.first {
            status["hostIP"] = .string(first)
            status["hostIPs"] = .array(hostIPs.prefix(2).map { ["ip": .string($0)] })
        }
        if let first = podIPs.first {
            status["podIP"] = .string(first)
            status["podIPs"] = .array(podIPs.map { ["ip": .string($0)] })
        }
        status["startTime"] = previous["startTime"].flatMap { $0.isNull ? nil : $0 } ?? .string(Timestamp.format(now))
        if !initStatuses.isEmpty { status["initContainerStatuses"] = .array(initStatuses.map(\.json)) }
        if !statuses.isEmpty { status["containerStatuses"] = .array(statuses.map(\.json)) }
        let storedQOS = previous["qosClass"]?.stringValue ?? ""
        status["qosClass"] = .string(storedQOS.isEmpty ? PodQOS.qosClass(of: pod) : storedQOS)
        return .object(status)
    }

    // MARK: - Container statuses

    static func record(for container: JSON, runtime: PodRuntimeSnapshot, previous: [JSON],
                       hasInitContainers: Bool, deleting: Bool, options: Options) -> ContainerStatusRecord {
        let name = container["name"]?.stringValue ?? ""
        let specImage = container["image"]?.stringValue ?? ""
        let defaultWaiting = ContainerStatusRecord.State.waiting(
            reason: hasInitContainers ? "PodInitializing" : "ContainerCreating", message: nil)
        let old = previous.first { $0["name"]?.stringValue == name }.flatMap(ContainerStatusRecord.init(json:))
        let mounts = options.reportVolumeMounts ? volumeMountStatuses(container) : []

        guard let observed = runtime.containers[name] else {
            // The runtime does not know the container (never created, or lost across a labnode
            // restart). A finished run stays reported as finished; a run that was going on is
            // presumed dead, the way the kubelet infers it, so the pod does not fall back to Pending.
            if let old, old.terminated != nil { return old }
            var record = ContainerStatusRecord(name: name, state: defaultWaiting, lastState: old?.lastState,
                                               restartCount: old?.restartCount ?? 0, image: specImage)
            record.volumeMounts = mounts
            if let old, old.isRunning, record.lastState == nil {
                record.lastState = ContainerTermination(
                    containerID: "", exitCode: 137, reason: "ContainerStatusUnknown",
                    message: "The container could not be located when the pod was deleted.  The container used to be Running",
                    startedAt: Timestamp.goZeroTime, finishedAt: Timestamp.goZeroTime)
                if !deleting { record.restartCount += 1 }
            }
            return record
        }

        let state: ContainerStatusRecord.State
        var ran = false
        switch observed.state {
        case .creating:
            state = defaultWaiting
        case .waiting(let reason, let message):
            state = .waiting(reason: reason, message: message)
        case .running(_, let startedAt):
            state = .running(startedAt: startedAt)
            ran = true
        case .exited(let termination):
            state = .terminated(termination)
            ran = true
        }
        var record = ContainerStatusRecord(
            name: name, state: state, lastState: observed.lastTermination, restartCount: observed.restartCount,
            image: observed.image ?? specImage, imageID: observed.imageID, containerID: observed.latestContainerID)
        record.volumeMounts = mounts
        if options.reportContainerResources && (ran || observed.lastTermination != nil) {
            record.resources = container["resources"] ?? .object([:])
        }
        return record
    }

    /// `started` and `ready` of a regular container or a sidecar.
    static func applyProbeResults(_ record: inout ContainerStatusRecord, container: JSON, runtime: PodRuntimeSnapshot) {
        record.started = startedByProbes(record, container: container, runtime: runtime)
        guard record.started, record.isRunning else {
            record.ready = false
            return
        }
        if container["readinessProbe"].map({ !$0.isNull }) ?? false {
            let results = runtime.probes[record.name]
            record.ready = sameRun(results?.containerID, record.containerID) && results?.readiness == true
        } else {
            record.ready = true
        }
    }

    /// Running, and past its startup probe if it declares one (results of an earlier run do not count).
    static func startedByProbes(_ record: ContainerStatusRecord, container: JSON, runtime: PodRuntimeSnapshot) -> Bool {
        guard record.isRunning else { return false }
        guard container["startupProbe"].map({ !$0.isNull }) ?? false else { return true }
        let results = runtime.probes[record.name]
        return sameRun(results?.containerID, record.containerID) && results?.startup == true
    }

    /// Whether two container IDs name the same run, with or without the `labnode://` scheme.
    static func sameRun(_ a: String?, _ b: String?) -> Bool {
        guard let a, let b, !a.isEmpty else { return false }
        return ContainerStatusRecord.bareID(a) == ContainerStatusRecord.bareID(b)
    }

    /// One entry per volume mount; read-only ones say their recursive mode, which labnode does
    /// not offer, so it is always Disabled.
    static func volumeMountStatuses(_ container: JSON) -> [JSON] {
        (container["volumeMounts"]?.arrayValue ?? []).map { mount in
            var o: JSONObject = [
                "name": .string(mount["name"]?.stringValue ?? ""),
                "mountPath": .string(mount["mountPath"]?.stringValue ?? ""),
            ]
            if mount["readOnly"]?.boolValue == true {
                o["readOnly"] = true
                o["recursiveReadOnly"] = "Disabled"
            }
            return .object(o)
        }
    }

    /// The first IPv4 address, then the first IPv6 one, as the kubelet orders pod IPs on an IPv4 node.
    static func sortedPodIPs(_ ips: [String]) -> [String] {
        var out: [String] = []
        if let v4 = ips.first(where: { !$0.contains(":") }) { out.append(v4) }
        if let v6 = ips.first(where: { $0.contains(":") }) { out.append(v6) }
        return out
    }
}
