import Testing
@testable import ServiceProxy

/// Localhost NodePorts (iptables mode, opt-in): 127/8 reaches KUBE-NODEPORTS only when they
/// are on, and the martian drop is always written, so route_localnet never goes without it.
@Suite struct LocalhostNodePortTests {
    static let web = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80, nodePort: 30080,
                                      endpoints: [ProxyEndpoint(ip: "10.244.0.5", port: 8080)])

    static func rules(localhost: Bool) -> [String: [String]] {
        var settings = ProxySettings(nodeName: "node", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")
        settings.localhostNodePorts = localhost
        return IptablesRules(settings: settings).topLevelChains([web])
    }

    @Test func offByDefaultLoopbackIsLeftOut() {
        #expect(ProxySettings(nodeName: "n", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12").localhostNodePorts == false)
        let last = Self.rules(localhost: false)["nat/KUBE-SERVICES"]?.last ?? ""
        #expect(last.contains("--dst-type LOCAL ! -d 127.0.0.0/8 -j KUBE-NODEPORTS"), "\(last)")
    }

    @Test func onLoopbackReachesTheNodePorts() {
        let last = Self.rules(localhost: true)["nat/KUBE-SERVICES"]?.last ?? ""
        #expect(last.hasSuffix("-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"), "\(last)")
    }

    @Test(arguments: [false, true]) func theMartianDropIsAlwaysThere(localhost: Bool) {
        let firewall = Self.rules(localhost: localhost)["filter/KUBE-FIREWALL"] ?? []
        #expect(firewall == [#"-A KUBE-FIREWALL -m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP"#])
        #expect(IptablesRules.jumps.contains { $0.table == "filter" && $0.chain == "INPUT" && $0.rule == ["-j", "KUBE-FIREWALL"] })
        #expect(IptablesRules.jumps.contains { $0.table == "filter" && $0.chain == "OUTPUT" && $0.rule == ["-j", "KUBE-FIREWALL"] })
    }
}
