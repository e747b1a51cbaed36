import Synchronization
import Testing
@testable import APIMachinery
@testable import ServiceProxy

@Suite struct ProxyNamesTests {
    @Test func chainNamesMatchUpstreamVectors() {
        // proxy-dns-spec.md A2 and A13 (kube-proxy's own test vectors).
        #expect(ProxyNames.serviceChain(key: "ns1/svc1:p80", protocol: "TCP") == "KUBE-SVC-XPGD46QRK7WJZT7O")
        #expect(ProxyNames.endpointChain(key: "ns1/svc1:p80", protocol: "tcp", endpoint: "10.180.0.1:80") == "KUBE-SEP-SXIVWICOYRO3J4NJ")
        #expect(ProxyNames.nftHashed("ns1/svc1/tcp/p80") == "ULMVA6XW-ns1/svc1/tcp/p80")
        #expect(ProxyNames.externalChain(key: "ns1/svc1:p80", protocol: "tcp") == "KUBE-EXT-XPGD46QRK7WJZT7O")
        #expect(ProxyNames.servicePortKey(namespace: "default", name: "nginx", portName: "") == "default/nginx")
    }

    @Test func base32IsRFC4648() {
        #expect(ProxyNames.base32(Array("foobar".utf8)) == "MZXW6YTBOI======")
        #expect(ProxyNames.base32(Array("f".utf8)) == "MY======")
    }
}

@Suite struct ProxyModelTests {
    static let service: JSON = [
        "metadata": ["name": "web", "namespace": "default"],
        "spec": ["type": "NodePort", "clusterIP": "10.96.0.20", "sessionAffinity": "ClientIP",
                 "ports": [["name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080]]],
    ]

    static func slice(_ endpoints: [JSON]) -> JSON {
        ["metadata": ["name": "web-abc", "namespace": "default", "labels": ["kubernetes.io/service-name": "web"]],
         "addressType": "IPv4", "ports": [["name": "http", "port": 8080, "protocol": "TCP"]], "endpoints": .array(endpoints)]
    }

    @Test func buildsPortsWithEndpointConditions() {
        let ports = ProxyModel.servicePorts(services: [Self.service], slices: [Self.slice([
            ["addresses": ["10.244.0.5"], "conditions": ["ready": true], "nodeName": "vm"],
            ["addresses": ["10.244.0.6"], "conditions": ["ready": false, "serving": true, "terminating": true]],
            ["addresses": ["10.244.0.7"]],
        ])])
        #expect(ports.count == 1)
        let p = ports[0]
        #expect(p.key == "default/web:http" && p.nodePort == 30080 && p.affinitySeconds == 10800)
        #expect(p.clusterEndpoints.map(\.address) == ["10.244.0.5:8080", "10.244.0.7:8080"])
        #expect(p.localEndpoints(node: "vm").map(\.address) == ["10.244.0.5:8080"])
    }

    @Test func terminatingEndpointsServeOnlyWhenNothingIsReady() {
        let ports = ProxyModel.servicePorts(services: [Self.service], slices: [Self.slice([
            ["addresses": ["10.244.0.6"], "conditions": ["ready": false, "serving": true, "terminating": true]],
            ["addresses": ["10.244.0.8"], "conditions": ["ready": false, "serving": false, "terminating": true]],
        ])])
        #expect(ports[0].clusterEndpoints.map(\.ip) == ["10.244.0.6"])
    }

    @Test func headlessAndExternalNameAreNotProxied() {
        let headless: JSON = ["metadata": ["name": "h", "namespace": "default"], "spec": ["clusterIP": "None", "ports": [["port": 80]]]]
        let external: JSON = ["metadata": ["name": "e", "namespace": "default"], "spec": ["type": "ExternalName", "externalName": "example.com"]]
        #expect(ProxyModel.servicePorts(services: [headless, external], slices: []).isEmpty)
    }
}

@Suite struct IptablesRulesTests {
    let rules = IptablesRules(settings: ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12"))

    func port(_ endpoints: Int, nodePort: Int? = nil) -> ProxyServicePort {
        ProxyServicePort(namespace: "ns1", name: "svc1", portName: "p80", clusterIP: "172.30.0.41", port: 80, nodePort: nodePort,
                         endpoints: (0..<endpoints).map { ProxyEndpoint(ip: "10.180.0.\($0 + 1)", port: 80) })
    }

    @Test func threeEndpointsAreChosenUniformly() {
        let text = rules.render([port(3)])
        let svc = "KUBE-SVC-XPGD46QRK7WJZT7O"
        let picks = text.split(separator: "\n").filter { $0.hasPrefix("-A \(svc) ") && $0.contains("-j KUBE-SEP-") }
        #expect(picks.count == 3)
        #expect(picks[0].contains("--probability 0.3333333333"))
        #expect(picks[1].contains("--probability 0.5000000000"))
        #expect(!picks[2].contains("statistic"))
        #expect(text.contains("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80"))
        // Hairpin: an endpoint reaching itself through the service is masqueraded.
        #expect(text.contains("-A KUBE-SEP-SXIVWICOYRO3J4NJ -m comment --comment ns1/svc1:p80 -s 10.180.0.1/32 -j KUBE-MARK-MASQ"))
        // Only non-pod sources are masqueraded on the way in.
        #expect(text.contains("-d 172.30.0.41 --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"))
        #expect(IptablesRules.probability(7) == "0.1428571429")
    }

    @Test func aServiceWithoutEndpointsIsRejectedAndHasNoNatChains() {
        let text = rules.render([port(0, nodePort: 30080)])
        #expect(text.contains("-A KUBE-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j REJECT"))
        #expect(text.contains("-A KUBE-EXTERNAL-SERVICES -m comment --comment \"ns1/svc1:p80 has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT"))
        #expect(!text.contains("KUBE-SVC-") && !text.contains("KUBE-SEP-"))
    }

    @Test func nodePortsGoThroughTheExternalChain() {
        let text = rules.render([port(1, nodePort: 30080)])
        #expect(text.contains("-A KUBE-NODEPORTS -m comment --comment ns1/svc1:p80 -m tcp -p tcp --dport 30080 -j KUBE-EXT-XPGD46QRK7WJZT7O"))
        #expect(text.contains("-A KUBE-EXT-XPGD46QRK7WJZT7O -m comment --comment \"masquerade traffic for ns1/svc1:p80 external destinations\" -j KUBE-MARK-MASQ"))
        #expect(text.contains("-A KUBE-EXT-XPGD46QRK7WJZT7O -j KUBE-SVC-XPGD46QRK7WJZT7O"))
        // The NodePort jump is the last rule of KUBE-SERVICES.
        let services = text.split(separator: "\n").filter { $0.hasPrefix("-A KUBE-SERVICES ") }
        #expect(services.last?.contains("-j KUBE-NODEPORTS") == true)
    }

    @Test func clientIPAffinityUsesRecent() {
        var p = port(2)
        p.affinitySeconds = 60
        let text = rules.render([p])
        #expect(text.contains("-m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --rcheck --seconds 60 --reap --rsource -j KUBE-SEP-SXIVWICOYRO3J4NJ"))
        #expect(text.contains("-m recent --name KUBE-SEP-SXIVWICOYRO3J4NJ --mask 255.255.255.255 --set --rsource -m tcp -p tcp -j DNAT"))
    }

    @Test func staleChainsAreFlushedAndDeletedOthersLeftAlone() {
        let text = rules.render([port(1)], stale: ["KUBE-SVC-OLDOLDOLDOLDOLDO"])
        #expect(text.contains(":KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]") && text.contains("-X KUBE-SVC-OLDOLDOLDOLDOLDO"))
        // Only our chains are declared: nothing else in the tables is flushed.
        for line in text.split(separator: "\n") where line.hasPrefix(":") {
            #expect(line.hasPrefix(":KUBE-"), "\(line)")
        }
        #expect(text.hasPrefix("*filter\n") && text.hasSuffix("COMMIT\n"))
        #expect(text.contains("-A KUBE-SERVICES -m comment --comment \"unallocated service address\" -d 10.96.0.0/12 -j REJECT"))
    }
}

@Suite struct IptablesProxierTests {
    final class Recorder: Sendable {
        let calls = Mutex<[[String]]>([])
        let inputs = Mutex<[String]>([])
        let present = Mutex<Set<String>>([])

        func run(_ args: [String], _ stdin: String?) -> (status: Int32, output: String) {
            calls.withLock { $0.append(args) }
            if let stdin { inputs.withLock { $0.append(stdin) } }
            let key = args.joined(separator: " ")
            if args.contains("-C") || args.contains("-S") || args.contains("-D") {
                let probe = key.replacingOccurrences(of: " -C ", with: " ").replacingOccurrences(of: " -S ", with: " ")
                    .replacingOccurrences(of: " -D ", with: " ")
                return present.withLock { p in
                    if args.contains("-D") { return p.remove(probe) != nil ? (0, "") : (1, "no rule") }
                    return p.contains(probe) ? (0, "") : (1, "no rule")
                }
            }
            if args.contains("-I") || args.contains("-N") {
                var a = args
                if let i = a.firstIndex(of: "-I") { a.remove(at: i); a.remove(at: i + 1) }  // drop "-I" and the position
                if let i = a.firstIndex(of: "-N") { a.remove(at: i) }
                present.withLock { _ = $0.insert(a.joined(separator: " ")) }
            }
            return (0, "")
        }
    }

    @Test func firstSyncWiresOnceAndCleanupUndoesIt() async throws {
        let r = Recorder()
        let proxier = IptablesProxier(settings: ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12"),
                                      run: { a, s in r.run(a, s) }, logger: .init(label: "test"))
        let port = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80,
                                    endpoints: [ProxyEndpoint(ip: "10.244.0.5", port: 8080)])
        try await proxier.sync([port])
        let inserts = r.calls.withLock { $0.filter { $0.contains("-I") } }
        #expect(inserts.count == IptablesRules.jumps.count)
        try await proxier.sync([port])
        // The first sync created the top-level chains (for the jumps), then wrote the rules; a
        // second sync with nothing changed runs nothing: no inserts, and no iptables-restore.
        #expect(r.calls.withLock { $0.filter { $0.contains("-I") } }.count == IptablesRules.jumps.count)
        #expect(r.inputs.withLock { $0.count } == 2)
        // The endpoint went away: its chains are deleted in the next sync.
        try await proxier.sync([ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80)])
        let last = r.inputs.withLock { $0.last } ?? ""
        #expect(last.contains("-X \(port.serviceChain)") && last.contains("-X \(port.endpointChain(port.endpoints[0]))"))
        try await proxier.cleanup()
        #expect(r.present.withLock { $0.filter { !$0.contains("KUBE-PROXY-CANARY") } }.isEmpty, "every jump was deleted")
        let cleanup = r.inputs.withLock { $0.last } ?? ""
        #expect(cleanup.contains("-X KUBE-SERVICES") && cleanup.contains("-X KUBE-POSTROUTING"))
    }

    @Test func aPartialSyncWritesOnlyTheChangedServicesChains() async throws {
        let r = Recorder()
        let proxier = IptablesProxier(settings: ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12"),
                                      run: { a, s in r.run(a, s) }, logger: .init(label: "test"))
        func ports(_ second: String) -> [ProxyServicePort] {
            [ProxyServicePort(namespace: "default", name: "a", clusterIP: "10.96.0.20", port: 80, endpoints: [ProxyEndpoint(ip: "10.244.0.5", port: 80)]),
             ProxyServicePort(namespace: "default", name: "b", clusterIP: "10.96.0.21", port: 80, endpoints: [ProxyEndpoint(ip: second, port: 80)])]
        }
        let first = ports("10.244.0.6")
        try await proxier.sync(first)
        let full = r.inputs.withLock { $0.last } ?? ""
        #expect(full.contains(":\(first[0].serviceChain)") && full.contains(":\(first[1].serviceChain)"))
        let second = ports("10.244.0.7")
        try await proxier.sync(second)
        let partial = r.inputs.withLock { $0.last } ?? ""
        // Service a did not change: its chains are neither declared (flushed) nor rewritten.
        #expect(!partial.contains(first[0].serviceChain + " - [0:0]") && !partial.contains("-A \(first[0].serviceChain) "))
        #expect(partial.contains(":\(second[1].serviceChain) - [0:0]") && partial.contains("--to-destination 10.244.0.7:80"))
        // The old endpoint's chain of b goes; the top-level chains did not change, so they are
        // not rewritten either.
        #expect(partial.contains("-X \(first[1].endpointChain(first[1].endpoints[0]))"))
        #expect(!partial.contains(":KUBE-SERVICES") && !partial.contains("-A KUBE-SERVICES"), "\(partial)")
        // A new service changes KUBE-SERVICES, which is then rewritten whole.
        try await proxier.sync(second + [ProxyServicePort(namespace: "default", name: "c", clusterIP: "10.96.0.22", port: 80,
                                                          endpoints: [ProxyEndpoint(ip: "10.244.0.9", port: 80)])])
        let grown = r.inputs.withLock { $0.last } ?? ""
        #expect(grown.contains(":KUBE-SERVICES - [0:0]") && grown.contains("default/a cluster IP") && grown.contains("default/c cluster IP"))
    }
}

/// UDP conntrack hygiene (proxy-dns-spec.md A12): which entries a sync deletes.
@Suite struct ConntrackCleanupTests {
    func dns(_ endpoints: [String], nodePort: Int? = nil) -> ProxyServicePort {
        var sp = ProxyServicePort(namespace: "kube-system", name: "kube-dns", portName: "dns", proto: "udp", clusterIP: "10.96.0.10",
                                  port: 53, nodePort: nodePort, endpoints: endpoints.map { ProxyEndpoint(ip: $0, port: 53) })
        sp.externalIPs = []
        return sp
    }

    @Test func aRemovedEndpointIsForgottenForEveryServiceAddress() {
        let old = dns(["10.244.0.2", "10.244.0.3"], nodePort: 30053)
        let new = dns(["10.244.0.3", "10.244.0.9"], nodePort: 30053)
        let commands = ConntrackCleanup.commands(old: [old.id: old], new: [new.id: new])
        #expect(commands == [
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--reply-src", "10.244.0.2"],
            ["conntrack", "-D", "-p", "udp", "--dport", "30053", "--reply-src", "10.244.0.2"],
        ])
    }

    @Test func theFirstEndpointClearsBlackholedFlows() {
        let old = dns([])
        let new = dns(["10.244.0.5"])
        #expect(ConntrackCleanup.commands(old: [old.id: old], new: [new.id: new]) == [
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dport", "53"],
        ])
        #expect(ConntrackCleanup.commands(old: [:], new: [new.id: new]).count == 1, "a new service with endpoints too")
    }

    @Test func aRemovedServiceAndTCPAndUnchangedOnes() {
        let gone = dns(["10.244.0.5"])
        #expect(ConntrackCleanup.commands(old: [gone.id: gone], new: [:]) == [
            ["conntrack", "-D", "-p", "udp", "--orig-dst", "10.96.0.10", "--dport", "53"],
        ])
        #expect(ConntrackCleanup.commands(old: [gone.id: gone], new: [gone.id: gone]).isEmpty, "nothing changed")
        var tcp = dns(["10.244.0.5"])
        tcp.proto = "tcp"
        var tcpAfter = tcp
        tcpAfter.endpoints = []
        #expect(ConntrackCleanup.commands(old: [tcp.id: tcp], new: [tcpAfter.id: tcpAfter]).isEmpty, "TCP needs none")
    }
}
