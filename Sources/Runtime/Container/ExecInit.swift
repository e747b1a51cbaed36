import CShims
import Foundation
import Glibc

/// A process to start inside a running container (`kubectl exec`, exec probes).
public struct ExecSpec: Codable, Equatable, Sendable {
    /// The container's PID 1 as numbered in labnode's PID namespace; its namespaces are joined.
    public var target: Int32
    /// The command with the container's environment, user, capabilities and seccomp mode, as
    /// the container itself was started (the kubelet execs with the container's settings).
    public var process: ContainerSpec.Process
    /// The container's cgroups, joined first so the command is charged and limited with it.
    public var cgroupPaths: [String]
    /// stdin is a terminal: the command starts a session with it as its controlling terminal.
    public var tty: Bool

    public init(target: Int32, process: ContainerSpec.Process, cgroupPaths: [String], tty: Bool = false) {
        self.target = target
        self.process = process
        self.cgroupPaths = cgroupPaths
        self.tty = tty
    }
}

/// The code `labnode init exec <spec-path> <report-fd>` runs: join a running container and
/// exec a command in it, with the same rules as `ContainerInit` (single-threaded, synchronous,
/// every failure reported as a named step on the report pipe).
///
/// The process that was spawned stays as the command's parent, outside the container's PID
/// namespace: it forwards signals and exits with the command's status, so the daemon waits
/// for it as for any child. The command gets the parent-death signal, so it dies with it.
public enum ExecInit {
    public static func run(specPath: String, reportFD: Int32) -> Never {
        _ = fcntl(reportFD, F_SETFD, FD_CLOEXEC)
        let report = Reporter(fd: reportFD)
        var specPath = specPath
        if specPath == "-" {
            // A standby (`ContainerLauncher.execPiped`): loaded ahead of need, it waits for the
            // spec's path on stdin; end-of-file means it is not needed after all.
            guard let line = ContainerInit.readLine(fd: 0) else { _exit(0) }
            specPath = line
            ContainerInit.detachStdin()
        }
        let spec = ContainerInit.decodeSpec(ExecSpec.self, at: specPath, report: report)
        let threads = ContainerInit.threadCount()
        if threads > 1 {
            report.fail(step: "init", errno: EBUSY, message: "the exec init has \(threads) threads; it must fork while single-threaded")
        }
        // Every namespace file is opened before the first setns: joining the mount namespace
        // changes what /proc/<target> resolves to.
        let kinds: [(String, Int32)] = [("ipc", LABNODE_CLONE_NEWIPC), ("uts", LABNODE_CLONE_NEWUTS),
                                        ("net", LABNODE_CLONE_NEWNET), ("cgroup", LABNODE_CLONE_NEWCGROUP),
                                        ("pid", LABNODE_CLONE_NEWPID), ("mnt", LABNODE_CLONE_NEWNS)]
        var descriptors: [(String, Int32, Int32)] = []
        for (name, flag) in kinds {
            let path = "/proc/\(spec.target)/ns/\(name)"
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                // The container stopped meanwhile (ENOENT or ESRCH).
                report.fail(step: "open-\(name)", errno: errno, message: "\(path): the container is not running")
            }
            descriptors.append((name, flag, fd))
        }
        for path in spec.cgroupPaths {
            do {
                try FileIO.write("0", to: path + "/cgroup.procs")
            } catch {
                report.fail(step: "cgroup", errno: error.errno, message: error.detail)
            }
        }
        for (name, flag, fd) in descriptors {
            // The same namespace as ours (e.g. a host-network pod) is fine to join again.
            if labnode_setns(fd, flag) != 0 {
                report.fail(step: "setns-\(name)", errno: errno, message: "/proc/\(spec.target)/ns/\(name)")
            }
            close(fd)
        }
        // Joining a PID namespace applies to children: fork so the command lives in it.
        let child = fork()
        if child < 0 { report.fail(step: "fork", errno: errno, message: "fork") }
        if child == 0 {
            if spec.tty {
                // A session of its own with the terminal as its controlling tty: job control and ^C.
                if setsid() < 0 || labnode_set_controlling_tty(0) != 0 {
                    report.fail(step: "tty", errno: errno, message: "setsid/TIOCSCTTY")
                }
            }
            let container = ContainerSpec(id: "exec", rootfs: .directory("/"), process: spec.process)
            ContainerSetup(spec: container, report: report).execInJoinedContainer()
        }
        report.send("\(InitReport.pidPrefix)\(child)\n")
        close(reportFD)
        _ = labnode_forward_signals(child)
        _exit(ContainerInit.waitForExit(child))
    }
}
