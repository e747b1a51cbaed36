import APIMachinery
import Controllers
import Foundation
import Logging
import Synchronization

/// Answers for the cluster zone from Services, EndpointSlices and Namespaces, as the
/// Kubernetes DNS specification and CoreDNS's kubernetes plugin do (README.md here).
public final class KubernetesPlugin: DNSPlugin {
    public let name = "kubernetes"

    public enum PodMode: String, Sendable { case disabled, insecure, verified }

    public struct Config: Sendable {
        public var zones: [DNSName]
        public var podMode: PodMode = .disabled
        /// Nil: no fallthrough; empty: every zone.
        public var fallthroughZones: [DNSName]?
        public var ttl: UInt32 = 5
        public var namespaces: Set<String> = []
        public var ignoreEmptyService = false
        public var startupTimeout: Duration = .seconds(5)

        public init(zones: [DNSName]) { self.zones = zones }
    }

    public let config: Config
    let clientFactory: @Sendable () throws -> any APIClient
    let index = LockedBox<KubernetesIndex?>(nil)
    let tasks = LockedBox<[Task<Void, Never>]>([])
    let rebuildScheduled = Mutex(false)
    private let rebuildCount = Atomic<Int>(0)
    /// Index rebuilds so far: the add-on trims memory once they stop for a while (decoding and
    /// indexing a batch of changes runs code and leaves garbage that answering does not need).
    public var rebuilds: Int { rebuildCount.load(ordering: .relaxed) }
    /// Lists and watches the informers started so far. A relist that changes nothing still
    /// decodes every object, and a new watch runs a TLS handshake: both map code and leave
    /// garbage that answering does not need, as a rebuild does, so they count as activity too.
    public var informerRequests: Int {
        [informers.services.lists, informers.slices.lists, informers.namespaces.lists, informers.pods.lists,
         informers.services.watches, informers.slices.watches, informers.namespaces.watches, informers.pods.watches]
            .reduce(0, +)
    }
    let logger: Logger
    /// Only what records are made from (see `ServiceObject`): annotations (kubectl's
    /// last-applied copy), managedFields and the rest would be most of the memory.
    let informers = (services: ObjectInformer(Resources.services, transform: ServiceObject.init),
                     slices: ObjectInformer(Resources.endpointSlices, transform: EndpointSliceObject.init),
                     namespaces: ObjectInformer(Resources.namespaces, transform: NamedObject.init),
                     pods: ObjectInformer(Resources.pods, transform: NamedObject.init))

    public init(config: Config, logger: Logger, client: @escaping @Sendable () throws -> any APIClient) {
        self.config = config
        self.logger = logger
        self.clientFactory = client
    }

    /// For tests: a fixed view of the cluster.
    public init(config: Config, index: KubernetesIndex) {
        self.config = config
        self.logger = Logger(label: "dns.kubernetes")
        self.clientFactory = { throw APIError.internalError("no API client in this test") }
        self.index.value = index
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        var zones = try d.args.map { arg throws(PluginSetupError) -> DNSName in
            guard let z = DNSName(arg) else { throw PluginSetupError("kubernetes", line: d.line, "invalid zone \(arg)") }
            return z
        }
        if zones.isEmpty { zones = s.zones }
        var c = Config(zones: zones)
        if c.zones.contains(.root) && zones.count == 1 && s.zones == [.root] && d.args.isEmpty {
            throw PluginSetupError("kubernetes", line: d.line, "kubernetes needs its zones (cluster.local in-addr.arpa ip6.arpa)")
        }
        for sub in d.block {
            switch sub.name {
            case "pods":
                guard let mode = sub.args.first.flatMap(PodMode.init(rawValue:)), sub.args.count == 1 else {
                    throw PluginSetupError("kubernetes", line: sub.line, "pods takes one of disabled, insecure, verified")
                }
                c.podMode = mode
            case "fallthrough":
                c.fallthroughZones = sub.args.compactMap { DNSName($0) }
            case "ttl":
                guard let v = sub.args.first.flatMap(UInt32.init), v <= 3600, sub.args.count == 1 else {
                    throw PluginSetupError("kubernetes", line: sub.line, "ttl must be in range [0, 3600]")
                }
                c.ttl = v
            case "namespaces":
                c.namespaces = Set(sub.args)
            case "ignore":
                c.ignoreEmptyService = sub.args == ["empty_service"]
            case "startup_timeout":
                guard let t = sub.args.first.flatMap(parseDuration) else {
                    throw PluginSetupError("kubernetes", line: sub.line, "startup_timeout needs a duration such as 5s")
                }
                c.startupTimeout = t
            case "endpoint", "tls", "kubeconfig", "noendpoints", "labels", "endpoint_pod_names", "multicluster":
                // Accepted for Corefiles written for CoreDNS; labnode reaches the API in-cluster.
                continue
            default:
                throw PluginSetupError("kubernetes", line: sub.line, "unknown property '\(sub.name)'")
            }
        }
        return KubernetesPlugin(config: c, logger: s.logger, client: s.apiClient)
    }

    // MARK: lifecycle

    public func start(_ context: PluginContext) async throws {
        let client = try clientFactory()
        let logger = self.logger
        // The informers keep different types: each is started, and waited for, by closure.
        var runs: [@Sendable () async -> Void] = []
        var syncs: [@Sendable () async -> Void] = []
        func watch<O>(_ informer: ObjectInformer<O>) {
            informer.onChange { [weak self] _ in self?.scheduleRebuild() }
            runs.append { await informer.run(client: client, logger: logger) }
            syncs.append { await informer.waitSynced() }
        }
        watch(informers.services)
        watch(informers.slices)
        watch(informers.namespaces)
        if config.podMode == .verified { watch(informers.pods) }
        tasks.value = runs.map { run in Task { await run() } }
        // Serve SERVFAIL for cluster names until synced, but wait at most startup_timeout.
        let timeout = config.startupTimeout
        let waits = syncs
        let synced = await withinDeadline(timeout) {
            for wait in waits { await wait() }
            return true
        }
        if synced {
            rebuild()
        } else {
            logger.warning("plugin/kubernetes: starting server with unsynced Kubernetes API")
            Task { [weak self] in
                for wait in waits { await wait() }
                self?.rebuild()
            }
        }
    }

    public func stop() async {
        for t in tasks.value { t.cancel() }
        tasks.value = []
    }

    public var isReady: Bool? { index.value != nil }

    func scheduleRebuild() {
        let go = rebuildScheduled.withLock { s -> Bool in
            if s { return false }
            s = true
            return true
        }
        guard go else { return }
        Task { [weak self] in
            // Changes that arrive together (a Service and its slice) make one rebuild.
            try? await Task.sleep(for: .milliseconds(5))
            self?.rebuildScheduled.withLock { $0 = false }
            self?.rebuild()
        }
    }

    func rebuild() {
        guard informers.services.isSynced, informers.slices.isSynced, informers.namespaces.isSynced else { return }
        let zone = config.zones.first { !$0.isSubdomain(of: "arpa.") } ?? config.zones.first ?? "cluster.local."
        var zoneText = zone.lowercased
        zoneText.removeLast()
        defer { rebuildCount.add(1, ordering: .relaxed) }
        index.value = KubernetesIndex(
            services: informers.services.list(), slices: informers.slices.list(), namespaces: informers.namespaces.list(),
            pods: config.podMode == .verified ? informers.pods.list() : [], zone: zoneText,
            serial: UInt32(truncatingIfNeeded: Int(Date().timeIntervalSince1970)))
    }

    // MARK: queries

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        let q = request.question
        guard let zone = config.zones.filter({ q.name.isSubdomain(of: $0) }).max(by: { $0.wire.count < $1.wire.count }) else {
            return next(request)
        }
        guard q.qclass == DNSClass.internet || q.qclass == DNSClass.any else { return next(request) }
        if q.type == .axfr || q.type == .ixfr {
            return .done(DNSResponse(message: request.reply(.refused), plugin: name))
        }
        guard let idx = index.value else {
            return .done(DNSResponse(message: request.reply(.serverFailure), plugin: name,
                                     error: "plugin/kubernetes: Kubernetes API not synced yet"))
        }
        let answer = Self.lookup(q, zone: zone, index: idx, config: config)
        if answer.rcode == .nameError, let ft = config.fallthroughZones, ft.isEmpty || ft.contains(where: { q.name.isSubdomain(of: $0) }) {
            return next(request)
        }
        var m = request.reply(answer.rcode)
        m.authoritative = true
        m.answers = answer.answers
        m.additionals = answer.extra
        if answer.answers.isEmpty, answer.rcode == .noError || answer.rcode == .nameError {
            m.authorities = [Self.soa(zone: zone, index: idx, ttl: config.ttl)]
        }
        // An ExternalName's target outside the cluster: the rest of the chain (forward) finds
        // its addresses, as CoreDNS's upstream lookup does.
        if let target = answer.chase, q.type != .cname {
            var sub = request
            sub.question.name = target
            sub.message.questions = [sub.question]
            let base = m
            return next(sub).map { r in
                var full = base
                if r.message.rcode == .noError { full.answers += r.message.answers }
                return DNSResponse(message: full, plugin: "kubernetes")
            }
        }
        return .done(DNSResponse(message: m, plugin: name))
    }

    public struct Answer: Sendable {
        public var rcode: DNSRcode = .noError
        public var answers: [DNSRecord] = []
        public var extra: [DNSRecord] = []
        /// A CNAME target to resolve further.
        public var chase: DNSName?
    }

    static func soa(zone: DNSName, index: KubernetesIndex, ttl: UInt32) -> DNSRecord {
        let soa = SOA(mname: DNSName("ns.dns." + zone.description) ?? zone, rname: DNSName("hostmaster." + zone.description) ?? zone,
                      serial: index.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: ttl)
        return DNSRecord(name: zone, ttl: min(ttl, 300), data: .soa(soa))
    }

    /// The answer for one question under `zone`: the Kubernetes DNS specification's records,
    /// NXDOMAIN for names that do not exist, NODATA for names that do but not with that type.
    public static func lookup(_ q: DNSQuestion, zone: DNSName, index: KubernetesIndex, config: Config) -> Answer {
        let ttl = config.ttl
        var a = Answer()
        if zone.isSubdomain(of: "arpa.") {
            return reverse(q, index: index, ttl: ttl)
        }
        let labels = q.name.labels(above: zone).map { String(decoding: $0.map(DNSName.lower), as: UTF8.self) }
        func records(for addresses: [String], name: DNSName) -> [DNSRecord] {
            addresses.compactMap { addr -> DNSRecord? in
                switch q.type {
                case .a, .any: IPv4(addr).map { DNSRecord(name: name, ttl: ttl, data: .a($0)) }
                case .aaaa: IPv6.parse(addr).map { DNSRecord(name: name, ttl: ttl, data: .aaaa($0)) }
                default: nil
                }
            }
        }
        if labels.isEmpty {
            switch q.type {
            case .soa: a.answers = [soa(zone: zone, index: index, ttl: ttl)]
            case .ns: a.answers = [DNSRecord(name: zone, ttl: ttl, data: .ns(DNSName("ns.dns." + zone.description) ?? zone))]
            default: break
            }
            return a
        }
        if labels == ["dns-version"] {
            if q.type == .txt { a.answers = [DNSRecord(name: q.name, ttl: 28800, data: .txt("1.1.0"))] }
            return a
        }
        if labels == ["ns", "dns"] {
            if let dns = index.service("kube-dns", namespace: "kube-system") {
                a.answers = records(for: dns.clusterIPs, name: q.name)
            }
            return a
        }
        guard let kind = labels.last, kind == "svc" || kind == "pod" else {
            a.rcode = .nameError
            return a
        }
        let rest = Array(labels.dropLast())
        if rest.isEmpty { return a }
        let namespace = rest[rest.count - 1]
        if !config.namespaces.isEmpty && !config.namespaces.contains(namespace) {
            a.rcode = .nameError
            return a
        }
        let nsExists = index.namespaces.contains(namespace)
        if rest.count == 1 {
            if !nsExists { a.rcode = .nameError }
            return a
        }
        if kind == "pod" {
            guard rest.count == 2, config.podMode != .disabled, nsExists, let ip = KubernetesIndex.undashed(rest[0]),
                  config.podMode == .insecure || index.podIPs[namespace]?.contains(ip) == true else {
                a.rcode = .nameError
                return a
            }
            a.answers = records(for: [ip], name: q.name)
            return a
        }
        // svc: [endpoint.]service.ns, or _port._proto.service.ns
        let serviceName = rest[rest.count - 2]
        guard rest.count <= 4, let svc = index.service(serviceName, namespace: namespace) else {
            a.rcode = .nameError
            return a
        }
        let serviceFQDN = DNSName(labels: [Array(serviceName.utf8), Array(namespace.utf8), Array("svc".utf8)] + zone.labels.map(Array.init))
            ?? q.name
        let srvWeight = { (n: Int) -> UInt16 in UInt16(max(1, 100 / max(n, 1))) }
        switch rest.count {
        case 2:
            if let external = svc.externalName {
                guard let target = DNSName(external) else { return a }
                a.answers = [DNSRecord(name: q.name, ttl: ttl, data: .cname(target))]
                if q.type != .cname && !target.isSubdomain(of: zone) { a.chase = target }
                if target.isSubdomain(of: zone) {
                    var inner = q
                    inner.name = target
                    a.answers += lookup(inner, zone: zone, index: index, config: config).answers
                }
                return a
            }
            if svc.headless {
                if svc.endpoints.isEmpty && !config.ignoreEmptyService {
                    a.rcode = .nameError
                    return a
                }
                if q.type == .srv {
                    var targets: [DNSRecord] = []
                    var srvs: [DNSRecord] = []
                    let count = svc.endpoints.reduce(0) { $0 + max($1.ports.count, 1) }
                    for ep in svc.endpoints {
                        guard let host = serviceFQDN.prepending(ep.hostLabel) else { continue }
                        for p in ep.ports {
                            srvs.append(DNSRecord(name: q.name, ttl: ttl, data: .srv(priority: 0, weight: srvWeight(count), port: p.port, target: host)))
                        }
                        if let v4 = IPv4(ep.address) { targets.append(DNSRecord(name: host, ttl: ttl, data: .a(v4))) }
                    }
                    a.answers = srvs
                    a.extra = targets
                } else {
                    a.answers = records(for: svc.endpoints.map(\.address), name: q.name)
                }
                return a
            }
            if q.type == .srv {
                a.answers = svc.ports.map {
                    DNSRecord(name: q.name, ttl: ttl, data: .srv(priority: 0, weight: srvWeight(svc.ports.count), port: $0.port, target: serviceFQDN))
                }
                a.extra = svc.clusterIPs.compactMap { IPv4($0) }.map { DNSRecord(name: serviceFQDN, ttl: ttl, data: .a($0)) }
            } else {
                a.answers = records(for: svc.clusterIPs, name: q.name)
            }
            return a
        case 3:
            // A headless endpoint by hostname or dashed address.
            let host = rest[0]
            let matches = svc.endpoints.filter { $0.hostLabel.lowercased() == host }
            guard svc.headless, !matches.isEmpty else {
                a.rcode = .nameError
                return a
            }
            a.answers = records(for: matches.map(\.address), name: q.name)
            return a
        default:
            // _port._proto.service.ns
            let portLabel = rest[0], protoLabel = rest[1]
            guard portLabel.hasPrefix("_"), protoLabel.hasPrefix("_"), svc.externalName == nil else {
                a.rcode = .nameError
                return a
            }
            let portName = String(portLabel.dropFirst()), proto = String(protoLabel.dropFirst())
            func matches(_ p: KubernetesIndex.Port) -> Bool { p.name.lowercased() == portName && p.proto == proto }
            if svc.headless {
                var srvs: [DNSRecord] = []
                var extra: [DNSRecord] = []
                let hits = svc.endpoints.flatMap { ep in ep.ports.filter(matches).map { (ep, $0) } }
                for (ep, p) in hits {
                    guard let host = serviceFQDN.prepending(ep.hostLabel) else { continue }
                    srvs.append(DNSRecord(name: q.name, ttl: ttl, data: .srv(priority: 0, weight: srvWeight(hits.count), port: p.port, target: host)))
                    if let v4 = IPv4(ep.address) { extra.append(DNSRecord(name: host, ttl: ttl, data: .a(v4))) }
                }
                guard !srvs.isEmpty else {
                    a.rcode = .nameError
                    return a
                }
                if q.type == .srv || q.type == .any {
                    a.answers = srvs
                    a.extra = extra
                }
            } else {
                let hits = svc.ports.filter(matches)
                guard !hits.isEmpty else {
                    a.rcode = .nameError
                    return a
                }
                if q.type == .srv || q.type == .any {
                    a.answers = hits.map {
                        DNSRecord(name: q.name, ttl: ttl, data: .srv(priority: 0, weight: srvWeight(hits.count), port: $0.port, target: serviceFQDN))
                    }
                    a.extra = svc.clusterIPs.compactMap { IPv4($0) }.map { DNSRecord(name: serviceFQDN, ttl: ttl, data: .a($0)) }
                }
            }
            return a
        }
    }

    /// PTR for a ClusterIP or a ready endpoint address.
    static func reverse(_ q: DNSQuestion, index: KubernetesIndex, ttl: UInt32) -> Answer {
        var a = Answer()
        guard let address = Self.address(fromReverse: q.name), let names = index.reverse[address] else {
            a.rcode = .nameError
            return a
        }
        if q.type == .ptr || q.type == .any {
            a.answers = names.compactMap { DNSName($0) }.map { DNSRecord(name: q.name, ttl: ttl, data: .ptr($0)) }
        }
        return a
    }

    /// `5.0.244.10.in-addr.arpa.` -> `10.244.0.5`; full nibble ip6.arpa names -> IPv6 text.
    public static func address(fromReverse name: DNSName) -> String? {
        let labels = name.lowercasedLabels
        if name.isSubdomain(of: "in-addr.arpa."), labels.count == 6 {
            return IPv4(labels[0..<4].reversed().joined(separator: "."))?.description
        }
        if name.isSubdomain(of: "ip6.arpa."), labels.count == 34 {
            let nibbles = labels[0..<32].reversed()
            guard nibbles.allSatisfy({ $0.count == 1 && $0.allSatisfy(\.isHexDigit) }) else { return nil }
            let hex = nibbles.joined()
            var bytes: [UInt8] = []
            var i = hex.startIndex
            while i < hex.endIndex {
                let j = hex.index(i, offsetBy: 2)
                guard let b = UInt8(hex[i..<j], radix: 16) else { return nil }
                bytes.append(b)
                i = j
            }
            return IPv6.format(bytes)
        }
        return nil
    }
}

/// `5s`, `1m`, `300ms`, `2h`: Go's duration syntax for the units Corefiles use.
func parseDuration(_ text: String) -> Duration? {
    let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        let number = text.dropLast(suffix.count)
        // "ms" also ends in "s": try the longer unit first (listed first).
        guard let v = Double(number), v >= 0 else { continue }
        return .milliseconds(Int64(v * scale * 1000))
    }
    return nil
}
