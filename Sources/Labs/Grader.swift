import APIMachinery
import Foundation

/// `labnode lab check`: grades the cluster as it is now against the lab's end state, every
/// check of every step once (those that only hold while their step runs are left out).
public struct Grader: Sendable {
    let scenario: Scenario
    let checker: Checker

    public init(scenario: Scenario, host: LabHost, facts: ClusterFacts) {
        self.scenario = scenario
        self.checker = Checker(host: host, facts: facts)
    }

    public func grade() async -> [CheckResult] {
        var results: [CheckResult] = []
        for step in scenario.steps {
            let skip = checker.skipReason(for: step)
            for check in step.checks where !check.onlyWhileRunning {
                if case .output = check.probe { continue }
                if let skip {
                    results.append(CheckResult(step: step.id, expect: check.expect, status: .skipped, detail: skip, hint: ""))
                } else {
                    results.append(await checker.evaluate(check, step: step, stepOutput: ""))
                }
            }
        }
        return results
    }

    /// For people: one line per check, the failures with what was seen and a hint.
    public func text(_ results: [CheckResult]) -> String {
        var out = "\(scenario.title)\n\n"
        var lastStep = ""
        for r in results {
            if r.step != lastStep {
                let title = scenario.steps.first { $0.id == r.step }?.title ?? r.step
                out += "\(title) [\(r.step)]\n"
                lastStep = r.step
            }
            out += Report.line(r)
        }
        let passed = results.filter { $0.status == .passed }.count
        let failed = results.filter { $0.status == .failed }.count
        let skipped = results.count - passed - failed
        out += "\n\(passed) passed, \(failed) failed, \(skipped) skipped.\n"
        return out
    }

    /// For instructors' tooling: the same, as one JSON document.
    public func json(_ results: [CheckResult]) -> String {
        let checks: [JSON] = results.map { r in
            .object(["step": .string(r.step), "expect": .string(r.expect), "status": .string(r.status.rawValue),
                     "detail": .string(r.detail), "hint": .string(r.hint)])
        }
        let document: JSON = .object([
            "lab": .string(scenario.name),
            "passed": .bool(results.allSatisfy { $0.status != .failed }),
            "counts": .object([
                "passed": .int(Int64(results.filter { $0.status == .passed }.count)),
                "failed": .int(Int64(results.filter { $0.status == .failed }.count)),
                "skipped": .int(Int64(results.filter { $0.status == .skipped }.count)),
            ]),
            "checks": .array(checks),
        ])
        return String(decoding: document.serialized(), as: UTF8.self)
    }
}
