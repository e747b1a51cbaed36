import ArgumentParser
import Cluster
import Foundation
import Labs

/// `labnode lab ...`: the guided labs in labs/. They drive the cluster only through kubectl
/// and a kubeconfig, so they run against any cluster, not only labnode.
struct LabCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "Guided, self-checking lab scenarios (the Services chapter first).",
        subcommands: [LabList.self, LabRun.self, LabCheck.self, LabReset.self]
    )
}

struct LabOptions: ParsableArguments {
    @Option(name: .customLong("kubeconfig"), help: "The cluster to use (default: $KUBECONFIG or ~/.kube/config, as kubectl does).")
    var kubeconfig: String?
    @Option(name: .customLong("labs-dir"), help: "A folder of labs (default: labs/ of this checkout, the installed copy, else the built-in one).")
    var labsDir: String?
    @Option(name: .customLong("kubectl"), help: "The kubectl to run (default: kubectl from PATH).")
    var kubectl = "kubectl"
    @Option(name: .customLong("workdir"), help: "Where the lab's manifests are written and its commands run (default ~/labnode-labs/NAME).")
    var workdir: String?

    var catalog: LabCatalog {
        LabCatalog.locate(explicit: labsDir, executablePath: CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0] : "/proc/self/exe")
    }

    /// Writes the lab's files into the work directory and connects to the cluster.
    func prepare(_ name: String) async throws -> (Scenario, LocalHost, ClusterFacts) {
        let scenario = try catalog.load(name)
        let home = FileManager.default.homeDirectoryForCurrentUser.path
        let dir = URL(fileURLWithPath: workdir ?? "\(home)/labnode-labs/\(name)").standardizedFileURL.path
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (file, text) in scenario.files {
                try text.write(toFile: "\(dir)/\(file)", atomically: true, encoding: .utf8)
            }
        } catch {
            throw LabError("cannot write the lab's files into \(dir): \(error.localizedDescription)")
        }
        var config = kubeconfig.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        let environment = ProcessInfo.processInfo.environment
        if config == nil, environment["KUBECONFIG"] == nil, geteuid() == 0, !(environment["SUDO_USER"] ?? "").isEmpty,
           let location = try? KubeconfigLocation.resolve(explicitPath: nil), FileManager.default.fileExists(atPath: location.path) {
            // Under sudo, root's kubectl would read /root/.kube/config; `labnode up` merged the
            // cluster into the invoking user's, so that is the one the trainee means.
            config = location.path
        }
        let host = LocalHost(kubectlPath: kubectl, kubeconfig: config, workdir: dir)
        let facts = try await ClusterFacts.discover(host: host, workdir: dir)
        return (scenario, host, facts)
    }
}

struct LabList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the labs.")
    @OptionGroup var options: LabOptions

    func run() async throws {
        try await Labnode.guarded {
            let catalog = options.catalog
            for name in try catalog.names() {
                let scenario = try catalog.load(name)
                print("\(name)\t\(scenario.title) (\(scenario.steps.count) steps)")
            }
        }
    }
}

struct LabRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Walk through a lab: each step is explained, its command shown, run, and checked.")
    @OptionGroup var options: LabOptions
    @Argument(help: "The lab (see `labnode lab list`).") var name: String
    @Flag(name: .customLong("yes"), help: "Run every command without asking.") var yes = false
    @Option(name: .customLong("from"), help: "Start at this step (its id is shown in brackets).") var from: String?

    func run() async throws {
        try await Labnode.guarded {
            if !yes && isatty(STDIN_FILENO) == 0 {
                throw LabError("standard input is not a terminal; to run every step unattended, add --yes")
            }
            let (scenario, host, facts) = try await options.prepare(name)
            let started = ContinuousClock.now
            let runner = LabRunner(scenario: scenario, host: host, facts: facts, options: .init(yes: yes, from: from),
                                   write: { text in FileHandle.standardOutput.write(Data(text.utf8)) },
                                   readLine: { Swift.readLine() })
            let outcome = try await runner.run()
            let elapsed = ContinuousClock.now - started
            print("(\(elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))))")
            if case .passed = outcome { return }
            throw ExitCode.failure
        }
    }
}

struct LabCheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Grade the cluster against the lab's end state; exit 0 only when every check passes.")
    @OptionGroup var options: LabOptions
    @Argument(help: "The lab.") var name: String
    @Flag(name: .customLong("json"), help: "Print the results as JSON.") var json = false

    func run() async throws {
        try await Labnode.guarded {
            let (scenario, host, facts) = try await options.prepare(name)
            let grader = Grader(scenario: scenario, host: host, facts: facts)
            let results = await grader.grade()
            print(json ? grader.json(results) : grader.text(results), terminator: json ? "\n" : "")
            if results.contains(where: { $0.status == .failed }) { throw ExitCode.failure }
        }
    }
}

struct LabReset: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reset", abstract: "Remove what the lab created.")
    @OptionGroup var options: LabOptions
    @Argument(help: "The lab.") var name: String

    func run() async throws {
        try await Labnode.guarded {
            let (scenario, host, _) = try await options.prepare(name)
            var failed = false
            for line in scenario.reset {
                print("$ \(line)")
                let r = try await host.shell(line, echo: true, terminal: false)
                failed = failed || r.code != 0
            }
            if failed { throw LabError("some of the reset commands failed (see above)") }
            print("Lab \(name) is reset; run it again with `labnode lab run \(name)`.")
        }
    }
}
