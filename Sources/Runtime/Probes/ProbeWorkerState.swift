/// An event the prober asks the node agent to record on the pod (involved object field path
/// `spec.containers{NAME}`).
public struct ProbeEvent: Sendable, Equatable {
    /// `Warning` for every probe event the kubelet writes.
    public var type: String
    /// `Unhealthy` (failed or errored) or `ProbeWarning` (passed with a warning).
    public var reason: String
    public var message: String

    public init(type: String = "Warning", reason: String, message: String) {
        self.type = type
        self.reason = reason
        self.message = message
    }
}

/// The state machine of one probe of one container: the kubelet's probe worker
/// (`pkg/kubelet/prober/worker.go`) without its goroutine, timer or result cache, so every
/// timing rule can be tested with plain numbers.
///
/// The driver calls ``prepare(_:now:)`` on every period tick; when it answers `.probe`, it runs
/// the probe and hands the outcome to ``record(_:)``. Both return ``Effect``s to apply.
public struct ProbeWorkerState: Sendable {
    /// What the worker sees of its container and pod at a tick (from the latest pod status).
    public struct View: Sendable, Equatable {
        /// The container's current ID (without scheme), nil while it has never been created.
        public var containerID: String?
        /// When the current run started, if it is running.
        public var runningSince: Double?
        /// The current run has ended (`state.terminated`).
        public var terminated: Bool
        /// `status.containerStatuses[].started`.
        public var started: Bool
        public var podPhase: String
        public var restartPolicy: String
        public var podDeleting: Bool

        public init(containerID: String?, runningSince: Double? = nil, terminated: Bool = false, started: Bool = false,
                    podPhase: String = "Running", restartPolicy: String = "Always", podDeleting: Bool = false) {
            self.containerID = containerID
            self.runningSince = runningSince
            self.terminated = terminated
            self.started = started
            self.podPhase = podPhase
            self.restartPolicy = restartPolicy
            self.podDeleting = podDeleting
        }
    }

    /// What the driver does after ``prepare(_:now:)``.
    public enum Step: Sendable, Equatable {
        /// Nothing to probe this tick.
        case skip
        /// Run the probe against `containerID` now.
        case probe(containerID: String)
        /// The worker is done for good (pod finished, or container will never run again).
        case stop
    }

    /// A change the driver applies.
    public enum Effect: Sendable, Equatable {
        /// The probe's published result for `containerID` is now `result` (nil: none yet).
        case publish(containerID: String, result: ProbeResult?)
        /// Forget results of an earlier run.
        case forget(containerID: String)
        case event(ProbeEvent)
        /// A liveness or startup probe reached its failure threshold: the container must be
        /// killed (and restarted if the restart policy allows).
        case containerFailed(containerID: String)
    }

    public let kind: ProbeKind
    public let spec: ProbeSpec
    public private(set) var containerID: String?
    /// The raw result of the latest attempts and how many times in a row it came.
    public private(set) var lastResult: ProbeResult?
    public private(set) var resultRun = 0
    /// After condemning a run, wait for a new container before probing again.
    public private(set) var onHold = false
    /// The container ID the current `.probe` step was for.
    var probing: String?

    public init(kind: ProbeKind, spec: ProbeSpec) {
        self.kind = kind
        self.spec = spec
    }

    public mutating func prepare(_ view: View, now: Double) -> (Step, [Effect]) {
        var effects: [Effect] = []
        probing = nil
        if view.podPhase == "Succeeded" || view.podPhase == "Failed" { return (.stop, effects) }
        guard let id = view.containerID, !id.isEmpty else { return (.skip, effects) }

        if id != containerID {
            if let old = containerID { effects.append(.forget(containerID: old)) }
            containerID = id
            effects.append(.publish(containerID: id, result: kind.initialResult))
            onHold = false
        }
        if onHold { return (.skip, effects) }

        guard let runningSince = view.runningSince else {
            effects.append(.publish(containerID: id, result: .failure))
            // A container that ended under restartPolicy Never will not come back.
            let finished = view.terminated && view.restartPolicy == "Never"
            return (finished ? .stop : .skip, effects)
        }

        if view.podDeleting && (kind == .liveness || kind == .startup) {
            // A pod shutting down must not be restarted by its own probes.
            effects.append(.publish(containerID: id, result: .success))
            return (.stop, effects)
        }

        // Whole seconds since start, truncated, as the kubelet compares them.
        if Int(now - runningSince) < spec.initialDelaySeconds { return (.skip, effects) }

        // The startup probe runs until the container is started; the others only after.
        if view.started {
            if kind == .startup { return (.skip, effects) }
        } else if kind != .startup {
            return (.skip, effects)
        }
        probing = id
        return (.probe(containerID: id), effects)
    }

    /// Takes the outcome of the attempt ``prepare(_:now:)`` asked for.
    public mutating func record(_ outcome: ProbeOutcome) -> [Effect] {
        guard let id = probing else { return [] }
        probing = nil
        var effects: [Effect] = []
        let result: ProbeResult
        switch outcome {
        case .success:
            result = .success
        case .warning(let output):
            effects.append(.event(ProbeEvent(reason: "ProbeWarning", message: "\(kind.title) probe warning: \(output)")))
            result = .success
        case .failure(let output):
            effects.append(.event(ProbeEvent(reason: "Unhealthy", message: "\(kind.title) probe failed: \(output)")))
            result = .failure
        case .error(let message, let resultedIn):
            // The attempt could not be made: say so, but leave every counter alone.
            effects.append(.event(ProbeEvent(
                reason: "Unhealthy",
                message: "\(kind.title) probe errored and resulted in \(resultedIn) state: \(message)")))
            return effects
        }

        if lastResult == result {
            resultRun += 1
        } else {
            lastResult = result
            resultRun = 1
        }
        if (result == .failure && resultRun < spec.failureThreshold)
            || (result == .success && resultRun < spec.successThreshold) {
            return effects
        }
        effects.append(.publish(containerID: id, result: result))
        if (kind == .liveness || kind == .startup) && result == .failure {
            onHold = true
            resultRun = 0
            effects.append(.containerFailed(containerID: id))
        }
        return effects
    }
}
