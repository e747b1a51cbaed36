import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starting, finding and stopping the background labnode process.
///
/// `labnode up` re-executes its own binary with `--foreground --progress-fd 3`: the child writes
/// one line per component on fd 3 as each becomes ready and closes it when the cluster is up, so
/// the parent can print progress without polling, then return.
public enum Daemon {
    /// glibc's POSIX_SPAWN_SETSID (spawn.h); Swift's Glibc module leaves the GNU-only flags out.
    static let posixSpawnSetsid: Int32 = 0x80

    /// The fd the child writes progress lines to.
    public static let progressFD: Int32 = 3

    /// Spawns `executable arguments` detached from the terminal, stdout/stderr appended to `logPath`.
    /// Returns the child's pid and the read end of its progress pipe.
    public static func spawn(executable: String, arguments: [String], logPath: String) throws -> (pid: pid_t, progress: FileHandle) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ClusterError.daemon("pipe() failed: \(String(cString: strerror(errno)))") }
        let readEnd = fds[0]
        let writeEnd = fds[1]
        defer { close(writeEnd) }
        // Neither end may leak into the child: only the dup on fd 3 must hold the pipe open there,
        // or closing fd 3 would not give the parent its end-of-file.
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)

        let logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard logFD >= 0 else {
            close(readEnd)
            throw ClusterError.daemon("cannot open log file \(logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        posix_spawn_file_actions_adddup2(&actions, writeEnd, progressFD)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // A new session: the daemon survives the terminal that started it. A clean signal mask and
        // default dispositions: a parent that blocks SIGTERM (test runners do) must not make the
        // daemon deaf to `labnode down`.
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(Self.posixSpawnSetsid | Int32(POSIX_SPAWN_SETSIGMASK) | Int32(POSIX_SPAWN_SETSIGDEF)))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, environ)
        guard rc == 0 else {
            close(readEnd)
            throw ClusterError.daemon("posix_spawn(\(executable)) failed: \(String(cString: strerror(rc)))")
        }
        return (pid, FileHandle(fileDescriptor: readEnd, closeOnDealloc: true))
    }

    /// The pid in the pid file, if that process is alive and is labnode.
    public static func runningPID(pidPath: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: pidPath, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0 else { return nil }
        guard kill(pid, 0) == 0 || errno == EPERM else { return nil }
        // A recycled pid belonging to another program is not ours.
        if let cmd = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) {
            let arguments = cmd.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if !isDaemon(commandLine: arguments) { return nil }
        }
        return pid
    }

    /// Whether a command line is a labnode daemon's: a binary whose path names labnode, or a
    /// copy under another name started as `<binary> up`, as `labnode up` starts the daemon
    /// (checking the name alone, `down` never stopped a renamed copy).
    static func isDaemon(commandLine arguments: [String]) -> Bool {
        guard let argv0 = arguments.first else { return false }
        return argv0.contains("labnode") || (arguments.count > 1 && arguments[1] == "up")
    }

    /// Lets SIGTERM and SIGINT through, whatever mask this process inherited.
    public static func unblockTerminationSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    public static func writePIDFile(_ path: String) throws {
        try "\(getpid())\n".write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Sends SIGTERM and waits up to `timeout` seconds for the process to exit; then SIGKILL.
    /// Returns true if it exited within the graceful period.
    @discardableResult
    public static func stop(pid: pid_t, timeout: Double) -> Bool {
        guard kill(pid, SIGTERM) == 0 else { return errno == ESRCH }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !isAlive(pid) { return true }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        for _ in 0..<100 where isAlive(pid) { usleep(20_000) }
        return false
    }

    /// Alive and not a zombie we (or init) have yet to reap.
    public static func isAlive(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        guard kill(pid, 0) == 0 else { return false }
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = stat.lastIndex(of: ")") {
            let state = stat[stat.index(close, offsetBy: 2)...].prefix(1)
            if state == "Z" { return false }
        }
        return true
    }
}
