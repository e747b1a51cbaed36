import ArgumentParser
import Runtime

/// Runs `labnode init ...` before Swift concurrency exists.
///
/// `init container` forks, and must therefore still be single-threaded.
/// Measured here: at the top of an async `main()` the process has 1 thread,
/// but by the time ArgumentParser's async `main` reaches a subcommand's `run()`
/// it has 4 (the global executor's Dispatch workers, started by the first
/// `await`). So the root command must call this first thing:
///
///     static func main() async {
///         InitEntry.runIfRequested()
///         await main(nil)
///     }
///
/// Nothing may run before it that starts threads (logging back-ends, NIO,
/// Dispatch queues, Task {}). As a safety net `ContainerInit` counts
/// /proc/self/task and refuses to fork with more than one thread (step "init").
enum InitEntry {
    /// Parses and runs `init ...` synchronously and exits; returns at once for
    /// any other command line.
    static func runIfRequested(_ arguments: [String] = CommandLine.arguments) {
        guard arguments.count > 1, arguments[1] == "init" else { return }
        // The launcher's exact form is parsed by hand: ArgumentParser's
        // reflection-based parsing costs ~2 ms, on every container start.
        if arguments.count == 5, arguments[2] == "container", let fd = Int32(arguments[4]) {
            ContainerInit.run(specPath: arguments[3], reportFD: fd)
        }
        if arguments.count == 5, arguments[2] == "exec", let fd = Int32(arguments[4]) {
            ExecInit.run(specPath: arguments[3], reportFD: fd)
        }
        do {
            var command = try Init.parseAsRoot(Array(arguments.dropFirst(2)))
            try command.run()
            Init.exit()
        } catch {
            Init.exit(withError: error)
        }
    }
}

/// `labnode init ...`: the hidden entry points labnode re-executes itself into.
/// The container path never returns: it ends in exec(2) or _exit(2), so no
/// atexit handler or buffered output of the runtime runs twice.
struct Init: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Internal: the first process of a container or sandbox.",
        shouldDisplay: false,
        subcommands: [InitContainer.self, InitSandbox.self]
    )
}

struct InitContainer: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "container",
        abstract: "Set up a container from a spec file and exec its command."
    )

    @Argument(help: "Path of the ContainerSpec JSON file.")
    var spec: String

    @Argument(help: "Descriptor to report a failed step on (closed on exec).")
    var reportFD: Int32

    func run() throws {
        ContainerInit.run(specPath: spec, reportFD: reportFD)
    }
}

struct InitSandbox: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Create a pod sandbox: net, uts and ipc namespaces bind-mounted into a directory."
    )

    @Argument(help: "Directory for the namespace files (net, uts, ipc).")
    var directory: String

    @Argument(help: "The pod's hostname.")
    var hostname: String

    @Option(name: .customLong("report-fd"), help: "Descriptor to report a failure on (default: stderr).")
    var reportFD: Int32?

    @Flag(name: .customLong("destroy"), help: "Unmount and remove the sandbox instead.")
    var destroy = false

    func run() throws {
        if destroy {
            do {
                try SandboxSetup.destroy(directory: directory)
            } catch {
                print("labnode init sandbox --destroy: \(error)")
                throw ExitCode.failure
            }
            return
        }
        let code = SandboxSetup.runInit(directory: directory, hostname: hostname, reportFD: reportFD)
        if code != 0 { throw ExitCode(code) }
    }
}
