import CShims
import Foundation
import Glibc

/// The namespace files of a pod sandbox; containers join them by path.
public struct SandboxNamespaces: Codable, Equatable, Sendable {
    public var network: String
    public var uts: String
    public var ipc: String

    /// The files `SandboxSetup` uses in `directory`.
    public init(directory: String) {
        network = directory + "/net"
        uts = directory + "/uts"
        ipc = directory + "/ipc"
    }

    var all: [(kind: String, path: String)] { [("net", network), ("uts", uts), ("ipc", ipc)] }
}

/// Creates and destroys pod sandboxes: a new network, UTS and IPC namespace,
/// each bind-mounted onto a file in a directory (e.g.
/// /run/labnode/pods/<uid>/ns) so no process has to stay alive to hold them,
/// with the pod's hostname set and loopback up.
///
/// Two ways to run it, same code:
/// - `.thread` (default): a dedicated thread that unshares, mounts and then
///   ends. Namespaces belong to threads, so the daemon's other threads never
///   see them, and a thread that ends needs no setns() back. No process start:
///   about 1 ms.
/// - `.reexec`: `labnode init sandbox <dir> <hostname>` in a fresh process, for
///   when the daemon would rather not touch namespaces itself (and for manual
///   use). It costs a process start (several ms for a large Swift binary).
/// Neither forks the daemon.
public enum SandboxSetup {
    public enum Strategy: Sendable {
        case thread
        case reexec(executable: String)
    }

    public static func create(directory: String, hostname: String, strategy: Strategy = .thread) async throws -> SandboxNamespaces {
        switch strategy {
        case .thread:
            let result: Result<SandboxNamespaces, RuntimeSyscallError> = await ContainerLauncher.onDedicatedThread {
                do throws(RuntimeSyscallError) {
                    return .success(try createOnCurrentThread(directory: directory, hostname: hostname))
                } catch {
                    return .failure(error)
                }
            }
            return try result.get()
        case .reexec(let executable):
            let launcher = ContainerLauncher(executable: executable)
            let (pid, reportFD) = try launcher.spawn(["init", "sandbox", directory, hostname, "--report-fd", "3"],
                                                     stdio: .init())
            let text = await ContainerLauncher.onDedicatedThread { ContainerLauncher.readToEnd(reportFD) }
            let code = await ContainerLauncher.onDedicatedThread { ContainerInit.waitForExit(pid) }
            if let failure = InitReport.parse(text).failure { throw failure }
            guard code == 0 else {
                throw ContainerStartError(step: "sandbox", errno: 0, message: "\(executable) exited with status \(code)")
            }
            return SandboxNamespaces(directory: directory)
        }
    }

    /// Does the work on the calling thread and leaves that thread inside the new
    /// namespaces: call it only from a thread that ends afterwards, or from a
    /// process of its own. Undoes everything it did if a step fails.
    public static func createOnCurrentThread(directory: String, hostname: String) throws(RuntimeSyscallError) -> SandboxNamespaces {
        let files = SandboxNamespaces(directory: directory)
        try FileIO.makeDirectories(directory, mode: 0o700)
        var created: [String] = []
        var mounted: [String] = []
        do throws(RuntimeSyscallError) {
            for (_, path) in files.all {
                let fd = try sys("open", path) { open(path, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0o444) }
                close(fd)
                created.append(path)
            }
            try sys("unshare", "net/uts/ipc") {
                labnode_unshare(LABNODE_CLONE_NEWNET | LABNODE_CLONE_NEWUTS | LABNODE_CLONE_NEWIPC)
            }
            try sys("sethostname", hostname) { sethostname(hostname, hostname.utf8.count) }
            try sys("loopback up") { labnode_loopback_up() }
            for (kind, path) in files.all {
                // thread-self, not self: namespaces are per thread, and this
                // thread is the only one that moved.
                try sys("mount", "bind ns/\(kind) on \(path)") {
                    mount("/proc/thread-self/ns/" + kind, path, nil, UInt(MS_BIND), nil)
                }
                mounted.append(path)
            }
            return files
        } catch {
            for path in mounted { _ = umount2(path, Int32(MNT_DETACH)) }
            for path in created { _ = unlink(path) }
            throw error
        }
    }

    /// Unmounts and removes the namespace files and the directory. Missing
    /// pieces are fine (destroy is idempotent); every piece is attempted and the
    /// first unexpected error is thrown. The namespaces themselves end when the
    /// last process in them exits.
    public static func destroy(directory: String) throws(RuntimeSyscallError) {
        var firstError: RuntimeSyscallError?
        for (_, path) in SandboxNamespaces(directory: directory).all {
            // EINVAL: not a mount point (already unmounted).
            if umount2(path, Int32(MNT_DETACH)) != 0 && errno != EINVAL && errno != ENOENT {
                firstError = firstError ?? RuntimeSyscallError(call: "umount2", subject: path, errno: errno)
                continue
            }
            if unlink(path) != 0 && errno != ENOENT {
                firstError = firstError ?? RuntimeSyscallError(call: "unlink", subject: path, errno: errno)
            }
        }
        if rmdir(directory) != 0 && errno != ENOENT {
            firstError = firstError ?? RuntimeSyscallError(call: "rmdir", subject: directory, errno: errno)
        }
        if let firstError { throw firstError }
    }

    /// Entry point of `labnode init sandbox`: creates the sandbox in this fresh
    /// process and reports a failure on `reportFD` (or stderr) as the container
    /// init does.
    public static func runInit(directory: String, hostname: String, reportFD: Int32?) -> Int32 {
        do {
            _ = try createOnCurrentThread(directory: directory, hostname: hostname)
            return 0
        } catch {
            let line = InitReport.failureLine(step: "sandbox", errno: error.errno, message: error.detail)
            Reporter(fd: reportFD ?? 2).send(line)
            return 1
        }
    }
}
