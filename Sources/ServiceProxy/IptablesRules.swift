/// What the iptables rule set depends on besides the services.
public struct ProxySettings: Equatable, Sendable {
    public var nodeName: String
    /// The pod range: traffic from elsewhere to a cluster IP is masqueraded (kube-proxy's
    /// local-traffic detector by cluster CIDR).
    public var clusterCIDR: String
    /// The service range: a packet to an unallocated address there is rejected, not routed on.
    public var serviceCIDR: String
    /// kube-proxy's masquerade mark, bit 14.
    public var masqueradeMark = "0x4000"
    /// NodePorts on 127.0.0.1 too (iptables mode only; needs `route_localnet=1`). Opt-in:
    /// route_localnet opens the node's loopback range to its neighbours (CVE-2020-8558),
    /// which the KUBE-FIREWALL drop rule closes again.
    public var localhostNodePorts = false

    public init(nodeName: String, clusterCIDR: String, serviceCIDR: String) {
        self.nodeName = nodeName
        self.clusterCIDR = clusterCIDR
        self.serviceCIDR = serviceCIDR
    }
}

/// Renders kube-proxy's iptables layout (proxy-dns-spec.md A1-A10) as `iptables-restore`
/// input: the filter table, then nat. Chains are declared (which flushes just them under
/// `--noflush`) and filled; chains of ours that are no longer needed are declared and
/// deleted, so other software's rules in the same tables are never touched.
public struct IptablesRules: Sendable {
    public let settings: ProxySettings

    public init(settings: ProxySettings) { self.settings = settings }

    /// Top-level chains, rewritten on every sync.
    public static let filterChains = ["KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD", "KUBE-NODEPORTS", "KUBE-PROXY-FIREWALL", "KUBE-FIREWALL"]
    public static let natChains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"]

    /// Where the built-in chains jump into ours: (table, chain, rule arguments), each inserted
    /// at the top once, and deleted with the same arguments on cleanup.
    public static let jumps: [(table: String, chain: String, rule: [String])] = [
        ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES"]),
        ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes externally-visible service portals", "-j", "KUBE-EXTERNAL-SERVICES"]),
        ("filter", "INPUT", ["-m", "comment", "--comment", "kubernetes health check service ports", "-j", "KUBE-NODEPORTS"]),
        ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]),
        ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]),
        ("filter", "FORWARD", ["-m", "comment", "--comment", "kubernetes forwarding rules", "-j", "KUBE-FORWARD"]),
        ("filter", "INPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
        ("filter", "OUTPUT", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
        ("filter", "FORWARD", ["-m", "conntrack", "--ctstate", "NEW", "-m", "comment", "--comment", "kubernetes load balancer firewall", "-j", "KUBE-PROXY-FIREWALL"]),
        // The martian drop lives in KUBE-FIREWALL, which kubelet owns on a real node.
        ("filter", "INPUT", ["-j", "KUBE-FIREWALL"]),
        ("filter", "OUTPUT", ["-j", "KUBE-FIREWALL"]),
        ("nat", "OUTPUT", ["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]),
        ("nat", "PREROUTING", ["-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"]),
        ("nat", "POSTROUTING", ["-m", "comment", "--comment", "kubernetes postrouting rules", "-j", "KUBE-POSTROUTING"]),
    ]

    /// Endpoints some chain of the service jumps to; each gets a KUBE-SEP chain.
    func usedEndpoints(_ sp: ProxyServicePort) -> [ProxyEndpoint] {
        var used = sp.clusterEndpoints
        if sp.internalPolicyLocal || sp.externalPolicyLocal {
            used += sp.localEndpoints(node: settings.nodeName).filter { !used.contains($0) }
        }
        return used
    }

    func hasExternal(_ sp: ProxyServicePort) -> Bool {
        sp.nodePort != nil || !sp.externalIPs.isEmpty || !sp.loadBalancerIPs.isEmpty
    }

    /// The per-service chains of one service port: declarations and rules. A partial sync
    /// leaves out the groups that did not change since the last one.
    public struct ChainGroup: Equatable, Sendable {
        public var declarations: [String] = []
        public var rules: [String] = []
    }

    /// The whole rule set (a full sync). `stale` are per-service chains written before and
    /// not wanted now.
    public func render(_ ports: [ProxyServicePort], stale: Set<String> = []) -> String {
        render(ports, groups: ports.filter(\.hasEndpoints).map(chainGroup), stale: stale)
    }

    /// The top-level chains (all of them, or those in `topLevel`), the given per-service
    /// groups, and the deletion of `stale` chains, as one text (the batches of
    /// `renderBatches`, one after the other).
    public func render(_ ports: [ProxyServicePort], groups: [ChainGroup], stale: Set<String>,
                       topLevel: Set<String>? = nil, precomputed: [String: [String]]? = nil) -> String {
        renderBatches(ports, groups: groups, stale: stale, topLevel: topLevel, precomputed: precomputed).joined()
    }

    /// The same as `iptables-restore --noflush` inputs to apply in order, each atomic; a sync
    /// above `rulesPerBatch` rules is split (IptablesBatches says how and why).
    public func renderBatches(_ ports: [ProxyServicePort], groups: [ChainGroup], stale: Set<String>,
                              topLevel: Set<String>? = nil, precomputed: [String: [String]]? = nil,
                              rulesPerBatch: Int = IptablesBatches.defaultRulesPerBatch) -> [String] {
        let top = precomputed ?? topLevelChains(ports)
        let wanted = { (key: String) in topLevel?.contains(key) ?? true }
        let filter = Self.filterChains.filter { wanted("filter/" + $0) }.map { IptablesBatches.Chain(name: $0, rules: top["filter/" + $0] ?? []) }
        var nat = Self.natChains.filter { wanted("nat/" + $0) }.map { IptablesBatches.Chain(name: $0, rules: top["nat/" + $0] ?? []) }
        nat += IptablesBatches.chains(of: groups)
        return IptablesBatches.plan(filter: filter, nat: nat, topLevel: Set(Self.natChains), stale: stale, rulesPerBatch: rulesPerBatch)
    }

    /// The rules of each top-level chain, keyed `table/chain`.
    public func topLevelChains(_ ports: [ProxyServicePort], pieces: ((ProxyServicePort) -> TopLevelPiece)? = nil) -> [String: [String]] {
        var filter: [String] = []
        var nat: [String] = []
        let mark = settings.masqueradeMark
        var natServices: [String] = []
        var natNodePorts: [String] = []
        for sp in ports {
            let piece = pieces?(sp) ?? topLevelPiece(sp)
            filter += piece.filter
            natServices += piece.natServices
            natNodePorts += piece.natNodePorts
        }
        // Anything still addressed to the service range was not a service: refuse it here
        // rather than route it on (the nftables mode's cluster-ips check, for iptables).
        filter.append(rule("KUBE-SERVICES", comment("unallocated service address") + ["-d", settings.serviceCIDR, "-j", "REJECT"]))
        filter.append(rule("KUBE-FORWARD", ["-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]))
        // With route_localnet a neighbour could reach services bound to 127.0.0.1 by sending
        // to it from outside: only loopback sources and DNATed flows may use 127/8. Always
        // written, so route_localnet is never on without it.
        filter.append(rule("KUBE-FIREWALL", comment("block incoming localnet connections")
                           + ["-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack", "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP"]))
        filter.append(rule("KUBE-FORWARD", comment("kubernetes forwarding rules") + ["-m", "mark", "--mark", "\(mark)/\(mark)", "-j", "ACCEPT"]))
        filter.append(rule("KUBE-FORWARD", comment("kubernetes forwarding conntrack rule") + ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"]))

        // nat: masquerading, then the dispatch from KUBE-SERVICES to per-service chains.
        nat.append(rule("KUBE-POSTROUTING", ["-m", "mark", "!", "--mark", "\(mark)/\(mark)", "-j", "RETURN"]))
        nat.append(rule("KUBE-POSTROUTING", ["-j", "MARK", "--xor-mark", mark]))
        nat.append(rule("KUBE-POSTROUTING", comment("kubernetes service traffic requiring SNAT") + ["-j", "MASQUERADE", "--random-fully"]))
        nat.append(rule("KUBE-MARK-MASQ", ["-j", "MARK", "--or-mark", mark]))
        nat += natServices
        nat += natNodePorts
        // Last: anything for a local address may be a NodePort (127/8 only when localhost
        // NodePorts are on).
        let loopback = settings.localhostNodePorts ? [] : ["!", "-d", "127.0.0.0/8"]
        nat.append(rule("KUBE-SERVICES", comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain")
                        + ["-m", "addrtype", "--dst-type", "LOCAL"] + loopback + ["-j", "KUBE-NODEPORTS"]))

        var chains: [String: [String]] = [:]
        for line in filter { chains["filter/" + Self.chainOf(line), default: []].append(line) }
        for line in nat { chains["nat/" + Self.chainOf(line), default: []].append(line) }
        for chain in Self.filterChains where chains["filter/" + chain] == nil { chains["filter/" + chain] = [] }
        for chain in Self.natChains where chains["nat/" + chain] == nil { chains["nat/" + chain] = [] }
        return chains
    }

    /// One service port's rules in the top-level chains (cached by the proxier while the port
    /// does not change: building them for every port on every sync is the cost of a sync).
    public struct TopLevelPiece: Equatable, Sendable {
        public var filter: [String] = []
        public var natServices: [String] = []
        public var natNodePorts: [String] = []
    }

    public func topLevelPiece(_ sp: ProxyServicePort) -> TopLevelPiece {
        var piece = TopLevelPiece()
        let match = ["-m", sp.proto, "-p", sp.proto]
        if !sp.hasEndpoints {
            // filter: rejects for services without endpoints.
            if let ip = sp.clusterIP {
                piece.filter.append(rule("KUBE-SERVICES", comment("\(sp.key) has no endpoints") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", "REJECT"]))
            }
            for ip in sp.externalIPs + sp.loadBalancerIPs {
                piece.filter.append(rule("KUBE-EXTERNAL-SERVICES", comment("\(sp.key) has no endpoints") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", "REJECT"]))
            }
            if let np = sp.nodePort {
                piece.filter.append(rule("KUBE-EXTERNAL-SERVICES", comment("\(sp.key) has no endpoints") + ["-m", "addrtype", "--dst-type", "LOCAL"]
                                         + match + ["--dport", "\(np)", "-j", "REJECT"]))
            }
            return piece
        }
        if sp.internalPolicyLocal, sp.localEndpoints(node: settings.nodeName).isEmpty, let ip = sp.clusterIP {
            piece.filter.append(rule("KUBE-SERVICES", comment("\(sp.key) has no local endpoints") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", "DROP"]))
        }
        if sp.externalPolicyLocal, sp.localEndpoints(node: settings.nodeName).isEmpty {
            // Outside traffic is left un-DNATed by KUBE-EXT (pods and the node still get the
            // cluster-wide endpoints): drop it here rather than let it reach the node itself.
            for ip in sp.externalIPs + sp.loadBalancerIPs {
                piece.filter.append(rule("KUBE-EXTERNAL-SERVICES", comment("\(sp.key) has no local endpoints") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", "DROP"]))
            }
            if let np = sp.nodePort {
                piece.filter.append(rule("KUBE-EXTERNAL-SERVICES", comment("\(sp.key) has no local endpoints") + ["-m", "addrtype", "--dst-type", "LOCAL"]
                                         + match + ["--dport", "\(np)", "-j", "DROP"]))
            }
        }
        let internalTarget = sp.internalPolicyLocal ? sp.localChain : sp.serviceChain
        if let ip = sp.clusterIP {
            piece.natServices.append(rule("KUBE-SERVICES", comment("\(sp.key) cluster IP") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", internalTarget]))
        }
        for ip in sp.externalIPs {
            piece.natServices.append(rule("KUBE-SERVICES", comment("\(sp.key) external IP") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", sp.externalChain]))
        }
        for ip in sp.loadBalancerIPs {
            piece.natServices.append(rule("KUBE-SERVICES", comment("\(sp.key) loadbalancer IP") + match + ["-d", ip, "--dport", "\(sp.port)", "-j", sp.externalChain]))
        }
        if let np = sp.nodePort {
            piece.natNodePorts.append(rule("KUBE-NODEPORTS", comment(sp.key) + match + ["--dport", "\(np)", "-j", sp.externalChain]))
        }
        return piece
    }

    /// The chain of an `-A CHAIN ...` line.
    static func chainOf(_ line: String) -> String {
        String(line.dropFirst(3).prefix { $0 != " " })
    }

    /// KUBE-SVC (masquerade what does not come from a pod, then pick an endpoint), KUBE-SVL,
    /// KUBE-EXT and one KUBE-SEP per endpoint (hairpin masquerade, then DNAT).
    public func chainGroup(_ sp: ProxyServicePort) -> ChainGroup {
        var g = ChainGroup()
        let match = ["-m", sp.proto, "-p", sp.proto]
        let svc = sp.serviceChain
        g.declarations.append(":\(svc) - [0:0]")
        // Off-cluster traffic to the cluster IP is masqueraded in the chain the cluster IP
        // jumps to (KUBE-SVL with internalTrafficPolicy Local), as upstream does.
        let masquerade = sp.clusterIP.map { ip in
            rule(sp.internalPolicyLocal ? sp.localChain : svc, comment("\(sp.key) cluster IP") + match
                 + ["-d", ip, "--dport", "\(sp.port)", "!", "-s", settings.clusterCIDR, "-j", "KUBE-MARK-MASQ"])
        }
        if !sp.internalPolicyLocal, let masquerade { g.rules.append(masquerade) }
        g.rules += dispatch(sp, chain: svc, endpoints: sp.clusterEndpoints)
        if sp.internalPolicyLocal || sp.externalPolicyLocal {
            g.declarations.append(":\(sp.localChain) - [0:0]")
            if sp.internalPolicyLocal, let masquerade { g.rules.append(masquerade) }
            g.rules += dispatch(sp, chain: sp.localChain, endpoints: sp.localEndpoints(node: settings.nodeName))
        }
        if hasExternal(sp) {
            let ext = sp.externalChain
            g.declarations.append(":\(ext) - [0:0]")
            if sp.externalPolicyLocal {
                g.rules.append(rule(ext, comment("pod traffic for \(sp.key) external destinations") + ["-s", settings.clusterCIDR, "-j", svc]))
                g.rules.append(rule(ext, comment("masquerade LOCAL traffic for \(sp.key) external destinations") + ["-m", "addrtype", "--src-type", "LOCAL", "-j", "KUBE-MARK-MASQ"]))
                g.rules.append(rule(ext, comment("route LOCAL traffic for \(sp.key) external destinations") + ["-m", "addrtype", "--src-type", "LOCAL", "-j", svc]))
                if !sp.localEndpoints(node: settings.nodeName).isEmpty { g.rules.append(rule(ext, ["-j", sp.localChain])) }
            } else {
                g.rules.append(rule(ext, comment("masquerade traffic for \(sp.key) external destinations") + ["-j", "KUBE-MARK-MASQ"]))
                g.rules.append(rule(ext, ["-j", svc]))
            }
        }
        for e in usedEndpoints(sp) {
            let sep = sp.endpointChain(e)
            g.declarations.append(":\(sep) - [0:0]")
            g.rules.append(rule(sep, comment(sp.key) + ["-s", "\(e.ip)/32", "-j", "KUBE-MARK-MASQ"]))
            var dnat = comment(sp.key)
            if sp.affinitySeconds != nil { dnat += ["-m", "recent", "--name", sep, "--mask", "255.255.255.255", "--set", "--rsource"] }
            g.rules.append(rule(sep, dnat + match + ["-j", "DNAT", "--to-destination", e.address]))
        }
        return g
    }

    func comment(_ text: String) -> [String] { ["-m", "comment", "--comment", quote(text)] }

    /// Affinity checks, then one rule per endpoint with probability 1/(n-i), the last one
    /// unconditional: a uniform choice per new connection.
    func dispatch(_ sp: ProxyServicePort, chain: String, endpoints: [ProxyEndpoint]) -> [String] {
        var rules: [String] = []
        if let seconds = sp.affinitySeconds {
            for e in endpoints {
                let sep = sp.endpointChain(e)
                rules.append(rule(chain, ["-m", "comment", "--comment", quote("\(sp.key) -> \(e.address)"), "-m", "recent", "--name", sep,
                                          "--mask", "255.255.255.255", "--rcheck", "--seconds", "\(seconds)", "--reap", "--rsource", "-j", sep]))
            }
        }
        for (i, e) in endpoints.enumerated() {
            var args = ["-m", "comment", "--comment", quote("\(sp.key) -> \(e.address)")]
            if i < endpoints.count - 1 {
                args += ["-m", "statistic", "--mode", "random", "--probability", Self.probability(endpoints.count - i)]
            }
            rules.append(rule(chain, args + ["-j", sp.endpointChain(e)]))
        }
        return rules
    }

    /// 1/n with ten decimals, as kube-proxy prints it.
    static func probability(_ n: Int) -> String {
        let value = 1.0 / Double(n)
        let scaled = (value * 1e10).rounded()
        let whole = Int(scaled) / 10_000_000_000
        let fraction = String(Int(scaled) % 10_000_000_000)
        return "\(whole)." + String(repeating: "0", count: 10 - fraction.count) + fraction
    }

    func rule(_ chain: String, _ args: [String]) -> String {
        "-A \(chain) " + args.joined(separator: " ")
    }

    /// iptables-restore splits on spaces: a comment with spaces is double-quoted.
    func quote(_ text: String) -> String {
        text.contains(" ") ? "\"\(text)\"" : text
    }
}
