/// kube-proxy's nftables mode as `nft -f` input (proxy-dns-spec.md A13): one `ip kube-proxy`
/// table holding verdict maps from address, protocol and port to per-service chains, a
/// `numgen random` choice among endpoint chains, and the same masquerade mark as the
/// iptables mode. Pure: rendering is tested without root.
public struct NftablesRules: Sendable {
    public static let table = "kube-proxy"
    let settings: ProxySettings

    public init(settings: ProxySettings) { self.settings = settings }

    // MARK: Names (upstream's: a hash prefix, then the readable base)

    /// `ns/name/proto/portName`, the base every per-service name is built from.
    static func base(_ sp: ProxyServicePort) -> String { "\(sp.namespace)/\(sp.name)/\(sp.proto)/\(sp.portName)" }
    static func serviceChain(_ sp: ProxyServicePort) -> String { "service-" + ProxyNames.nftHashed(base(sp)) }
    static func localChain(_ sp: ProxyServicePort) -> String { "local-" + ProxyNames.nftHashed(base(sp)) }
    static func externalChain(_ sp: ProxyServicePort) -> String { "external-" + ProxyNames.nftHashed(base(sp)) }
    static func endpointBase(_ sp: ProxyServicePort, _ e: ProxyEndpoint) -> String { base(sp) + "__\(e.ip)/\(e.port)" }
    static func endpointChain(_ sp: ProxyServicePort, _ e: ProxyEndpoint) -> String { "endpoint-" + ProxyNames.nftHashed(endpointBase(sp, e)) }
    static func affinitySet(_ sp: ProxyServicePort, _ e: ProxyEndpoint) -> String { "affinity-" + ProxyNames.nftHashed(endpointBase(sp, e)) }

    /// Names go unquoted: nft's identifiers may hold `/`, `-` and `.` after a first letter,
    /// and it refuses quoted names as jump targets.
    static func q(_ name: String) -> String { name }

    /// Whether the port is reached from outside the node (NodePort, external or LB address).
    static func isExternal(_ sp: ProxyServicePort) -> Bool {
        sp.nodePort != nil || !sp.externalIPs.isEmpty || !sp.loadBalancerIPs.isEmpty
    }

    // MARK: Rendering

    /// The whole table, replaced in one transaction: `add` makes the delete safe when the
    /// table is not there yet, and the kernel applies the file atomically.
    public func render(_ ports: [ProxyServicePort]) -> String {
        var out: [String] = ["add table ip \(Self.table)", "delete table ip \(Self.table)", "table ip \(Self.table) {",
                             "\tcomment \"rules for kube-proxy\""]
        let mark = settings.masqueradeMark
        var clusterIPs = Set<String>()
        var elements: [String: [String]] = [:]
        var affinitySets: [String] = []
        var chains: [(String, [String])] = []
        for sp in ports {
            if let ip = sp.clusterIP { clusterIPs.insert(ip) }
            let parts = self.parts(sp)
            for e in parts.elements { elements[e.map, default: []].append(e.element) }
            affinitySets += parts.affinitySets.map { "\tset \(Self.q($0.name)) {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout \($0.seconds)s\n\t}" }
            chains += parts.chains.map { ($0.name, $0.rules) }
        }
        let serviceIPs = elements["service-ips"] ?? [], nodePorts = elements["service-nodeports"] ?? []
        let noEndpointServices = elements["no-endpoint-services"] ?? [], noEndpointNodePorts = elements["no-endpoint-nodeports"] ?? []

        out.append(Self.set("cluster-ips", type: "ipv4_addr", comment: "Active ClusterIPs", elements: clusterIPs.sorted()))
        out.append(Self.map("service-ips", type: "ipv4_addr . inet_proto . inet_service : verdict",
                            comment: "ClusterIP, ExternalIP and LoadBalancer IP traffic", elements: serviceIPs))
        out.append(Self.map("service-nodeports", type: "inet_proto . inet_service : verdict", comment: "NodePort traffic", elements: nodePorts))
        out.append(Self.map("no-endpoint-services", type: "ipv4_addr . inet_proto . inet_service : verdict",
                            comment: "vmap to drop or reject packets to services with no endpoints", elements: noEndpointServices))
        out.append(Self.map("no-endpoint-nodeports", type: "inet_proto . inet_service : verdict",
                            comment: "vmap to drop or reject packets to service nodeports with no endpoints", elements: noEndpointNodePorts))
        out += affinitySets

        // Base chains and helpers, at the hooks and priorities kube-proxy uses.
        let local = "fib daddr type local ip daddr != 127.0.0.0/8"
        let fixed: [(String, [String])] = [
            ("filter-prerouting", ["type filter hook prerouting priority dstnat - 10; policy accept;"]),
            ("filter-input", ["type filter hook input priority -110; policy accept;",
                              "ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
            ("filter-forward", ["type filter hook forward priority -110; policy accept;",
                                "ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
            // Before DNAT every packet to a live cluster IP would match @cluster-ips: the check
            // runs after it (filter-output-post-dnat), where only unknown ports are left.
            ("filter-output", ["type filter hook output priority -110; policy accept;", "ct state new jump service-endpoints-check"]),
            ("filter-output-post-dnat", ["type filter hook output priority -90; policy accept;", "ct state new jump cluster-ips-check"]),
            ("nat-prerouting", ["type nat hook prerouting priority dstnat; policy accept;", "jump services"]),
            ("nat-output", ["type nat hook output priority -100; policy accept;", "jump services"]),
            ("nat-postrouting", ["type nat hook postrouting priority srcnat; policy accept;", "jump masquerading"]),
            ("reject-chain", ["reject comment \"helper for @no-endpoint-services / @no-endpoint-nodeports\""]),
            ("mark-for-masquerade", ["meta mark set meta mark or \(mark)"]),
            ("masquerading", ["meta mark & \(mark) == 0 return", "meta mark set meta mark xor \(mark)", "masquerade fully-random"]),
            ("services", ["ip daddr . meta l4proto . th dport vmap @service-ips",
                          "\(local) meta l4proto . th dport vmap @service-nodeports"]),
            ("service-endpoints-check", ["ip daddr . meta l4proto . th dport vmap @no-endpoint-services"]),
            ("nodeport-endpoints-check", ["\(local) meta l4proto . th dport vmap @no-endpoint-nodeports"]),
            ("cluster-ips-check", ["ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"",
                                   // Upstream drops here; labnode rejects, as its iptables mode does, so
                                   // a mistyped address fails at once instead of hanging a trainee's curl.
                                   "ip daddr \(settings.serviceCIDR) reject comment \"Reject traffic to unallocated ClusterIPs\""]),
        ]
        for (name, rules) in fixed + chains {
            out.append("\tchain \(Self.q(name)) {")
            out += rules.map { "\t\t" + $0 }
            out.append("\t}")
        }
        out.append("}")
        return out.joined(separator: "\n") + "\n"
    }

    /// One map or set element of the table, as nft writes it (`10.96.0.10 . tcp . 53 : goto service-...`).
    public struct Element: Hashable, Sendable {
        public var map: String
        public var element: String
    }

    public struct Chain: Equatable, Sendable {
        public var name: String
        public var rules: [String]
    }

    public struct AffinitySet: Hashable, Sendable {
        public var name: String
        public var seconds: Int
    }

    /// Everything one service port owns in the table: its map elements, its chains (in the
    /// order a single transaction may create them: a chain before any chain jumping to it)
    /// and its affinity sets. The full render and the delta are both built from this, so they
    /// cannot disagree.
    public struct PortParts: Equatable, Sendable {
        public var elements: [Element] = []
        public var chains: [Chain] = []
        public var affinitySets: [AffinitySet] = []
    }

    public func parts(_ sp: ProxyServicePort) -> PortParts {
        var parts = PortParts()
        let tuple = "\(sp.proto) . \(sp.port)"
        guard sp.hasEndpoints else {
            if let ip = sp.clusterIP { parts.elements.append(Element(map: "no-endpoint-services", element: "\(ip) . \(tuple) : goto reject-chain")) }
            for ip in sp.externalIPs + sp.loadBalancerIPs {
                parts.elements.append(Element(map: "no-endpoint-services", element: "\(ip) . \(tuple) : goto reject-chain"))
            }
            if let np = sp.nodePort { parts.elements.append(Element(map: "no-endpoint-nodeports", element: "\(sp.proto) . \(np) : goto reject-chain")) }
            return parts
        }
        let local = sp.localEndpoints(node: settings.nodeName)
        // internalTrafficPolicy Local: the cluster IP goes to the local chain, or, with no
        // local endpoint, is dropped (not refused), as upstream.
        let internalLocal = sp.internalPolicyLocal && !local.isEmpty
        let usesLocal = internalLocal || (Self.isExternal(sp) && sp.externalPolicyLocal)
        if let ip = sp.clusterIP {
            if sp.internalPolicyLocal && local.isEmpty {
                parts.elements.append(Element(map: "no-endpoint-services", element: "\(ip) . \(tuple) : drop"))
            } else {
                let chain = sp.internalPolicyLocal ? Self.localChain(sp) : Self.serviceChain(sp)
                parts.elements.append(Element(map: "service-ips", element: "\(ip) . \(tuple) : goto \(Self.q(chain))"))
            }
        }
        for ip in sp.externalIPs + sp.loadBalancerIPs {
            parts.elements.append(Element(map: "service-ips", element: "\(ip) . \(tuple) : goto \(Self.q(Self.externalChain(sp)))"))
        }
        if let np = sp.nodePort {
            parts.elements.append(Element(map: "service-nodeports", element: "\(sp.proto) . \(np) : goto \(Self.q(Self.externalChain(sp)))"))
        }

        // One chain per endpoint any of the choices below can go to.
        let endpoints = sp.clusterEndpoints
        var seen = Set<String>()
        let targets = endpoints + (usesLocal ? local : [])
        for e in targets where seen.insert(e.address).inserted {
            var rules = ["ip saddr \(e.ip) jump mark-for-masquerade"]
            if let seconds = sp.affinitySeconds {
                parts.affinitySets.append(AffinitySet(name: Self.affinitySet(sp, e), seconds: seconds))
                rules.append("update @\(Self.q(Self.affinitySet(sp, e))) { ip saddr }")
            }
            rules.append("meta l4proto \(sp.proto) dnat to \(e.ip):\(e.port)")
            parts.chains.append(Chain(name: Self.endpointChain(sp, e), rules: rules))
        }

        // The service chain: traffic from outside the pod range to the cluster IP is
        // masqueraded, then affinity, then a random endpoint.
        let masquerade = sp.clusterIP.map { ip in
            "ip daddr \(ip) \(sp.proto) dport \(sp.port) ip saddr != \(settings.clusterCIDR) jump mark-for-masquerade"
        }
        var service: [String] = []
        if !sp.internalPolicyLocal, let masquerade { service.append(masquerade) }
        service += pick(sp, endpoints)
        parts.chains.append(Chain(name: Self.serviceChain(sp), rules: service))
        if usesLocal {
            // The chain the cluster IP jumps to masquerades off-cluster sources (upstream's
            // internal traffic chain); external traffic reaches it from the external chain.
            var rules = internalLocal ? [masquerade].compactMap { $0 } : []
            rules += local.isEmpty ? ["drop comment \"no local endpoints\""] : pick(sp, local)
            parts.chains.append(Chain(name: Self.localChain(sp), rules: rules))
        }

        if Self.isExternal(sp) {
            var ext: [String] = []
            if sp.externalPolicyLocal {
                // Pods and the node itself still reach every endpoint; others only local ones, unmasqueraded.
                ext.append("ip saddr \(settings.clusterCIDR) goto \(Self.q(Self.serviceChain(sp)))")
                ext.append("fib saddr type local jump mark-for-masquerade")
                ext.append("fib saddr type local goto \(Self.q(Self.serviceChain(sp)))")
                ext.append("goto \(Self.q(Self.localChain(sp)))")
            } else {
                ext.append("jump mark-for-masquerade")
                ext.append("goto \(Self.q(Self.serviceChain(sp)))")
            }
            parts.chains.append(Chain(name: Self.externalChain(sp), rules: ext))
        }
        return parts
    }

    /// Affinity first (a client seen recently goes back to its endpoint), then one
    /// `numgen random mod N` verdict map: a single rule, whatever N is.
    func pick(_ sp: ProxyServicePort, _ endpoints: [ProxyEndpoint]) -> [String] {
        var rules: [String] = []
        if sp.affinitySeconds != nil {
            for e in endpoints {
                rules.append("ip saddr @\(Self.q(Self.affinitySet(sp, e))) goto \(Self.q(Self.endpointChain(sp, e)))")
            }
        }
        let choices = endpoints.enumerated().map { "\($0.offset) : goto \(Self.q(Self.endpointChain(sp, $0.element)))" }
        rules.append("numgen random mod \(endpoints.count) vmap { \(choices.joined(separator: ", ")) }")
        return rules
    }

    static func set(_ name: String, type: String, comment: String, elements: [String], keyword: String = "set") -> String {
        var lines = ["\t\(keyword) \(name) {", "\t\ttype \(type)", "\t\tcomment \"\(comment)\""]
        if !elements.isEmpty { lines.append("\t\telements = { \(elements.joined(separator: ", ")) }") }
        lines.append("\t}")
        return lines.joined(separator: "\n")
    }

    static func map(_ name: String, type: String, comment: String, elements: [String]) -> String {
        set(name, type: type, comment: comment, elements: elements, keyword: "map")
    }
}
