/// Whether and when a stopped container runs again, as the kubelet decides it.
///
/// Two rules combine, both from upstream:
/// - the restart policy (`ShouldContainerBeRestarted`): `Never` keeps every exited container
///   down, `OnFailure` restarts only non-zero exits, `Always` restarts everything; a finished
///   regular init container (exit 0) never runs again, a sidecar (init container with
///   `restartPolicy: Always`) always does; nothing restarts once the pod is being deleted;
/// - the crash-loop back-off (`doBackOff` over client-go's `flowcontrol.Backoff`): the first
///   crash restarts at once and arms a 10 s window; each crash inside the window waits it out
///   and doubles it, capped at 5 min (10, 20, 40, 80, 160, 300, 300 ...). A run that lasted
///   longer than twice the cap (10 min) after the last restart counts as healthy and starts
///   the sequence over.
///
/// A value type: the node agent keeps one per node and passes `now` explicitly, so tests need no
/// clock at all.
public struct RestartBackoff: Sendable {
    /// What to do about a container that is not running.
    public enum Decision: Sendable, Equatable {
        /// Start it now.
        case restartNow
        /// Report `CrashLoopBackOff` and try again at `until` (unix seconds); `delay` is the
        /// window being waited out, the number in the waiting message.
        case backOff(until: Double, delay: Double)
        /// Leave it down for good (policy, success of an init container, or pod deletion).
        case doNotRestart
    }

    /// How a container is declared, which decides the policy that applies to it.
    public enum ContainerRole: Sendable, Equatable {
        case regular
        /// An init container without its own restart policy: runs to completion once.
        case initContainer
        /// An init container with `restartPolicy: Always`.
        case sidecar
    }

    public let initialDelay: Double
    public let maximumDelay: Double

    struct Entry: Sendable, Equatable {
        var delay: Double
        var lastUpdate: Double
    }
    var entries: [String: Entry] = [:]

    /// Upstream's container back-off: 10 s doubling to 300 s.
    public init(initialDelay: Double = 10, maximumDelay: Double = 300) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
    }

    /// A key naming one container of one pod instance, as the back-off table is keyed.
    public static func key(podUID: String, container: String) -> String { podUID + "/" + container }

    /// Should the policy restart this exited container at all (back-off aside)?
    public static func shouldRestart(restartPolicy: String, role: ContainerRole, exitCode: Int32,
                                     podDeleting: Bool = false) -> Bool {
        if podDeleting { return false }
        switch role {
        case .sidecar:
            return true
        case .initContainer:
            // A successful init container is done; a failed one is retried unless the pod
            // may never restart anything.
            return exitCode != 0 && restartPolicy != "Never"
        case .regular:
            switch restartPolicy {
            case "Never": return false
            case "OnFailure": return exitCode != 0
            default: return true
            }
        }
    }

    /// Decides for a container whose latest run ended at `finishedAt` with `exitCode`.
    ///
    /// Call it on each sync of the pod while the container is down; a `.restartNow` answer also
    /// records the restart (the window grows), so call it once per restart you actually perform.
    public mutating func decide(key: String, restartPolicy: String, role: ContainerRole = .regular,
                                exitCode: Int32, finishedAt: Double, now: Double,
                                podDeleting: Bool = false) -> Decision {
        guard RestartBackoff.shouldRestart(restartPolicy: restartPolicy, role: role, exitCode: exitCode,
                                           podDeleting: podDeleting)
        else { return .doNotRestart }
        if let entry = entries[key], !expired(entry, at: finishedAt), now - finishedAt < entry.delay {
            return .backOff(until: finishedAt + entry.delay, delay: entry.delay)
        }
        recordRestart(key: key, finishedAt: finishedAt, now: now)
        return .restartNow
    }

    /// The window currently armed for `key` (what the next crash would wait), if any.
    public func currentDelay(key: String) -> Double? { entries[key]?.delay }

    /// Forgets a container (pod deleted, or its spec changed so upstream's key would differ).
    public mutating func reset(key: String) { entries[key] = nil }

    /// Drops entries untouched for twice the maximum, as the kubelet's periodic GC does; they
    /// would be treated as expired anyway, this only bounds memory.
    public mutating func collectGarbage(now: Double) {
        entries = entries.filter { now - $0.value.lastUpdate <= 2 * maximumDelay }
    }

    mutating func recordRestart(key: String, finishedAt: Double, now: Double) {
        if let entry = entries[key], !expired(entry, at: finishedAt) {
            entries[key] = Entry(delay: min(entry.delay * 2, maximumDelay), lastUpdate: now)
        } else {
            entries[key] = Entry(delay: initialDelay, lastUpdate: now)
        }
    }

    /// A run that ended more than twice the cap after the last restart was a healthy one.
    func expired(_ entry: Entry, at eventTime: Double) -> Bool {
        eventTime - entry.lastUpdate > 2 * maximumDelay
    }
}
