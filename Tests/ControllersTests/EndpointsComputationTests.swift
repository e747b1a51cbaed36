import APIMachinery
import Testing
@testable import Controllers

/// Builders of pods and services for the endpoint tests (a namespace of their own so they do
/// not collide with other controllers' test helpers).
enum EPFixture {
    static func service(_ name: String = "web", selector: [String: String]? = ["app": "web"],
                        ports: [JSON] = [["name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080]],
                        clusterIP: String = "10.96.0.10", publishNotReady: Bool = false,
                        labels: [String: String] = [:], uid: String = "svc-uid") -> JSON {
        var spec: JSON = ["ports": .array(ports), "clusterIP": .string(clusterIP), "type": "ClusterIP"]
        if let selector { spec["selector"] = EndpointsComputation.stringMap(selector) }
        if publishNotReady { spec["publishNotReadyAddresses"] = true }
        if ports.isEmpty { spec["ports"] = nil }
        spec["ipFamilies"] = ["IPv4"]
        var obj: JSON = [
            "apiVersion": "v1", "kind": "Service",
            "metadata": ["name": .string(name), "namespace": "default", "uid": .string(uid),
                         "creationTimestamp": "2026-01-01T00:00:00Z"],
            "spec": spec,
        ]
        if !labels.isEmpty { obj[path: "metadata", "labels"] = EndpointsComputation.stringMap(labels) }
        return obj
    }

    /// A pod as the API would hold it once the kubelet reported on it.
    static func pod(_ name: String, labels: [String: String] = ["app": "web"], ip: String? = "10.244.0.5",
                    ready: Bool = true, phase: String = "Running", terminating: Bool = false,
                    ports: [(String, Int64)] = [("http", 8080)], hostname: String? = nil, subdomain: String? = nil,
                    node: String = "labnode", namespace: String = "default") -> JSON {
        var container: JSON = ["name": "app", "image": "nginx"]
        if !ports.isEmpty {
            container["ports"] = .array(ports.map { ["name": .string($0.0), "containerPort": .int($0.1), "protocol": "TCP"] })
        }
        var spec: JSON = ["containers": [container], "nodeName": .string(node)]
        if let hostname { spec["hostname"] = .string(hostname) }
        if let subdomain { spec["subdomain"] = .string(subdomain) }
        var status: JSON = [
            "phase": .string(phase),
            "conditions": [["type": "Ready", "status": .string(ready ? "True" : "False"),
                            "lastTransitionTime": "2026-01-01T00:00:05Z"]],
        ]
        if let ip {
            status["podIP"] = .string(ip)
            status["podIPs"] = [["ip": .string(ip)]]
        }
        var obj: JSON = [
            "apiVersion": "v1", "kind": "Pod",
            "metadata": ["name": .string(name), "namespace": .string(namespace), "uid": .string("uid-" + name),
                         "labels": EndpointsComputation.stringMap(labels)],
            "spec": spec,
            "status": status,
        ]
        if terminating { obj[path: "metadata", "deletionTimestamp"] = "2026-01-01T00:01:00Z" }
        return obj
    }
}

@Suite struct EndpointsComputationTests {
    /// Where one pod ends up: in Endpoints (ready, not ready, absent) and in slices (conditions
    /// ready/serving/terminating, or absent).
    enum InEndpoints { case ready, notReady, absent }
    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var pod: JSON
        var publishNotReady = false
        var endpoints: InEndpoints
        var slice: (ready: Bool, serving: Bool, terminating: Bool)?
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "ready", pod: EPFixture.pod("p"), endpoints: .ready, slice: (true, true, false)),
        Case(label: "not ready", pod: EPFixture.pod("p", ready: false), endpoints: .notReady, slice: (false, false, false)),
        Case(label: "terminating, still ready", pod: EPFixture.pod("p", terminating: true),
             endpoints: .absent, slice: (false, true, true)),
        Case(label: "terminating, not ready", pod: EPFixture.pod("p", ready: false, terminating: true),
             endpoints: .absent, slice: (false, false, true)),
        Case(label: "terminating + publishNotReadyAddresses", pod: EPFixture.pod("p", terminating: true),
             publishNotReady: true, endpoints: .ready, slice: (true, true, true)),
        Case(label: "not ready + publishNotReadyAddresses", pod: EPFixture.pod("p", ready: false),
             publishNotReady: true, endpoints: .ready, slice: (true, false, false)),
        Case(label: "no IP yet", pod: EPFixture.pod("p", ip: nil, ready: false), endpoints: .absent, slice: nil),
        Case(label: "Succeeded", pod: EPFixture.pod("p", ready: false, phase: "Succeeded"), endpoints: .absent, slice: nil),
        Case(label: "Failed", pod: EPFixture.pod("p", ready: false, phase: "Failed"), endpoints: .absent, slice: nil),
        Case(label: "Failed + publishNotReadyAddresses", pod: EPFixture.pod("p", ready: false, phase: "Failed"),
             publishNotReady: true, endpoints: .absent, slice: nil),
        Case(label: "selector does not match", pod: EPFixture.pod("p", labels: ["app": "db"]), endpoints: .absent, slice: nil),
        Case(label: "other namespace", pod: EPFixture.pod("p", namespace: "kube-system"), endpoints: .absent, slice: nil),
    ]

    @Test(arguments: cases)
    func podReadinessStates(_ c: Case) {
        let service = EPFixture.service(publishNotReady: c.publishNotReady)
        let subsets = EndpointsComputation.subsets(service: service, pods: [c.pod])
        let ready = subsets.flatMap(\.addresses).map(\.ip)
        let notReady = subsets.flatMap(\.notReadyAddresses).map(\.ip)
        switch c.endpoints {
        case .ready:
            #expect(ready == ["10.244.0.5"] && notReady.isEmpty)
            #expect(subsets.first?.ports == [EndpointPortSpec(name: "http", port: 8080, proto: "TCP")])
        case .notReady:
            #expect(ready.isEmpty && notReady == ["10.244.0.5"])
        case .absent:
            #expect(subsets.isEmpty)
        }

        let groups = EndpointsComputation.sliceGroups(service: service, pods: [c.pod], addressType: "IPv4")
        let endpoints = groups.flatMap(\.endpoints)
        if let want = c.slice {
            #expect(endpoints.count == 1)
            let e = endpoints.first
            #expect(e?.addresses == ["10.244.0.5"])
            #expect(e?.ready == want.ready)
            #expect(e?.serving == want.serving)
            #expect(e?.terminating == want.terminating)
            #expect(e?.nodeName == "labnode")
            #expect(e?.targetRef == ["kind": "Pod", "namespace": "default", "name": "p", "uid": "uid-p"])
            #expect(groups.first?.ports == [EndpointPortSpec(name: "http", port: 8080, proto: "TCP")])
        } else {
            #expect(endpoints.isEmpty)
        }
    }

    @Test func endpointAddressCarriesNodeAndTarget() {
        let subsets = EndpointsComputation.subsets(service: EPFixture.service(), pods: [EPFixture.pod("p")])
        #expect(subsets.map(\.json) == [[
            "addresses": [["ip": "10.244.0.5", "nodeName": "labnode",
                           "targetRef": ["kind": "Pod", "namespace": "default", "name": "p", "uid": "uid-p"]]],
            "ports": [["name": "http", "port": 8080, "protocol": "TCP"]],
        ]])
    }

    /// Pods declaring the named port on different container ports land in different subsets
    /// (and slice groups); a pod without the port is left out of Endpoints for that port but
    /// still appears in a slice without ports, as upstream does.
    @Test func namedTargetPortResolvedPerPod() {
        let service = EPFixture.service(ports: [["name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"]])
        let pods = [
            EPFixture.pod("a", ip: "10.0.0.1", ports: [("http", 8080)]),
            EPFixture.pod("b", ip: "10.0.0.2", ports: [("http", 9090)]),
            EPFixture.pod("c", ip: "10.0.0.3", ports: [("web", 8080)]),
        ]
        let subsets = EndpointsComputation.subsets(service: service, pods: pods)
        #expect(subsets.count == 2)
        let byPort = Dictionary(uniqueKeysWithValues: subsets.map { ($0.ports.first?.port ?? 0, $0.addresses.map(\.ip)) })
        #expect(byPort == [8080: ["10.0.0.1"], 9090: ["10.0.0.2"]])

        let groups = EndpointsComputation.sliceGroups(service: service, pods: pods, addressType: "IPv4")
        let byGroup = Dictionary(uniqueKeysWithValues: groups.map { ($0.ports.map { $0.port ?? 0 }, $0.endpoints.map { $0.addresses[0] }) })
        #expect(byGroup == [[8080]: ["10.0.0.1"], [9090]: ["10.0.0.2"], []: ["10.0.0.3"]])
    }

    @Test func namedPortMustMatchProtocol() {
        let service = EPFixture.service(ports: [["name": "dns", "port": 53, "protocol": "UDP", "targetPort": "http"]])
        #expect(EndpointsComputation.subsets(service: service, pods: [EPFixture.pod("a")]).isEmpty)
    }

    /// Two service ports: the pod serving both shares a subset with the pod serving one only
    /// for that port; repacking groups ports by identical address sets.
    @Test func severalPortsRepackBySharedAddresses() {
        let service = EPFixture.service(ports: [
            ["name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "appProtocol": "http"],
            ["name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": "metrics"],
        ])
        let pods = [
            EPFixture.pod("a", ip: "10.0.0.1", ports: [("http", 8080), ("metrics", 9100)]),
            EPFixture.pod("b", ip: "10.0.0.2", ports: [("http", 8080)]),
        ]
        let subsets = EndpointsComputation.subsets(service: service, pods: pods)
        #expect(subsets == [
            EndpointSubsetSpec(addresses: subsets.first?.addresses ?? [],
                               ports: [EndpointPortSpec(name: "http", port: 8080, proto: "TCP", appProtocol: "http")]),
            EndpointSubsetSpec(addresses: subsets.last?.addresses ?? [],
                               ports: [EndpointPortSpec(name: "metrics", port: 9100, proto: "TCP")]),
        ])
        #expect(subsets.first?.addresses.map(\.ip) == ["10.0.0.1", "10.0.0.2"])
        #expect(subsets.last?.addresses.map(\.ip) == ["10.0.0.1"])

        let groups = EndpointsComputation.sliceGroups(service: service, pods: pods, addressType: "IPv4")
        #expect(groups.count == 2)
        let both = groups.first { $0.ports.count == 2 }
        #expect(both?.endpoints.map { $0.addresses[0] } == ["10.0.0.1"])
        #expect(both?.ports.first?.sliceJSON == ["name": "http", "protocol": "TCP", "port": 8080, "appProtocol": "http"])
    }

    /// A port whose pod is ready and not ready at once (two pods with the same IP and UID
    /// cannot be; the same pod listed twice can) comes out not ready: not-ready wins.
    @Test func repackDeduplicatesAndNotReadyWins() {
        let a = EndpointAddressSpec(ip: "10.0.0.1", targetRef: ["uid": "u1"])
        let port = EndpointPortSpec(name: "", port: 80)
        let out = EndpointsComputation.repack([
            EndpointSubsetSpec(addresses: [a], ports: [port]),
            EndpointSubsetSpec(notReadyAddresses: [a], ports: [port]),
            EndpointSubsetSpec(addresses: [a], ports: [port]),
        ])
        #expect(out == [EndpointSubsetSpec(notReadyAddresses: [a], ports: [port])])
    }

    /// Upstream sorts addresses by the bytes of the IP text, then by pod UID.
    @Test func addressesSortedAsUpstreamRepacks() {
        let pods = ["10.0.0.9", "10.0.0.10", "10.0.0.2"].enumerated().map { EPFixture.pod("p\($0.offset)", ip: $0.element) }
        let subsets = EndpointsComputation.subsets(service: EPFixture.service(), pods: pods)
        #expect(subsets.first?.addresses.map(\.ip) == ["10.0.0.10", "10.0.0.2", "10.0.0.9"])
    }

    @Test(arguments: [("web", true), ("other", false)])
    func hostnameOnlyWhenSubdomainIsTheService(subdomain: String, expected: Bool) {
        let pod = EPFixture.pod("db-0", hostname: "db-0", subdomain: subdomain)
        let service = EPFixture.service()
        let subsets = EndpointsComputation.subsets(service: service, pods: [pod])
        #expect(subsets.first?.addresses.first?.hostname == (expected ? "db-0" : nil))
        let groups = EndpointsComputation.sliceGroups(service: service, pods: [pod], addressType: "IPv4")
        #expect(groups.first?.endpoints.first?.hostname == (expected ? "db-0" : nil))
    }

    @Test func headlessServiceWithoutPorts() {
        let service = EPFixture.service("web", ports: [], clusterIP: "None")
        #expect(!EndpointsComputation.isServiceIPSet(service))
        let pods = [EPFixture.pod("a", ip: "10.0.0.1"), EPFixture.pod("b", ip: "10.0.0.2", ready: false)]
        let subsets = EndpointsComputation.subsets(service: service, pods: pods)
        #expect(subsets == [EndpointSubsetSpec(addresses: subsets.first?.addresses ?? [],
                                               notReadyAddresses: subsets.first?.notReadyAddresses ?? [])])
        #expect(subsets.first?.addresses.map(\.ip) == ["10.0.0.1"])
        #expect(subsets.first?.notReadyAddresses.map(\.ip) == ["10.0.0.2"])
        #expect(subsets.first?.json["ports"] == nil)
        let groups = EndpointsComputation.sliceGroups(service: service, pods: pods, addressType: "IPv4")
        #expect(groups.count == 1 && groups.first?.ports == [] && groups.first?.endpoints.count == 2)
    }

    @Test func headlessServiceWithPorts() {
        let service = EPFixture.service(clusterIP: "None")
        let subsets = EndpointsComputation.subsets(service: service, pods: [EPFixture.pod("a")])
        #expect(subsets.first?.ports == [EndpointPortSpec(name: "http", port: 8080)])
    }

    @Test func noSelectorMeansNoEndpoints() {
        for selector in [nil, [:] as [String: String]] {
            let service = EPFixture.service(selector: selector)
            #expect(EndpointsComputation.selector(of: service) == nil)
            #expect(EndpointsComputation.subsets(service: service, pods: [EPFixture.pod("a")]).isEmpty)
            #expect(EndpointsComputation.sliceGroups(service: service, pods: [EPFixture.pod("a")], addressType: "IPv4").isEmpty)
        }
    }

    @Test func slicesKeepOnlyAddressesOfTheirFamily() {
        var pod = EPFixture.pod("a", ip: "10.0.0.1")
        pod[path: "status", "podIPs"] = [["ip": "10.0.0.1"], ["ip": "fd00:0:0::1"]]
        let service = EPFixture.service()
        #expect(EndpointsComputation.sliceGroups(service: service, pods: [pod], addressType: "IPv6")
            .flatMap(\.endpoints).map(\.addresses) == [["fd00::1"]])
        #expect(EndpointsComputation.sliceGroups(service: service, pods: [pod], addressType: "IPv4")
            .flatMap(\.endpoints).map(\.addresses) == [["10.0.0.1"]])
    }

    @Test(arguments: [
        ("10.1.2.3", "IPv4", "10.1.2.3"), ("::ffff:10.1.2.3", "IPv4", "10.1.2.3"),
        ("fd00:0:0::1", "IPv6", "fd00::1"), ("not-an-ip", nil, nil), ("10.1.2", nil, nil),
    ] as [(String, String?, String?)])
    func ipParsing(text: String, family: String?, canonical: String?) {
        let parsed = IP.parse(text)
        #expect(parsed?.family == family)
        #expect(parsed?.text == canonical)
    }

    @Test func truncatesPastCapacityKeepingReadyFirst() {
        let addresses = (0..<1200).map { EndpointAddressSpec(ip: "10.0.\($0 / 256).\($0 % 256)") }
        var subsets = [EndpointSubsetSpec(addresses: Array(addresses[0..<900]), notReadyAddresses: Array(addresses[900...]),
                                          ports: [EndpointPortSpec(name: "", port: 80)])]
        #expect(EndpointsComputation.truncate(&subsets))
        #expect(subsets[0].addresses.count == 900)
        #expect(subsets[0].notReadyAddresses.count == 100)
        var small = [EndpointSubsetSpec(addresses: Array(addresses[0..<10]))]
        #expect(!EndpointsComputation.truncate(&small))
    }

    @Test func triggerTimeIsServiceCreationThenEarliestNewChange() {
        let tracker = TriggerTimeTracker()
        let service = EPFixture.service()
        var pod = EPFixture.pod("a")
        let created = Timestamp.parse("2026-01-01T00:00:00Z")
        #expect(tracker.compute(key: "default/web", service: service, pods: [pod]) == created)
        #expect(tracker.compute(key: "default/web", service: service, pods: [pod]) == nil, "nothing changed since")
        pod[path: "status", "conditions"] = [["type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:03:00Z"]]
        #expect(tracker.compute(key: "default/web", service: service, pods: [pod]) == Timestamp.parse("2026-01-01T00:03:00Z"))
        #expect(TriggerTimeTracker.format(Timestamp.parse("2026-01-01T00:03:00Z") ?? 0) == "2026-01-01T00:03:00Z")
    }

    @Test func canonicalIgnoresKeyOrderAndEmptyMembers() {
        let a: JSON = ["b": 1, "a": ["x": [], "y": nil, "z": "v"]]
        let b: JSON = ["a": ["z": "v"], "b": 1]
        #expect(EndpointsComputation.canonical(a) == EndpointsComputation.canonical(b))
        #expect(EndpointsComputation.canonical(["a": 1]) != EndpointsComputation.canonical(["a": 2]))
    }
}
