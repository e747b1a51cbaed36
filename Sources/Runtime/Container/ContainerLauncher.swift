import CShims
import Foundation
import Glibc
import Synchronization

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
    /// Inits started ahead of need, for `startLogged`; nil starts each one on demand.
    public let standby: StandbyInits?
    /// One `init exec` started ahead of need, for `execPiped` (`kubectl exec` without a
    /// terminal or stdin): it saves the start of the labnode binary (≈ 20 ms) per exec.
    public let execStandby: StandbyInits?

    public init(executable: String = "/proc/self/exe", standby: Int = 0) {
        self.executable = executable
        self.standby = standby > 0 ? StandbyInits(count: standby) : nil
        self.execStandby = standby > 0 ? StandbyInits(count: 1) : nil
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
        try prepare(spec, specPath: specPath)
        let (pid, reportFD) = try spawn(["init", "container", specPath, "3"], stdio: stdio)
        return try await awaitReport(pid: pid, reportFD: reportFD)
    }

    /// Starts a container whose stdout and stderr are pipes, and returns their read ends
    /// (the caller owns them: typically a `ContainerLogWriter`). Uses a standby init when one
    /// is ready, which saves the start of the labnode binary (≈ 10-17 ms) on this path.
    ///
    /// With `early` (from `startEarly`), that init's PID 1 already sits in the container's
    /// cgroups; `spec.detach` must then be true.
    public func startLogged(_ spec: ContainerSpec, specPath: String,
                            early: EarlyInit? = nil) async throws -> (state: ContainerState, stdout: Int32, stderr: Int32) {
        do {
            try prepare(spec, specPath: specPath)
        } catch {
            if let early { await abandon(early) }
            throw error
        }
        let entry: StandbyInits.Entry
        if let early {
            entry = early.entry
        } else {
            entry = try standby?.take() ?? spawnStandby()
        }
        // The next standby loads once this container runs, not while it starts (two cores).
        defer { standby?.refill { try self.spawnStandby() } }
        var line = Array((specPath + "\n").utf8)
        let written = line.withUnsafeMutableBytes { write(entry.specWrite, $0.baseAddress, $0.count) }
        close(entry.specWrite)
        guard written == line.count else {
            close(entry.stdoutRead)
            close(entry.stderrRead)
            close(entry.reportRead)
            _ = kill(entry.pid, SIGKILL)
            _ = await Self.onDedicatedThread { ContainerInit.waitForExit(entry.pid) }
            throw ContainerStartError(step: "spawn", errno: errno, message: "handing the spec to the init")
        }
        do {
            let state = try await awaitReport(pid: entry.pid, reportFD: entry.reportRead)
            return (state, entry.stdoutRead, entry.stderrRead)
        } catch {
            close(entry.stdoutRead)
            close(entry.stderrRead)
            throw error
        }
    }

    /// The agent's ends of an interactive container's stdio (`stdin: true` or `tty: true`).
    public struct InteractiveStdio: Sendable {
        /// Its stdout, or the terminal for a TTY container; the caller reads and closes it.
        public var output: Int32
        /// Its stderr (nil with a terminal, where everything is on `output`).
        public var errors: Int32?
        /// Where its stdin is written (the terminal again for a TTY); nil without stdin.
        public var input: Int32?
        /// The terminal, for window sizes; nil without one. The same descriptor as `input`
        /// when both are set.
        public var terminal: Int32?
    }

    /// Starts a container whose stdin the agent keeps (`kubectl attach`, `kubectl run -it`):
    /// a pipe, or with `tty` a pseudo-terminal that is also its stdout and stderr and its
    /// controlling tty. Such a start needs its own init (standby ones have /dev/null stdin).
    public func startInteractive(_ spec: ContainerSpec, specPath: String, stdin: Bool, tty: Bool) async throws
        -> (state: ContainerState, stdio: InteractiveStdio) {
        var spec = spec
        var childEnds: [Int32] = []
        var ours: InteractiveStdio
        var stdio: Stdio
        func pipePair() throws -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard labnode_pipe_cloexec(&fds) == 0 else { throw ContainerStartError(step: "spawn", errno: errno, message: "pipe2") }
            return (fds[0], fds[1])
        }
        if tty {
            var master: Int32 = -1, slave: Int32 = -1
            guard labnode_open_pty(&master, &slave) == 0 else {
                throw ContainerStartError(step: "tty", errno: errno, message: "opening a pseudo-terminal")
            }
            // Reading and writing close independently, so each gets its own descriptor.
            let writer = fcntl(master, F_DUPFD_CLOEXEC, 0)
            guard writer >= 0 else {
                let e = errno
                close(master)
                close(slave)
                throw ContainerStartError(step: "tty", errno: e, message: "fcntl(F_DUPFD_CLOEXEC)")
            }
            ours = InteractiveStdio(output: master, errors: nil, input: stdin ? writer : nil, terminal: writer)
            childEnds = [slave]
            stdio = Stdio(stdin: slave, stdout: slave, stderr: slave)
            spec.process.terminal = true
        } else {
            let out = try pipePair()
            let err = try pipePair()
            ours = InteractiveStdio(output: out.read, errors: err.read, input: nil, terminal: nil)
            childEnds = [out.write, err.write]
            stdio = Stdio(stdin: nil, stdout: out.write, stderr: err.write)
            if stdin {
                let input = try pipePair()
                childEnds.append(input.read)
                ours.input = input.write
                stdio.stdin = input.read
            }
        }
        do {
            let state = try await start(spec, specPath: specPath, stdio: stdio)
            for fd in childEnds { close(fd) }
            return (state, ours)
        } catch {
            for fd in Set(childEnds + [ours.output] + [ours.errors, ours.input, ours.terminal].compactMap({ $0 })) { close(fd) }
            throw error
        }
    }

    /// Begins a container's start before its spec exists: an init forks PID 1 into
    /// `cgroupPaths` at once (the slow part of a start on cgroup v1) and waits. Finish with
    /// `startLogged(_:specPath:early:)`, or `abandon` it.
    public func startEarly(cgroupPaths: [String]) throws -> EarlyInit {
        let entry = try standby?.take() ?? spawnStandby()
        var line = Array((ContainerInit.earlyCgroupsPrefix + cgroupPaths.joined(separator: "\t") + "\n").utf8)
        let written = line.withUnsafeMutableBytes { write(entry.specWrite, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let e = errno
            for fd in [entry.specWrite, entry.stdoutRead, entry.stderrRead, entry.reportRead] { close(fd) }
            _ = kill(entry.pid, SIGKILL)
            Thread { _ = ContainerInit.waitForExit(entry.pid) }.start()
            throw ContainerStartError(step: "spawn", errno: e, message: "handing the cgroups to the init")
        }
        return EarlyInit(entry: entry)
    }

    /// Lets an early init go unused: its PID 1 reads end-of-file and exits; both are reaped.
    public func abandon(_ early: EarlyInit) async {
        let entry = early.entry
        close(entry.specWrite)
        close(entry.stdoutRead)
        close(entry.stderrRead)
        let text = await Self.onDedicatedThread { Self.readToEnd(entry.reportRead) }
        _ = await Self.onDedicatedThread { ContainerInit.waitForExit(entry.pid) }
        if let pid1 = InitReport.parse(text).pid {
            _ = await Self.onDedicatedThread { ContainerInit.waitForExit(pid1) }
        }
    }

    /// Starts `labnode init container -` (or `init exec -`), which loads and warms up, then
    /// waits for a spec path on its stdin; its stdout and stderr are fresh pipes.
    func spawnStandby(mode: String = "container") throws -> StandbyInits.Entry {
        var spec: [Int32] = [-1, -1], out: [Int32] = [-1, -1], err: [Int32] = [-1, -1]
        guard labnode_pipe_cloexec(&spec) == 0 else { throw ContainerStartError(step: "spawn", errno: errno, message: "pipe2") }
        guard labnode_pipe_cloexec(&out) == 0 else {
            let e = errno
            close(spec[0]); close(spec[1])
            throw ContainerStartError(step: "spawn", errno: e, message: "pipe2")
        }
        guard labnode_pipe_cloexec(&err) == 0 else {
            let e = errno
            for fd in spec + out { close(fd) }
            throw ContainerStartError(step: "spawn", errno: e, message: "pipe2")
        }
        defer {
            close(spec[0])
            close(out[1])
            close(err[1])
        }
        do {
            let (pid, reportFD) = try spawn(["init", mode, "-", "3"],
                                            stdio: Stdio(stdin: spec[0], stdout: out[1], stderr: err[1]))
            return StandbyInits.Entry(pid: pid, specWrite: spec[1], stdoutRead: out[0], stderrRead: err[0], reportRead: reportFD)
        } catch {
            close(spec[1])
            close(out[0])
            close(err[0])
            throw error
        }
    }

    /// Resolves capabilities, compiles the seccomp filter and writes the spec file.
    func prepare(_ spec: ContainerSpec, specPath: String) throws {
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
    }

    /// Reads the init's report: `.running` once the command was exec'd, or the failure.
    func awaitReport(pid: Int32, reportFD: Int32) async throws -> ContainerState {
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

    /// An exec'd command: its init, to wait for (`wait(pid:)` gives the command's exit status),
    /// and the command itself, to kill. Killing the init instead would orphan the command to
    /// this process (a subreaper), leaving a zombie in the container's PID namespace that
    /// keeps the container from ever ending.
    public struct ExecProcess: Sendable {
        public var pid: Int32
        public var command: Int32
    }

    /// Starts `spec.process` inside the running container `spec.target` with stdin /dev/null
    /// and fresh pipes for stdout and stderr (returned; the caller reads and closes them),
    /// on a standby init when one is ready.
    public func execPiped(_ spec: ExecSpec, specPath: String) async throws -> (process: ExecProcess, stdout: Int32, stderr: Int32) {
        try writeExecSpec(spec, specPath: specPath)
        let entry = try execStandby?.take() ?? spawnStandby(mode: "exec")
        defer { execStandby?.refill { try self.spawnStandby(mode: "exec") } }
        var line = Array((specPath + "\n").utf8)
        let written = line.withUnsafeMutableBytes { write(entry.specWrite, $0.baseAddress, $0.count) }
        close(entry.specWrite)
        let text = await Self.onDedicatedThread { Self.readToEnd(entry.reportRead) }
        try? FileManager.default.removeItem(atPath: specPath)
        let report = InitReport.parse(text)
        guard written == line.count, report.failure == nil, let command = report.pid else {
            close(entry.stdoutRead)
            close(entry.stderrRead)
            _ = await Self.onDedicatedThread { ContainerInit.waitForExit(entry.pid) }
            throw report.failure ?? ContainerStartError(step: "spawn", errno: EPIPE, message: "the exec init did not start the command")
        }
        return (ExecProcess(pid: entry.pid, command: command), entry.stdoutRead, entry.stderrRead)
    }

    /// Compiles the seccomp filter into the spec (the init then skips libseccomp) and writes it.
    func writeExecSpec(_ spec: ExecSpec, specPath: String) throws {
        var spec = spec
        if spec.process.seccomp == .runtimeDefault && spec.process.seccompProgram == nil {
            do {
                let capabilities = try spec.process.capabilities.resolve(lastCap: try ContainerSetup.lastCapability())
                spec.process.seccompProgram = try SeccompProgram.runtimeDefault(capabilities: capabilities)
            } catch {
                throw ContainerStartError(step: "seccomp", errno: EINVAL, message: "\(error)")
            }
        }
        do {
            let data = try JSONEncoder().encode(spec)
            try FileIO.write(String(decoding: data, as: UTF8.self), to: specPath, create: true)
        } catch {
            throw ContainerStartError(step: "spec", errno: EIO, message: "writing \(specPath): \(error)")
        }
    }

    /// Starts `spec.process` inside the running container `spec.target` (see `ExecInit`) with
    /// the given stdio, once the command has been exec'd.
    public func exec(_ spec: ExecSpec, specPath: String, stdio: Stdio) async throws -> ExecProcess {
        try writeExecSpec(spec, specPath: specPath)
        let (pid, reportFD) = try spawn(["init", "exec", specPath, "3"], stdio: stdio)
        let text = await Self.onDedicatedThread { Self.readToEnd(reportFD) }
        try? FileManager.default.removeItem(atPath: specPath)
        let report = InitReport.parse(text)
        if let failure = report.failure {
            _ = await Self.onDedicatedThread { ContainerInit.waitForExit(pid) }
            throw failure
        }
        return ExecProcess(pid: pid, command: report.pid ?? pid)
    }

    /// Waits for a container started with `spec.detach`: first for its shim, which exits once
    /// the command runs, then for PID 1, which this process adopted. The caller must be a
    /// child subreaper (`ContainerLauncher.becomeSubreaper()`), or PID 1 goes to the system's
    /// init and this returns 127 at once.
    public func waitDetached(shim: Int32, pid1: Int32) async -> ContainerState {
        .exited(code: await Self.onDedicatedThread {
            _ = ContainerInit.waitForExit(shim)
            return ContainerInit.waitForExit(pid1)
        })
    }

    /// Makes this process the one orphaned descendants are reparented to (the node agent's
    /// detached containers).
    public static func becomeSubreaper() throws(RuntimeSyscallError) {
        try sys("prctl", "PR_SET_CHILD_SUBREAPER") { labnode_set_child_subreaper() }
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

/// An init whose PID 1 waits in the container's cgroups for its spec (`startEarly`).
public struct EarlyInit: Sendable {
    let entry: StandbyInits.Entry
}

/// Inits started ahead of need. Each one has loaded the labnode binary and warmed its decoder
/// and now blocks reading its stdin; the launcher hands it a spec path and it carries on as
/// any init. One is kept ready: starting the binary is most of a container start, and
/// pods are usually created one after another. A burst drains the pool and falls back to
/// starting inits on demand.
public final class StandbyInits: Sendable {
    struct Entry: Sendable {
        var pid: Int32
        var specWrite: Int32
        var stdoutRead: Int32
        var stderrRead: Int32
        var reportRead: Int32
    }

    let count: Int
    let entries = Mutex<[Entry]>([])

    init(count: Int) { self.count = count }

    func take() -> Entry? {
        entries.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    /// Tops the pool up (spawning is cheap for the caller: the new process does its loading
    /// on its own).
    func refill(_ spawn: () throws -> Entry) {
        while entries.withLock({ $0.count }) < count {
            guard let entry = try? spawn() else { return }
            entries.withLock { $0.append(entry) }
        }
    }

    /// Lets every standby init go (end-of-file on its stdin makes it exit) and reaps it.
    public func drain() async {
        let all = entries.withLock { e -> [Entry] in
            defer { e = [] }
            return e
        }
        for entry in all {
            close(entry.specWrite)
            close(entry.stdoutRead)
            close(entry.stderrRead)
            close(entry.reportRead)
            _ = await ContainerLauncher.onDedicatedThread { ContainerInit.waitForExit(entry.pid) }
        }
    }
}
