import Foundation
import APIMachinery

/// An immutable, query-ready view of the cluster's Services, EndpointSlices and Namespaces,
/// rebuilt when they change and swapped in whole, so a query never waits for a lock held by
/// an informer update.
public struct KubernetesIndex: Sendable {
    public struct Port: Sendable, Equatable {
        public var name: String
        public var proto: String
        public var port: UInt16
    }

    public struct Endpoint: Sendable, Equatable {
        public var address: String
        /// The label used for this endpoint's own name: its hostname, else the dashed address.
        public var hostLabel: String
        public var ports: [Port]
    }

    public struct Service: Sendable {
        public var name: String
        public var namespace: String
        public var clusterIPs: [String]
        public var headless: Bool
        public var externalName: String?
        public var ports: [Port]
        /// Ready endpoints only (CoreDNS ignores serving and terminating).
        public var endpoints: [Endpoint]
    }

    /// By `name.namespace`, lower case.
    public var services: [String: Service] = [:]
    public var namespaces: Set<String> = []
    /// Pod IPs by namespace, for `pods verified`.
    public var podIPs: [String: Set<String>] = [:]
    /// Reverse names by address (PTR answers).
    public var reverse: [String: [String]] = [:]
    /// Seconds since 1970 of the last rebuild: the SOA serial.
    public var serial: UInt32 = 0

    public init() {}

    public func service(_ name: String, namespace: String) -> Service? { services[name + "." + namespace] }

    /// Builds from the informers' objects. `zone` is the first zone served, for PTR targets.
    public init(services serviceObjects: [ServiceObject], slices: [EndpointSliceObject], namespaces namespaceObjects: [NamedObject],
                pods: [NamedObject] = [], zone: String, serial: UInt32) {
        self.serial = serial
        namespaces = Set(namespaceObjects.compactMap(\.name))
        var endpointsByService: [String: [Endpoint]] = [:]
        for slice in slices {
            guard let ns = slice.namespace, let svc = slice.serviceName else { continue }
            for ep in slice.endpoints where ep.ready != false {
                for address in ep.addresses {
                    let label = (ep.hostname?.isEmpty == false ? ep.hostname : nil) ?? Self.dashed(address)
                    endpointsByService[svc + "." + ns, default: []].append(Endpoint(address: address, hostLabel: label, ports: slice.ports))
                }
            }
        }
        for obj in serviceObjects {
            guard let name = obj.name, let ns = obj.namespace else { continue }
            let ips = obj.clusterIPs
            let headless = ips.first == "None" || (ips.isEmpty && obj.type != "ExternalName")
            let key = name.lowercased() + "." + ns.lowercased()
            let endpoints = endpointsByService[name + "." + ns] ?? []
            // The object's own arrays when nothing is dropped: the index then costs no copy of them.
            let usable = ips.contains { $0 == "None" || $0.isEmpty } ? ips.filter { $0 != "None" && !$0.isEmpty } : ips
            services[key] = Service(
                name: name, namespace: ns, clusterIPs: headless ? [] : usable,
                headless: headless && obj.type != "ExternalName",
                externalName: obj.type == "ExternalName" ? obj.externalName : nil,
                ports: obj.ports, endpoints: endpoints)
            let fqdn = "\(name).\(ns).svc.\(zone)"
            if obj.type != "ExternalName" {
                for ip in usable { reverse[Self.normalized(ip), default: []].append(fqdn) }
            }
            for ep in endpoints { reverse[Self.normalized(ep.address), default: []].append("\(ep.hostLabel).\(fqdn)") }
        }
        for pod in pods {
            guard let ns = pod.namespace else { continue }
            for ip in pod.podIPs { podIPs[ns, default: []].insert(ip) }
        }
    }

    /// From whole objects, as the API serves them (tests, and anything without an informer).
    public init(services: [JSON], slices: [JSON], namespaces: [JSON], pods: [JSON] = [], zone: String, serial: UInt32) {
        self.init(services: services.map(ServiceObject.init), slices: slices.map(EndpointSliceObject.init),
                  namespaces: namespaces.map(NamedObject.init), pods: pods.map(NamedObject.init), zone: zone, serial: serial)
    }

    /// One spelling per address (IPv6 uncompressed), so reverse lookups find it.
    public static func normalized(_ address: String) -> String {
        IPv6.parse(address).map(IPv6.format) ?? address
    }

    /// `10.244.0.5` -> `10-244-0-5`; IPv6 colons become dashes too.
    public static func dashed(_ address: String) -> String {
        String(address.map { $0 == "." || $0 == ":" ? "-" : $0 })
    }

    /// The address a pod label (`10-244-0-5`) spells, or nil.
    public static func undashed(_ label: String) -> String? {
        if let v4 = IPv4(label.replacingDashes(with: ".")) { return v4.description }
        let v6 = label.replacingDashes(with: ":")
        return IPv6.parse(v6) != nil ? v6 : nil
    }
}

extension String {
    func replacingDashes(with c: Character) -> String { String(map { $0 == "-" ? c : $0 }) }
}

/// IPv6 text <-> 16 bytes, enough for AAAA and ip6.arpa names.
public enum IPv6 {
    public static func parse(_ text: String) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }

    public static func format(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":")
    }
}
