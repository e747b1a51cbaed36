import CCap
import CShims
import Foundation
import Glibc

/// The code `labnode init container <spec-path> <report-fd>` runs.
///
/// It must run in a fresh process started by `ContainerLauncher`, while that
/// process has a single thread: it forks, and after fork(2) only the calling
/// thread exists in the child, so any lock another thread held (malloc, the
/// Swift runtime's metadata caches) would stay locked forever. Everything here
/// is synchronous; no Swift concurrency, no Dispatch, no Foundation threading.
///
/// Two processes result:
/// - the *shim*, the process the launcher spawned. It stays in labnode's PID
///   namespace, forwards SIGTERM/SIGINT/... to the container's PID 1, waits for
///   it and exits with its status (128+signal if it was killed), so the daemon
///   can waitpid() the shim as if it were the container. Killing the shim with
///   SIGKILL kills the container: PID 1 has PR_SET_PDEATHSIG=SIGKILL.
/// - *PID 1* of a new PID namespace, which builds the container around itself
///   and finally exec(2)s the image's command, so the command is PID 1 and
///   reaps the container's orphans. The shim is not a child subreaper: when
///   PID 1 exits the kernel kills and reaps the rest of the namespace, so
///   nothing is ever reparented to the shim.
public enum ContainerInit {
    /// Runs the shim and never returns.
    public static func run(specPath: String, reportFD: Int32) -> Never {
        // The launcher passes the pipe without close-on-exec; the child's copy
        // must close when the entrypoint is exec'd, which is how the launcher
        // learns that the start succeeded.
        _ = fcntl(reportFD, F_SETFD, FD_CLOEXEC)
        let report = Reporter(fd: reportFD)
        var specPath = specPath
        if specPath == "-" {
            // A standby init (see `ContainerLauncher`): started ahead of need, it warms the
            // decoder, then waits for the spec's path on stdin. End-of-file means it is not
            // needed after all.
            _ = try? JSONDecoder().decode(ContainerSpec.self, from: Data(standbyWarmUp.utf8))
            guard let line = readLine(fd: 0) else { _exit(0) }
            if line.hasPrefix(earlyCgroupsPrefix) {
                runEarly(cgroups: line.split(separator: "\t").dropFirst().map(String.init), report: report, reportFD: reportFD)
            }
            specPath = line
            detachStdin()
        }

        let spec = decodeSpec(ContainerSpec.self, at: specPath, report: report)
        let child = forkIntoNewPIDNamespace(report: report)
        if child == 0 {
            ContainerSetup(spec: spec, report: report).run()
        }

        report.send("\(InitReport.pidPrefix)\(child)\n")
        close(reportFD)
        if spec.detach {
            // The daemon adopts PID 1 (it is a child subreaper) and waits for it.
            _exit(0)
        }
        _ = labnode_forward_signals(child)
        let code = waitForExit(child)
        if let path = spec.exitStatusPath {
            try? FileIO.write("\(code)\n", to: path, create: true)
        }
        _exit(code)
    }

    /// The first line of a standby's stdin that starts a container in two steps.
    public static let earlyCgroupsPrefix = "cgroups\t"

    /// The two-step start (`ContainerLauncher.startEarly`): fork PID 1 and have it join the
    /// container's cgroups now, while the agent is still making the pod's sandbox, because
    /// moving a process into a cgroup v1 hierarchy waits for an RCU grace period (≈ 15 ms
    /// here) that would otherwise sit on the start's critical path. PID 1 then reads the spec
    /// path from stdin and carries on; the shim reports PID 1's pid and exits (the spec
    /// must be `detach`).
    static func runEarly(cgroups: [String], report: Reporter, reportFD: Int32) -> Never {
        let child = forkIntoNewPIDNamespace(report: report)
        if child == 0 {
            for path in cgroups {
                do {
                    try FileIO.write("0", to: path + "/cgroup.procs")
                } catch {
                    report.fail(step: "cgroup", errno: error.errno, message: error.detail)
                }
            }
            // End-of-file: the agent no longer needs this container.
            guard let specPath = readLine(fd: 0) else { _exit(0) }
            detachStdin()
            var spec = decodeSpec(ContainerSpec.self, at: specPath, report: report)
            spec.cgroupPaths = []
            spec.detach = true
            ContainerSetup(spec: spec, report: report).run()
        }
        report.send("\(InitReport.pidPrefix)\(child)\n")
        close(reportFD)
        _exit(0)
    }

    /// Reads a JSON spec file, or reports the failure and exits.
    static func decodeSpec<T: Decodable>(_ type: T.Type, at path: String, report: Reporter) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(try FileIO.readAll(path)))
        } catch let error as RuntimeSyscallError {
            report.fail(step: "spec", errno: error.errno, message: error.detail)
        } catch {
            report.fail(step: "spec", errno: EINVAL, message: "\(path): \(error)")
        }
    }

    /// Checks that this process is still single-threaded (fork keeps only the calling thread),
    /// then forks the first process of a new PID namespace; the caller stays outside it.
    static func forkIntoNewPIDNamespace(report: Reporter) -> pid_t {
        let threads = threadCount()
        if threads > 1 {
            report.fail(step: "init", errno: EBUSY,
                        message: "the init has \(threads) threads; it must fork while single-threaded")
        }
        if labnode_unshare(LABNODE_CLONE_NEWPID) != 0 {
            report.fail(step: "unshare-pid", errno: errno, message: "unshare(CLONE_NEWPID)")
        }
        let child = fork()
        if child < 0 { report.fail(step: "fork", errno: errno, message: "fork") }
        return child
    }

    /// Replaces stdin (the standby's spec pipe) with /dev/null.
    static func detachStdin() {
        let null = open("/dev/null", O_RDONLY)
        if null >= 0 {
            _ = dup2(null, 0)
            if null != 0 { close(null) }
        }
    }

    /// A minimal spec, decoded once by a standby init so that the real decode finds the
    /// runtime's type metadata and conformance caches filled.
    static let standbyWarmUp = #"{"id":"","rootfs":{"directory":{"_0":"/"}},"readonlyRootfs":false,"namespaces":{"network":{"new":{}},"uts":{"new":{}},"ipc":{"new":{}},"newCgroup":true},"mounts":[],"process":{"args":["true"],"env":[],"cwd":"/","user":{"uid":0,"gid":0,"additionalGids":[]},"capabilities":{"add":[],"drop":[],"privileged":false},"noNewPrivileges":false,"seccomp":"RuntimeDefault"},"maskedPaths":[],"readonlyPaths":[],"output":{"inherit":{}},"cgroupPaths":[]}"#

    /// Reads one line (without its newline) from `fd`, byte by byte so nothing past it is
    /// consumed; nil at end-of-file before any byte.
    static func readLine(fd: Int32) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n == 1 {
                if byte == UInt8(ascii: "\n") { break }
                bytes.append(byte)
            } else if n == 0 {
                if bytes.isEmpty { return nil }
                break
            } else if errno != EINTR {
                return nil
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Waits for `pid` and converts its status to a shell-style exit code.
    static func waitForExit(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return 127 }
        }
        return exitCode(fromWaitStatus: status)
    }

    /// WEXITSTATUS, or 128 + WTERMSIG for a killed process (the C macros are not
    /// importable into Swift).
    public static func exitCode(fromWaitStatus status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Threads in this process, from /proc/self/task.
    public static func threadCount() -> Int {
        guard let dir = opendir("/proc/self/task") else { return 1 }
        defer { closedir(dir) }
        var count = 0
        while let entry = readdir(dir) {
            let isDot = withUnsafeBytes(of: entry.pointee.d_name) { $0.first == UInt8(ascii: ".") }
            if !isDot { count += 1 }
        }
        return count
    }
}

/// Writes report lines; a failure ends the process with status 127.
struct Reporter {
    let fd: Int32

    func send(_ line: String) {
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func fail(step: String, errno: Int32, message: String) -> Never {
        send(InitReport.failureLine(step: step, errno: errno, message: message))
        _exit(127)
    }
}

/// A failed setup step, carried up to the one place that reports it.
struct StepFailure: Error {
    var step: String
    var errno: Int32
    var message: String
}

extension RuntimeSyscallError {
    /// The description without the errno name, which the report line carries separately.
    var detail: String {
        let target = subject.isEmpty ? "" : " \(subject)"
        return "\(call)\(target): \(Errno.text(errno))"
    }
}

/// Runs `body` as the named step, turning a system call failure into a StepFailure.
@discardableResult
func step<T>(_ name: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as RuntimeSyscallError {
        throw StepFailure(step: name, errno: error.errno, message: error.detail)
    } catch let error as CapabilityError {
        throw StepFailure(step: name, errno: EINVAL, message: error.description)
    }
}

/// PID 1's work: namespaces, filesystem, identity, privileges, exec.
struct ContainerSetup {
    let spec: ContainerSpec
    let report: Reporter

    var root: String { spec.rootfs.path }

    func run() -> Never {
        do {
            try setUp()
        } catch let failure as StepFailure {
            report.fail(step: failure.step, errno: failure.errno, message: failure.message)
        } catch {
            report.fail(step: "init", errno: EINVAL, message: "\(error)")
        }
        report.fail(step: "init", errno: EINVAL, message: "setup returned without exec")
    }

    private func setUp() throws {
        // If the shim dies (e.g. SIGKILL from the daemon), the container goes too; a
        // detached container outlives its shim by design.
        if !spec.detach {
            try step("pdeathsig") { try sys("prctl", "PR_SET_PDEATHSIG") { labnode_set_pdeathsig(SIGKILL) } }
        }
        // Joined before anything is allocated, so all of the container's memory
        // is charged to its cgroup; "0" means the writing process.
        for path in spec.cgroupPaths {
            try step("cgroup") { try FileIO.write("0", to: path + "/cgroup.procs") }
        }
        try joinAndCreateNamespaces()
        try redirectOutput()
        try takeTerminal()
        try buildFilesystem()
        try switchRoot()
        try restrictPaths()
        try setHostname()
        try dropPrivilegesAndExec()
    }

    private func joinAndCreateNamespaces() throws {
        let kinds: [(ContainerSpec.Namespaces.Mode, Int32, String)] = [
            (spec.namespaces.network, LABNODE_CLONE_NEWNET, "net"),
            (spec.namespaces.uts, LABNODE_CLONE_NEWUTS, "uts"),
            (spec.namespaces.ipc, LABNODE_CLONE_NEWIPC, "ipc"),
        ]
        var flags = LABNODE_CLONE_NEWNS
        // After joining the cgroups, so the new cgroup namespace is rooted there.
        if spec.namespaces.newCgroup { flags |= LABNODE_CLONE_NEWCGROUP }
        for (mode, flag, name) in kinds {
            switch mode {
            case .join(let path):
                try step("setns-\(name)") {
                    let fd = try sys("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
                    defer { close(fd) }
                    try sys("setns", path) { labnode_setns(fd, flag) }
                }
            case .new:
                flags |= flag
            case .host:
                break
            }
        }
        try step("unshare") { try sys("unshare", "mount/cgroup/new namespaces") { labnode_unshare(flags) } }
    }

    /// A `tty: true` container: a session of its own with the terminal on stdin as its
    /// controlling tty, so a shell gets job control and ^C reaches the foreground job.
    private func takeTerminal() throws {
        guard spec.process.terminal == true else { return }
        try step("tty") {
            _ = try sys("setsid") { setsid() }
            _ = try sys("ioctl", "TIOCSCTTY") { labnode_set_controlling_tty(0) }
        }
    }

    private func redirectOutput() throws {
        guard case .file(let path) = spec.output else { return }
        try step("log") {
            let fd = try sys("open", path) { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
            defer { close(fd) }
            try sys("dup2", "stdout") { dup2(fd, 1) }
            try sys("dup2", "stderr") { dup2(fd, 2) }
        }
    }

    private func buildFilesystem() throws {
        // Nothing below may propagate back to the host's mount namespace.
        try step("mount-private") {
            try sys("mount", "/ MS_REC|MS_PRIVATE") { mount(nil, "/", nil, UInt(MS_REC | MS_PRIVATE), nil) }
        }
        try step("mount-rootfs") {
            switch spec.rootfs {
            case .overlay(let lower, let upper, let work, let target):
                let options = try RootfsPlan.overlayOptions(lower: lower, upper: upper, work: work)
                try FileIO.makeDirectories(target)
                try sys("mount", "overlay on \(target)") { mount("overlay", target, "overlay", 0, options) }
            case .directory(let path):
                // pivot_root needs the new root to be a mount point.
                try sys("mount", "bind \(path)") { mount(path, path, nil, UInt(MS_BIND | MS_REC), nil) }
            }
        }
        let privileged = spec.process.capabilities.privileged
        for mountStep in RootfsPlan.standardMounts(privileged: privileged) {
            try step("mount-\(mountStep.target)") {
                let target = try SecureJoin.resolve(root: root, path: mountStep.target)
                try FileIO.makeDirectories(target)
                try sys("mount", "\(mountStep.fstype) on \(mountStep.target)") {
                    mount(mountStep.source, target, mountStep.fstype, mountStep.flags, mountStep.data)
                }
            }
        }
        try makeDevices()
        for item in spec.mounts {
            try step("mount-\(item.destination)") { try mountVolume(item) }
        }
    }

    private func makeDevices() throws {
        let oldMask = umask(0)
        defer { umask(oldMask) }
        for device in RootfsPlan.devices {
            try step("device-/dev/\(device.name)") {
                let path = root + "/dev/" + device.name
                let mode = S_IFCHR | 0o666
                if mknod(path, mode, labnode_makedev(device.major, device.minor)) == 0 { return }
                // Without CAP_MKNOD (e.g. a future user namespace) the host's node can be bound instead.
                guard errno == EPERM else { throw RuntimeSyscallError(call: "mknod", subject: path, errno: errno) }
                let fd = try sys("open", path) { open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o666) }
                close(fd)
                try sys("mount", "bind /dev/\(device.name)") { mount("/dev/" + device.name, path, nil, UInt(MS_BIND), nil) }
            }
        }
        for link in RootfsPlan.symlinks {
            try step("symlink-/dev/\(link.name)") {
                let path = root + "/dev/" + link.name
                if symlink(link.target, path) != 0 && errno != EEXIST {
                    throw RuntimeSyscallError(call: "symlink", subject: path, errno: errno)
                }
            }
        }
    }

    private func mountVolume(_ item: ContainerSpec.Mount) throws(RuntimeSyscallError) {
        let target = try SecureJoin.resolve(root: root, path: item.destination)
        switch item.kind {
        case .tmpfs:
            try FileIO.makeDirectories(target)
            let flags = UInt(MS_NOSUID | MS_NODEV) | (item.readOnly ? UInt(MS_RDONLY) : 0)
            try sys("mount", "tmpfs on \(item.destination)") { mount("tmpfs", target, "tmpfs", flags, item.data ?? "") }
        case .bind:
            if FileIO.isDirectory(item.source) {
                try FileIO.makeDirectories(target)
            } else {
                let parent = String(target[..<(target.lastIndex(of: "/") ?? target.startIndex)])
                try FileIO.makeDirectories(parent)
                if !FileIO.exists(target) {
                    let fd = try sys("open", target) { open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644) }
                    close(fd)
                }
            }
            try sys("mount", "bind \(item.source) on \(item.destination)") {
                mount(item.source, target, nil, UInt(MS_BIND | MS_REC), nil)
            }
            if item.readOnly { try remountReadOnly(target) }
        }
    }

    /// A bind mount's read-only flag is per mount point and needs a remount; the
    /// flags the mount already has (nosuid, nodev, noexec) must be repeated or
    /// the remount would clear them.
    private func remountReadOnly(_ path: String) throws(RuntimeSyscallError) {
        var info = statvfs()
        try sys("statvfs", path) { statvfs(path, &info) }
        let flags = UInt(MS_BIND | MS_REMOUNT | MS_RDONLY) | labnode_mount_flags_from_statvfs(info.f_flag)
        try sys("mount", "remount read-only \(path)") { mount(nil, path, nil, flags, nil) }
    }

    private func switchRoot() throws {
        try step("pivot_root") {
            try sys("chdir", root) { chdir(root) }
            // pivot_root(".", ".") stacks the old root on top of the new one;
            // detaching it leaves only the container's tree, with no directory
            // needed inside the image to park the old root in.
            try sys("pivot_root", root) { labnode_pivot_root(".", ".") }
            try sys("umount2", "old root") { umount2(".", Int32(MNT_DETACH)) }
            try sys("chdir", "/") { chdir("/") }
        }
    }

    private func restrictPaths() throws {
        for path in spec.maskedPaths {
            try step("mask-\(path)") {
                var info = stat()
                guard stat(path, &info) == 0 else {
                    if errno == ENOENT { return }
                    throw RuntimeSyscallError(call: "stat", subject: path, errno: errno)
                }
                if (info.st_mode & S_IFMT) == S_IFDIR {
                    try sys("mount", "tmpfs on \(path)") { mount("tmpfs", path, "tmpfs", UInt(MS_RDONLY), nil) }
                } else {
                    try sys("mount", "/dev/null on \(path)") { mount("/dev/null", path, nil, UInt(MS_BIND), nil) }
                }
            }
        }
        for path in spec.readonlyPaths {
            try step("readonly-\(path)") {
                guard FileIO.exists(path) else { return }
                try sys("mount", "bind \(path)") { mount(path, path, nil, UInt(MS_BIND | MS_REC), nil) }
                try remountReadOnly(path)
            }
        }
        if spec.readonlyRootfs {
            try step("readonly-rootfs") { try remountReadOnly("/") }
        }
    }

    private func setHostname() throws {
        guard spec.namespaces.uts == .new, let name = spec.hostname else { return }
        try step("sethostname") { try sys("sethostname", name) { sethostname(name, name.utf8.count) } }
    }

    /// For `ExecInit`: this process already joined the container's namespaces and cgroups;
    /// drop privileges the container's way and exec the command.
    func execInJoinedContainer() -> Never {
        do {
            try step("pdeathsig") { try sys("prctl", "PR_SET_PDEATHSIG") { labnode_set_pdeathsig(SIGKILL) } }
            try dropPrivilegesAndExec()
        } catch let failure as StepFailure {
            report.fail(step: failure.step, errno: failure.errno, message: failure.message)
        } catch {
            report.fail(step: "init", errno: EINVAL, message: "\(error)")
        }
        report.fail(step: "init", errno: EINVAL, message: "exec returned")
    }

    private func dropPrivilegesAndExec() throws {
        let process = spec.process
        let lastCap = try step("capabilities") { try Self.lastCapability() }
        let capabilities = try step("capabilities") { try process.capabilities.resolve(lastCap: lastCap) }
        let filter: Data? = try step("seccomp") {
            guard process.seccomp == .runtimeDefault else { return nil }
            if let program = process.seccompProgram { return program }
            let rules = SeccompProfile.runtimeDefault(capabilities: capabilities, kernel: SeccompProfile.kernelVersion())
            return try SeccompFilter(rules: rules, setNoNewPrivileges: false).compiledProgram()
        }
        // Without no_new_privs the kernel only accepts a filter from a process
        // holding CAP_SYS_ADMIN, so it goes in now (runc does the same). The
        // deny-list contains nothing the remaining steps call.
        if let filter, !process.noNewPrivileges {
            try step("seccomp") { try SeccompProgram.install(filter) }
        }

        try step("capabilities-bounding") {
            for number in 0...lastCap where !capabilities.contains(Capability(rawValue: number)) {
                try sys("cap_drop_bound", Capability(rawValue: number).name) { cap_drop_bound(cap_value_t(number)) }
            }
        }
        // The working directory may be reachable only for root (root_squash) or
        // only for the target user: try before the identity switch, then after.
        let inDirectory = chdir(process.cwd) == 0
        try setUser(process.user)
        try step("capabilities") { try Self.setProcessCapabilities(capabilities) }
        if !inDirectory {
            try step("chdir") { try sys("chdir", process.cwd) { chdir(process.cwd) } }
        }
        umask(0o022)
        // setuid() to another user clears the parent-death signal.
        if !spec.detach {
            try step("pdeathsig") { try sys("prctl", "PR_SET_PDEATHSIG") { labnode_set_pdeathsig(SIGKILL) } }
        }
        if process.noNewPrivileges {
            try step("no_new_privs") { try sys("prctl", "PR_SET_NO_NEW_PRIVS") { labnode_set_no_new_privs() } }
        }

        var env = process.env
        if ExecutableLookup.value(of: "HOME", in: env) == nil {
            env.append("HOME=" + Self.homeDirectory(uid: process.user.uid))
        }
        guard let command = process.args.first else {
            throw StepFailure(step: "exec", errno: EINVAL, message: "no command")
        }
        guard let executable = ExecutableLookup.find(command, path: ExecutableLookup.value(of: "PATH", in: env)) else {
            throw StepFailure(step: "exec", errno: ENOENT, message: "executable file not found in $PATH: \"\(command)\"")
        }
        if labnode_cloexec_from(3) != 0 {
            // close_range's CLOEXEC mode needs Linux 5.11; mark them one by one.
            for fd in Int32(3)..<Int32(1024) { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        if let filter, process.noNewPrivileges {
            try step("seccomp") { try SeccompProgram.install(filter) }
        }
        withCStringArray(process.args) { argv in
            withCStringArray(env) { envp in
                _ = execve(executable, argv, envp)
            }
        }
        throw StepFailure(step: "exec", errno: errno, message: "\(executable): \(Errno.text(errno))")
    }

    /// setgroups, setgid, setuid. PR_SET_KEEPCAPS keeps the permitted set across
    /// the switch to a non-root uid so the capabilities can then be set; it is
    /// cleared again right after.
    private func setUser(_ user: ContainerSpec.User) throws {
        let keepCaps = user.uid != 0
        if keepCaps { try step("keepcaps") { try sys("prctl", "PR_SET_KEEPCAPS") { labnode_set_keepcaps(1) } } }
        try step("setgroups") {
            var groups = user.additionalGids.map { gid_t($0) }
            try sys("setgroups", "\(user.additionalGids)") { groups.withUnsafeMutableBufferPointer { setgroups($0.count, $0.baseAddress) } }
        }
        try step("setgid") { try sys("setgid", "\(user.gid)") { setgid(gid_t(user.gid)) } }
        try step("setuid") { try sys("setuid", "\(user.uid)") { setuid(uid_t(user.uid)) } }
        if keepCaps { try step("keepcaps") { try sys("prctl", "PR_SET_KEEPCAPS") { labnode_set_keepcaps(0) } } }
    }

    /// Effective and permitted = the set; inheritable and ambient empty, so a
    /// non-root user keeps no capabilities across exec (containerd's behaviour
    /// since CVE-2022-24769), while root gets the set through the bounding set.
    static func setProcessCapabilities(_ capabilities: Set<Capability>) throws(RuntimeSyscallError) {
        guard let state = cap_init() else { throw RuntimeSyscallError(call: "cap_init", errno: errno) }
        defer { cap_free(UnsafeMutableRawPointer(state)) }
        var values = capabilities.sorted().map { cap_value_t($0.rawValue) }
        if !values.isEmpty {
            for flag in [CAP_EFFECTIVE, CAP_PERMITTED] {
                try sys("cap_set_flag") { values.withUnsafeMutableBufferPointer { cap_set_flag(state, flag, Int32($0.count), $0.baseAddress, CAP_SET) } }
            }
        }
        try sys("cap_set_proc") { cap_set_proc(state) }
        // EINVAL: a kernel without ambient capabilities (< 4.3) has none to clear.
        if cap_reset_ambient() != 0 && errno != EINVAL {
            throw RuntimeSyscallError(call: "cap_reset_ambient", errno: errno)
        }
    }

    static func lastCapability() throws(RuntimeSyscallError) -> Int32 {
        let text = try FileIO.readString("/proc/sys/kernel/cap_last_cap")
        guard let value = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw RuntimeSyscallError(call: "parse", subject: "/proc/sys/kernel/cap_last_cap", errno: EINVAL)
        }
        return value
    }

    /// HOME from the container's /etc/passwd, "/" when the uid has no entry.
    static func homeDirectory(uid: UInt32, passwd: String = "/etc/passwd") -> String {
        guard let text = try? FileIO.readString(passwd) else { return "/" }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count >= 6, UInt32(fields[2]) == uid, !fields[5].isEmpty { return String(fields[5]) }
        }
        return "/"
    }
}
