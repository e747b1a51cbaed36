import APIMachinery
import Foundation

/// What the lab learns about the cluster once, before the first step.
public struct ClusterFacts: Sendable {
    /// The node runs labnode (its container runtime says `labnode://`).
    public var isLabnode: Bool
    /// The first node's InternalIP, for NodePort URLs.
    public var nodeIP: String
    public var workdir: String

    public init(isLabnode: Bool, nodeIP: String, workdir: String) {
        self.isLabnode = isLabnode
        self.nodeIP = nodeIP
        self.workdir = workdir
    }

    /// Reads the first node through kubectl.
    public static func discover(host: LabHost, workdir: String) async throws -> ClusterFacts {
        let r = try await host.kubectl(["get", "nodes", "-o", "json"])
        guard r.code == 0 else {
            throw LabError("kubectl cannot reach the cluster: \(r.err.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        guard let list = try? JSON.parse(r.out), let node = list["items"]?.arrayValue?.first else {
            throw LabError("the cluster has no node yet (kubectl get nodes is empty)")
        }
        let runtime = node[path: "status", "nodeInfo", "containerRuntimeVersion"]?.stringValue ?? ""
        let addresses = node[path: "status", "addresses"]?.arrayValue ?? []
        let internalIP = addresses.first { $0["type"]?.stringValue == "InternalIP" }?["address"]?.stringValue
        return ClusterFacts(isLabnode: runtime.hasPrefix("labnode://"), nodeIP: internalIP ?? "127.0.0.1", workdir: workdir)
    }
}

/// The verdict on one check.
public struct CheckResult: Sendable {
    public enum Status: String, Sendable { case passed, failed, skipped }
    public var step: String
    public var expect: String
    public var status: Status
    /// What was seen (failed) or why the check was left out (skipped).
    public var detail: String
    public var hint: String
}

/// Evaluates checks against the cluster through a `LabHost`.
public struct Checker: Sendable {
    let host: LabHost
    let facts: ClusterFacts

    public init(host: LabHost, facts: ClusterFacts) {
        self.host = host
        self.facts = facts
    }

    /// Why a step cannot run here, or nil when it can.
    public func skipReason(for step: Step) -> String? {
        guard step.node else { return nil }
        if !facts.isLabnode { return "this step inspects a labnode node's own rules; this cluster is not labnode" }
        if !host.isRoot { return "this step reads the node's netfilter rules, which needs root (run the lab with sudo)" }
        return nil
    }

    public func expand(_ text: String) async throws -> String {
        try await Template.expand(text) { reference in
            switch reference {
            case .fact("nodeIP"): return facts.nodeIP
            case .fact("workdir"): return facts.workdir
            case .fact(let name): throw LabError("{{\(name)}} is not a known value (nodeIP, workdir)")
            case .object(let arguments, let field):
                let object = try await getObject(arguments)
                guard let value = field.value(in: object) else {
                    throw LabError("\(arguments.joined(separator: " ")) has no \(field.segments.isEmpty ? "value" : "such field") yet")
                }
                return FieldPath.text(value)
            }
        }
    }

    func getObject(_ arguments: [String]) async throws -> JSON {
        let r = try await host.kubectl(["get"] + arguments + ["-o", "json"])
        guard r.code == 0 else { throw LabError(Self.firstLine(r.err, or: "kubectl get \(arguments.joined(separator: " ")) failed")) }
        do { return try JSON.parse(r.out) } catch { throw LabError("kubectl get \(arguments.joined(separator: " ")) printed something that is not JSON") }
    }

    /// One look at the cluster. `stepOutput` is what the step's commands printed.
    public func evaluate(_ check: Check, step: Step, stepOutput: String) async -> CheckResult {
        var result = CheckResult(step: step.id, expect: check.expect, status: .failed, detail: "", hint: check.hint)
        do {
            result.expect = try await expand(check.expect)
        } catch {
            // The sentence names a value that is not there yet; the probe below says why.
        }
        if check.labnodeOnly && !facts.isLabnode {
            result.status = .skipped
            result.detail = "holds on labnode; other clusters may have no load balancer provider"
            return result
        }
        do {
            if let problem = try await look(check, stepOutput: stepOutput) {
                result.detail = problem
            } else {
                result.status = .passed
            }
        } catch {
            result.detail = "\(error)"
        }
        if !result.hint.isEmpty, let hint = try? await expand(result.hint) { result.hint = hint }
        return result
    }

    /// nil when the check holds, else what is wrong in one sentence.
    func look(_ check: Check, stepOutput: String) async throws -> String? {
        switch check.probe {
        case .ready(let target):
            let object = try await getObject(try ShellWords.split(target))
            let ready = object[path: "status", "readyReplicas"]?.intValue ?? 0
            let wanted = object[path: "spec", "replicas"]?.intValue ?? 1
            if wanted == 0 { return "\(target) is scaled to 0 replicas" }
            return ready >= 1 ? nil : "\(target) has \(ready) of \(wanted) replicas ready"

        case .get(let target, let fieldText):
            let object = try await getObject(try ShellWords.split(target))
            let field = try FieldPath(fieldText)
            let value = field.value(in: object)
            if check.absent {
                let empty = value == nil || value?.objectValue?.isEmpty == true || value?.arrayValue?.isEmpty == true
                return empty ? nil : "\(target) has \(fieldText) = \(value.map(FieldPath.text) ?? "")"
            }
            guard let value else { return "\(target) has no \(fieldText)" }
            return try await compare(FieldPath.text(value), check, what: "\(target) \(fieldText)")

        case .endpoints(let target):
            var words = try ShellWords.split(target)
            guard !words.isEmpty else { throw LabError("an endpoints check needs a service name") }
            let name = words.removeFirst()
            _ = try await getObject(["service/\(name)"] + words)
            let slices = try await getObject(["endpointslices", "-l", "kubernetes.io/service-name=\(name)"] + words)
            let ready = (slices["items"]?.arrayValue ?? []).flatMap { $0["endpoints"]?.arrayValue ?? [] }
                .filter { $0[path: "conditions", "ready"]?.boolValue != false }
                .reduce(0) { $0 + ($1["addresses"]?.arrayValue?.count ?? 0) }
            let wanted = check.min ?? 1
            return ready >= wanted ? nil : "service \(name) has \(ready) ready endpoint\(ready == 1 ? "" : "s") (wanted at least \(wanted))"

        case .http(let urlText):
            let url = try await expand(urlText)
            let response: (status: Int, body: String)
            do { response = try await host.httpGet(url) } catch { return "GET \(url) got no answer: \(error)" }
            if response.status >= 400 { return "GET \(url) answered HTTP \(response.status)" }
            return try await compare(response.body, check, what: "GET \(url)")

        case .kubectl(let line):
            let arguments = try ShellWords.split(try await expand(line))
            let r = try await host.kubectl(arguments)
            if r.code != 0 { return "kubectl \(arguments.joined(separator: " ")) failed: \(Self.firstLine(r.err, or: "exit \(r.code)"))" }
            return try await compare(r.out, check, what: "kubectl \(arguments.first ?? "")")

        case .exec(let line):
            let arguments = try ShellWords.split(try await expand(line))
            let r = try await host.kubectl(["exec"] + arguments)
            let text = r.out + r.err
            if r.code != 0 && r.out.isEmpty { return "kubectl exec \(arguments.joined(separator: " ")) failed: \(Self.firstLine(r.err, or: "exit \(r.code)"))" }
            return try await compare(text, check, what: "kubectl exec \(arguments.joined(separator: " "))")

        case .shell(let line):
            let r = try await host.shell(try await expand(line), echo: false, terminal: false)
            return try await compare(r.out, check, what: line)

        case .output:
            return try await compare(stepOutput, check, what: "the output")
        }
    }

    /// Applies the matchers; nil when all hold.
    func compare(_ observed: String, _ check: Check, what: String) async throws -> String? {
        if let equals = check.equals {
            let wanted = try await expand(equals)
            let seen = observed.trimmingCharacters(in: .whitespacesAndNewlines)
            if seen != wanted { return "\(what) is \(seen.isEmpty ? "empty" : "\"\(seen)\""), not \"\(wanted)\"" }
        }
        for item in check.contains {
            let wanted = try await expand(item)
            if !observed.contains(wanted) { return "\(what) does not show \"\(wanted)\"\(Self.excerpt(observed))" }
        }
        for item in check.lacks {
            let unwanted = try await expand(item)
            if let line = observed.split(separator: "\n").first(where: { $0.contains(unwanted) }) {
                return "\(what) shows \"\(unwanted)\": \(line)"
            }
        }
        if let pattern = check.matches {
            let regex = try Regex(try await expand(pattern))
            if !observed.contains(regex) { return "\(what) does not match /\(pattern)/\(Self.excerpt(observed))" }
        }
        return nil
    }

    static func firstLine(_ text: String, or fallback: String) -> String {
        let line = text.split(separator: "\n").first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        return line.isEmpty ? fallback : line
    }

    /// The start of what was seen, on one line, so a failure shows the evidence.
    static func excerpt(_ text: String) -> String {
        let flat = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " | ")
        if flat.isEmpty { return " (it is empty)" }
        return " (saw: \(flat.count > 160 ? String(flat.prefix(160)) + "..." : flat))"
    }
}
