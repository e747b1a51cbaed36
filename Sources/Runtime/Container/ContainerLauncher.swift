import CShims
import Foundation
import Glibc

/// Where a container is in its life, as the launcher sees it.
public enum ContainerState: Equatable, Sendable {
    /// `pid` is the shim, the process to waitpid() and signal; `hostPID1` is the
    /// container's PID 1 as numbered in labnode's PID namespace (for nsenter,
    /// /proc/<pid>/ns/...).
    case running(pid: Int32, hostPID1: Int32)
    /// The exit code of PID 1, 128 + signal number if it was killed.
    case exited(code: Int32)
}

/// Starts containers by re-executing labnode as `init container` (daemon side).
///
/// The daemon is multi-threaded, so it never forks and runs Swift in the child:
/// posix_spawn starts a fresh labnode in a new session with default signal
/// dispositions, an empty signal mask and exactly four descriptors (stdin,
/// stdout, stderr and the report pipe as 3). The blocking parts (reading the
/// report pipe, waiting for exit) run on a dedicated thread each, never on
/// Swift's cooperative pool.
public struct ContainerLauncher: Sendable {
    /// The binary that understands `init container`; tests point it at a build product.
    public var executable: String

    public init(executable: String = "/proc/self/exe") {
        self.executable = executable
    }

    /// Descriptors for the container's standard streams (nil means /dev/null).
    /// The launcher duplicates them; the caller keeps and closes its own.
    public struct Stdio: Sendable {
        public var stdin: Int32?
        public var stdout: Int32?
        public var stderr: Int32?

        public init(stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil) {
            self.stdin = stdin
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Writes `spec` to `specPath`, starts the init and waits until the
    /// container's command has been exec'd (`.running`) or a step failed
    /// (throws `ContainerStartError`; nothing is left running then).
    public func start(_ spec: ContainerSpec, specPath: String, stdio: Stdio = Stdio()) async throws -> ContainerState {
        var spec = spec
        let capabilities: Set<Capability>
        do {
            // Spelling mistakes are caught here rather than in the child.
            capabilities = try spec.process.capabilities.resolve(lastCap: try ContainerSetup.lastCapability())
        } catch let error as CapabilityError {
            throw ContainerStartError(step: "capabilities", errno: EINVAL, message: error.description)
        } catch let error as RuntimeSyscallError {
            throw ContainerStartError(step: "capabilities", errno: error.errno, message: error.description)
        }
        if spec.process.seccomp == .runtimeDefault && spec.process.seccompProgram == nil {
            do {
                spec.process.seccompProgram = try SeccompProgram.runtimeDefault(capabilities: capabilities)
            } catch {
                throw ContainerStartError(step: "seccomp", errno: error.errno, message: error.description)
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(spec)
        do {
            try FileIO.write(String(decoding: data, as: UTF8.self), to: specPath, create: true)
        } catch {
            throw ContainerStartError(step: "spec", errno: error.errno, message: error.description)
        }
        let (pid, reportFD) = try spawn(["init", "container", specPath, "3"], stdio: stdio)
        let text = await Self.onDedicatedThread { Self.readToEnd(reportFD) }
        let outcome = InitReport.parse(text)
        if let failure = outcome.failure {
            _ = await Self.onDedicatedThread { ContainerInit.waitForExit(pid) }
            throw failure
        }
        guard let hostPID1 = outcome.pid else {
            let code = await Self.onDedicatedThread { ContainerInit.waitForExit(pid) }
            throw ContainerStartError(step: "init", errno: 0,
                                      message: "\(executable) exited with status \(code) before reporting")
        }
        return .running(pid: pid, hostPID1: hostPID1)
    }

    /// Waits for the shim started by `start` and returns `.exited(code)`.
    /// Only the process that started the container can wait for it.
    public func wait(pid: Int32) async -> ContainerState {
        .exited(code: await Self.onDedicatedThread { ContainerInit.waitForExit(pid) })
    }

    /// Starts `executable` with `arguments` and the report pipe as descriptor 3;
    /// returns the pid and the read end of the pipe.
    func spawn(_ arguments: [String], stdio: Stdio) throws -> (pid: Int32, reportFD: Int32) {
        var pipeFDs: [Int32] = [-1, -1]
        guard labnode_pipe_cloexec(&pipeFDs) == 0 else {
            throw ContainerStartError(step: "spawn", errno: errno, message: "pipe2")
        }
        var toClose: [Int32] = [pipeFDs[1]]
        defer { for fd in toClose { close(fd) } }
        var sources: [Int32] = []
        do {
            for given in [stdio.stdin, stdio.stdout, stdio.stderr] {
                let fd = try given ?? sys("open", "/dev/null") { open("/dev/null", O_RDWR | O_CLOEXEC) }
                if given == nil { toClose.append(fd) }
                sources.append(fd)
            }
            sources.append(pipeFDs[1])
            // Move every source above the target numbers so that no dup2 in the
            // child overwrites a source it still needs; CLOEXEC keeps these
            // copies out of processes other threads spawn meanwhile.
            sources = try sources.map { fd in
                let high = try sys("fcntl", "F_DUPFD_CLOEXEC") { fcntl(fd, F_DUPFD_CLOEXEC, Int32(10)) }
                toClose.append(high)
                return high
            }
        } catch let error as RuntimeSyscallError {
            close(pipeFDs[0])
            throw ContainerStartError(step: "spawn", errno: error.errno, message: error.description)
        }
        let pid = withCStringArray([executable] + arguments) { argv in
            withCStringArray([]) { envp in
                sources.withUnsafeBufferPointer { labnode_spawn(executable, argv, envp, $0.baseAddress, Int32($0.count)) }
            }
        }
        if pid < 0 {
            let code = errno
            close(pipeFDs[0])
            throw ContainerStartError(step: "spawn", errno: code, message: "posix_spawn \(executable): \(Errno.text(code))")
        }
        return (pid, pipeFDs[0])
    }

    /// Reads `fd` until end-of-file and closes it.
    static func readToEnd(_ fd: Int32) -> String {
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count > 0 {
                bytes.append(contentsOf: chunk[0..<count])
            } else if count == 0 || errno != EINTR {
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    /// Runs a blocking call on a thread of its own so it never occupies one of
    /// Swift's cooperative threads (there are only as many as cores).
    static func onDedicatedThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }
}
