import Foundation
import Yams

/// A lab as written in `labs/NAME/lab.yaml`: steps that explain, run commands and check the
/// cluster. The format is documented in labs/README.md.
public struct Scenario: Sendable {
    public var name: String
    public var title: String
    public var summary: String
    /// Manifests in the lab's folder, written to the work directory before the first step.
    public var files: [String: String]
    /// Shell lines that remove what the lab created (`labnode lab reset`).
    public var reset: [String]
    public var steps: [Step]
}

public struct Step: Sendable {
    public var id: String
    public var title: String
    public var explain: String
    /// A file of the lab printed before the commands, so the trainee reads what is applied.
    public var show: String?
    /// A line printed after `show` (templates expanded), for instance the URL to open.
    public var say: String?
    public var run: [String]
    /// A command kept running while `then` runs and the checks look (kubectl proxy).
    public var background: String?
    public var then: [String]
    public var checks: [Check]
    /// The step inspects the node itself (its netfilter rules), so it needs root on a
    /// labnode machine; elsewhere it is skipped and says so.
    public var node: Bool
}

/// One thing that should hold, how to look at it, and what to tell the trainee when it does not.
public struct Check: Sendable {
    public enum Probe: Sendable, Equatable {
        /// A Deployment with at least one ready replica (`deployment/NAME [-n NS]`).
        case ready(String)
        /// One field of an object: `kubectl get ARGS -o json`, then `field`.
        case get(String, field: String)
        /// The ready endpoints of a service (`NAME [-n NS]`), from its EndpointSlices.
        case endpoints(String)
        /// An HTTP GET from where the lab runs.
        case http(String)
        /// Any kubectl command; its standard output is what the matchers see.
        case kubectl(String)
        /// `kubectl exec ARGS`; output and errors together, whatever the exit code.
        case exec(String)
        /// A shell line on this machine (node steps).
        case shell(String)
        /// The output of the step's own commands.
        case output
    }

    public var expect: String
    public var hint: String
    public var probe: Probe
    public var equals: String?
    public var contains: [String]
    public var lacks: [String]
    public var matches: String?
    public var absent: Bool
    public var min: Int?
    /// Only meaningful while the step runs (a later step changes it): `lab check` leaves it out.
    public var onlyWhileRunning: Bool
    /// Holds on labnode; other clusters may lack the feature (a LoadBalancer provider).
    public var labnodeOnly: Bool
}

public struct LabError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: - Reading lab.yaml

extension Scenario {
    /// Parses `lab.yaml`; `file` reads the lab's other files by name.
    public static func parse(yaml: String, file: (String) throws -> String) throws -> Scenario {
        let raw: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else { throw LabError("lab.yaml is empty") }
            raw = node
        } catch let error as LabError {
            throw error
        } catch {
            throw LabError("lab.yaml is not valid YAML: \(error)")
        }
        let top = Fields(raw, at: "lab.yaml")
        var files: [String: String] = [:]
        for name in try top.strings("files") {
            do { files[name] = try file(name) } catch { throw LabError("lab.yaml lists \(name), which cannot be read: \(error)") }
        }
        let steps = try top.list("steps").enumerated().map { index, node in try Step(Fields(node, at: "steps[\(index)]")) }
        let scenario = Scenario(name: try top.string("name"), title: try top.string("title"),
                                summary: try top.optionalString("summary") ?? "", files: files,
                                reset: try top.strings("reset"), steps: steps)
        try scenario.validate()
        return scenario
    }

    func validate() throws {
        var seen = Set<String>()
        for step in steps {
            guard seen.insert(step.id).inserted else { throw LabError("step id \(step.id) is used twice") }
            if let show = step.show, files[show] == nil {
                throw LabError("step \(step.id) shows \(show), which is not in the lab's files list")
            }
            if step.checks.isEmpty { throw LabError("step \(step.id) has no checks") }
        }
    }
}

extension Step {
    init(_ f: Fields) throws {
        id = try f.string("id")
        title = try f.string("title")
        explain = try f.string("explain")
        show = try f.optionalString("show")
        say = try f.optionalString("say")
        run = try f.strings("run")
        background = try f.optionalString("background")
        then = try f.strings("then")
        node = try f.bool("node")
        checks = try f.list("checks").enumerated().map { index, node in try Check(Fields(node, at: "\(f.path).checks[\(index)]")) }
    }
}

extension Check {
    init(_ f: Fields) throws {
        expect = try f.string("expect")
        hint = try f.optionalString("hint") ?? ""
        var probes: [Probe] = []
        if let v = try f.optionalString("ready") { probes.append(.ready(v)) }
        if let v = try f.optionalString("get") { probes.append(.get(v, field: try f.string("field"))) }
        if let v = try f.optionalString("endpoints") { probes.append(.endpoints(v)) }
        if let v = try f.optionalString("http") { probes.append(.http(v)) }
        if let v = try f.optionalString("kubectl") { probes.append(.kubectl(v)) }
        if let v = try f.optionalString("exec") { probes.append(.exec(v)) }
        if let v = try f.optionalString("shell") { probes.append(.shell(v)) }
        if try f.bool("output") { probes.append(.output) }
        guard probes.count == 1, let probe = probes.first else {
            throw LabError("\(f.path) needs exactly one of ready, get, endpoints, http, kubectl, exec, shell, output (it has \(probes.count))")
        }
        self.probe = probe
        equals = try f.optionalString("equals")
        contains = try f.strings("contains")
        lacks = try f.strings("lacks")
        matches = try f.optionalString("matches")
        if let pattern = matches, (try? Regex(pattern)) == nil {
            throw LabError("\(f.path).matches is not a valid regular expression: \(pattern)")
        }
        absent = try f.bool("absent")
        min = try f.optionalString("min").map { text in
            guard let n = Int(text) else { throw LabError("\(f.path).min must be a number, not \(text)") }
            return n
        }
        let only = try f.optionalString("only")
        guard only == nil || only == "run" else { throw LabError("\(f.path).only can only be \"run\"") }
        onlyWhileRunning = only == "run"
        labnodeOnly = try f.bool("labnode")
        if case .endpoints = probe {} else if min != nil { throw LabError("\(f.path).min applies to endpoints checks only") }
        if case .endpoints = probe {} else if case .ready = probe {} else if equals == nil && contains.isEmpty && lacks.isEmpty && matches == nil && !absent {
            throw LabError("\(f.path) says what to look at but not what to expect (equals, contains, lacks, matches or absent)")
        }
    }
}

/// Typed access to one YAML mapping, with errors that name the path and the key.
struct Fields {
    let node: Node
    let path: String

    init(_ node: Node, at path: String) {
        self.node = node
        self.path = path
    }

    private func value(_ key: String) throws -> Node? {
        guard let mapping = node.mapping else { throw LabError("\(path) must be a mapping") }
        return mapping[Node(key)]
    }

    func optionalString(_ key: String) throws -> String? {
        guard let v = try value(key) else { return nil }
        guard let s = v.scalar?.string else { throw LabError("\(path).\(key) must be text") }
        return s
    }

    func string(_ key: String) throws -> String {
        guard let s = try optionalString(key) else { throw LabError("\(path) has no \(key)") }
        return s
    }

    /// A list of strings; a single string counts as a list of one.
    func strings(_ key: String) throws -> [String] {
        guard let v = try value(key) else { return [] }
        if let s = v.scalar?.string { return [s] }
        guard let items = v.sequence else { throw LabError("\(path).\(key) must be text or a list of text") }
        return try items.map { item in
            guard let s = item.scalar?.string else { throw LabError("\(path).\(key) must hold text only") }
            return s
        }
    }

    func bool(_ key: String) throws -> Bool {
        guard let v = try optionalString(key) else { return false }
        switch v {
        case "true", "yes": return true
        case "false", "no": return false
        default: throw LabError("\(path).\(key) must be true or false")
        }
    }

    func list(_ key: String) throws -> [Node] {
        guard let v = try value(key) else { return [] }
        guard let items = v.sequence else { throw LabError("\(path).\(key) must be a list") }
        return Array(items)
    }
}
