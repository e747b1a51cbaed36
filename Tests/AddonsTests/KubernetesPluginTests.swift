import APIMachinery
import NIOCore
import NIOPosix
import XCTest

@testable import Addons

/// The kubernetes plugin over a fixed cluster: each row is a question and what the Kubernetes
/// DNS specification (and CoreDNS) answers.
final class KubernetesPluginTests: XCTestCase {
    static func service(_ name: String, _ ns: String, ip: String?, type: String = "ClusterIP", externalName: String? = nil,
                        ports: [(String, String, Int)] = [("http", "TCP", 80)]) -> JSON {
        var spec: JSON = ["type": .string(type), "sessionAffinity": "None",
                          "ports": .array(ports.map { ["name": .string($0.0), "protocol": .string($0.1), "port": .int(Int64($0.2)),
                                                       "targetPort": .int(Int64($0.2))] })]
        if let ip { spec["clusterIP"] = .string(ip); spec["clusterIPs"] = [.string(ip)] }
        if let externalName { spec["externalName"] = .string(externalName) }
        return ["metadata": ["name": .string(name), "namespace": .string(ns), "uid": "0b8f6c1e-5d2a-4e8e-9a51-3f1f2d0c9e77",
                             "annotations": ["kubectl.kubernetes.io/last-applied-configuration": "{}"]],
                "spec": spec]
    }

    /// The index is built from what the informers keep (`ServiceObject` and the others), so
    /// every lookup below also goes through that conversion.
    func testInformerObjectsKeepWhatRecordsNeed() {
        let svc = ServiceObject(Self.service("x", "default", ip: "10.96.0.9", ports: [("http", "TCP", 80), ("dns", "UDP", 53)]))
        XCTAssertEqual(svc.name, "x")
        XCTAssertEqual(svc.namespace, "default")
        XCTAssertEqual(svc.clusterIPs, ["10.96.0.9"])
        XCTAssertEqual(svc.ports, [.init(name: "http", proto: "tcp", port: 80), .init(name: "dns", proto: "udp", port: 53)])
        // An object with only the singular clusterIP (older servers) still has its address.
        let old = ServiceObject(["metadata": ["name": "old", "namespace": "default", "resourceVersion": "7"],
                                 "spec": ["clusterIP": "10.96.0.77", "ports": [["port": 80]]]])
        XCTAssertEqual(old.clusterIPs, ["10.96.0.77"])
        XCTAssertEqual(old.type, "ClusterIP")
        XCTAssertEqual(old.resourceVersion, "7", "the informer compares versions")
        let idx = KubernetesIndex(services: [old], slices: [], namespaces: [NamedObject(["metadata": ["name": "default"]])],
                                  zone: "cluster.local", serial: 1)
        XCTAssertEqual(idx.service("old", namespace: "default")?.clusterIPs, ["10.96.0.77"])
        let slice = EndpointSliceObject(Self.slice("db", "default", [("10.244.0.7", true, "db-0"), ("10.244.0.8", nil, nil)]))
        XCTAssertEqual(slice.serviceName, "db")
        XCTAssertEqual(slice.labels, ["kubernetes.io/service-name": "db"])
        XCTAssertEqual(slice.endpoints, [.init(addresses: ["10.244.0.7"], ready: true, hostname: "db-0"),
                                         .init(addresses: ["10.244.0.8"], ready: nil, hostname: nil)])
        let pod = NamedObject(["metadata": ["name": "p", "namespace": "default"], "status": ["podIPs": [["ip": "10.244.0.5"]]]])
        XCTAssertEqual(pod.podIPs, ["10.244.0.5"])
    }

    static func slice(_ service: String, _ ns: String, _ endpoints: [(String, Bool?, String?)], ports: [(String, String, Int)] = [("http", "TCP", 8080)]) -> JSON {
        [
            "metadata": ["name": .string(service + "-abc"), "namespace": .string(ns), "labels": ["kubernetes.io/service-name": .string(service)]],
            "ports": .array(ports.map { ["name": .string($0.0), "protocol": .string($0.1), "port": .int(Int64($0.2))] }),
            "endpoints": .array(endpoints.map { ip, ready, host in
                var e: JSON = ["addresses": [.string(ip)], "conditions": ready.map { ["ready": .bool($0)] } ?? [:]]
                if let host { e["hostname"] = .string(host) }
                return e
            }),
        ]
    }

    static let index = KubernetesIndex(
        services: [
            service("nginx", "default", ip: "10.96.0.50"),
            service("kubernetes", "default", ip: "10.96.0.1", ports: [("https", "TCP", 443)]),
            service("kube-dns", "kube-system", ip: "10.96.0.10", ports: [("dns", "UDP", 53), ("dns-tcp", "TCP", 53)]),
            service("db", "default", ip: "None", ports: [("pg", "TCP", 5432)]),
            service("empty", "default", ip: "None"),
            service("search", "default", ip: nil, type: "ExternalName", externalName: "www.example.org"),
            service("alias", "default", ip: nil, type: "ExternalName", externalName: "nginx.default.svc.cluster.local"),
            service("six", "default", ip: "fd00:10:96::a"),
        ],
        slices: [
            slice("db", "default", [("10.244.0.7", true, "db-0"), ("10.244.0.8", nil, nil), ("10.244.0.9", false, nil)],
                  ports: [("pg", "TCP", 5432)]),
            slice("nginx", "default", [("10.244.0.5", true, nil)]),
        ],
        namespaces: [["metadata": ["name": "default"]], ["metadata": ["name": "kube-system"]], ["metadata": ["name": "empty-ns"]]],
        zone: "cluster.local", serial: 1234)

    var config: KubernetesPlugin.Config {
        var c = KubernetesPlugin.Config(zones: ["cluster.local.", "in-addr.arpa.", "ip6.arpa."])
        c.ttl = 30
        c.podMode = .insecure
        c.fallthroughZones = ["in-addr.arpa.", "ip6.arpa."]
        return c
    }

    func lookup(_ name: String, _ type: DNSType = .a) -> KubernetesPlugin.Answer {
        let n = DNSName(name) ?? .root
        let zone: DNSName = n.isSubdomain(of: "arpa.") ? (n.isSubdomain(of: "in-addr.arpa.") ? "in-addr.arpa." : "ip6.arpa.") : "cluster.local."
        return KubernetesPlugin.lookup(DNSQuestion(name: n, type: type), zone: zone, index: Self.index, config: config)
    }

    func addresses(_ a: KubernetesPlugin.Answer) -> [String] {
        a.answers.compactMap { if case .a(let ip) = $0.data { ip.description } else { nil } }.sorted()
    }

    func testServiceAndNamespaceNames() {
        let nginx = lookup("nginx.default.svc.cluster.local.")
        XCTAssertEqual(nginx.rcode, .noError)
        XCTAssertEqual(addresses(nginx), ["10.96.0.50"])
        XCTAssertEqual(nginx.answers.first?.ttl, 30)
        XCTAssertEqual(addresses(lookup("NGINX.Default.SVC.cluster.local.")), ["10.96.0.50"], "case-insensitive")
        // Known name, other type: NODATA, not NXDOMAIN.
        let aaaa = lookup("nginx.default.svc.cluster.local.", .aaaa)
        XCTAssertEqual(aaaa.rcode, .noError)
        XCTAssertTrue(aaaa.answers.isEmpty)
        XCTAssertEqual(lookup("nginx.default.svc.cluster.local.", .mx).rcode, .noError)
        XCTAssertEqual(lookup("nope.default.svc.cluster.local.").rcode, .nameError)
        XCTAssertEqual(lookup("nginx.nons.svc.cluster.local.").rcode, .nameError)
        XCTAssertEqual(lookup("default.svc.cluster.local.").rcode, .noError, "an existing namespace is NODATA")
        XCTAssertEqual(lookup("nons.svc.cluster.local.").rcode, .nameError)
        XCTAssertEqual(lookup("svc.cluster.local.").rcode, .noError)
        XCTAssertEqual(lookup("nginx.default.cluster.local.").rcode, .nameError, "neither svc nor pod")
        XCTAssertEqual(lookup("a.b.c.nginx.default.svc.cluster.local.").rcode, .nameError, "too many labels")
        XCTAssertEqual(addresses(lookup("kube-dns.kube-system.svc.cluster.local.")), ["10.96.0.10"])
    }

    func testHeadlessServices() {
        // Ready (true or unset) endpoints only.
        XCTAssertEqual(addresses(lookup("db.default.svc.cluster.local.")), ["10.244.0.7", "10.244.0.8"])
        XCTAssertEqual(addresses(lookup("db-0.db.default.svc.cluster.local.")), ["10.244.0.7"], "by hostname")
        XCTAssertEqual(addresses(lookup("10-244-0-8.db.default.svc.cluster.local.")), ["10.244.0.8"], "by dashed address")
        XCTAssertEqual(lookup("10-244-0-9.db.default.svc.cluster.local.").rcode, .nameError, "not ready")
        XCTAssertEqual(lookup("empty.default.svc.cluster.local.").rcode, .nameError, "headless without endpoints")
        XCTAssertEqual(lookup("x.nginx.default.svc.cluster.local.").rcode, .nameError, "endpoint names are for headless only")
        let srv = lookup("_pg._tcp.db.default.svc.cluster.local.", .srv)
        let targets = srv.answers.compactMap { r -> String? in
            if case .srv(_, let w, let port, let t) = r.data { return "\(t) \(port) \(w)" } else { return nil }
        }.sorted()
        XCTAssertEqual(targets, ["10-244-0-8.db.default.svc.cluster.local. 5432 50", "db-0.db.default.svc.cluster.local. 5432 50"])
        XCTAssertEqual(srv.extra.count, 2, "the targets' addresses ride along")
    }

    func testSRVForClusterIPServices() {
        let srv = lookup("_http._tcp.nginx.default.svc.cluster.local.", .srv)
        XCTAssertEqual(srv.answers.count, 1)
        if case .srv(let p, let w, let port, let target) = srv.answers[0].data {
            XCTAssertEqual([p, w, port], [0, 100, 80])
            XCTAssertEqual(target.description, "nginx.default.svc.cluster.local.")
        } else {
            XCTFail("not an SRV record")
        }
        XCTAssertEqual(addresses(KubernetesPlugin.Answer(answers: srv.extra)), ["10.96.0.50"])
        XCTAssertEqual(lookup("_http._udp.nginx.default.svc.cluster.local.", .srv).rcode, .nameError)
        XCTAssertEqual(lookup("_dns._udp.kube-dns.kube-system.svc.cluster.local.", .srv).answers.count, 1)
        XCTAssertEqual(lookup("_https._tcp.kubernetes.default.svc.cluster.local.", .a).rcode, .noError, "NODATA for A")
    }

    func testExternalNameAndPTRAndPods() {
        let ext = lookup("search.default.svc.cluster.local.")
        XCTAssertEqual(ext.answers.first?.data, .cname("www.example.org."))
        XCTAssertEqual(ext.chase, "www.example.org.", "an outside target is resolved by the rest of the chain")
        let alias = lookup("alias.default.svc.cluster.local.")
        XCTAssertEqual(alias.answers.count, 2, "an inside target is resolved here")
        XCTAssertEqual(addresses(alias), ["10.96.0.50"])
        XCTAssertNil(alias.chase)
        XCTAssertEqual(lookup("_http._tcp.search.default.svc.cluster.local.", .srv).rcode, .nameError, "no SRV for ExternalName")

        let ptr = lookup("50.0.96.10.in-addr.arpa.", .ptr)
        XCTAssertEqual(ptr.answers.first?.data, .ptr("nginx.default.svc.cluster.local."))
        XCTAssertEqual(lookup("7.0.244.10.in-addr.arpa.", .ptr).answers.first?.data, .ptr("db-0.db.default.svc.cluster.local."))
        XCTAssertEqual(lookup("1.2.3.4.in-addr.arpa.", .ptr).rcode, .nameError)

        XCTAssertEqual(addresses(lookup("10-244-0-99.default.pod.cluster.local.")), ["10.244.0.99"])
        XCTAssertEqual(lookup("10-244-0-99.nons.pod.cluster.local.").rcode, .nameError)
        XCTAssertEqual(lookup("not-an-ip.default.pod.cluster.local.").rcode, .nameError)
        var disabled = config
        disabled.podMode = .disabled
        XCTAssertEqual(KubernetesPlugin.lookup(DNSQuestion(name: "10-244-0-99.default.pod.cluster.local.", type: .a), zone: "cluster.local.",
                                               index: Self.index, config: disabled).rcode, .nameError)
    }

    func testIPv6ServicesAndIp6Arpa() {
        let aaaa = lookup("six.default.svc.cluster.local.", .aaaa)
        XCTAssertEqual(aaaa.answers.map(\.data), [.aaaa(IPv6.parse("fd00:10:96::a") ?? [])])
        XCTAssertTrue(lookup("six.default.svc.cluster.local.", .a).answers.isEmpty, "NODATA for A on an IPv6-only service")
        XCTAssertEqual(lookup("six.default.svc.cluster.local.", .a).rcode, .noError)
        // fd00:10:96::a in ip6.arpa nibbles, least significant first.
        let nibbles = "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
        XCTAssertEqual(lookup(nibbles, .ptr).answers.first?.data, .ptr("six.default.svc.cluster.local."))
        XCTAssertEqual(KubernetesPlugin.address(fromReverse: DNSName(nibbles) ?? .root), "fd00:10:96:0:0:0:0:a")
        XCTAssertNil(IPv6.parse("fd00::1::2"), "two :: are not an address")
        XCTAssertEqual(IPv6.parse("::1")?.last, 1)
    }

    func testZoneApexAndVersion() {
        XCTAssertEqual(lookup("dns-version.cluster.local.", .txt).answers.first?.data, .txt("1.1.0"))
        XCTAssertEqual(lookup("cluster.local.", .soa).answers.count, 1)
        XCTAssertEqual(lookup("cluster.local.", .ns).answers.first?.data, .ns("ns.dns.cluster.local."))
        XCTAssertEqual(addresses(lookup("ns.dns.cluster.local.")), ["10.96.0.10"])
    }

    /// Through `serve`: AA, the SOA on negative answers, fallthrough, and SERVFAIL before sync.
    func testServeAddsAuthorityAndFallsThrough() throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let plugin = KubernetesPlugin(config: config, index: Self.index)
        final class Marker: DNSPlugin {
            let name = "marker"
            func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
                .done(DNSResponse(message: request.reply(.refused), plugin: name))
            }
        }
        func ask(_ name: String, _ type: DNSType = .a, plugin p: KubernetesPlugin? = nil) throws -> DNSResponse {
            var m = DNSMessage()
            m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
            let r = DNSRequest(message: m, question: m.questions[0], eventLoop: loop)
            switch (p ?? plugin).serve(r, next: DNSNext(chain: [Marker()])) {
            case .done(let d): return d
            case .later(let f): return try f.wait()
            }
        }
        let nx = try ask("nope.default.svc.cluster.local.")
        XCTAssertEqual(nx.message.rcode, .nameError)
        XCTAssertTrue(nx.message.authoritative)
        guard case .soa(let soa) = nx.message.authorities.first?.data else { return XCTFail("no SOA") }
        XCTAssertEqual(soa.mname.description, "ns.dns.cluster.local.")
        XCTAssertEqual(soa.rname.description, "hostmaster.cluster.local.")
        XCTAssertEqual([soa.refresh, soa.retry, soa.expire, soa.minimum], [7200, 1800, 86400, 30])
        XCTAssertEqual(nx.message.authorities.first?.ttl, 30)
        XCTAssertEqual(try ask("nginx.default.svc.cluster.local.", .aaaa).message.authorities.count, 1, "NODATA has the SOA too")
        XCTAssertEqual(try ask("4.3.2.1.in-addr.arpa.", .ptr).plugin, "marker", "reverse NXDOMAIN falls through")
        XCTAssertEqual(try ask("www.example.org.").plugin, "marker", "not our zone")
        XCTAssertEqual(try ask("cluster.local.", .axfr).message.rcode, .refused)
        let unsynced = KubernetesPlugin(config: config, logger: .init(label: "t")) { throw PluginSetupError("t", "no api") }
        XCTAssertEqual(try ask("nginx.default.svc.cluster.local.", plugin: unsynced).message.rcode, .serverFailure)
        XCTAssertEqual(unsynced.isReady, false)
    }
}
