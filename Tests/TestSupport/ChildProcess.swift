import CShims
import Foundation

/// Starting a child process from a test: posix_spawn rather than Foundation's Process, because the
/// test runner blocks SIGCHLD and SIGTERM and Process then never notices its child exit. The child
/// gets a clean signal mask and default handlers; its output goes to files (a daemon inheriting a
/// pipe would hang the reader). Callers wait with `waitpid` in the style they need.
public enum ChildProcess {
    public struct SpawnError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `argv[0]` (a path) with stdin from `stdinPath` (nil: /dev/null) and stdout/stderr
    /// written to the given files; `env` entries are added to this process's environment.
    public static func spawn(_ argv: [String], env: [String: String] = [:], stdinPath: String? = nil,
                             outPath: String, errPath: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // SwiftNIO's sockets are not close-on-exec: without this a child (kubectl port-forward, a
        // holder left running) keeps a listener of a test running beside it, which then cannot close it.
        _ = labnode_spawn_actions_closefrom(&actions, 3)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        let cargv = argv.map { strdup($0) } + [nil]
        defer {
            envp.forEach { free($0) }
            cargv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv.first ?? "", &actions, &attr, cargv, envp)
        guard rc == 0 else { throw SpawnError(description: "posix_spawn \(argv): \(String(cString: strerror(rc)))") }
        return pid
    }

    /// The exit code from a waitpid status, 128+signal for a killed child (WIFEXITED and
    /// WEXITSTATUS spelled out: the macros are not imported into Swift).
    public static func exitCode(_ status: Int32) -> Int32 {
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}
