import Foundation
@testable import Networking
@testable import ServiceProxy

/// Follows the first packet of a connection through a rendered `iptables-restore` rule set,
/// hook by hook as netfilter does, so tests can ask what happens to a packet instead of
/// looking for lines in the text: which endpoint it is DNATed to, whether it is masqueraded,
/// rejected or dropped.
///
/// It reads exactly the rule forms IptablesRules writes (and the jump rules the proxier puts
/// into the built-in chains). Anything else, an unknown match, option or target, a jump to a
/// chain that does not exist, a target in a table that would refuse it, is an error at load
/// time: a renderer change the tracer does not understand must fail the tests, not slip by.
///
/// Only new connections are traced: the nat table sees nothing else (conntrack replays the
/// first packet's translation for the rest of the flow).
struct IptablesTracer {
    /// Where a packet enters the node, which decides the hooks it passes.
    enum Origin: Sendable {
        /// From a pod's veth on the bridge (br_netfilter sends bridged frames through the IP
        /// hooks): nat PREROUTING, then filter INPUT if it is for the node, else filter FORWARD
        /// and nat POSTROUTING.
        case pod
        /// From a socket on the node: nat OUTPUT, filter OUTPUT, nat POSTROUTING, and filter
        /// INPUT when it stays on the node (nat PREROUTING is not seen again on loopback).
        case node
        /// From the LAN interface: the same hooks as a pod's packet.
        case outside
    }

    struct Packet: Sendable {
        var source: String
        var destination: String
        var proto = "tcp"
        var port: Int
        var origin: Origin
        /// Where this packet falls in [0, 1) for the `statistic --mode random` rules (see
        /// `Chance.draw`): with kube-proxy's probabilities, `draw(k, of: n)` picks endpoint k.
        var draw = 0.0
    }

    enum Verdict: Hashable, Sendable, CustomStringConvertible {
        /// Accepted and sent to `to` (ip:port), with the source rewritten or not.
        case dnat(to: String, masquerade: Bool)
        /// A REJECT in the filter table: the client gets "connection refused" at once.
        case rejected
        /// A DROP (or the kernel's martian check): the client times out.
        case dropped
        /// Not a service packet: the rule set lets it through unchanged.
        case untouched
        /// Source-NATed without a DNAT; no rule set of ours should ever do this.
        case masqueradedWithoutDNAT

        var description: String {
            switch self {
            case .dnat(let to, let masquerade): "dnat(\(to)\(masquerade ? ", masquerade" : ""))"
            case .rejected: "rejected"
            case .dropped: "dropped"
            case .untouched: "untouched"
            case .masqueradedWithoutDNAT: "masqueraded without DNAT"
            }
        }
    }

    struct Unreadable: Error, CustomStringConvertible { var description: String }

    /// How `-m statistic --mode random --probability p` rules decide for one packet.
    enum Chance {
        /// One uniform number u in [0, 1) per packet. A rule matches when u < p; otherwise u is
        /// rescaled to (u - p) / (1 - p) for the next rule, which keeps it uniform given the
        /// earlier misses. Rules 1/n, 1/(n-1), ..., 1 then send u to endpoint floor(u * n):
        /// this is the inverse of the cumulative distribution, so a draw names an endpoint.
        case draw(Double)
        /// The answers in order; past the end every rule answers no. Used to enumerate every
        /// branch with its exact probability (`distribution`).
        case answers([Bool])
    }

    /// The draw in the middle of endpoint k's share when there are n.
    static func draw(_ k: Int, of n: Int) -> Double { (Double(k) + 0.5) / Double(n) }

    // MARK: The parsed rule set

    struct CIDRMatch {
        var cidr: IPv4.CIDR
        var negated: Bool
    }

    enum Match {
        case port(Int, negated: Bool)
        case localAddress(ofDestination: Bool, negated: Bool)
        case random(probability: Double)
        case recentCheck(list: String, seconds: Double?, reap: Bool, negated: Bool)
        case recentSet(list: String)
        case mark(value: UInt32, mask: UInt32, negated: Bool)
        case ctstate(Set<String>, negated: Bool)
    }

    enum MarkChange {
        case or(UInt32), xor(UInt32), setX(value: UInt32, mask: UInt32), set(value: UInt32, mask: UInt32)
    }

    enum Target {
        case chain(String)
        case `return`, accept, drop, reject
        case mark(MarkChange)
        case dnat(String)
        case masquerade
    }

    struct Rule {
        /// As written, for error messages and the trace path.
        var text: String
        var source: CIDRMatch?
        var destination: CIDRMatch?
        var proto: (name: String, negated: Bool)?
        /// The `-m` matches in the order they are written (the kernel evaluates them so, after
        /// the address and protocol checks of the IP header).
        var matches: [Match] = []
        /// nil: a rule without `-j` only counts packets.
        var target: Target?
    }

    static let builtinChains = ["nat": ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"], "filter": ["INPUT", "FORWARD", "OUTPUT"]]

    /// table -> chain -> rules.
    private(set) var tables: [String: [String: [Rule]]] = [:]
    /// Built-in chain policies, `table/chain` -> ACCEPT or DROP (ACCEPT unless the text says).
    var policies: [String: String] = [:]
    let localAddresses: Set<IPv4.Address>
    /// `net.ipv4.conf.all.route_localnet`: without it the kernel drops a packet that arrives
    /// for 127/8, or that leaves the node from 127/8, whatever the rules say.
    let routeLocalnet: Bool
    /// `-m recent` lists: list -> source address -> when last set (seconds).
    var recent: [String: [String: Double]] = [:]
    /// The clock `-m recent` reads, in seconds; a test moves it to expire affinity.
    var now = 0.0
    /// The rules the last traced packet matched, `table chain: rule`, for failure messages.
    private(set) var path: [String] = []

    /// Loads `text` (iptables-restore input) and the jump rules from the built-in chains.
    /// `localAddresses` are the node's addresses besides 127/8 (which is always local).
    init(_ text: String, jumps: [(table: String, chain: String, rule: [String])] = IptablesRules.jumps,
         localAddresses: Set<String>, routeLocalnet: Bool = false) throws {
        self.localAddresses = Set(try localAddresses.map { try Self.address($0) })
        self.routeLocalnet = routeLocalnet
        for (table, chains) in Self.builtinChains {
            tables[table] = Dictionary(uniqueKeysWithValues: chains.map { ($0, []) })
        }
        var table: String?
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("*") {
                let name = String(line.dropFirst())
                guard tables[name] != nil else { throw Unreadable(description: "table \(name) is not traced") }
                table = name
                continue
            }
            guard let current = table else { throw Unreadable(description: "outside a table: \(line)") }
            if line == "COMMIT" {
                table = nil
            } else if line.hasPrefix(":") {
                // `:CHAIN POLICY [packets:bytes]`: a user chain is created, or (under
                // --noflush) flushed; a built-in chain gets its policy.
                let words = line.dropFirst().split(separator: " ").map(String.init)
                guard words.count == 3 else { throw Unreadable(description: "cannot read chain line: \(line)") }
                if Self.builtinChains[current]?.contains(words[0]) == true {
                    if words[1] != "-" { policies["\(current)/\(words[0])"] = words[1] }
                } else {
                    guard words[1] == "-" else { throw Unreadable(description: "a user chain has no policy: \(line)") }
                    tables[current]?[words[0]] = []
                }
            } else if line.hasPrefix("-A ") {
                let (chain, rule) = try Self.parseRule(try Self.tokens(line), table: current)
                guard tables[current]?[chain] != nil else { throw Unreadable(description: "-A to undeclared chain \(chain) in \(current)") }
                tables[current]?[chain]?.append(rule)
            } else if line.hasPrefix("-X ") {
                let chain = String(line.dropFirst(3))
                guard tables[current]?[chain] != nil, Self.builtinChains[current]?.contains(chain) == false else {
                    throw Unreadable(description: "cannot delete chain \(chain) in \(current)")
                }
                tables[current]?[chain] = nil
            } else {
                throw Unreadable(description: "cannot read line: \(line)")
            }
        }
        if let table { throw Unreadable(description: "table \(table) has no COMMIT") }
        // The proxier inserts each jump at position 1 in reverse order, so they end up in the
        // listed order, ahead of whatever else the built-in chain holds (nothing, here).
        for jump in jumps {
            let (chain, rule) = try Self.parseRule(["-A", jump.chain] + jump.rule, table: jump.table)
            guard Self.builtinChains[jump.table]?.contains(chain) == true else {
                throw Unreadable(description: "jump from \(jump.table) \(chain), which is not a built-in chain")
            }
            tables[jump.table]?[chain]?.append(rule)
        }
        try validate()
    }

    /// What iptables-restore or the kernel would refuse: a jump to a missing chain, a target
    /// in a table that does not allow it.
    func validate() throws {
        for (table, chains) in tables {
            for (chain, rules) in chains {
                for rule in rules {
                    switch rule.target {
                    case .chain(let name):
                        guard chains[name] != nil else { throw Unreadable(description: "\(table) \(chain): jump to missing chain \(name): \(rule.text)") }
                        guard Self.builtinChains[table]?.contains(name) == false else {
                            throw Unreadable(description: "\(table) \(chain): jump to built-in chain: \(rule.text)")
                        }
                    case .dnat, .masquerade:
                        guard table == "nat" else { throw Unreadable(description: "\(table) \(chain): nat target outside nat: \(rule.text)") }
                    case .reject:
                        guard table == "filter" else { throw Unreadable(description: "\(table) \(chain): REJECT outside filter: \(rule.text)") }
                    case .mark, .return, .accept, .drop, nil:
                        break
                    }
                }
            }
        }
    }

    // MARK: Reading rules

    /// Splits a restore line into words; a double-quoted word may hold spaces.
    static func tokens(_ line: String) throws -> [String] {
        var words: [String] = []
        var word = ""
        var quoted = false
        var started = false
        for c in line {
            if c == "\"" {
                quoted.toggle()
                started = true
            } else if c == " " && !quoted {
                if started { words.append(word) }
                word = ""
                started = false
            } else {
                word.append(c)
                started = true
            }
        }
        guard !quoted else { throw Unreadable(description: "unbalanced quote: \(line)") }
        if started { words.append(word) }
        return words
    }

    /// The options each supported match module takes, and whether each takes a value.
    static let moduleOptions: [String: [String: Bool]] = [
        "tcp": ["--dport": true], "udp": ["--dport": true], "sctp": ["--dport": true],
        "comment": ["--comment": true],
        "addrtype": ["--dst-type": true, "--src-type": true],
        "statistic": ["--mode": true, "--probability": true],
        "recent": ["--name": true, "--mask": true, "--rcheck": false, "--set": false, "--seconds": true, "--reap": false, "--rsource": false],
        "mark": ["--mark": true],
        "conntrack": ["--ctstate": true],
    ]

    /// One `-m` module as written: its options with their values and negation.
    private struct Module {
        var name: String
        var options: [String: (value: String?, negated: Bool)] = [:]
    }

    static func parseRule(_ words: [String], table: String) throws -> (chain: String, rule: Rule) {
        let text = words.joined(separator: " ")
        func fail(_ why: String) -> Unreadable { Unreadable(description: "\(why): \(text)") }
        guard words.count >= 2, words[0] == "-A" else { throw fail("not an -A rule") }
        var rule = Rule(text: text)
        var modules: [Module] = []
        var negate = false
        var i = 2
        func value() throws -> String {
            guard i < words.count else { throw fail("\(words[i - 1]) without a value") }
            i += 1
            return words[i - 1]
        }
        while i < words.count {
            let word = words[i]
            i += 1
            if word == "!" {
                guard !negate else { throw fail("double !") }
                negate = true
                continue
            }
            switch word {
            case "-s":
                rule.source = CIDRMatch(cidr: try cidr(try value()), negated: negate)
            case "-d":
                rule.destination = CIDRMatch(cidr: try cidr(try value()), negated: negate)
            case "-p":
                let name = try value()
                guard ["tcp", "udp", "sctp"].contains(name) else { throw fail("protocol \(name)") }
                rule.proto = (name, negate)
            case "-m":
                guard !negate else { throw fail("! before -m") }
                let name = try value()
                guard moduleOptions[name] != nil else { throw fail("unknown match -m \(name)") }
                modules.append(Module(name: name))
            case "-j":
                guard !negate else { throw fail("! before -j") }
                rule.target = try parseTarget(Array(words[i...]), rule: text)
                i = words.count
            default:
                guard word.hasPrefix("--") else { throw fail("unknown option \(word)") }
                // An option belongs to the last loaded module that has it; `--dport` also works
                // after a plain `-p tcp`, which loads the protocol's module implicitly.
                var owner = modules.lastIndex { moduleOptions[$0.name]?[word] != nil }
                if owner == nil, word == "--dport", let proto = rule.proto, !proto.negated {
                    modules.append(Module(name: proto.name))
                    owner = modules.count - 1
                }
                guard let owner, let takesValue = moduleOptions[modules[owner].name]?[word] else {
                    throw fail("unknown option \(word) (or its -m is missing)")
                }
                guard modules[owner].options[word] == nil else { throw fail("\(word) twice") }
                modules[owner].options[word] = (takesValue ? try value() : nil, negate)
            }
            negate = false
        }
        guard !negate else { throw fail("! at the end") }
        for module in modules {
            if let match = try match(module, rule: rule, fail: fail) { rule.matches.append(match) }
        }
        return (words[1], rule)
    }

    private static func match(_ m: Module, rule: Rule, fail: (String) -> Unreadable) throws -> Match? {
        func option(_ name: String) -> (value: String?, negated: Bool)? { m.options[name] }
        func plain(_ name: String) throws -> String? {
            guard let o = option(name) else { return nil }
            guard !o.negated else { throw fail("! \(name) is not supported") }
            return o.value
        }
        switch m.name {
        case "tcp", "udp", "sctp":
            // iptables refuses `-m tcp` without `-p tcp`.
            guard rule.proto?.name == m.name, rule.proto?.negated == false else { throw fail("-m \(m.name) without -p \(m.name)") }
            guard let dport = option("--dport") else { return nil }
            guard let port = Int(dport.value ?? ""), (1...65535).contains(port) else { throw fail("--dport \(dport.value ?? "")") }
            return .port(port, negated: dport.negated)
        case "comment":
            guard try plain("--comment") != nil else { throw fail("-m comment without --comment") }
            return nil
        case "addrtype":
            guard m.options.count == 1, let (name, o) = m.options.first else { throw fail("-m addrtype takes one of --dst-type, --src-type") }
            guard o.value == "LOCAL" else { throw fail("address type \(o.value ?? "") is not traced") }
            return .localAddress(ofDestination: name == "--dst-type", negated: o.negated)
        case "statistic":
            guard try plain("--mode") == "random", let p = Double(try plain("--probability") ?? ""), (0...1).contains(p) else {
                throw fail("statistic other than --mode random --probability p")
            }
            return .random(probability: p)
        case "recent":
            guard let list = try plain("--name") else { throw fail("-m recent without --name") }
            if let mask = try plain("--mask"), mask != "255.255.255.255" { throw fail("--mask \(mask)") }
            _ = try plain("--rsource")
            switch (option("--rcheck"), option("--set")) {
            case (let check?, nil):
                let seconds = try plain("--seconds").map { s in
                    guard let v = Double(s) else { throw fail("--seconds \(s)") }
                    return v
                }
                guard option("--reap")?.negated != true else { throw fail("! --reap") }
                return .recentCheck(list: list, seconds: seconds, reap: option("--reap") != nil, negated: check.negated)
            case (nil, let set?):
                guard !set.negated, option("--seconds") == nil, option("--reap") == nil else { throw fail("--set with check options") }
                return .recentSet(list: list)
            default:
                throw fail("-m recent needs exactly one of --rcheck, --set")
            }
        case "mark":
            guard let o = option("--mark") else { throw fail("-m mark without --mark") }
            let (value, mask) = try valueAndMask(o.value ?? "", fail: fail)
            return .mark(value: value, mask: mask, negated: o.negated)
        case "conntrack":
            guard let o = option("--ctstate") else { throw fail("-m conntrack without --ctstate") }
            let states = Set((o.value ?? "").split(separator: ",").map(String.init))
            let known: Set<String> = ["NEW", "ESTABLISHED", "RELATED", "INVALID", "UNTRACKED", "SNAT", "DNAT"]
            guard !states.isEmpty, states.isSubset(of: known) else { throw fail("--ctstate \(o.value ?? "")") }
            return .ctstate(states, negated: o.negated)
        default:
            throw fail("unknown match -m \(m.name)")
        }
    }

    private static func parseTarget(_ words: [String], rule: String) throws -> Target {
        func fail(_ why: String) -> Unreadable { Unreadable(description: "\(why): \(rule)") }
        guard let name = words.first else { throw fail("-j without a target") }
        // The target's options, as `--option value` pairs (flags have no value).
        var options: [String: String] = [:]
        var i = 1
        while i < words.count {
            guard words[i].hasPrefix("--") else { throw fail("unexpected \(words[i]) after -j \(name)") }
            let takesValue = i + 1 < words.count && !words[i + 1].hasPrefix("--")
            options[words[i]] = takesValue ? words[i + 1] : ""
            i += takesValue ? 2 : 1
        }
        func only(_ allowed: Set<String>) throws {
            if let extra = Set(options.keys).subtracting(allowed).first { throw fail("-j \(name) \(extra) is not traced") }
        }
        switch name {
        case "ACCEPT": try only([]); return .accept
        case "DROP": try only([]); return .drop
        case "RETURN": try only([]); return .return
        case "REJECT":
            try only(["--reject-with"])
            if let with = options["--reject-with"], with != "icmp-port-unreachable" { throw fail("--reject-with \(with)") }
            return .reject
        case "MASQUERADE":
            try only(["--random-fully", "--random"])
            guard options.values.allSatisfy(\.isEmpty) else { throw fail("MASQUERADE options take no value") }
            return .masquerade
        case "DNAT":
            try only(["--to-destination"])
            guard let to = options["--to-destination"], let colon = to.lastIndex(of: ":"),
                  IPv4.Address(to[..<colon]) != nil, Int(to[to.index(after: colon)...]) != nil else {
                throw fail("DNAT needs --to-destination ip:port")
            }
            return .dnat(to)
        case "MARK":
            guard options.count == 1, let (option, text) = options.first else { throw fail("MARK takes one operation") }
            switch option {
            case "--or-mark": return .mark(.or(try number(text, fail: fail)))
            case "--xor-mark": return .mark(.xor(try number(text, fail: fail)))
            case "--set-xmark":
                let (v, m) = try valueAndMask(text, fail: fail)
                return .mark(.setX(value: v, mask: m))
            case "--set-mark":
                let (v, m) = try valueAndMask(text, fail: fail)
                return .mark(.set(value: v, mask: m))
            default: throw fail("MARK \(option) is not traced")
            }
        default:
            // Anything else must be a chain of the same table (checked once all are loaded),
            // so an unknown target such as LOG or SNAT fails as a missing chain.
            guard options.isEmpty else { throw fail("options after a jump to chain \(name)") }
            return .chain(name)
        }
    }

    static func address(_ text: String) throws -> IPv4.Address {
        guard let a = IPv4.Address(text) else { throw Unreadable(description: "not an IPv4 address: \(text)") }
        return a
    }

    /// `10.0.0.0/8`, or a bare address meaning /32.
    static func cidr(_ text: String) throws -> IPv4.CIDR {
        if let c = IPv4.CIDR(text) { return c }
        if let a = IPv4.Address(text), let c = IPv4.CIDR(address: a, prefixLength: 32) { return c }
        throw Unreadable(description: "not an address or CIDR: \(text)")
    }

    static func number(_ text: String, fail: (String) -> Unreadable) throws -> UInt32 {
        let value = text.hasPrefix("0x") ? UInt32(text.dropFirst(2), radix: 16) : UInt32(text)
        guard let value else { throw fail("not a number: \(text)") }
        return value
    }

    /// `value[/mask]`; the mask defaults to all ones.
    static func valueAndMask(_ text: String, fail: (String) -> Unreadable) throws -> (UInt32, UInt32) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else { throw fail("not value/mask: \(text)") }
        return (try number(parts[0], fail: fail), parts.count == 2 ? try number(parts[1], fail: fail) : .max)
    }

    // MARK: Tracing

    /// The packet as the rules see it, changing on the way.
    private struct Flow {
        var source: IPv4.Address
        var destination: IPv4.Address
        var proto: String
        var port: Int
        var mark: UInt32 = 0
        /// Conntrack's view of the connection; DNAT is added once the nat table translated it.
        var ctstate: Set<String> = ["NEW"]
        var translated: String?
        var masqueraded = false
        var chance: Chance
        /// Every random rule evaluated: its probability and its answer.
        var asked: [(probability: Double, answer: Bool)] = []
    }

    /// How a chain walk ended.
    private enum Outcome { case fellThrough, accept, drop, reject }

    func isLocal(_ a: IPv4.Address) -> Bool { Self.loopback.contains(a) || localAddresses.contains(a) }

    static let loopback = IPv4.CIDR("127.0.0.0/8")!

    /// Traces one new connection, updating `-m recent` state as the kernel would.
    mutating func trace(_ p: Packet) throws -> Verdict {
        var flow = try Flow(source: Self.address(p.source), destination: Self.address(p.destination), proto: p.proto, port: p.port,
                            chance: .draw(p.draw))
        return try walk(p.origin, &flow)
    }

    /// Every verdict the random rules can lead to for this packet, with its exact probability
    /// (the product of the probabilities of the answers along the way). `-m recent` state is
    /// read, not changed.
    func distribution(_ p: Packet) throws -> [Verdict: Double] {
        var result: [Verdict: Double] = [:]
        var pending: [[Bool]] = [[]]
        while let answers = pending.popLast() {
            var copy = self
            var flow = try Flow(source: Self.address(p.source), destination: Self.address(p.destination), proto: p.proto, port: p.port,
                                chance: .answers(answers))
            let verdict = try copy.walk(p.origin, &flow)
            // Each rule answered "no" beyond the given answers could also have said "yes".
            for i in answers.count..<flow.asked.count {
                pending.append(flow.asked[..<i].map(\.answer) + [true])
            }
            result[verdict, default: 0] += flow.asked.reduce(1.0) { $0 * ($1.answer ? $1.probability : 1 - $1.probability) }
        }
        return result
    }

    private mutating func walk(_ origin: Origin, _ flow: inout Flow) throws -> Verdict {
        path = []
        switch origin {
        case .pod, .outside:
            if let end = try hook("nat", "PREROUTING", &flow) { return end }
            // Routing, after DNAT: the kernel refuses 127/8 from the wire without route_localnet.
            if !routeLocalnet && Self.loopback.contains(flow.destination) {
                path.append("routing: martian destination \(flow.destination) (route_localnet=0)")
                return .dropped
            }
            if isLocal(flow.destination) {
                if let end = try hook("filter", "INPUT", &flow) { return end }
            } else {
                if let end = try hook("filter", "FORWARD", &flow) { return end }
                if let end = try hook("nat", "POSTROUTING", &flow) { return end }
            }
        case .node:
            if let end = try hook("nat", "OUTPUT", &flow) { return end }
            // Rerouted after DNAT: a loopback source may leave the node only with route_localnet.
            if !routeLocalnet && Self.loopback.contains(flow.source) && !isLocal(flow.destination) {
                path.append("routing: loopback source \(flow.source) cannot leave the node (route_localnet=0)")
                return .dropped
            }
            if let end = try hook("filter", "OUTPUT", &flow) { return end }
            if let end = try hook("nat", "POSTROUTING", &flow) { return end }
            if isLocal(flow.destination), let end = try hook("filter", "INPUT", &flow) { return end }
        }
        if let to = flow.translated { return .dnat(to: to, masquerade: flow.masqueraded) }
        return flow.masqueraded ? .masqueradedWithoutDNAT : .untouched
    }

    /// Runs a built-in chain; a verdict when the packet ends here (dropped or rejected).
    private mutating func hook(_ table: String, _ chain: String, _ flow: inout Flow) throws -> Verdict? {
        currentHook = chain
        var outcome = try run(table, chain, &flow, depth: 0)
        if outcome == .fellThrough { outcome = policies["\(table)/\(chain)"] == "DROP" ? .drop : .accept }
        switch outcome {
        case .drop: return .dropped
        case .reject: return .rejected
        case .accept, .fellThrough: return nil
        }
    }

    private mutating func run(_ table: String, _ chain: String, _ flow: inout Flow, depth: Int) throws -> Outcome {
        guard depth < 32 else { throw Unreadable(description: "jump loop through \(table) \(chain)") }
        guard let rules = tables[table]?[chain] else { throw Unreadable(description: "no chain \(chain) in \(table)") }
        for rule in rules {
            guard try matches(rule, &flow) else { continue }
            path.append("\(table) \(rule.text)")
            switch rule.target {
            case nil:
                continue
            case .chain(let next):
                let outcome = try run(table, next, &flow, depth: depth + 1)
                if outcome != .fellThrough { return outcome }
            case .return:
                return .fellThrough
            case .accept:
                return .accept
            case .drop:
                return .drop
            case .reject:
                return .reject
            case .mark(let change):
                switch change {
                case .or(let v): flow.mark |= v
                case .xor(let v): flow.mark ^= v
                case .setX(let v, let m): flow.mark = (flow.mark & ~m) ^ v
                case .set(let v, let m): flow.mark = (flow.mark & ~m) | v
                }
            case .dnat(let to):
                // The kernel allows DNAT only where the destination is still undecided: in the
                // hooks before routing.
                guard currentHook == "PREROUTING" || currentHook == "OUTPUT" else {
                    throw Unreadable(description: "DNAT reached from \(currentHook): \(rule.text)")
                }
                let colon = to.lastIndex(of: ":")!
                flow.destination = try Self.address(String(to[..<colon]))
                flow.port = Int(to[to.index(after: colon)...])!
                flow.translated = to
                flow.ctstate.insert("DNAT")
                return .accept
            case .masquerade:
                guard currentHook == "POSTROUTING" else { throw Unreadable(description: "MASQUERADE reached from \(currentHook): \(rule.text)") }
                flow.masqueraded = true
                return .accept
            }
        }
        return .fellThrough
    }

    /// The built-in chain being walked: DNAT and MASQUERADE are valid in some hooks only.
    private var currentHook = ""

    private mutating func matches(_ rule: Rule, _ flow: inout Flow) throws -> Bool {
        if let s = rule.source, s.cidr.contains(flow.source) == s.negated { return false }
        if let d = rule.destination, d.cidr.contains(flow.destination) == d.negated { return false }
        if let p = rule.proto, (p.name == flow.proto) == p.negated { return false }
        for match in rule.matches {
            switch match {
            case .port(let port, let negated):
                if (flow.port == port) == negated { return false }
            case .localAddress(let ofDestination, let negated):
                if isLocal(ofDestination ? flow.destination : flow.source) == negated { return false }
            case .random(let p):
                let answer: Bool
                switch flow.chance {
                case .draw(let u):
                    answer = u < p
                    if !answer { flow.chance = .draw(p < 1 ? (u - p) / (1 - p) : 0) }
                case .answers(let list):
                    answer = flow.asked.count < list.count ? list[flow.asked.count] : false
                }
                flow.asked.append((p, answer))
                if !answer { return false }
            case .recentCheck(let list, let seconds, let reap, let negated):
                let key = flow.source.description
                var fresh = false
                if let seen = recent[list]?[key] {
                    fresh = seconds.map { now - seen < $0 } ?? true
                    if !fresh && reap { recent[list]?[key] = nil }
                }
                if fresh == negated { return false }
            case .recentSet(let list):
                recent[list, default: [:]][flow.source.description] = now
            case .mark(let value, let mask, let negated):
                if (flow.mark & mask == value) == negated { return false }
            case .ctstate(let states, let negated):
                if states.isDisjoint(with: flow.ctstate) != negated { return false }
            }
        }
        return true
    }
}
