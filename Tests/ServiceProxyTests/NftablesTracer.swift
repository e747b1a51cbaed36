import Foundation
@testable import Networking
@testable import ServiceProxy

/// Follows one packet through a rendered nftables rule set, the way the kernel would for the
/// rule forms NftablesRules writes: the nat hook's `services` dispatch, the service, external
/// and endpoint chains, then the filter checks. An oracle for unit tests: a rule it cannot
/// read is an error, not a silent pass.
struct NftablesTracer {
    enum Origin { case pod, node, outside }

    struct Packet {
        var source: String
        var destination: String
        var proto = "tcp"
        var port: Int
        var origin: Origin
        /// What `numgen random mod N` returns for this packet.
        var random = 0
    }

    enum Verdict: Equatable {
        case dnat(to: String, masquerade: Bool)
        case rejected
        case dropped
        /// Not a service packet: the rule set lets it through untouched.
        case untouched
    }

    struct Unreadable: Error, CustomStringConvertible { var description: String }

    var chains: [String: [String]] = [:]
    var maps: [String: [String: String]] = [:]
    var sets: [String: Set<String>] = [:]
    /// Affinity memory, as the kernel's dynamic sets keep it.
    var affinity: [String: Set<String>] = [:]
    let nodeAddresses: Set<String>
    let serviceCIDR: String

    init(_ text: String, nodeAddresses: Set<String>, serviceCIDR: String) throws {
        self.nodeAddresses = nodeAddresses
        self.serviceCIDR = serviceCIDR
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        var i = 0
        while i < lines.count {
            let line = lines[i]
            if line.hasPrefix("chain "), line.hasSuffix("{") {
                let name = String(line.dropFirst(6).dropLast(2))
                var rules: [String] = []
                i += 1
                while i < lines.count, lines[i] != "}" {
                    if !lines[i].hasPrefix("type ") { rules.append(lines[i]) }
                    i += 1
                }
                chains[name] = rules
            } else if line.hasPrefix("map ") || line.hasPrefix("set "), line.hasSuffix("{") {
                let isMap = line.hasPrefix("map ")
                let name = String(line.dropFirst(4).dropLast(2))
                var elements: [String] = []
                i += 1
                while i < lines.count, lines[i] != "}" {
                    if lines[i].hasPrefix("elements = { ") {
                        elements = lines[i].dropFirst(13).dropLast(2).components(separatedBy: ", ")
                    }
                    i += 1
                }
                if isMap {
                    var map: [String: String] = [:]
                    for e in elements {
                        let parts = e.components(separatedBy: " : ")
                        map[parts[0]] = parts[1]
                    }
                    maps[name] = map
                } else {
                    sets[name] = Set(elements)
                }
            }
            i += 1
        }
    }

    static func inside(_ ip: String, _ cidr: String) -> Bool {
        guard let c = IPv4.CIDR(cidr), let a = IPv4.Address(ip) else { return false }
        return c.contains(a)
    }

    mutating func trace(_ p: Packet) throws -> Verdict {
        let local = nodeAddresses.contains(p.destination)
        // filter hooks before DNAT (priority -110): endpoints checks on new connections.
        let noEndpoints = [maps["no-endpoint-services"]?["\(p.destination) . \(p.proto) . \(p.port)"],
                           local ? maps["no-endpoint-nodeports"]?["\(p.proto) . \(p.port)"] : nil].compactMap { $0 }
        for verdict in noEndpoints {
            switch verdict {
            case "goto reject-chain": return .rejected
            case "drop": return .dropped
            default: throw Unreadable(description: "no-endpoint verdict \(verdict)")
            }
        }
        // nat: services.
        var mark = false
        var target: String?
        if let verdict = maps["service-ips"]?["\(p.destination) . \(p.proto) . \(p.port)"] {
            target = String(verdict.dropFirst(5))
        } else if local, !p.destination.hasPrefix("127."), let verdict = maps["service-nodeports"]?["\(p.proto) . \(p.port)"] {
            target = String(verdict.dropFirst(5))
        }
        var dnat: String?
        var chain = target
        var hops = 0
        while let name = chain, dnat == nil {
            hops += 1
            guard hops < 10, let rules = chains[name] else { throw Unreadable(description: "no chain \(name)") }
            chain = nil
            ruleLoop: for rule in rules {
                let words = rule.split(separator: " ").map(String.init)
                var w = words[...]
                // Matches, then an action.
                while let first = w.first {
                    switch first {
                    case "ip" where w.dropFirst().first == "daddr":
                        if w.dropFirst(2).first != p.destination { continue ruleLoop }
                        w = w.dropFirst(3)
                    case "ip" where w.dropFirst().first == "saddr":
                        let arg = w.dropFirst(2).first ?? ""
                        if arg == "!=" {
                            if Self.inside(p.source, w.dropFirst(3).first ?? "") { continue ruleLoop }
                            w = w.dropFirst(4)
                        } else if arg.hasPrefix("@") {
                            if affinity[String(arg.dropFirst()), default: []].contains(p.source) == false { continue ruleLoop }
                            w = w.dropFirst(3)
                        } else if arg.contains("/") {
                            if !Self.inside(p.source, arg) { continue ruleLoop }
                            w = w.dropFirst(3)
                        } else {
                            if p.source != arg { continue ruleLoop }
                            w = w.dropFirst(3)
                        }
                    case "tcp", "udp":
                        if first != p.proto || w.dropFirst(2).first != String(p.port) { continue ruleLoop }
                        w = w.dropFirst(3)
                    case "fib":
                        if !(p.origin == .node || nodeAddresses.contains(p.source)) { continue ruleLoop }
                        w = w.dropFirst(4)
                    case "jump" where w.dropFirst().first == "mark-for-masquerade":
                        mark = true
                        continue ruleLoop
                    case "goto":
                        chain = w.dropFirst().first
                        break ruleLoop
                    case "numgen":
                        let n = Int(w.dropFirst(3).first ?? "") ?? 0
                        guard n > 0, let open = rule.range(of: "{ "), let close = rule.range(of: " }") else {
                            throw Unreadable(description: rule)
                        }
                        let choices = rule[open.upperBound..<close.lowerBound].components(separatedBy: ", ")
                        chain = choices[p.random % n].components(separatedBy: " : goto ").last
                        break ruleLoop
                    case "update":
                        affinity[String((w.dropFirst().first ?? "").dropFirst()), default: []].insert(p.source)
                        continue ruleLoop
                    case "meta" where w.dropFirst(2).first == p.proto && w.dropFirst(3).first == "dnat":
                        dnat = w.dropFirst(5).first
                        break ruleLoop
                    case "drop":
                        return .dropped
                    default:
                        throw Unreadable(description: "cannot read rule: \(rule)")
                    }
                }
            }
            if chain == nil && dnat == nil { throw Unreadable(description: "chain \(name) ended without a verdict") }
        }
        if let dnat { return .dnat(to: dnat, masquerade: mark) }
        // filter after DNAT: cluster-ips-check.
        if sets["cluster-ips"]?.contains(p.destination) == true { return .rejected }
        if Self.inside(p.destination, serviceCIDR) { return .rejected }
        return .untouched
    }
}
