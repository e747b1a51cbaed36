import Dispatch
import Synchronization

/// Splits one sync's rule set into several `iptables-restore --noflush` inputs, each applied
/// atomically, in an order where every intermediate state is a consistent rule set.
///
/// Why: iptables-nft 1.8.x keeps the chains a restore names in a sorted linked list
/// (`cache_chain_list_insert` in nft-cache.c) and walks it with strcmp for every declaration,
/// rule and jump target. One `--noflush` restore of N chains and R rules therefore costs about
/// R x N / 2 comparisons: 267 s for 10,000 services. Small batches keep the walks short: the
/// list only holds the names one restore uses. (Writing chains in descending name order would
/// make every walk stop at the head, but iptables-save then sorts them in quadratic time.)
/// Each batch also costs a process and a kernel commit that walks every chain of the table,
/// so they are not made smaller than needed.
///
/// The order: chains only jumped to come before the chains that jump to them (KUBE-MARK-MASQ,
/// then KUBE-SEP, then KUBE-SVC/SVL, then KUBE-EXT), and the last batch holds the filter table,
/// the top-level nat chains (KUBE-SERVICES, KUBE-NODEPORTS, ...) and the deletion of stale
/// chains, which nothing refers to any more once the top-level chains are rewritten. A packet
/// meanwhile meets either an old chain or a complete new one, never half of one.
public struct IptablesBatches: Sendable {
    /// One chain as it is written: flushed by its declaration, then filled.
    public struct Chain: Equatable, Sendable {
        public let name: String
        public let rules: [String]
        /// The chains its rules jump or go to (and targets such as DNAT, which are no chain).
        let targets: [String]

        public init(name: String, rules: [String]) {
            self.name = name
            self.rules = rules
            targets = rules.compactMap { IptablesBatches.target(of: $0) }
        }
    }

    /// Below this many rules a sync is one restore, as before; above it, service chains are
    /// cut into batches of about this many rules. Measured at 10,000 services x 3 endpoints
    /// (Benchmarks/results/proxy.md): smaller batches pay a process and a kernel commit each,
    /// larger ones the list walks above.
    public static let defaultRulesPerBatch = 2_000

    /// The restore inputs, in the order they are to be applied.
    /// - Parameters:
    ///   - filter: the filter table's chains to write (all top-level).
    ///   - nat: the nat table's chains to write, top-level and per-service.
    ///   - topLevel: the names of the nat table's top-level chains.
    ///   - stale: per-service chains to flush and delete.
    public static func plan(filter: [Chain], nat: [Chain], topLevel: Set<String>, stale: Set<String>,
                            rulesPerBatch: Int = defaultRulesPerBatch) -> [String] {
        let written = Set(nat.map(\.name))
        let depth = depths(nat, among: written)
        // Top-level chains that per-service chains jump to (KUBE-MARK-MASQ) must exist first;
        // the other top-level chains are the entries into ours and go last.
        let jumpedToByService = Set(nat.filter { !topLevel.contains($0.name) }.flatMap(\.targets))
        let entry = nat.filter { topLevel.contains($0.name) && !jumpedToByService.contains($0.name) }
        let body = nat.filter { !topLevel.contains($0.name) || jumpedToByService.contains($0.name) }
        let ordered = { (chains: [Chain]) -> [Chain] in
            // Stable, and not by name: chains created in name order make iptables-save 1.8.9
            // quadratic (it sorts them with a quicksort that takes the first as pivot): 18 s
            // instead of 3 s at 10,000 services. Hashed names in service order are random.
            let keyed = chains.enumerated().map { (depth: depth[$0.element.name] ?? 0, index: $0.offset, chain: $0.element) }
            return keyed.sorted { a, b in a.depth != b.depth ? a.depth < b.depth : a.index < b.index }.map(\.chain)
        }
        let total = (filter + nat).reduce(0) { $0 + $1.rules.count }
        if total <= rulesPerBatch {
            return [text(filter: filter, nat: ordered(body) + ordered(entry).map(sortedJumps), stale: stale)]
        }
        var batches: [[Chain]] = []
        var current: [Chain] = []
        var currentRules = 0
        var currentDepth = -1
        for chain in ordered(body) {
            let d = depth[chain.name] ?? 0
            // A batch of chains jumping to per-service chains never shares its list with the
            // chains it jumps to.
            let cut = !current.isEmpty && ((d != currentDepth && d >= 2) || currentRules + chain.rules.count > rulesPerBatch)
            if cut {
                batches.append(current)
                current = []
                currentRules = 0
            }
            current.append(chain)
            currentRules += chain.rules.count
            currentDepth = d
        }
        if !current.isEmpty { batches.append(current) }
        return batches.map { text(filter: [], nat: $0, stale: []) }
            + [text(filter: filter, nat: ordered(entry).map(sortedJumps), stale: stale)]
    }

    /// How many jumps away each chain is from a chain that jumps to none written here.
    static func depths(_ chains: [Chain], among written: Set<String>) -> [String: Int] {
        let byName = Dictionary(chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var depth: [String: Int] = [:]
        var visiting: Set<String> = []
        func visit(_ name: String) -> Int {
            if let d = depth[name] { return d }
            // A loop cannot be written anyway (the kernel refuses it); it must not hang us.
            guard let chain = byName[name], visiting.insert(name).inserted else { return 0 }
            var d = 0
            for target in chain.targets where written.contains(target) && target != name {
                d = max(d, visit(target) + 1)
            }
            visiting.remove(name)
            depth[name] = d
            return d
        }
        for chain in chains { _ = visit(chain.name) }
        return depth
    }

    /// The jumps to per-service chains in descending target order (each new target then sorts
    /// first in iptables' list, so 10,000 of them cost no walk; the chains exist already, so
    /// this order is not their creation order), the other rules after them in their order. Only the entry
    /// chains get this: their per-service jumps match disjoint destinations, so their order
    /// does not matter, while the rule that must stay last (KUBE-SERVICES' jump to
    /// KUBE-NODEPORTS) is not one of them.
    static func sortedJumps(_ chain: Chain) -> Chain {
        var jumps: [(target: String, rule: String)] = []
        var rest: [String] = []
        for rule in chain.rules {
            if let target = target(of: rule), ProxyNames.ownedPrefixes.contains(where: { target.hasPrefix($0) }) {
                jumps.append((target, rule))
            } else {
                rest.append(rule)
            }
        }
        guard !jumps.isEmpty else { return chain }
        // Stable: rules with the same target keep their order.
        let sorted = jumps.enumerated().sorted { a, b in
            a.element.target != b.element.target ? a.element.target > b.element.target : a.offset < b.offset
        }
        return Chain(name: chain.name, rules: sorted.map(\.element.rule) + rest)
    }

    /// Stale chains are flushed and deleted one at a time, those jumping to others first
    /// (FW, EXT, SVC/SVL, then SEP): what refers to a chain is then gone when it is deleted,
    /// and each name is at the head of iptables' list when it is used twice.
    static func staleLines(_ stale: Set<String>) -> [String] {
        let layers = ["KUBE-FW-", "KUBE-EXT-", "KUBE-SVC-", "KUBE-SEP-"]
        func layer(_ name: String) -> Int {
            if name.hasPrefix("KUBE-SVL-") { return 2 }
            return layers.firstIndex { name.hasPrefix($0) } ?? layers.count
        }
        return stale.sorted { a, b in layer(a) != layer(b) ? layer(a) < layer(b) : a > b }
            .flatMap { [":\($0) - [0:0]", "-X \($0)"] }
    }

    static func text(filter: [Chain], nat: [Chain], stale: Set<String>) -> String {
        var out: [String] = []
        if !filter.isEmpty || nat.isEmpty && stale.isEmpty {
            out.append("*filter")
            // Top-level chains keep their given order: declarations first, as always.
            out += filter.map { ":\($0.name) - [0:0]" }
            for chain in filter { out += chain.rules }
            out.append("COMMIT")
        }
        if !nat.isEmpty || !stale.isEmpty {
            out.append("*nat")
            for chain in nat {
                out.append(":\(chain.name) - [0:0]")
                out += chain.rules
            }
            out += staleLines(stale)
            out.append("COMMIT")
        }
        return out.joined(separator: "\n") + "\n"
    }

    /// The chain after the last `-j` or `-g`, or nil for a rule without one.
    static func target(of rule: String) -> String? {
        var rule = rule
        return rule.withUTF8 { bytes in
            var i = bytes.count - 4
            while i >= 0 {
                // " -j " or " -g "
                if bytes[i] == 0x20, bytes[i + 1] == 0x2D, bytes[i + 2] == 0x6A || bytes[i + 2] == 0x67, bytes[i + 3] == 0x20 {
                    let start = i + 4
                    var end = start
                    while end < bytes.count, bytes[end] != 0x20 { end += 1 }
                    return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
                }
                i -= 1
            }
            return nil
        }
    }

    /// The chains of all `groups`, in order; split over the cores for a large sync (reading
    /// 100,000 rules' jump targets takes a while).
    static func chains(of groups: [IptablesRules.ChainGroup], workers: Int = 2) -> [Chain] {
        guard groups.count >= 1_000, workers > 1 else { return groups.flatMap(chains(of:)) }
        let parts = Mutex<[Int: [Chain]]>([:])
        let size = (groups.count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let part = groups[min(w * size, groups.count)..<min((w + 1) * size, groups.count)].flatMap(chains(of:))
            parts.withLock { $0[w] = part }
        }
        return parts.withLock { parts in (0..<workers).flatMap { parts[$0] ?? [] } }
    }

    /// One service port's chains, from its declarations and rules.
    static func chains(of group: IptablesRules.ChainGroup) -> [Chain] {
        let names = group.declarations.map { String($0.dropFirst().prefix { $0 != " " }) }
        // A handful of chains per group: a linear search beats a dictionary per group.
        var rules = Array(repeating: [String](), count: names.count)
        for rule in group.rules {
            let chain = rule.dropFirst(3).prefix { $0 != " " }
            if let i = names.firstIndex(where: { $0 == chain }) { rules[i].append(rule) }
        }
        return zip(names, rules).map { Chain(name: $0, rules: $1) }
    }
}
