import APIMachinery
import Foundation
import Synchronization
import Testing
@testable import Labs

/// A cluster as a table of kubectl answers, a shell that records what it ran, and HTTP
/// pages by URL.
final class ScriptedHost: LabHost, @unchecked Sendable {
    let lock = Mutex<[String]>([])
    var objects: [String: String] = [:]
    var commandOutputs: [String: CommandOutput] = [:]
    var pages: [String: String] = [:]
    var root = true

    var ran: [String] { lock.withLock { $0 } }
    var isRoot: Bool { root }

    func kubectl(_ arguments: [String]) async throws -> CommandOutput {
        let line = arguments.joined(separator: " ")
        lock.withLock { $0.append("kubectl " + line) }
        if arguments.first == "get", arguments.suffix(2) == ["-o", "json"] {
            let key = arguments.dropFirst().dropLast(2).joined(separator: " ")
            if let json = objects[key] { return CommandOutput(code: 0, out: json) }
            return CommandOutput(code: 1, out: "", err: "Error from server (NotFound): \(key) not found\n")
        }
        return commandOutputs[line] ?? CommandOutput(code: 1, out: "", err: "unexpected: kubectl \(line)\n")
    }

    func shell(_ line: String, echo: Bool, terminal: Bool) async throws -> CommandOutput {
        lock.withLock { $0.append("sh " + line) }
        return commandOutputs[line] ?? CommandOutput(code: 0, out: "ran \(line)\n")
    }

    func httpGet(_ url: String) async throws -> (status: Int, body: String) {
        guard let page = pages[url] else { throw LabError("connection refused") }
        return (200, page)
    }

    func startBackground(_ line: String) async throws -> BackgroundCommand {
        lock.withLock { $0.append("bg " + line) }
        return Stopped()
    }

    struct Stopped: BackgroundCommand {
        func output() async -> String { "Starting to serve on 127.0.0.1:8001\n" }
        func stop() async {}
    }
}

let labnodeFacts = ClusterFacts(isLabnode: true, nodeIP: "172.31.250.2", workdir: "/tmp/w")

func check(_ yaml: String) throws -> (Step, Check) {
    let scenario = try Scenario.parse(yaml: "name: t\ntitle: T\nsteps:\n- id: s\n  title: S\n  explain: E\n  checks:\n  - " +
                                      yaml.replacingOccurrences(of: "\n", with: "\n    ")) { _ in "" }
    return (scenario.steps[0], scenario.steps[0].checks[0])
}

@Suite struct CheckerTests {
    @Test func aFieldThatDiffersIsNamedWithWhatWasSeen() async throws {
        let host = ScriptedHost()
        host.objects["service/nginx"] = #"{"spec":{"type":"ClusterIP","selector":{"app":"nginx"}}}"#
        let checker = Checker(host: host, facts: labnodeFacts)
        let (step, c) = try check("expect: nginx is a NodePort\nget: service/nginx\nfield: .spec.type\nequals: NodePort\nhint: expose it")
        let r = await checker.evaluate(c, step: step, stepOutput: "")
        #expect(r.status == .failed)
        #expect(r.detail == #"service/nginx .spec.type is "ClusterIP", not "NodePort""#)
        #expect(r.hint == "expose it")

        host.objects["service/nginx"] = #"{"spec":{"type":"NodePort"}}"#
        #expect(await checker.evaluate(c, step: step, stepOutput: "").status == .passed)

        host.objects["service/nginx"] = nil
        let gone = await checker.evaluate(c, step: step, stepOutput: "")
        #expect(gone.status == .failed)
        #expect(gone.detail.contains("service/nginx not found"))
    }

    @Test func endpointsCountOnlyReadyAddressesOfAnExistingService() async throws {
        let host = ScriptedHost()
        let checker = Checker(host: host, facts: labnodeFacts)
        let (step, c) = try check("expect: dns has endpoints\nendpoints: kube-dns -n kube-system\nmin: 1")
        #expect(await checker.evaluate(c, step: step, stepOutput: "").detail.contains("service/kube-dns"))
        host.objects["service/kube-dns -n kube-system"] = "{}"
        host.objects["endpointslices -l kubernetes.io/service-name=kube-dns -n kube-system"] =
            #"{"items":[{"endpoints":[{"addresses":["10.244.0.5"],"conditions":{"ready":false}}]}]}"#
        let none = await checker.evaluate(c, step: step, stepOutput: "")
        #expect(none.detail == "service kube-dns has 0 ready endpoints (wanted at least 1)")
        host.objects["endpointslices -l kubernetes.io/service-name=kube-dns -n kube-system"] =
            #"{"items":[{"endpoints":[{"addresses":["10.244.0.5"],"conditions":{"ready":true}}]}]}"#
        #expect(await checker.evaluate(c, step: step, stepOutput: "").status == .passed)
    }

    @Test func templatesAreFilledFromTheCluster() async throws {
        let host = ScriptedHost()
        host.objects["service/nginx"] = #"{"spec":{"ports":[{"nodePort":31230}]}}"#
        host.pages["http://172.31.250.2:31230/"] = "<title>Welcome to nginx!</title>"
        let checker = Checker(host: host, facts: labnodeFacts)
        let (step, c) = try check("expect: \"page at http://{{nodeIP}}:{{service/nginx .spec.ports[0].nodePort}}/\"\nhttp: \"http://{{nodeIP}}:{{service/nginx .spec.ports[0].nodePort}}/\"\ncontains: Welcome to nginx!")
        let r = await checker.evaluate(c, step: step, stepOutput: "")
        #expect(r.status == .passed)
        #expect(r.expect == "page at http://172.31.250.2:31230/")
        host.pages = [:]
        #expect(await checker.evaluate(c, step: step, stepOutput: "").detail.contains("got no answer"))
    }

    @Test func execOutputCountsEvenWhenTheCommandExitsNonZero() async throws {
        // busybox nslookup prints the answer and exits 1 for the other search domains.
        let host = ScriptedHost()
        host.objects["service/nginx"] = #"{"spec":{"clusterIP":"10.96.0.20"}}"#
        host.commandOutputs["exec busybox -- nslookup nginx"] =
            CommandOutput(code: 1, out: "Name:\tnginx.default.svc.cluster.local\nAddress: 10.96.0.20\n", err: "command terminated with exit code 1\n")
        let checker = Checker(host: host, facts: labnodeFacts)
        let (step, c) = try check("expect: nslookup works\nexec: busybox -- nslookup nginx\ncontains: \"Address: {{service/nginx .spec.clusterIP}}\"")
        #expect(await checker.evaluate(c, step: step, stepOutput: "").status == .passed)
    }

    @Test func lacksNamesTheOffendingLine() async throws {
        let host = ScriptedHost()
        host.commandOutputs["logs -l k8s-app=kube-dns"] = CommandOutput(code: 0, out: "[INFO] ok\n[ERROR] plugin/errors: 2 x. A: timeout\n")
        let checker = Checker(host: host, facts: labnodeFacts)
        let (step, c) = try check("expect: clean logs\nkubectl: logs -l k8s-app=kube-dns\nlacks: ['[ERROR]', '[FATAL]']")
        let r = await checker.evaluate(c, step: step, stepOutput: "")
        #expect(r.detail == #"kubectl logs shows "[ERROR]": [ERROR] plugin/errors: 2 x. A: timeout"#)
    }

    @Test func labnodeOnlyChecksAndNodeStepsAreSkippedElsewhere() async throws {
        let host = ScriptedHost()
        let other = ClusterFacts(isLabnode: false, nodeIP: "10.0.0.4", workdir: "/tmp/w")
        let checker = Checker(host: host, facts: other)
        let (step, c) = try check("expect: lb address\nlabnode: true\nget: service/nginx-lb\nfield: .status.loadBalancer.ingress[0].ip\nmatches: '.'")
        #expect(await checker.evaluate(c, step: step, stepOutput: "").status == .skipped)
        var nodeStep = step
        nodeStep.node = true
        #expect(checker.skipReason(for: nodeStep)?.contains("not labnode") == true)
        host.root = false
        #expect(Checker(host: host, facts: labnodeFacts).skipReason(for: nodeStep)?.contains("root") == true)
        #expect(host.ran.isEmpty)
    }
}

@Suite struct RunnerAndGraderTests {
    static let yaml = """
        name: t
        title: T
        reset: [kubectl delete deployment nginx]
        steps:
        - id: one
          title: One
          explain: first
          run: [kubectl create deployment nginx --image=nginx]
          checks:
          - {expect: it printed, output: true, contains: ran, only: run}
          - {expect: nginx is ready, ready: deployment/nginx, hint: wait}
        - id: two
          title: Two
          explain: second
          run: [kubectl get svc]
          background: kubectl proxy --port=8001
          then: [curl localhost:8001]
          checks:
          - {expect: svc exists, get: service/nginx, field: .spec.type, equals: NodePort, hint: expose it}
        """

    @Test func aYesRunRunsEveryCommandInOrderAndStopsAtTheFirstFailingStep() async throws {
        let scenario = try Scenario.parse(yaml: Self.yaml) { _ in "" }
        let host = ScriptedHost()
        host.objects["deployment/nginx"] = #"{"spec":{"replicas":1},"status":{"readyReplicas":1}}"#
        let text = Mutex("")
        let runner = LabRunner(scenario: scenario, host: host, facts: labnodeFacts,
                               options: .init(yes: true, checkTimeout: .milliseconds(10)),
                               write: { s in text.withLock { $0 += s } }, readLine: { nil })
        let outcome = try await runner.run()
        #expect(outcome == .failed(step: "two"))
        #expect(host.ran.filter { !$0.hasPrefix("kubectl get") } ==
                ["sh kubectl create deployment nginx --image=nginx", "sh kubectl get svc", "bg kubectl proxy --port=8001", "sh curl localhost:8001"])
        let printed = text.withLock { $0 }
        #expect(printed.contains("✔ nginx is ready"))
        #expect(printed.contains("✘ svc exists"))
        #expect(printed.contains("hint: expose it"))
        #expect(printed.contains("labnode lab run t --from two"))

        host.objects["service/nginx"] = #"{"spec":{"type":"NodePort"}}"#
        let resumed = LabRunner(scenario: scenario, host: host, facts: labnodeFacts, options: .init(yes: true, from: "two"),
                                write: { _ in }, readLine: { nil })
        #expect(try await resumed.run() == .passed(steps: 1))
    }

    @Test func theGuidedRunRunsWhatTheTraineeTyped() async throws {
        let scenario = try Scenario.parse(yaml: Self.yaml) { _ in "" }
        let host = ScriptedHost()
        host.objects["deployment/nginx"] = #"{"spec":{"replicas":1},"status":{"readyReplicas":1}}"#
        let answers = Mutex(["kubectl create deployment nginx --image=nginx:1.25", "q"])
        let runner = LabRunner(scenario: scenario, host: host, facts: labnodeFacts, options: .init(yes: false),
                               write: { _ in }, readLine: { answers.withLock { $0.isEmpty ? nil : $0.removeFirst() } })
        #expect(try await runner.run() == .quit(step: "two"))
        #expect(host.ran.first == "sh kubectl create deployment nginx --image=nginx:1.25")
    }

    @Test func theGraderLeavesOutRunOnlyChecksAndReportsJSON() async throws {
        let scenario = try Scenario.parse(yaml: Self.yaml) { _ in "" }
        let host = ScriptedHost()
        host.objects["deployment/nginx"] = #"{"spec":{"replicas":0},"status":{}}"#
        let grader = Grader(scenario: scenario, host: host, facts: labnodeFacts)
        let results = await grader.grade()
        #expect(results.map(\.expect) == ["nginx is ready", "svc exists"])
        #expect(results.map(\.status) == [.failed, .failed])
        #expect(results[0].detail == "deployment/nginx is scaled to 0 replicas")
        let json = try JSON.parse(grader.json(results))
        #expect(json["passed"] == .bool(false))
        #expect(json[path: "counts", "failed"]?.intValue == 2)
        #expect(json["checks"]?.arrayValue?.first?["hint"]?.stringValue == "wait")
        #expect(grader.text(results).contains("0 passed, 2 failed, 0 skipped."))
    }
}
