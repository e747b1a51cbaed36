import APIMachinery
import Controllers

/// What the add-on's informers keep of each object: only the fields records are made from,
/// as typed values. Kept as JSON, even trimmed, a Service took about 1 KB in ten allocations;
/// as these it takes two, and the index built from them shares their arrays.
///
/// Labels are not kept (records do not use them; a slice's service name is its one label), so
/// the informers' `list(selector:)` is only ever called with `.everything` on these.
public struct ServiceObject: InformerObject, Equatable {
    public var name: String?
    public var namespace: String?
    public var resourceVersion: String?
    public var labels: [String: String] { [:] }
    public var type: String
    /// `spec.clusterIPs`, or the singular `spec.clusterIP` from servers that send only that.
    public var clusterIPs: [String]
    public var externalName: String?
    public var ports: [KubernetesIndex.Port]

    public init(_ obj: JSON) {
        name = obj.name
        namespace = obj.namespace
        resourceVersion = obj.resourceVersion
        let spec = obj["spec"]
        type = spec?["type"]?.stringValue ?? "ClusterIP"
        clusterIPs = (spec?["clusterIPs"]?.arrayValue ?? []).compactMap(\.stringValue)
        if clusterIPs.isEmpty, let ip = spec?["clusterIP"]?.stringValue { clusterIPs = [ip] }
        externalName = spec?["externalName"]?.stringValue
        ports = KubernetesIndex.Port.list(spec?["ports"])
    }
}

/// An EndpointSlice: its service, ports, and each endpoint's addresses, readiness, hostname.
public struct EndpointSliceObject: InformerObject, Equatable {
    public struct Endpoint: Sendable, Equatable {
        public var addresses: [String]
        /// Nil: the API's "unknown", which counts as ready.
        public var ready: Bool?
        public var hostname: String?
    }

    public var name: String?
    public var namespace: String?
    public var resourceVersion: String?
    public var labels: [String: String] { serviceName.map { ["kubernetes.io/service-name": $0] } ?? [:] }
    public var serviceName: String?
    public var ports: [KubernetesIndex.Port]
    public var endpoints: [Endpoint]

    public init(_ obj: JSON) {
        name = obj.name
        namespace = obj.namespace
        resourceVersion = obj.resourceVersion
        serviceName = obj[path: "metadata", "labels", "kubernetes.io/service-name"]?.stringValue
        ports = KubernetesIndex.Port.list(obj["ports"])
        endpoints = (obj["endpoints"]?.arrayValue ?? []).map { ep in
            Endpoint(addresses: (ep["addresses"]?.arrayValue ?? []).compactMap(\.stringValue),
                     ready: ep[path: "conditions", "ready"]?.boolValue, hostname: ep["hostname"]?.stringValue)
        }
    }
}

/// A Namespace or a Pod: its name, and for a pod its IPs (`pods verified`).
public struct NamedObject: InformerObject, Equatable {
    public var name: String?
    public var namespace: String?
    public var resourceVersion: String?
    public var labels: [String: String] { [:] }
    public var podIPs: [String]

    public init(_ obj: JSON) {
        name = obj.name
        namespace = obj.namespace
        resourceVersion = obj.resourceVersion
        podIPs = (obj[path: "status", "podIPs"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }
    }
}

extension KubernetesIndex.Port {
    /// A ports list's name, number and protocol (targetPort, nodePort, appProtocol are not records).
    static func list(_ ports: JSON?) -> [KubernetesIndex.Port] {
        (ports?.arrayValue ?? []).compactMap { p in
            guard let port = p["port"]?.intValue, let v = UInt16(exactly: port) else { return nil }
            return KubernetesIndex.Port(name: p["name"]?.stringValue ?? "", proto: (p["protocol"]?.stringValue ?? "TCP").lowercased(), port: v)
        }
    }
}
