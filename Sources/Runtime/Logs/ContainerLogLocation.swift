import Foundation

/// Where one container's log files live, laid out as the kubelet lays out /var/log/pods:
/// `<root>/<namespace>_<pod>_<uid>/<container>/<restartCount>.log`.
///
/// Each run of the container gets its own file, named by its restart count, so the run before
/// the current one (`kubectl logs --previous`) is still there to read after a restart.
public struct ContainerLogLocation: Sendable, Hashable {
    /// The directory holding every pod's log directory (the kubelet's /var/log/pods).
    public var root: String
    public var namespace: String
    public var pod: String
    public var uid: String
    public var container: String

    public init(root: String, namespace: String, pod: String, uid: String, container: String) {
        self.root = root
        self.namespace = namespace
        self.pod = pod
        self.uid = uid
        self.container = container
    }

    /// `<root>/<namespace>_<pod>_<uid>`: removed as a whole when the pod is gone.
    public var podDirectory: String { "\(root)/\(namespace)_\(pod)_\(uid)" }

    /// `<podDirectory>/<container>`.
    public var directory: String { "\(podDirectory)/\(container)" }

    /// The log of the run with this restart count.
    public func file(restartCount: Int) -> String { "\(directory)/\(restartCount).log" }
}

/// A log file operation that failed, with the errno that says why.
public struct ContainerLogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was being done ("opening", "reading", "creating directory" ...).
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(_ operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }

    /// The log file does not exist (never written, or its pod's logs were removed).
    public var isMissing: Bool { errno == ENOENT }
}
