/// What turns the `ip kube-proxy` table rendered for one set of service ports into the table
/// rendered for the next: the chains to write (created, or flushed and refilled), the map and
/// set elements to delete and add, the chains and affinity sets to delete. Upstream's
/// nftables proxier sends the same kind of partial transaction after its first sync.
///
/// `text` is the delta as `nft -f` input, the source of truth (the tracer tests apply it to
/// the old table and compare with a full render); the in-process writer sends the same
/// operations, the chains through libnftables and the rest as nf_tables netlink messages.
public struct NftablesDelta: Equatable, Sendable {
    /// Affinity sets the written chains use. `add set` of an existing set is a no-op, and
    /// declaring them again lets libnftables resolve `@set` without reading every set back.
    public var sets: [NftablesRules.AffinitySet] = []
    /// In an order where a chain exists before a chain jumping to it is written.
    public var chains: [NftablesRules.Chain] = []
    public var elementsRemoved: [NftablesRules.Element] = []
    public var elementsAdded: [NftablesRules.Element] = []
    /// In an order where nothing still jumps to a chain when it is deleted.
    public var chainsRemoved: [String] = []
    public var setsRemoved: [String] = []

    public var isEmpty: Bool {
        chains.isEmpty && elementsRemoved.isEmpty && elementsAdded.isEmpty && chainsRemoved.isEmpty && setsRemoved.isEmpty
    }

    static let table = "ip \(NftablesRules.table)"

    /// The part libnftables applies: sets and chains only, in forms whose evaluation needs no
    /// more than the table list from the kernel (`add rule` would make nft 1.0.6 read every
    /// chain and set of a 10,000-service table first).
    public var chainScript: String {
        var out: [String] = []
        for s in sets {
            out.append("add set \(Self.table) \(s.name) { type ipv4_addr; flags dynamic,timeout; timeout \(s.seconds)s; }")
        }
        for c in chains {
            out.append("add chain \(Self.table) \(c.name)")
            out.append("flush chain \(Self.table) \(c.name)")
            if !c.rules.isEmpty { out.append("add chain \(Self.table) \(c.name) { \(c.rules.joined(separator: "; ")); }") }
        }
        return out.isEmpty ? "" : out.joined(separator: "\n") + "\n"
    }

    /// The whole delta as one `nft -f` transaction.
    public var text: String {
        var out = chainScript
        for e in elementsRemoved { out += "delete element \(Self.table) \(e.map) { \(Self.key(e.element)) }\n" }
        for e in elementsAdded { out += "add element \(Self.table) \(e.map) { \(e.element) }\n" }
        for c in chainsRemoved { out += "delete chain \(Self.table) \(c)\n" }
        for s in setsRemoved { out += "delete set \(Self.table) \(s)\n" }
        return out
    }

    /// An element's key: what a delete names.
    static func key(_ element: String) -> String {
        element.components(separatedBy: " : ").first ?? element
    }
}

extension NftablesRules {
    /// The delta from the table rendered for `old` to the one rendered for `new`. Only service
    /// ports that were added, removed or changed are rendered; within them only chains whose
    /// rules changed are written.
    public func delta(old: [String: ProxyServicePort], new: [ProxyServicePort]) -> NftablesDelta {
        var delta = NftablesDelta()
        var newIDs = Set<String>()
        var removedClusterIPs = Set<String>()
        var addedClusterIPs = Set<String>()
        var chainsRemoved: [String] = []
        var setsAdded: [AffinitySet] = []
        var setsRemoved: [String] = []
        for sp in new {
            newIDs.insert(sp.id)
            let before = old[sp.id]
            if before == sp { continue }
            let now = parts(sp)
            let then = before.map(parts) ?? PortParts()
            if let ip = before?.clusterIP, ip != sp.clusterIP { removedClusterIPs.insert(ip) }
            if let ip = sp.clusterIP, ip != before?.clusterIP { addedClusterIPs.insert(ip) }
            let oldChains = Dictionary(then.chains.map { ($0.name, $0.rules) }, uniquingKeysWith: { a, _ in a })
            let newChainNames = Set(now.chains.map(\.name))
            for c in now.chains where oldChains[c.name] != c.rules { delta.chains.append(c) }
            chainsRemoved += then.chains.map(\.name).filter { !newChainNames.contains($0) }
            let oldElements = Set(then.elements), newElements = Set(now.elements)
            delta.elementsRemoved += then.elements.filter { !newElements.contains($0) }
            delta.elementsAdded += now.elements.filter { !oldElements.contains($0) }
            // A set whose timeout changed must be recreated; its chains are rewritten anyway.
            let newSets = Set(now.affinitySets)
            setsRemoved += then.affinitySets.filter { !newSets.contains($0) }.map(\.name)
            setsAdded += now.affinitySets
        }
        for (id, sp) in old where !newIDs.contains(id) {
            let then = parts(sp)
            if let ip = sp.clusterIP { removedClusterIPs.insert(ip) }
            chainsRemoved += then.chains.map(\.name)
            delta.elementsRemoved += then.elements
            setsRemoved += then.affinitySets.map(\.name)
        }
        // A cluster IP stays in @cluster-ips while any port of it remains (one per service,
        // several ports), so the full list is only built when one may have to go.
        if !removedClusterIPs.isEmpty || !addedClusterIPs.isEmpty {
            let oldIPs = Set(old.values.compactMap(\.clusterIP))
            let newIPs = Set(new.compactMap(\.clusterIP))
            for ip in removedClusterIPs.sorted() where !newIPs.contains(ip) {
                delta.elementsRemoved.append(Element(map: "cluster-ips", element: ip))
            }
            for ip in addedClusterIPs.sorted() where !oldIPs.contains(ip) {
                delta.elementsAdded.append(Element(map: "cluster-ips", element: ip))
            }
        }
        // A set whose timeout changed keeps its name: declaring it again is refused by the
        // kernel, and the proxier then falls back to replacing the whole table (rare: an edit
        // of sessionAffinityConfig).
        let recreated = Set(setsAdded.map(\.name))
        delta.setsRemoved = setsRemoved.filter { !recreated.contains($0) }
        delta.sets = setsAdded.filter { s in !delta.setsRemoved.contains(s.name) }
        // Jumps go external -> service/local -> endpoint: delete from the top down.
        func rank(_ name: String) -> Int {
            if name.hasPrefix("external-") { return 0 }
            if name.hasPrefix("service-") { return 1 }
            if name.hasPrefix("local-") { return 2 }
            return 3
        }
        delta.chainsRemoved = chainsRemoved.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        return delta
    }
}
