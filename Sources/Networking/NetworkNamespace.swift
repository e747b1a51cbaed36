import Glibc

/// Running a little synchronous work inside another network namespace.
///
/// `setns(2)` moves only the calling *thread*. Doing it on a thread of Swift's concurrency pool
/// (or Dispatch's) would leave that pooled thread in the pod's namespace, and whatever task ran
/// there next would silently talk to the wrong network. So the work runs on a dedicated pthread
/// that joins the namespace, does the work and exits; the pool never sees it. Starting a thread
/// costs tens of microseconds, negligible next to the netlink round trips it enables.
///
/// The work should only *create* namespace-bound things (a netlink socket, an open file under
/// /proc/sys/net, a listening socket): those stay bound to the namespace after the thread is gone,
/// and can be used from any thread. That keeps the time spent on the foreign thread tiny and the
/// rest of the code ordinary.
public enum NetworkNamespace {
    /// CLONE_NEWNET from linux/sched.h.
    static let cloneNewNet: Int32 = 0x4000_0000

    /// Runs `body` on a new thread that has joined the network namespace at `path`, and waits
    /// for it. The calling thread's namespace never changes.
    public static func run<T>(inNamespaceAt path: String, _ body: () throws -> T) throws -> T {
        try withoutActuallyEscaping(body) { escapableBody in
            let job = NamespaceJob<T>(path: path, body: escapableBody)
            try job.runOnDedicatedThread()
            return try job.outcome()
        }
    }

    /// Opens a namespace file read-only, for IFLA_NET_NS_FD or `setns`. The caller closes it.
    public static func open(path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw SystemCallError(call: "open", errno: errno, subject: "network namespace \(path)")
        }
        return fd
    }

    /// Moves the *calling thread* into the namespace at `path`. Only for dedicated threads.
    static func enter(path: String) throws {
        let fd = try open(path: path)
        defer { close(fd) }
        guard let setns = setnsFunction else {
            throw SystemCallError(call: "setns", errno: ENOSYS, subject: "network namespace \(path): the C library has no setns")
        }
        guard setns(fd, cloneNewNet) == 0 else {
            throw SystemCallError(call: "setns", errno: errno, subject: "network namespace \(path)")
        }
    }

    // Glibc's Swift module does not export setns(2) (it is a _GNU_SOURCE declaration), and a C
    // shim target would be a second language in this module for one call, so it is looked up
    // by name in the already-loaded C library.
    private typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32
    private static let setnsFunction: SetnsFunction? = {
        guard let symbol = dlsym(nil, "setns") else { return nil }
        return unsafeBitCast(symbol, to: SetnsFunction.self)
    }()
}

/// The closure and result of one `NetworkNamespace.run`, handed to the helper thread.
///
/// `@unchecked Sendable` is sound here because exactly one thread touches `result` at a time:
/// the helper writes it before exiting, and the caller reads it only after `pthread_join`,
/// which orders the two.
private final class NamespaceJob<T>: @unchecked Sendable {
    private let path: String
    private let body: () throws -> T
    private var result: Result<T, any Error>?

    init(path: String, body: @escaping () throws -> T) {
        self.path = path
        self.body = body
    }

    func work() {
        result = Result {
            try NetworkNamespace.enter(path: path)
            return try body()
        }
    }

    func runOnDedicatedThread() throws {
        let context = Unmanaged.passRetained(WorkItem { [self] in work() }).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let item = Unmanaged<WorkItem>.fromOpaque(raw).takeRetainedValue()
            item.run()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<WorkItem>.fromOpaque(context).release()
            throw SystemCallError(call: "pthread_create", errno: created, subject: "helper thread for network namespace \(path)")
        }
        let joined = pthread_join(thread, nil)
        guard joined == 0 else {
            throw SystemCallError(call: "pthread_join", errno: joined, subject: "helper thread for network namespace \(path)")
        }
    }

    func outcome() throws -> T {
        guard let result else {
            throw SystemCallError(call: "pthread", errno: EINVAL, subject: "helper thread for \(path) ended without a result")
        }
        return try result.get()
    }
}

/// A type-erased piece of work, so the C thread entry point needs no generic context.
private final class WorkItem: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}
