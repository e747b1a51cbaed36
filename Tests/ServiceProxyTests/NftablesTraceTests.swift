import Testing
@testable import ServiceProxy

/// Packets traced through rendered nftables rule sets (see NftablesTracer).
@Suite struct NftablesTraceTests {
    let settings = ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")
    let node = "172.31.250.2"

    func tracer(_ ports: [ProxyServicePort]) throws -> NftablesTracer {
        try NftablesTracer(NftablesRules(settings: settings).render(ports), nodeAddresses: [node], serviceCIDR: "10.96.0.0/12")
    }

    func web(nodePort: Int? = nil, endpoints: [String] = ["10.244.0.5", "10.244.0.6", "10.244.0.7"]) -> ProxyServicePort {
        var sp = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80,
                                  endpoints: endpoints.map { ProxyEndpoint(ip: $0, port: 8080, nodeName: "vm") })
        sp.nodePort = nodePort
        return sp
    }

    @Test func clusterIPFromPodsTheNodeAndItself() throws {
        var t = try tracer([web()])
        // Pod to service: each random value picks its own endpoint, no masquerade.
        for r in 0..<3 {
            let v = try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 80, origin: .pod, random: r))
            #expect(v == .dnat(to: "10.244.0.\(5 + r):8080", masquerade: false))
        }
        // The node is outside the pod range: masqueraded.
        #expect(try t.trace(.init(source: node, destination: "10.96.0.20", port: 80, origin: .node, random: 1))
                == .dnat(to: "10.244.0.6:8080", masquerade: true))
        // A pod reaching itself through its service (hairpin): masqueraded, or the reply would bypass the DNAT.
        #expect(try t.trace(.init(source: "10.244.0.5", destination: "10.96.0.20", port: 80, origin: .pod, random: 0))
                == .dnat(to: "10.244.0.5:8080", masquerade: true))
    }

    @Test func nodePortsAndLoadBalancersFromOutside() throws {
        var lb = web(nodePort: 30080)
        lb.loadBalancerIPs = ["172.31.250.100"]
        var t = try tracer([lb])
        #expect(try t.trace(.init(source: "172.31.250.9", destination: node, port: 30080, origin: .outside, random: 2))
                == .dnat(to: "10.244.0.7:8080", masquerade: true))
        #expect(try t.trace(.init(source: "172.31.250.9", destination: "172.31.250.100", port: 80, origin: .outside, random: 0))
                == .dnat(to: "10.244.0.5:8080", masquerade: true))
        // nftables mode has no localhost NodePorts (upstream's rule, KEP-3866).
        #expect(try t.trace(.init(source: "127.0.0.1", destination: "127.0.0.1", port: 30080, origin: .node)) == .untouched)
        // The port on an address that is not the node's is nobody's business.
        #expect(try t.trace(.init(source: "172.31.250.9", destination: "172.31.250.50", port: 30080, origin: .outside)) == .untouched)
    }

    @Test func localTrafficPolicyKeepsTheClientAddress() throws {
        var sp = web(nodePort: 30080)
        sp.externalPolicyLocal = true
        var t = try tracer([sp])
        #expect(try t.trace(.init(source: "172.31.250.9", destination: node, port: 30080, origin: .outside, random: 0))
                == .dnat(to: "10.244.0.5:8080", masquerade: false))
        // From a pod it still goes to any endpoint.
        #expect(try t.trace(.init(source: "10.244.0.9", destination: node, port: 30080, origin: .pod, random: 1))
                == .dnat(to: "10.244.0.6:8080", masquerade: false))
    }

    @Test func internalTrafficPolicyLocalUsesOnlyThisNodesEndpoints() throws {
        var sp = web(endpoints: ["10.244.0.5", "10.244.0.6"])
        sp.endpoints.append(ProxyEndpoint(ip: "10.244.1.5", port: 8080, nodeName: "other"))
        sp.internalPolicyLocal = true
        var t = try tracer([sp])
        for r in 0..<2 {
            #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 80, origin: .pod, random: r))
                    == .dnat(to: "10.244.0.\(5 + r):8080", masquerade: false))
        }
        // Off-cluster sources are masqueraded in the local chain too.
        #expect(try t.trace(.init(source: node, destination: "10.96.0.20", port: 80, origin: .node, random: 1))
                == .dnat(to: "10.244.0.6:8080", masquerade: true))
        // No local endpoint: dropped, not refused (upstream's no-endpoint-services `drop`).
        var remote = web(endpoints: [])
        remote.endpoints = [ProxyEndpoint(ip: "10.244.1.5", port: 8080, nodeName: "other")]
        remote.internalPolicyLocal = true
        t = try tracer([remote])
        #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 80, origin: .pod)) == .dropped)
    }

    @Test func refusalsAndLeaks() throws {
        var idle = ProxyServicePort(namespace: "default", name: "idle", clusterIP: "10.96.0.30", port: 80)
        idle.nodePort = 30001
        var t = try tracer([web(), idle])
        #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.30", port: 80, origin: .pod)) == .rejected)
        #expect(try t.trace(.init(source: "172.31.250.9", destination: node, port: 30001, origin: .outside)) == .rejected)
        // Another port of a live cluster IP, and an address of the range no service has.
        #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 81, origin: .pod)) == .rejected)
        #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.111.222.33", port: 80, origin: .pod)) == .rejected)
        #expect(try t.trace(.init(source: "10.244.0.9", destination: "192.0.2.1", port: 80, origin: .pod)) == .untouched)
    }

    @Test func clientIPAffinitySticks() throws {
        var sp = web()
        sp.affinitySeconds = 10800
        var t = try tracer([sp])
        let first = try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 80, origin: .pod, random: 2))
        #expect(first == .dnat(to: "10.244.0.7:8080", masquerade: false))
        for r in 0..<3 {
            #expect(try t.trace(.init(source: "10.244.0.9", destination: "10.96.0.20", port: 80, origin: .pod, random: r)) == first)
        }
        // Another client gets its own choice.
        #expect(try t.trace(.init(source: "10.244.0.8", destination: "10.96.0.20", port: 80, origin: .pod, random: 0))
                == .dnat(to: "10.244.0.5:8080", masquerade: false))
    }
}
