import APIMachinery
import Synchronization

/// Runs every probe of every pod on the node, like the kubelet's prober manager: one worker per
/// (pod, container, probe kind), each probing every `periodSeconds` on a ``WallClock``, with its
/// verdicts kept per container run.
///
/// The node agent
/// - calls ``update(pod:)`` with the pod (spec and latest status) whenever it writes a status;
///   workers read container IDs, start times and `started` from that status, as the kubelet's
///   workers read the status manager;
/// - passes ``results(podUID:)`` to ``PodStatusBuilder`` for `started`/`ready`;
/// - listens to ``notifications``: rebuild the status when a result changed, record events, and
///   kill (then, by the restart policy, restart) a container whose liveness or startup probe
///   condemned it;
/// - calls ``remove(podUID:)`` when the pod is gone.
///
/// ``notifications`` buffers without bound: exactly one consumer must drain it for the
/// manager's lifetime.
public actor ProbeManager {
    /// Something the node agent must act on.
    public enum Notification: Sendable, Equatable {
        /// A published probe result changed; the pod's status (ready/started) should be rebuilt.
        case resultChanged(podUID: String, container: String, kind: ProbeKind)
        /// Record this event on the pod, with involved object field path `fieldPath`
        /// (`spec.containers{web}`).
        case event(podUID: String, container: String, fieldPath: String, ProbeEvent)
        /// Kill this run of the container now.
        case containerFailed(ProbeFailure)
    }

    /// A container condemned by its liveness or startup probe.
    public struct ProbeFailure: Sendable, Equatable {
        public var podUID: String
        public var container: String
        public var containerID: String
        public var kind: ProbeKind
        /// Whether the restart policy will start it again (false only under `Never`).
        public var willRestart: Bool
        /// The Normal `Killing` event message: "Container web failed liveness probe, will be restarted".
        public var killMessage: String
        /// The grace period for the kill: the probe's `terminationGracePeriodSeconds`, else the pod's, else 30.
        public var gracePeriodSeconds: Int64
    }

    struct WorkerKey: Hashable, Sendable {
        var podUID: String
        var container: String
        var kind: ProbeKind
    }

    struct Worker {
        var state: ProbeWorkerState
        var isSidecar: Bool
        var task: Task<Void, Never>?
        var generation: UInt64
        /// Wakes the worker before its next tick.
        var trigger: WakeUpSignal
    }

    struct Published: Equatable {
        var containerID: String
        var result: ProbeResult?
    }

    let runner: any ProbeRunner
    let clock: any WallClock
    let kubeVersion: String
    var pods: [String: JSON] = [:]
    var workers: [WorkerKey: Worker] = [:]
    var published: [WorkerKey: Published] = [:]
    var nextGeneration: UInt64 = 0

    public nonisolated let notifications: AsyncStream<Notification>
    let sink: AsyncStream<Notification>.Continuation

    /// - Parameter kubeVersion: `major.minor` for the `kube-probe/<version>` User-Agent.
    public init(runner: any ProbeRunner, clock: any WallClock = SystemWallClock(), kubeVersion: String = "1.33") {
        self.runner = runner
        self.clock = clock
        self.kubeVersion = kubeVersion
        (notifications, sink) = AsyncStream.makeStream(of: Notification.self)
    }

    /// Adds the pod's workers the first time it is seen, and records its latest status. A
    /// container run that is started but has no readiness verdict yet is probed at once.
    public func update(pod: JSON) {
        guard let uid = pod.uid, !uid.isEmpty else { return }
        let isNew = pods[uid] == nil
        pods[uid] = pod
        guard isNew else {
            triggerReadiness(podUID: uid, pod: pod)
            return
        }
        let spec = pod["spec"] ?? .object([:])
        var declared: [(JSON, Bool)] = (spec["containers"]?.arrayValue ?? []).map { ($0, false) }
        declared += (spec["initContainers"]?.arrayValue ?? []).filter(PodPhase.isSidecar).map { ($0, true) }
        for (container, isSidecar) in declared {
            guard let name = container["name"]?.stringValue else { continue }
            for kind in ProbeKind.allCases {
                guard let probe = ProbeSpec(container: container, kind: kind) else { continue }
                let key = WorkerKey(podUID: uid, container: name, kind: kind)
                nextGeneration += 1
                let generation = nextGeneration
                let trigger = WakeUpSignal()
                workers[key] = Worker(state: ProbeWorkerState(kind: kind, spec: probe), isSidecar: isSidecar,
                                      task: nil, generation: generation, trigger: trigger)
                workers[key]?.task = Task { await self.run(key, generation: generation, wakeUps: trigger) }
            }
        }
    }

    /// Stops the pod's workers and forgets its results.
    public func remove(podUID: String) {
        pods[podUID] = nil
        for (key, worker) in workers where key.podUID == podUID {
            worker.task?.cancel()
            workers[key] = nil
        }
        for key in published.keys where key.podUID == podUID { published[key] = nil }
    }

    /// Stops everything and ends ``notifications``.
    public func shutdown() {
        for worker in workers.values {
            worker.task?.cancel()
        }
        workers = [:]
        pods = [:]
        published = [:]
        sink.finish()
    }

    /// The startup and readiness results of each container's current run, for ``PodStatusBuilder``.
    public func results(podUID: String) -> [String: ContainerProbeResults] {
        guard let pod = pods[podUID] else { return [:] }
        var out: [String: ContainerProbeResults] = [:]
        let names = Set(workers.keys.filter { $0.podUID == podUID }.map(\.container))
        for name in names {
            guard let id = ProbeManager.view(of: pod, container: name).containerID else { continue }
            var entry = ContainerProbeResults(containerID: id)
            if let p = published[WorkerKey(podUID: podUID, container: name, kind: .startup)], p.containerID == id {
                entry.startup = p.result.map { $0 == .success }
            }
            if let p = published[WorkerKey(podUID: podUID, container: name, kind: .readiness)], p.containerID == id {
                entry.readiness = p.result.map { $0 == .success }
            }
            out[name] = entry
        }
        return out
    }

    /// The published result of one probe of one container, if any (nil also for a stale run).
    public func result(podUID: String, container: String, kind: ProbeKind) -> ProbeResult? {
        published[WorkerKey(podUID: podUID, container: container, kind: kind)]?.result
    }

    // MARK: - Workers

    /// A container that has just started has no readiness verdict for its run yet; like the
    /// kubelet, probe it now rather than leave the pod unready until the next tick.
    func triggerReadiness(podUID: String, pod: JSON) {
        for (key, worker) in workers where key.podUID == podUID && key.kind == .readiness {
            let view = ProbeManager.view(of: pod, container: key.container)
            guard view.started, view.runningSince != nil, let id = view.containerID else { continue }
            if published[key]?.containerID != id { worker.trigger.signal() }
        }
    }

    func run(_ key: WorkerKey, generation: UInt64, wakeUps: WakeUpSignal) async {
        var nextTick = clock.now
        while !Task.isCancelled {
            guard let worker = workers[key], worker.generation == generation, let pod = pods[key.podUID] else { return }
            var state = worker.state
            let (step, effects) = state.prepare(ProbeManager.view(of: pod, container: key.container), now: clock.now)
            workers[key]?.state = state
            apply(effects, key: key, pod: pod)
            switch step {
            case .stop:
                // A finished worker takes its verdicts with it, as the kubelet's does.
                workers[key] = nil
                published[key] = nil
                return
            case .skip:
                break
            case .probe(let containerID):
                let target = ProbeTarget(podUID: key.podUID, podIP: pod[path: "status", "podIP"]?.stringValue ?? "",
                                         container: ProbeManager.containerSpec(of: pod, name: key.container),
                                         containerID: containerID)
                let outcome = await ProbeExecution.run(state.spec, target: target, runner: runner, kubeVersion: kubeVersion)
                // The pod may have been removed (or re-added) while the probe ran.
                guard var current = workers[key]?.state, workers[key]?.generation == generation,
                      let latestPod = pods[key.podUID] else { return }
                let recorded = current.record(outcome)
                workers[key]?.state = current
                apply(recorded, key: key, pod: latestPod)
            }
            // A fixed cadence like Go's ticker: ticks missed while a slow probe ran are skipped,
            // not replayed in a burst, and an early wake-up does not move the next tick.
            let period = Double(state.spec.periodSeconds)
            let now = clock.now
            while nextTick <= now { nextTick += period }
            await waitForTick(nextTick, or: wakeUps)
        }
    }

    /// Returns at `deadline`, on a wake-up, or when the task is cancelled.
    nonisolated func waitForTick(_ deadline: Double, or wakeUps: WakeUpSignal) async {
        let clock = self.clock
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(until: deadline) }
            group.addTask { await wakeUps.wait() }
            await group.next()
            group.cancelAll()
        }
    }

    func apply(_ effects: [ProbeWorkerState.Effect], key: WorkerKey, pod: JSON) {
        for effect in effects {
            switch effect {
            case .publish(let containerID, let result):
                let new = Published(containerID: containerID, result: result)
                if published[key] != new {
                    published[key] = new
                    sink.yield(.resultChanged(podUID: key.podUID, container: key.container, kind: key.kind))
                }
            case .forget(let containerID):
                if published[key]?.containerID == containerID { published[key] = nil }
            case .event(let event):
                let list = workers[key]?.isSidecar == true ? "initContainers" : "containers"
                sink.yield(.event(podUID: key.podUID, container: key.container,
                                  fieldPath: "spec.\(list){\(key.container)}", event))
            case .containerFailed(let containerID):
                let willRestart = (pod[path: "spec", "restartPolicy"]?.stringValue ?? "Always") != "Never"
                    || workers[key]?.isSidecar == true
                let grace = workers[key]?.state.spec.terminationGracePeriodSeconds
                    ?? pod[path: "spec", "terminationGracePeriodSeconds"]?.intValue ?? 30
                sink.yield(.containerFailed(ProbeFailure(
                    podUID: key.podUID, container: key.container, containerID: containerID, kind: key.kind,
                    willRestart: willRestart,
                    killMessage: KubeletMessages.probeKill(container: key.container, probe: key.kind.rawValue,
                                                           willRestart: willRestart),
                    gracePeriodSeconds: grace)))
            }
        }
    }

    /// The worker's view of a container, from the pod's latest status.
    static func view(of pod: JSON, container name: String) -> ProbeWorkerState.View {
        let status = pod["status"] ?? .object([:])
        let entries = (status["containerStatuses"]?.arrayValue ?? []) + (status["initContainerStatuses"]?.arrayValue ?? [])
        let entry = entries.first { $0["name"]?.stringValue == name }
        let id = entry?["containerID"]?.stringValue.map(ContainerStatusRecord.bareID)
        let running = entry?[path: "state", "running"]
        return ProbeWorkerState.View(
            containerID: id?.isEmpty == false ? id : nil,
            runningSince: running.flatMap { $0["startedAt"]?.stringValue.flatMap(Timestamp.parse) ?? 0 },
            terminated: entry?[path: "state", "terminated"]?.objectValue != nil,
            started: entry?["started"]?.boolValue ?? false,
            podPhase: status["phase"]?.stringValue ?? "Pending",
            restartPolicy: pod[path: "spec", "restartPolicy"]?.stringValue ?? "Always",
            podDeleting: pod.deletionTimestamp != nil)
    }

    static func containerSpec(of pod: JSON, name: String) -> JSON {
        let spec = pod["spec"] ?? .object([:])
        let all = (spec["containers"]?.arrayValue ?? []) + (spec["initContainers"]?.arrayValue ?? [])
        return all.first { $0["name"]?.stringValue == name } ?? .object([:])
    }
}

/// A wake-up that can be signalled before anyone waits (one pending signal is kept, like the
/// kubelet's one-slot trigger channel) and whose wait ends early when the task is cancelled.
final class WakeUpSignal: Sendable {
    struct State {
        var pending = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return w
        }
        waiter?.resume()
    }

    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending || Task.isCancelled {
                        s.pending = false
                        return true
                    }
                    s.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                defer { s.waiter = nil }
                return s.waiter
            }
            waiter?.resume()
        }
    }
}
