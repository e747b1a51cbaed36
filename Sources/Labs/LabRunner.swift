import Foundation

/// Walks a trainee through a scenario: explains each step, shows its command, runs it (or
/// what the trainee typed instead), shows the real output and checks the cluster.
public struct LabRunner: Sendable {
    public struct Options: Sendable {
        /// Run every command without asking (CI, instructors' demos).
        public var yes: Bool
        /// Start at this step id (after fixing a failed one).
        public var from: String?
        /// How long a check may take to come true after its step ran.
        public var checkTimeout: Duration

        public init(yes: Bool, from: String? = nil, checkTimeout: Duration = .seconds(90)) {
            self.yes = yes
            self.from = from
            self.checkTimeout = checkTimeout
        }
    }

    public enum Outcome: Sendable, Equatable {
        case passed(steps: Int)
        case failed(step: String)
        case quit(step: String)
    }

    let scenario: Scenario
    let host: LabHost
    let checker: Checker
    let options: Options
    let write: @Sendable (String) -> Void
    let readLine: @Sendable () -> String?

    public init(scenario: Scenario, host: LabHost, facts: ClusterFacts, options: Options,
                write: @escaping @Sendable (String) -> Void, readLine: @escaping @Sendable () -> String?) {
        self.scenario = scenario
        self.host = host
        self.checker = Checker(host: host, facts: facts)
        self.options = options
        self.write = write
        self.readLine = readLine
    }

    public func run() async throws -> Outcome {
        var steps = scenario.steps
        if let from = options.from {
            guard let index = steps.firstIndex(where: { $0.id == from }) else {
                throw LabError("lab \(scenario.name) has no step \(from); its steps are \(steps.map(\.id).joined(separator: ", "))")
            }
            steps = Array(steps[index...])
        }
        write("\(scenario.title)\n\n\(scenario.summary)\n\nCommands run in \(checker.facts.workdir), where the lab's manifests are.\n")
        for step in steps {
            let number = (scenario.steps.firstIndex { $0.id == step.id } ?? 0) + 1
            write("\n── Step \(number)/\(scenario.steps.count): \(step.title) [\(step.id)]\n\n\(step.explain)")
            if let reason = checker.skipReason(for: step) {
                write("Skipped: \(reason).\n")
                continue
            }
            let started = ContinuousClock.now
            switch try await perform(step) {
            case .passed:
                // Unattended runs show where the time goes; a trainee does not need it.
                if options.yes { write(String(format: "  (%.1f s)\n", Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                                 + Double((ContinuousClock.now - started).components.seconds))) }
            case .failed:
                write("\nStep \(step.id) does not pass. Fix what the hints say, then go on with:\n  labnode lab run \(scenario.name) --from \(step.id)\n")
                return .failed(step: step.id)
            case .quit:
                write("\nStopped at step \(step.id). Go on later with:\n  labnode lab run \(scenario.name) --from \(step.id)\n")
                return .quit(step: step.id)
            }
        }
        write("\nAll \(steps.count) steps of \(scenario.name) pass. Grade the cluster any time with `labnode lab check \(scenario.name)`.\n")
        return .passed(steps: steps.count)
    }

    enum StepOutcome { case passed, failed, quit }

    func perform(_ step: Step) async throws -> StepOutcome {
        if let show = step.show, let text = scenario.files[show] {
            write("\n\(show):\n" + text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n") + "\n")
        }
        if let say = step.say {
            write("\n" + ((try? await checker.expand(say)) ?? say) + "\n")
        }
        var output = ""
        for command in step.run {
            guard let printed = try await perform(command: command) else { return .quit }
            output += printed
        }
        var background: BackgroundCommand?
        if let line = step.background {
            write("\n$ \(line) &\n")
            let started = try await host.startBackground(line)
            background = started
            // Give it a moment to say where it listens before the next command uses it.
            for _ in 0..<50 where await started.output().isEmpty { try await Task.sleep(for: .milliseconds(100)) }
            write(await started.output())
        }
        let outcome: StepOutcome
        do {
            outcome = try await thenAndCheck(step, output: output)
        } catch {
            await background?.stop()
            throw error
        }
        await background?.stop()
        return outcome
    }

    func thenAndCheck(_ step: Step, output: String) async throws -> StepOutcome {
        var output = output
        for command in step.then {
            guard let printed = try await perform(command: command) else { return .quit }
            output += printed
        }
        while true {
            let results = await checks(step, output: output)
            if results.allSatisfy({ $0.status != .failed }) { return .passed }
            if options.yes { return .failed }
            write("Check again (Enter), skip this step (s), or quit (q)? ")
            switch readLine()?.trimmingCharacters(in: .whitespaces) {
            case "s": return .passed
            case "q", nil: return .quit
            default: continue
            }
        }
    }

    /// Shows a command and runs it, or what the trainee typed in its place. nil: quit.
    func perform(command line: String) async throws -> String? {
        var toRun = line
        if options.yes {
            write("\n$ \(line)\n")
        } else {
            write("\n  \(line)\nEnter runs it; or type the command yourself; s skips it; q quits.\n$ ")
            guard let typed = readLine() else { return nil }
            switch typed.trimmingCharacters(in: .whitespaces) {
            case "": write("\(line)\n")
            case "s": return ""
            case "q": return nil
            case let own: toRun = own
            }
        }
        let result = try await host.shell(toRun, echo: true, terminal: !options.yes)
        if result.code != 0 { write("(exit \(result.code))\n") }
        return result.out
    }

    /// Evaluates the step's checks, retrying the failing ones until the step's timeout: what
    /// the commands started (pods, endpoints, rules) takes a few seconds to be true.
    func checks(_ step: Step, output: String) async -> [CheckResult] {
        let deadline = ContinuousClock.now + options.checkTimeout
        var results: [CheckResult] = []
        write("\n")
        for check in step.checks {
            var result = await checker.evaluate(check, step: step, stepOutput: output)
            while result.status == .failed, ContinuousClock.now < deadline, !isOutputCheck(check) {
                try? await Task.sleep(for: .seconds(1))
                result = await checker.evaluate(check, step: step, stepOutput: output)
            }
            write(Report.line(result))
            results.append(result)
        }
        return results
    }

    func isOutputCheck(_ check: Check) -> Bool {
        if case .output = check.probe { return true }
        return false
    }
}

/// How results read on a terminal.
enum Report {
    static func line(_ r: CheckResult) -> String {
        switch r.status {
        case .passed: return "  ✔ \(r.expect)\n"
        case .skipped: return "  - \(r.expect) (skipped: \(r.detail))\n"
        case .failed:
            var text = "  ✘ \(r.expect)\n      \(r.detail)\n"
            if !r.hint.isEmpty { text += "      hint: \(r.hint)\n" }
            return text
        }
    }
}
