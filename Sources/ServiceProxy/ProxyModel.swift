import APIMachinery

/// One backend of a service port, from an EndpointSlice.
public struct ProxyEndpoint: Equatable, Sendable {
    public var ip: String
    public var port: Int
    public var ready: Bool
    public var serving: Bool
    public var terminating: Bool
    public var nodeName: String?

    public init(ip: String, port: Int, ready: Bool = true, serving: Bool = true, terminating: Bool = false, nodeName: String? = nil) {
        self.ip = ip
        self.port = port
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.nodeName = nodeName
    }

    /// `ip:port`, the form hashed into KUBE-SEP names and written in DNAT targets.
    public var address: String { "\(ip):\(port)" }
}

/// One port of one Service, with what the proxy needs to program it.
public struct ProxyServicePort: Equatable, Sendable {
    public var namespace: String
    public var name: String
    public var portName: String
    /// Lowercase: tcp, udp or sctp.
    public var proto: String
    public var clusterIP: String?
    public var port: Int
    public var nodePort: Int?
    public var externalIPs: [String] = []
    public var loadBalancerIPs: [String] = []
    /// ClientIP affinity timeout in seconds; nil without affinity.
    public var affinitySeconds: Int?
    public var externalPolicyLocal = false
    public var internalPolicyLocal = false
    public var endpoints: [ProxyEndpoint] = []

    public init(namespace: String, name: String, portName: String = "", proto: String = "tcp", clusterIP: String?, port: Int,
                nodePort: Int? = nil, endpoints: [ProxyEndpoint] = []) {
        self.namespace = namespace
        self.name = name
        self.portName = portName
        self.proto = proto
        self.clusterIP = clusterIP
        self.port = port
        self.nodePort = nodePort
        self.endpoints = endpoints
    }

    public var key: String { ProxyNames.servicePortKey(namespace: namespace, name: name, portName: portName) }
    /// The key with the protocol: what one set of per-service chains belongs to.
    public var id: String { key + "/" + proto }
    public var serviceChain: String { ProxyNames.serviceChain(key: key, protocol: proto) }
    public var localChain: String { ProxyNames.localChain(key: key, protocol: proto) }
    public var externalChain: String { ProxyNames.externalChain(key: key, protocol: proto) }
    public func endpointChain(_ e: ProxyEndpoint) -> String { ProxyNames.endpointChain(key: key, protocol: proto, endpoint: e.address) }

    /// The endpoints cluster-wide traffic goes to: the ready ones, or if none is ready the
    /// serving-and-terminating ones (kube-proxy's fallback, proxy-dns-spec.md A0).
    public var clusterEndpoints: [ProxyEndpoint] {
        let ready = endpoints.filter(\.ready)
        return ready.isEmpty ? endpoints.filter { $0.serving && $0.terminating } : ready
    }

    /// The same rule restricted to endpoints on `node` (the Local traffic policies).
    public func localEndpoints(node: String) -> [ProxyEndpoint] {
        let local = endpoints.filter { $0.nodeName == node }
        let ready = local.filter(\.ready)
        return ready.isEmpty ? local.filter { $0.serving && $0.terminating } : ready
    }

    /// Whether anything can answer (DNAT rather than REJECT).
    public var hasEndpoints: Bool { !clusterEndpoints.isEmpty }
}

/// Builds the proxy's view from Service and EndpointSlice objects.
public enum ProxyModel {
    /// The service ports to program: every port of every Service with a cluster IP (headless
    /// and ExternalName services are DNS-only), with the endpoints of its EndpointSlices.
    public static func servicePorts(services: [JSON], slices: [JSON]) -> [ProxyServicePort] {
        var slicesByService: [String: [JSON]] = [:]
        for slice in slices {
            guard let service = slice[path: "metadata", "labels", "kubernetes.io/service-name"]?.stringValue else { continue }
            slicesByService["\(slice.namespace ?? "")/\(service)", default: []].append(slice)
        }
        var out: [ProxyServicePort] = []
        for service in services {
            let spec = service["spec"] ?? [:]
            let type = spec["type"]?.stringValue ?? "ClusterIP"
            let clusterIP = spec["clusterIP"]?.stringValue ?? ""
            guard type != "ExternalName", !clusterIP.isEmpty, clusterIP != "None" else { continue }
            let namespace = service.namespace ?? "default"
            let name = service.name ?? ""
            let affinity: Int? = spec["sessionAffinity"]?.stringValue == "ClientIP"
                ? Int(spec[path: "sessionAffinityConfig", "clientIP", "timeoutSeconds"]?.intValue ?? 10800) : nil
            let lbIPs = (service[path: "status", "loadBalancer", "ingress"]?.arrayValue ?? [])
                .filter { $0["ipMode"]?.stringValue != "Proxy" }
                .compactMap { $0["ip"]?.stringValue }
            for port in spec["ports"]?.arrayValue ?? [] {
                let portName = port["name"]?.stringValue ?? ""
                let proto = (port["protocol"]?.stringValue ?? "TCP").lowercased()
                guard let number = port["port"]?.intValue else { continue }
                var sp = ProxyServicePort(namespace: namespace, name: name, portName: portName, proto: proto,
                                          clusterIP: clusterIP, port: Int(number))
                if type == "NodePort" || type == "LoadBalancer", let np = port["nodePort"]?.intValue { sp.nodePort = Int(np) }
                sp.externalIPs = (spec["externalIPs"]?.arrayValue ?? []).compactMap(\.stringValue)
                if type == "LoadBalancer" { sp.loadBalancerIPs = lbIPs }
                sp.affinitySeconds = affinity
                sp.externalPolicyLocal = spec["externalTrafficPolicy"]?.stringValue == "Local"
                sp.internalPolicyLocal = spec["internalTrafficPolicy"]?.stringValue == "Local"
                sp.endpoints = endpoints(slicesByService["\(namespace)/\(name)"] ?? [], portName: portName, proto: proto)
                out.append(sp)
            }
        }
        return out.sorted { ($0.key, $0.proto) < ($1.key, $1.proto) }
    }

    /// The endpoints of the slices' port with this name and protocol; nil conditions mean
    /// ready and serving, not terminating.
    static func endpoints(_ slices: [JSON], portName: String, proto: String) -> [ProxyEndpoint] {
        var out: [ProxyEndpoint] = []
        var seen = Set<String>()
        for slice in slices where (slice["addressType"]?.stringValue ?? "IPv4") == "IPv4" {
            guard let port = (slice["ports"]?.arrayValue ?? []).first(where: {
                ($0["name"]?.stringValue ?? "") == portName && ($0["protocol"]?.stringValue ?? "TCP").lowercased() == proto
            }), let number = port["port"]?.intValue else { continue }
            for e in slice["endpoints"]?.arrayValue ?? [] {
                let conditions = e["conditions"] ?? [:]
                for ip in (e["addresses"]?.arrayValue ?? []).compactMap(\.stringValue) where seen.insert("\(ip):\(number)").inserted {
                    out.append(ProxyEndpoint(ip: ip, port: Int(number), ready: conditions["ready"]?.boolValue ?? true,
                                             serving: conditions["serving"]?.boolValue ?? true,
                                             terminating: conditions["terminating"]?.boolValue ?? false,
                                             nodeName: e["nodeName"]?.stringValue))
                }
            }
        }
        return out.sorted { $0.address < $1.address }
    }
}
