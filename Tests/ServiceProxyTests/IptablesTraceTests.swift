import Testing
@testable import ServiceProxy

/// Packets traced through rendered iptables rule sets (see IptablesTracer): what a pod, the
/// node or a LAN client gets for each kind of service address, the nftables cases' twin.
@Suite struct IptablesTraceTests {
    static let settings = ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")
    /// The node's LAN address.
    static let node = "172.31.250.2"
    /// A LoadBalancer address: held on the node's LAN interface while used (LoadBalancerAddresses),
    /// so it is one of the node's local addresses.
    static let lbIP = "172.31.250.100"
    /// An externalIP: the LAN routes it to the node, which does not hold it.
    static let externalIP = "192.0.2.10"
    static let client = "172.31.250.9"
    static let pod = "10.244.0.9"

    static func tracer(_ ports: [ProxyServicePort], routeLocalnet: Bool = false) throws -> IptablesTracer {
        try IptablesTracer(IptablesRules(settings: settings).render(ports), localAddresses: [node, lbIP], routeLocalnet: routeLocalnet)
    }

    /// default/web, 10.96.0.20:80, endpoints on port 8080 of this node ("vm") unless named.
    static func web(nodePort: Int? = nil, endpoints: [String] = ["10.244.0.5", "10.244.0.6", "10.244.0.7"],
                    nodes: [String: String] = [:]) -> ProxyServicePort {
        var sp = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80,
                                  endpoints: endpoints.map { ProxyEndpoint(ip: $0, port: 8080, nodeName: nodes[$0] ?? "vm") })
        sp.nodePort = nodePort
        return sp
    }

    /// web as a LoadBalancer with an externalIP too.
    static func exposed(endpoints: [String] = ["10.244.0.5", "10.244.0.6", "10.244.0.7"]) -> ProxyServicePort {
        var sp = web(nodePort: 30080, endpoints: endpoints)
        sp.loadBalancerIPs = [lbIP]
        sp.externalIPs = [externalIP]
        return sp
    }

    static func packet(from source: String, to destination: String, _ port: Int, _ origin: IptablesTracer.Origin,
                       proto: String = "tcp", draw: Double = 0) -> IptablesTracer.Packet {
        .init(source: source, destination: destination, proto: proto, port: port, origin: origin, draw: draw)
    }

    static func to(_ ip: String, masquerade: Bool = false) -> IptablesTracer.Verdict { .dnat(to: ip + ":8080", masquerade: masquerade) }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var ports: [ProxyServicePort]
        var packet: IptablesTracer.Packet
        var expected: IptablesTracer.Verdict
        var testDescription: String { name }
    }

    static let idle: ProxyServicePort = {
        var sp = ProxyServicePort(namespace: "default", name: "idle", clusterIP: "10.96.0.30", port: 80, nodePort: 30001)
        sp.loadBalancerIPs = [lbIP]
        sp.externalIPs = [externalIP]
        return sp
    }()

    static let dns = ProxyServicePort(namespace: "kube-system", name: "kube-dns", portName: "dns", proto: "udp", clusterIP: "10.96.0.10",
                                      port: 53, endpoints: [ProxyEndpoint(ip: "10.244.0.2", port: 53, nodeName: "vm")])

    static let cases: [Case] = [
        // Cluster IPs.
        Case(name: "pod to cluster IP, first draw", ports: [web()],
             packet: packet(from: pod, to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(0, of: 3)), expected: to("10.244.0.5")),
        Case(name: "pod to cluster IP, second draw", ports: [web()],
             packet: packet(from: pod, to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(1, of: 3)), expected: to("10.244.0.6")),
        Case(name: "pod to cluster IP, third draw", ports: [web()],
             packet: packet(from: pod, to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(2, of: 3)), expected: to("10.244.0.7")),
        // The node's LAN address is outside the pod range: masqueraded.
        Case(name: "node to cluster IP is masqueraded", ports: [web()],
             packet: packet(from: node, to: "10.96.0.20", 80, .node, draw: IptablesTracer.draw(1, of: 3)),
             expected: to("10.244.0.6", masquerade: true)),
        // A host on the LAN that routes the service range to the node (A7).
        Case(name: "LAN client routed to a cluster IP is masqueraded", ports: [web()],
             packet: packet(from: client, to: "10.96.0.20", 80, .outside), expected: to("10.244.0.5", masquerade: true)),
        // Hairpin: without the masquerade the endpoint would answer itself directly and the
        // reply would never be un-DNATed.
        Case(name: "pod to its own service lands on itself: masqueraded", ports: [web()],
             packet: packet(from: "10.244.0.5", to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(0, of: 3)),
             expected: to("10.244.0.5", masquerade: true)),
        Case(name: "pod to its own service lands on another: not masqueraded", ports: [web()],
             packet: packet(from: "10.244.0.5", to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(1, of: 3)),
             expected: to("10.244.0.6")),

        // NodePorts, LoadBalancer and external IPs with the Cluster policy: always masqueraded,
        // since the endpoint could be on another node.
        Case(name: "LAN client to NodePort on the node IP", ports: [web(nodePort: 30080)],
             packet: packet(from: client, to: node, 30080, .outside, draw: IptablesTracer.draw(2, of: 3)),
             expected: to("10.244.0.7", masquerade: true)),
        Case(name: "pod to NodePort on the node IP", ports: [web(nodePort: 30080)],
             packet: packet(from: pod, to: node, 30080, .pod), expected: to("10.244.0.5", masquerade: true)),
        Case(name: "node to its own NodePort", ports: [web(nodePort: 30080)],
             packet: packet(from: node, to: node, 30080, .node), expected: to("10.244.0.5", masquerade: true)),
        // NodePorts answer on every local address, the LoadBalancer one too.
        Case(name: "LAN client to NodePort on the LoadBalancer address", ports: [exposed()],
             packet: packet(from: client, to: lbIP, 30080, .outside), expected: to("10.244.0.5", masquerade: true)),
        Case(name: "LAN client to LoadBalancer IP", ports: [exposed()],
             packet: packet(from: client, to: lbIP, 80, .outside, draw: IptablesTracer.draw(1, of: 3)),
             expected: to("10.244.0.6", masquerade: true)),
        Case(name: "LAN client to external IP", ports: [exposed()],
             packet: packet(from: client, to: externalIP, 80, .outside, draw: IptablesTracer.draw(2, of: 3)),
             expected: to("10.244.0.7", masquerade: true)),
        Case(name: "pod to LoadBalancer IP", ports: [exposed()],
             packet: packet(from: pod, to: lbIP, 80, .pod), expected: to("10.244.0.5", masquerade: true)),
        Case(name: "NodePort number on an address that is not the node's is not ours", ports: [web(nodePort: 30080)],
             packet: packet(from: client, to: "172.31.250.50", 30080, .outside), expected: .untouched),
        Case(name: "service port on the LoadBalancer IP that the service does not have", ports: [exposed()],
             packet: packet(from: client, to: lbIP, 81, .outside), expected: .untouched),
        // Localhost NodePorts are off by default: 127.0.0.1 is not a NodePort address.
        Case(name: "node to 127.0.0.1:NodePort without localhost NodePorts", ports: [web(nodePort: 30080)],
             packet: packet(from: "127.0.0.1", to: "127.0.0.1", 30080, .node), expected: .untouched),

        // Services without endpoints: refused at once in the filter table, wherever from.
        Case(name: "pod to cluster IP without endpoints", ports: [web(), idle],
             packet: packet(from: pod, to: "10.96.0.30", 80, .pod), expected: .rejected),
        Case(name: "node to cluster IP without endpoints", ports: [web(), idle],
             packet: packet(from: node, to: "10.96.0.30", 80, .node), expected: .rejected),
        Case(name: "LAN client to NodePort without endpoints", ports: [web(), idle],
             packet: packet(from: client, to: node, 30001, .outside), expected: .rejected),
        Case(name: "node to NodePort without endpoints", ports: [web(), idle],
             packet: packet(from: node, to: node, 30001, .node), expected: .rejected),
        Case(name: "LAN client to LoadBalancer IP without endpoints", ports: [web(), idle],
             packet: packet(from: client, to: lbIP, 80, .outside), expected: .rejected),
        Case(name: "LAN client to external IP without endpoints", ports: [web(), idle],
             packet: packet(from: client, to: externalIP, 80, .outside), expected: .rejected),

        // No leaks: the service range is refused, not routed on towards the default gateway.
        Case(name: "pod to an unallocated service address", ports: [web()],
             packet: packet(from: pod, to: "10.111.222.33", 80, .pod), expected: .rejected),
        Case(name: "node to an unallocated service address", ports: [web()],
             packet: packet(from: node, to: "10.111.222.33", 80, .node), expected: .rejected),
        Case(name: "pod to another port of a live cluster IP", ports: [web()],
             packet: packet(from: pod, to: "10.96.0.20", 81, .pod), expected: .rejected),
        Case(name: "pod to an address outside the service range", ports: [web()],
             packet: packet(from: pod, to: "192.0.2.1", 80, .pod), expected: .untouched),

        // UDP.
        Case(name: "pod to UDP service", ports: [dns],
             packet: packet(from: pod, to: "10.96.0.10", 53, .pod, proto: "udp"), expected: .dnat(to: "10.244.0.2:53", masquerade: false)),
        Case(name: "TCP to a UDP-only service port", ports: [dns],
             packet: packet(from: pod, to: "10.96.0.10", 53, .pod, proto: "tcp"), expected: .rejected),
    ]

    @Test(arguments: cases) func trace(_ c: Case) throws {
        var t = try Self.tracer(c.ports)
        let verdict = try t.trace(c.packet)
        #expect(verdict == c.expected, "path:\n\(t.path.joined(separator: "\n"))")
    }

    /// Each endpoint with probability 1/n, as `distribution` would give it.
    static func uniform(_ ips: [String], masquerade: Bool = false) -> [IptablesTracer.Verdict: Double] {
        Dictionary(uniqueKeysWithValues: ips.map { (to($0, masquerade: masquerade), 1.0 / Double(ips.count)) })
    }

    static func close(_ a: [IptablesTracer.Verdict: Double], _ b: [IptablesTracer.Verdict: Double]) -> Bool {
        Set(a.keys) == Set(b.keys) && a.allSatisfy { abs($0.value - (b[$0.key] ?? -1)) < 1e-9 }
    }

    @Test func randomRulesGiveEachOfNEndpointsOneNth() throws {
        for n in 1...5 {
            let ips = (0..<n).map { "10.244.0.\(10 + $0)" }
            var t = try Self.tracer([Self.web(endpoints: ips)])
            let p = Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod)
            let d = try t.distribution(p)
            #expect(Self.close(d, Self.uniform(ips)), "n=\(n): \(d)")
            // And the draw in the middle of endpoint k's share lands on it.
            for k in 0..<n {
                var q = p
                q.draw = IptablesTracer.draw(k, of: n)
                #expect(try t.trace(q) == Self.to(ips[k]), "n=\(n) k=\(k)")
            }
        }
    }

    @Test func externalTrafficPolicyLocalKeepsTheClientAddress() throws {
        var sp = Self.exposed(endpoints: ["10.244.0.5", "10.244.1.5", "10.244.0.6"])
        sp.endpoints[1].nodeName = "other"
        sp.externalPolicyLocal = true
        let t = try Self.tracer([sp])
        // From the LAN: only this node's endpoints, client address kept.
        for (address, port) in [(Self.node, 30080), (Self.lbIP, 80), (Self.externalIP, 80)] {
            let d = try t.distribution(Self.packet(from: Self.client, to: address, port, .outside))
            #expect(Self.close(d, Self.uniform(["10.244.0.5", "10.244.0.6"])), "\(address):\(port): \(d)")
        }
        // Pods short-circuit to every endpoint, as if they had gone out to the load balancer.
        let fromPod = try t.distribution(Self.packet(from: Self.pod, to: Self.node, 30080, .pod))
        #expect(Self.close(fromPod, Self.uniform(["10.244.0.5", "10.244.0.6", "10.244.1.5"])), "\(fromPod)")
        // The node too, masqueraded: its source would be the NodePort address itself.
        let fromNode = try t.distribution(Self.packet(from: Self.node, to: Self.node, 30080, .node))
        #expect(Self.close(fromNode, Self.uniform(["10.244.0.5", "10.244.0.6", "10.244.1.5"], masquerade: true)), "\(fromNode)")
    }

    @Test func externalTrafficPolicyLocalWithoutLocalEndpoints() throws {
        var sp = Self.exposed(endpoints: ["10.244.1.5"])
        sp.endpoints[0].nodeName = "other"
        sp.externalPolicyLocal = true
        var t = try Self.tracer([sp])
        // Pods still reach the service through it (short-circuit).
        #expect(try t.trace(Self.packet(from: Self.pod, to: Self.node, 30080, .pod)) == Self.to("10.244.1.5"))
        // From the LAN there is nothing to send it to: dropped (A4, A9; upstream writes
        // "has no local endpoints" DROP rules in filter KUBE-EXTERNAL-SERVICES), so the
        // client's load balancer health check, not a refusal, steers it to another node.
        for (address, port) in [(Self.node, 30080), (Self.lbIP, 80), (Self.externalIP, 80)] {
            let verdict = try t.trace(Self.packet(from: Self.client, to: address, port, .outside))
            #expect(verdict == .dropped, "\(address):\(port): path:\n\(t.path.joined(separator: "\n"))")
        }
    }

    @Test func internalTrafficPolicyLocal() throws {
        var sp = Self.web(nodePort: 30080, endpoints: ["10.244.0.5", "10.244.1.5", "10.244.0.6"], nodes: ["10.244.1.5": "other"])
        sp.internalPolicyLocal = true
        var t = try Self.tracer([sp])
        let d = try t.distribution(Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod))
        #expect(Self.close(d, Self.uniform(["10.244.0.5", "10.244.0.6"])), "\(d)")
        // Upstream masquerades off-pod sources in the chain the cluster IP jumps to, KUBE-SVL here.
        let fromNode = try t.distribution(Self.packet(from: Self.node, to: "10.96.0.20", 80, .node))
        #expect(Self.close(fromNode, Self.uniform(["10.244.0.5", "10.244.0.6"], masquerade: true)), "\(fromNode)")
        // External traffic keeps its own (Cluster) policy.
        let external = try t.distribution(Self.packet(from: Self.client, to: Self.node, 30080, .outside))
        #expect(Self.close(external, Self.uniform(["10.244.0.5", "10.244.0.6", "10.244.1.5"], masquerade: true)), "\(external)")

        // No local endpoint: cluster IP traffic is dropped, not refused (A9).
        var remote = Self.web(nodePort: 30080, endpoints: ["10.244.1.5"], nodes: ["10.244.1.5": "other"])
        remote.internalPolicyLocal = true
        t = try Self.tracer([remote])
        #expect(try t.trace(Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod)) == .dropped, "\(t.path)")
        #expect(try t.trace(Self.packet(from: Self.node, to: "10.96.0.20", 80, .node)) == .dropped, "\(t.path)")
        #expect(try t.trace(Self.packet(from: Self.client, to: Self.node, 30080, .outside)) == Self.to("10.244.1.5", masquerade: true))
    }

    @Test func clientIPAffinitySticksUntilItExpires() throws {
        var sp = Self.web()
        sp.affinitySeconds = 10800
        var t = try Self.tracer([sp])
        func from(_ source: String, draw k: Int) -> IptablesTracer.Packet {
            Self.packet(from: source, to: "10.96.0.20", 80, .pod, draw: IptablesTracer.draw(k, of: 3))
        }
        #expect(try t.trace(from(Self.pod, draw: 2)) == Self.to("10.244.0.7"))
        // Later connections from the same client land there whatever the draw.
        t.now = 10_000
        for k in 0..<3 { #expect(try t.trace(from(Self.pod, draw: k)) == Self.to("10.244.0.7"), "draw \(k)") }
        // Another client gets its own choice.
        #expect(try t.trace(from("10.244.0.8", draw: 0)) == Self.to("10.244.0.5"))
        // Each connection refreshes the entry: 10800 s after the last one it is gone.
        t.now = 10_000 + 10_800
        #expect(try t.trace(from(Self.pod, draw: 1)) == Self.to("10.244.0.6"))
        #expect(try t.trace(from(Self.pod, draw: 0)) == Self.to("10.244.0.6"))
    }

    @Test func terminatingEndpointsServeOnlyWhenNoneIsReady() throws {
        var sp = Self.web(nodePort: 30080, endpoints: [])
        sp.endpoints = [
            ProxyEndpoint(ip: "10.244.0.5", port: 8080, ready: false, serving: true, terminating: true, nodeName: "vm"),
            ProxyEndpoint(ip: "10.244.0.6", port: 8080, ready: false, serving: false, terminating: true, nodeName: "vm"),
            ProxyEndpoint(ip: "10.244.0.7", port: 8080, ready: false, serving: true, terminating: true, nodeName: "vm"),
        ]
        var t = try Self.tracer([sp])
        let d = try t.distribution(Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod))
        #expect(Self.close(d, Self.uniform(["10.244.0.5", "10.244.0.7"])), "\(d)")
        let np = try t.distribution(Self.packet(from: Self.client, to: Self.node, 30080, .outside))
        #expect(Self.close(np, Self.uniform(["10.244.0.5", "10.244.0.7"], masquerade: true)), "\(np)")
        // One ready endpoint takes everything again.
        sp.endpoints.append(ProxyEndpoint(ip: "10.244.0.8", port: 8080, nodeName: "vm"))
        t = try Self.tracer([sp])
        #expect(try t.distribution(Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod)) == [Self.to("10.244.0.8"): 1])
        // Not serving and terminating only: nothing answers, refused.
        sp.endpoints = [sp.endpoints[1]]
        t = try Self.tracer([sp])
        #expect(try t.trace(Self.packet(from: Self.pod, to: "10.96.0.20", 80, .pod)) == .rejected)
    }

    /// kube-proxy's own test vectors (proxy-dns-spec.md A2, as in ProxyNamesTests): the chains
    /// a packet passes carry exactly those names.
    @Test func chainNamesAreUpstreams() throws {
        var sp = ProxyServicePort(namespace: "ns1", name: "svc1", portName: "p80", clusterIP: "10.96.0.41", port: 80, nodePort: 30080,
                                  endpoints: [ProxyEndpoint(ip: "10.180.0.1", port: 80, nodeName: "vm")])
        sp.externalPolicyLocal = true
        var t = try Self.tracer([sp])
        let perService = Set(t.tables["nat"]!.keys.filter { name in ProxyNames.ownedPrefixes.contains { name.hasPrefix($0) } })
        #expect(perService == ["KUBE-SVC-XPGD46QRK7WJZT7O", "KUBE-SVL-XPGD46QRK7WJZT7O", "KUBE-EXT-XPGD46QRK7WJZT7O", "KUBE-SEP-SXIVWICOYRO3J4NJ"])
        for tableChains in t.tables.values { for name in tableChains.keys { #expect(name.count <= 28, "\(name)") } }
        func passed(_ p: IptablesTracer.Packet) throws -> [String] {
            _ = try t.trace(p)
            return t.path.map { String($0.split(separator: " ")[2]) }
        }
        let viaClusterIP = try passed(Self.packet(from: Self.pod, to: "10.96.0.41", 80, .pod))
        #expect(viaClusterIP.contains("KUBE-SVC-XPGD46QRK7WJZT7O") && viaClusterIP.contains("KUBE-SEP-SXIVWICOYRO3J4NJ"), "\(t.path)")
        let viaNodePort = try passed(Self.packet(from: Self.client, to: Self.node, 30080, .outside))
        #expect(viaNodePort.contains("KUBE-EXT-XPGD46QRK7WJZT7O") && viaNodePort.contains("KUBE-SVL-XPGD46QRK7WJZT7O")
                && viaNodePort.contains("KUBE-SEP-SXIVWICOYRO3J4NJ"), "\(t.path)")
    }

    /// On a host whose FORWARD policy is DROP (Docker sets it), KUBE-FORWARD still lets
    /// masqueraded service traffic through.
    @Test func forwardPolicyDropStillForwardsNodePorts() throws {
        var t = try Self.tracer([Self.web(nodePort: 30080)])
        t.policies["filter/FORWARD"] = "DROP"
        #expect(try t.trace(Self.packet(from: Self.client, to: Self.node, 30080, .outside)) == Self.to("10.244.0.5", masquerade: true))
    }

    /// The tracer refuses what it cannot read, so a renderer change cannot pass unnoticed.
    @Test(arguments: [
        "-A KUBE-SERVICES -m foo --bar 1 -j ACCEPT",
        "-A KUBE-SERVICES -m tcp -p tcp --sport 80 -j ACCEPT",
        "-A KUBE-SERVICES --dport 80 -j ACCEPT",
        "-A KUBE-SERVICES -j LOG",
        "-A KUBE-SERVICES -j KUBE-NOWHERE",
        "-A KUBE-SERVICES -j DNAT --to-destination 10.0.0.1:80",
        "-A KUBE-SERVICES -m addrtype --dst-type BROADCAST -j DROP",
        "-A KUBE-SERVICES -m statistic --mode nth --every 2 -j DROP",
        "-A KUBE-SERVICES -m recent --name x --update -j DROP",
        "-A KUBE-NOT-DECLARED -j DROP",
        "-I KUBE-SERVICES -j DROP",
    ])
    func unknownRulesFailLoudly(_ line: String) {
        let text = "*filter\n:KUBE-SERVICES - [0:0]\n\(line)\nCOMMIT\n"
        #expect(throws: IptablesTracer.Unreadable.self) {
            try IptablesTracer(text, jumps: [], localAddresses: [])
        }
    }

    @Test func theTracerReadsAWellFormedSetOfItsOwn() throws {
        // The positive twin of the refusals above: the same layout, readable.
        let text = "*filter\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m tcp -p tcp --dport 80 -j ACCEPT\nCOMMIT\n"
        _ = try IptablesTracer(text, jumps: [], localAddresses: [])
    }
}

/// Localhost NodePorts (opt-in, iptables mode only; proxy-dns-spec.md A8): 127.0.0.1:NodePort
/// from the node works, and route_localnet, which they need, does not open the node's
/// loopback services to its neighbours (CVE-2020-8558).
@Suite struct IptablesLocalhostNodePortTraceTests {
    static func tracer(localhostNodePorts: Bool) throws -> IptablesTracer {
        var settings = IptablesTraceTests.settings
        settings.localhostNodePorts = localhostNodePorts
        // The runner turns route_localnet on exactly when localhost NodePorts are on.
        return try IptablesTracer(IptablesRules(settings: settings).render([IptablesTraceTests.web(nodePort: 30080)]),
                                  localAddresses: [IptablesTraceTests.node], routeLocalnet: localhostNodePorts)
    }

    static func packet(from source: String, to port: Int, _ origin: IptablesTracer.Origin) -> IptablesTracer.Packet {
        .init(source: source, destination: "127.0.0.1", port: port, origin: origin)
    }

    @Test func theNodeReachesANodePortOnLoopbackMasqueraded() throws {
        var t = try Self.tracer(localhostNodePorts: true)
        // Masqueraded: a reply to 127.0.0.1 would never leave the pod.
        #expect(try t.trace(Self.packet(from: "127.0.0.1", to: 30080, .node)) == IptablesTraceTests.to("10.244.0.5", masquerade: true),
                "\(t.path)")
        // Its own loopback services are the node's business.
        #expect(try t.trace(Self.packet(from: "127.0.0.1", to: 10249, .node)) == .untouched, "\(t.path)")
        // Off (the default): 127.0.0.1 is no NodePort address.
        t = try Self.tracer(localhostNodePorts: false)
        #expect(try t.trace(Self.packet(from: "127.0.0.1", to: 30080, .node)) == .untouched, "\(t.path)")
    }

    @Test func neighboursCannotUseTheNodesLoopback() throws {
        var t = try Self.tracer(localhostNodePorts: true)
        // kube-proxy's metrics port listens on 127.0.0.1:10249; with route_localnet alone a
        // neighbour sending to 127.0.0.1 would reach it. KUBE-FIREWALL drops it.
        #expect(try t.trace(Self.packet(from: IptablesTraceTests.client, to: 10249, .outside)) == .dropped, "\(t.path)")
        #expect(t.path.last?.contains("-A KUBE-FIREWALL") == true, "\(t.path)")
        // A NodePort through 127.0.0.1 is DNATed before the filter sees it, which the rule
        // lets through as upstream's does: the same NodePort answers on the node's address.
        #expect(try t.trace(Self.packet(from: IptablesTraceTests.client, to: 30080, .outside))
                == IptablesTraceTests.to("10.244.0.5", masquerade: true), "\(t.path)")
    }
}
