import APIMachinery

/// The pod phase from its container statuses, by the kubelet's `getPhase` rules.
///
/// - Pending while a regular init container has not succeeded, a sidecar has not started
///   (before any regular container ran), or any container is waiting for its first run.
/// - Running once every container has started and one is running, or all stopped but will
///   restart (restartPolicy Always, or OnFailure with a failure).
/// - Succeeded when all regular containers stopped with exit 0 and none will restart.
/// - Failed when all stopped with a failure and none will restart, or an init container failed
///   under restartPolicy Never.
enum PodPhase {
    static func phase(spec: JSON, initStatuses: [ContainerStatusRecord], statuses: [ContainerStatusRecord],
                      podIsTerminal: Bool) -> String {
        let restartPolicy = spec["restartPolicy"]?.stringValue ?? "Always"
        let initSpecs = spec["initContainers"]?.arrayValue ?? []
        let initByName = Dictionary(initStatuses.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let byName = Dictionary(statuses.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        var pendingRegularInit = 0
        var pendingSidecars = 0
        var failedInit = 0
        for container in initSpecs where !isSidecar(container) {
            guard let status = initByName[container["name"]?.stringValue ?? ""] else {
                pendingRegularInit += 1
                continue
            }
            switch status.state {
            case .running:
                pendingRegularInit += 1
            case .terminated(let t):
                if t.exitCode != 0 { failedInit += 1 }
            case .waiting:
                // Waiting after a failed run counts as a failure (it is being retried);
                // waiting before any run is simply not done yet.
                if let last = status.lastState {
                    if last.exitCode != 0 { failedInit += 1 }
                } else {
                    pendingRegularInit += 1
                }
            }
        }

        var unknown = 0, running = 0, waiting = 0, stopped = 0, succeeded = 0
        for container in initSpecs where isSidecar(container) {
            guard let status = initByName[container["name"]?.stringValue ?? ""] else {
                unknown += 1
                continue
            }
            switch status.state {
            case .running:
                if !status.started { pendingSidecars += 1 }
                running += 1
            case .terminated:
                // A stopped sidecar does not decide the phase.
                break
            case .waiting:
                if status.lastState == nil {
                    pendingSidecars += 1
                    waiting += 1
                }
            }
        }
        for container in spec["containers"]?.arrayValue ?? [] {
            guard let status = byName[container["name"]?.stringValue ?? ""] else {
                unknown += 1
                continue
            }
            switch status.state {
            case .running:
                running += 1
            case .terminated(let t):
                stopped += 1
                if t.exitCode == 0 { succeeded += 1 }
            case .waiting:
                if status.lastState != nil { stopped += 1 } else { waiting += 1 }
            }
        }

        if failedInit > 0 && restartPolicy == "Never" { return "Failed" }
        if pendingRegularInit > 0 || (pendingSidecars > 0 && !anyRegularContainerStarted(spec: spec, statuses: statuses)) {
            return "Pending"
        }
        if waiting > 0 { return "Pending" }
        if running > 0 && unknown == 0 { return "Running" }
        if running == 0 && stopped > 0 && unknown == 0 {
            if podIsTerminal { return stopped == succeeded ? "Succeeded" : "Failed" }
            if restartPolicy == "Always" { return "Running" }
            if stopped == succeeded { return "Succeeded" }
            if restartPolicy == "Never" { return "Failed" }
            return "Running"
        }
        return "Pending"
    }

    /// An init container with `restartPolicy: Always` (a sidecar) keeps running beside the others.
    static func isSidecar(_ container: JSON) -> Bool {
        container["restartPolicy"]?.stringValue == "Always"
    }

    /// Has any regular container run (running now, or stopped)? Then the pod was initialized
    /// once, and a restarting sidecar must not send it back to Pending.
    static func anyRegularContainerStarted(spec: JSON, statuses: [ContainerStatusRecord]) -> Bool {
        let names = Set((spec["containers"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        return statuses.contains { status in
            guard names.contains(status.name) else { return false }
            switch status.state {
            case .running, .terminated: return true
            case .waiting: return false
            }
        }
    }
}
