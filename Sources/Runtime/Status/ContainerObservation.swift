import APIMachinery

/// How one run of a container ended, as the runtime saw it.
///
/// The same value fills `state.terminated` while the container is down and `lastState.terminated`
/// once it has been restarted (or while it waits in CrashLoopBackOff).
public struct ContainerTermination: Sendable, Equatable {
    /// The runtime's ID of the run that ended (without the `labnode://` scheme).
    public var containerID: String
    public var exitCode: Int32
    /// The signal that killed PID 1, when the runtime knows it; 0 or nil leaves `signal` out.
    public var signal: Int32?
    /// `Completed`, `Error`, `OOMKilled`, `ContainerCannotRun`, `StartError`, ...; see
    /// ``ContainerTermination/reason(exitCode:oomKilled:)`` for the usual choice.
    public var reason: String
    /// Free text (a termination message file, or why the process could not start).
    public var message: String?
    /// Unix seconds.
    public var startedAt: Double
    public var finishedAt: Double

    public init(containerID: String, exitCode: Int32, signal: Int32? = nil, reason: String? = nil,
                message: String? = nil, startedAt: Double, finishedAt: Double, oomKilled: Bool = false) {
        self.containerID = containerID
        self.exitCode = exitCode
        self.signal = signal
        self.reason = reason ?? ContainerTermination.reason(exitCode: exitCode, oomKilled: oomKilled)
        self.message = message
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// The reason CRI runtimes (containerd, CRI-O) give an exited container: the OOM killer wins,
    /// then exit code 0 is `Completed` and anything else `Error`. kubectl prints this word in
    /// the STATUS column, so it must be one of these for a trainee to recognise it.
    public static func reason(exitCode: Int32, oomKilled: Bool) -> String {
        if oomKilled { return "OOMKilled" }
        return exitCode == 0 ? "Completed" : "Error"
    }
}

/// Where one container stands right now, in the terms the kubelet reports.
public enum ContainerRuntimeState: Sendable, Equatable {
    /// Nothing has run yet for this container (image being resolved, rootfs being built, or the
    /// pod still initializing). Reported as `waiting` with the kubelet's default reason:
    /// `ContainerCreating`, or `PodInitializing` in a pod that has init containers.
    case creating
    /// The agent decided not to run the container now and says why: `CrashLoopBackOff`,
    /// `ErrImagePull`, `ImagePullBackOff`, `CreateContainerConfigError`, `RunContainerError`, ...
    /// (``KubeletMessages`` builds the usual messages).
    case waiting(reason: String, message: String?)
    /// PID 1 is alive. `startedAt` in unix seconds.
    case running(containerID: String, startedAt: Double)
    /// The latest run ended and the agent is not (yet) restarting it.
    case exited(ContainerTermination)
}

/// What the node agent knows about one container of a pod (regular, init or sidecar).
public struct ContainerObservation: Sendable, Equatable {
    public var name: String
    public var state: ContainerRuntimeState
    /// The run before the current one, if there was one (`lastState.terminated`).
    public var lastTermination: ContainerTermination?
    public var restartCount: Int
    /// The image as the runtime resolved it (`docker.io/library/nginx:latest`); nil reports the
    /// spec's image text unchanged.
    public var image: String?
    /// The content address of the image (`docker.io/library/nginx@sha256:...`); empty until an
    /// image is known, as the kubelet reports it.
    public var imageID: String

    public init(name: String, state: ContainerRuntimeState, lastTermination: ContainerTermination? = nil,
                restartCount: Int = 0, image: String? = nil, imageID: String = "") {
        self.name = name
        self.state = state
        self.lastTermination = lastTermination
        self.restartCount = restartCount
        self.image = image
        self.imageID = imageID
    }

    /// The ID of the newest run: the running or exited one, else the one before (a container in
    /// CrashLoopBackOff keeps reporting the ID of the run that crashed, as the kubelet does).
    public var latestContainerID: String? {
        switch state {
        case .running(let id, _): return id
        case .exited(let t): return t.containerID
        case .creating, .waiting: return lastTermination?.containerID
        }
    }
}

/// The probe results the status needs, for one run of one container.
///
/// Results belong to a container ID: when the container restarts, results for the old ID must
/// not make the new run look started or ready, so the builder ignores results whose
/// ``containerID`` is not the running one.
public struct ContainerProbeResults: Sendable, Equatable {
    public var containerID: String
    /// The startup probe's published result; nil while it has none.
    public var startup: Bool?
    /// The readiness probe's published result; nil while it has none.
    public var readiness: Bool?

    public init(containerID: String, startup: Bool? = nil, readiness: Bool? = nil) {
        self.containerID = containerID
        self.startup = startup
        self.readiness = readiness
    }
}

/// Everything the status builder reads besides the pod object itself.
public struct PodRuntimeSnapshot: Sendable {
    /// The pod's sandbox exists and its network is configured (`PodReadyToStartContainers`).
    public var sandboxReady: Bool
    /// The pod's addresses from IPAM, any order; IPv4 first wins as on an IPv4 node.
    public var podIPs: [String]
    /// The node's addresses (`status.hostIP`/`hostIPs`); host-network pods also get them as pod IPs.
    public var hostIPs: [String]
    /// By container name; a container without an entry is reported with the default waiting state.
    public var containers: [String: ContainerObservation]
    /// By container name.
    public var probes: [String: ContainerProbeResults]
    /// The agent has decided the pod is finished (all containers stopped and none will restart,
    /// or the pod is being torn down). Lets getPhase give a terminal phase under restartPolicy Always.
    public var podIsTerminal: Bool

    public init(sandboxReady: Bool = false, podIPs: [String] = [], hostIPs: [String] = [],
                containers: [ContainerObservation] = [], probes: [String: ContainerProbeResults] = [:],
                podIsTerminal: Bool = false) {
        self.sandboxReady = sandboxReady
        self.podIPs = podIPs
        self.hostIPs = hostIPs
        var byName: [String: ContainerObservation] = [:]
        for c in containers { byName[c.name] = c }
        self.containers = byName
        self.probes = probes
        self.podIsTerminal = podIsTerminal
    }
}
