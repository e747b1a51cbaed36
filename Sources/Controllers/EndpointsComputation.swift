import APIMachinery
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Label and annotation keys the endpoint controllers read and write; consumers such as
/// kube-proxy select slices by these exact strings.
public enum EndpointKeys {
    public static let serviceName = "kubernetes.io/service-name"
    public static let managedBy = "endpointslice.kubernetes.io/managed-by"
    public static let skipMirror = "endpointslice.kubernetes.io/skip-mirror"
    public static let headless = "service.kubernetes.io/headless"
    public static let lastChangeTriggerTime = "endpoints.kubernetes.io/last-change-trigger-time"
    public static let overCapacity = "endpoints.kubernetes.io/over-capacity"
    /// Leader-election records were once kept on Endpoints; those are never cleaned up or mirrored.
    public static let leaderElection = "control-plane.alpha.kubernetes.io/leader"
    public static let lastAppliedConfiguration = "kubectl.kubernetes.io/last-applied-configuration"

    public static let sliceControllerName = "endpointslice-controller.k8s.io"
    public static let mirroringControllerName = "endpointslicemirroring-controller.k8s.io"
}

/// One port of an Endpoints subset or an EndpointSlice.
public struct EndpointPortSpec: Hashable, Sendable, Comparable {
    public var name: String
    /// nil only in hand-written slices ("all ports"); the controllers always set it.
    public var port: Int64?
    public var proto: String
    public var appProtocol: String?

    public init(name: String, port: Int64?, proto: String = "TCP", appProtocol: String? = nil) {
        self.name = name
        self.port = port
        self.proto = proto
        self.appProtocol = appProtocol
    }

    /// From an Endpoints port or an EndpointSlice port (same field names, different defaults
    /// are already applied by the API server).
    public init(json: JSON) {
        name = json["name"]?.stringValue ?? ""
        port = json["port"]?.intValue
        proto = json["protocol"]?.stringValue ?? "TCP"
        appProtocol = json["appProtocol"]?.stringValue
    }

    /// core/v1 EndpointPort: an empty name is omitted.
    public var endpointsJSON: JSON {
        var o = JSONObject()
        if !name.isEmpty { o["name"] = .string(name) }
        if let port { o["port"] = .int(port) }
        o["protocol"] = .string(proto)
        if let appProtocol { o["appProtocol"] = .string(appProtocol) }
        return .object(o)
    }

    /// discovery/v1 EndpointPort: the name is a pointer upstream, so an empty name is written out.
    public var sliceJSON: JSON {
        var o = JSONObject()
        o["name"] = .string(name)
        o["protocol"] = .string(proto)
        if let port { o["port"] = .int(port) }
        if let appProtocol { o["appProtocol"] = .string(appProtocol) }
        return .object(o)
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.name, a.port ?? -1, a.proto, a.appProtocol ?? "") < (b.name, b.port ?? -1, b.proto, b.appProtocol ?? "")
    }

    /// Identifies a set of ports whatever their order: slices are grouped by it.
    public static func key(_ ports: [EndpointPortSpec]) -> String {
        ports.sorted().map { "\($0.name)/\($0.port.map(String.init) ?? "*")/\($0.proto)/\($0.appProtocol ?? "")" }
            .joined(separator: ",")
    }
}

/// One address of an Endpoints subset.
public struct EndpointAddressSpec: Hashable, Sendable {
    public var ip: String
    public var hostname: String?
    public var nodeName: String?
    public var targetRef: JSON?

    public init(ip: String, hostname: String? = nil, nodeName: String? = nil, targetRef: JSON? = nil) {
        self.ip = ip
        self.hostname = hostname
        self.nodeName = nodeName
        self.targetRef = targetRef
    }

    public init(json: JSON) {
        ip = json["ip"]?.stringValue ?? ""
        hostname = json["hostname"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        nodeName = json["nodeName"]?.stringValue
        targetRef = json["targetRef"].flatMap { $0.isNull ? nil : $0 }
    }

    var uid: String { targetRef?["uid"]?.stringValue ?? "" }

    public var json: JSON {
        var o = JSONObject()
        o["ip"] = .string(ip)
        if let hostname, !hostname.isEmpty { o["hostname"] = .string(hostname) }
        if let nodeName { o["nodeName"] = .string(nodeName) }
        if let targetRef { o["targetRef"] = targetRef }
        return .object(o)
    }

    /// The order upstream repacking leaves addresses in: by the IP's text (bytewise), then pod UID.
    static func repackOrder(_ a: Self, _ b: Self) -> Bool {
        if a.ip != b.ip { return Array(a.ip.utf8).lexicographicallyPrecedes(Array(b.ip.utf8)) }
        if b.targetRef == nil { return false }
        if a.targetRef == nil { return true }
        return a.uid < b.uid
    }
}

/// One subset of an Endpoints object: addresses that all serve the same ports.
public struct EndpointSubsetSpec: Hashable, Sendable {
    public var addresses: [EndpointAddressSpec]
    public var notReadyAddresses: [EndpointAddressSpec]
    public var ports: [EndpointPortSpec]

    public init(addresses: [EndpointAddressSpec] = [], notReadyAddresses: [EndpointAddressSpec] = [],
                ports: [EndpointPortSpec] = []) {
        self.addresses = addresses
        self.notReadyAddresses = notReadyAddresses
        self.ports = ports
    }

    /// Empty lists are left out, as the Go types' omitempty does.
    public var json: JSON {
        var o = JSONObject()
        if !addresses.isEmpty { o["addresses"] = .array(addresses.map(\.json)) }
        if !notReadyAddresses.isEmpty { o["notReadyAddresses"] = .array(notReadyAddresses.map(\.json)) }
        if !ports.isEmpty { o["ports"] = .array(ports.map(\.endpointsJSON)) }
        return .object(o)
    }
}

/// One endpoint of an EndpointSlice.
public struct SliceEndpointSpec: Hashable, Sendable {
    public var addresses: [String]
    public var ready: Bool?
    public var serving: Bool?
    public var terminating: Bool?
    public var hostname: String?
    public var nodeName: String?
    public var zone: String?
    public var targetRef: JSON?

    public init(addresses: [String], ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil,
                hostname: String? = nil, nodeName: String? = nil, zone: String? = nil, targetRef: JSON? = nil) {
        self.addresses = addresses
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.hostname = hostname
        self.nodeName = nodeName
        self.zone = zone
        self.targetRef = targetRef
    }

    public init(json: JSON) {
        addresses = json["addresses"]?.arrayValue?.compactMap(\.stringValue) ?? []
        ready = json[path: "conditions", "ready"]?.boolValue
        serving = json[path: "conditions", "serving"]?.boolValue
        terminating = json[path: "conditions", "terminating"]?.boolValue
        hostname = json["hostname"]?.stringValue
        nodeName = json["nodeName"]?.stringValue
        zone = json["zone"]?.stringValue
        targetRef = json["targetRef"].flatMap { $0.isNull ? nil : $0 }
    }

    /// Field order as discovery/v1 serialises an Endpoint.
    public var json: JSON {
        var o = JSONObject()
        o["addresses"] = .array(addresses.map { .string($0) })
        var conditions = JSONObject()
        if let ready { conditions["ready"] = .bool(ready) }
        if let serving { conditions["serving"] = .bool(serving) }
        if let terminating { conditions["terminating"] = .bool(terminating) }
        o["conditions"] = .object(conditions)
        if let hostname { o["hostname"] = .string(hostname) }
        if let targetRef { o["targetRef"] = targetRef }
        if let nodeName { o["nodeName"] = .string(nodeName) }
        if let zone { o["zone"] = .string(zone) }
        return .object(o)
    }

    /// What makes two endpoints "the same endpoint" across syncs: only the addresses, the
    /// hostname and the target's namespace/name, so a readiness change updates the endpoint
    /// in place instead of moving it between slices.
    public struct Identity: Hashable, Sendable, Comparable {
        var addresses: [String]
        var hostname: String
        var namespace: String
        var name: String

        public static func < (a: Self, b: Self) -> Bool {
            let x = a.addresses.joined(separator: ","), y = b.addresses.joined(separator: ",")
            if x != y { return x < y }
            return (a.namespace, a.name, a.hostname) < (b.namespace, b.name, b.hostname)
        }
    }

    public var identity: Identity {
        Identity(addresses: addresses.sorted(), hostname: hostname ?? "",
                 namespace: targetRef?["namespace"]?.stringValue ?? "", name: targetRef?["name"]?.stringValue ?? "")
    }

    /// Whether an update is needed beyond what the identity covers: node, zone, conditions and
    /// the target (its resourceVersion aside, so unrelated pod writes do not churn slices).
    public func sameBeyondIdentity(_ other: Self) -> Bool {
        nodeName == other.nodeName && zone == other.zone && ready == other.ready && serving == other.serving
            && terminating == other.terminating
            && EndpointsComputation.withoutResourceVersion(targetRef) == EndpointsComputation.withoutResourceVersion(other.targetRef)
    }
}

/// The endpoints of one group of pods that serve the same ports: one or more slices.
public struct SliceGroup: Sendable, Equatable {
    public var ports: [EndpointPortSpec]
    public var endpoints: [SliceEndpointSpec]

    public init(ports: [EndpointPortSpec], endpoints: [SliceEndpointSpec]) {
        self.ports = ports
        self.endpoints = endpoints
    }

    public var key: String { EndpointPortSpec.key(ports) }
}

/// What a Service and the pods of its namespace make of Endpoints and EndpointSlices, as the
/// upstream endpoint and endpointslice controllers compute it. Pure: no API access, so every
/// readiness case can be checked in a table.
public enum EndpointsComputation {
    // MARK: Service facts

    /// The selector map; nil when the service has none. An empty map counts as none because the
    /// API drops an empty selector on the way through storage.
    public static func selector(of service: JSON) -> [String: String]? {
        guard let o = service[path: "spec", "selector"]?.objectValue, !o.isEmpty else { return nil }
        var out: [String: String] = [:]
        for (k, v) in o { out[k] = v.stringValue ?? "" }
        return out
    }

    public static func isExternalName(_ service: JSON) -> Bool {
        service[path: "spec", "type"]?.stringValue == "ExternalName"
    }

    static func clusterIP(_ service: JSON) -> String { service[path: "spec", "clusterIP"]?.stringValue ?? "" }

    /// A service without a cluster IP (headless) gets the headless label on its endpoints.
    public static func isServiceIPSet(_ service: JSON) -> Bool {
        let ip = clusterIP(service)
        return !ip.isEmpty && ip != "None"
    }

    static func publishNotReady(_ service: JSON) -> Bool {
        service[path: "spec", "publishNotReadyAddresses"]?.boolValue ?? false
    }

    struct ServicePort {
        var name: String
        var port: Int64
        var proto: String
        var appProtocol: String?
        /// A container port number, or a container port name to look up per pod.
        var target: Target
        enum Target { case number(Int64), name(String) }

        init(_ json: JSON) {
            name = json["name"]?.stringValue ?? ""
            port = json["port"]?.intValue ?? 0
            proto = json["protocol"]?.stringValue ?? "TCP"
            appProtocol = json["appProtocol"]?.stringValue
            switch json["targetPort"] {
            case .string(let s)?: target = .name(s)
            case let v?: target = .number(v.intValue.flatMap { $0 == 0 ? nil : $0 } ?? port)
            case nil: target = .number(port)
            }
        }
    }

    static func ports(of service: JSON) -> [ServicePort] {
        (service[path: "spec", "ports"]?.arrayValue ?? []).map(ServicePort.init)
    }

    /// The address families the service's slices are kept for.
    public static func addressTypes(of service: JSON) -> [String] {
        var types: [String] = []
        for family in service[path: "spec", "ipFamilies"]?.arrayValue ?? [] {
            switch family.stringValue {
            case "IPv4": if !types.contains("IPv4") { types.append("IPv4") }
            case "IPv6": if !types.contains("IPv6") { types.append("IPv6") }
            default: break
            }
        }
        if !types.isEmpty { return types }
        // No families recorded (an older object): follow the cluster IP, or keep both for a
        // headless service so no traffic is dropped until the families are filled in.
        if isServiceIPSet(service) { return [IP.family(of: clusterIP(service)) ?? "IPv4"] }
        return ["IPv4", "IPv6"]
    }

    // MARK: Pod facts

    public static func isReady(_ pod: JSON) -> Bool {
        for c in pod[path: "status", "conditions"]?.arrayValue ?? [] where c["type"]?.stringValue == "Ready" {
            return c["status"]?.stringValue == "True"
        }
        return false
    }

    static func readyTransitionTime(_ pod: JSON) -> Double? {
        for c in pod[path: "status", "conditions"]?.arrayValue ?? [] where c["type"]?.stringValue == "Ready" {
            return c["lastTransitionTime"]?.stringValue.flatMap(Timestamp.parse)
        }
        return nil
    }

    public static func isTerminal(_ pod: JSON) -> Bool {
        let phase = pod[path: "status", "phase"]?.stringValue
        return phase == "Succeeded" || phase == "Failed"
    }

    public static func isTerminating(_ pod: JSON) -> Bool { pod.deletionTimestamp != nil }

    /// The pod's IPs, primary first.
    static func podIPs(_ pod: JSON) -> [String] {
        let listed = (pod[path: "status", "podIPs"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }.filter { !$0.isEmpty }
        if !listed.isEmpty { return listed }
        if let ip = pod[path: "status", "podIP"]?.stringValue, !ip.isEmpty { return [ip] }
        return []
    }

    /// Whether the pod belongs in a service's endpoints at all: it has an address and has not
    /// finished; a terminating pod only when `includeTerminating`.
    public static func shouldBeInEndpoints(_ pod: JSON, includeTerminating: Bool) -> Bool {
        if isTerminal(pod) { return false }
        if podIPs(pod).isEmpty { return false }
        if !includeTerminating && isTerminating(pod) { return false }
        return true
    }

    /// A pod gets a DNS hostname under the service when it names the service as its subdomain.
    public static func hostname(of pod: JSON, for service: JSON) -> String? {
        guard let hostname = pod[path: "spec", "hostname"]?.stringValue, !hostname.isEmpty,
              pod[path: "spec", "subdomain"]?.stringValue == service.name,
              pod.namespace == service.namespace
        else { return nil }
        return hostname
    }

    /// The container port a service port reaches on this pod; nil when a named target port is
    /// not declared by the pod (with the service port's protocol).
    static func findPort(_ pod: JSON, _ port: ServicePort) -> Int64? {
        switch port.target {
        case .number(let n):
            return n
        case .name(let name):
            for c in pod[path: "spec", "containers"]?.arrayValue ?? [] {
                if let n = namedPort(c, name, port.proto) { return n }
            }
            // Sidecars (init containers that keep running) may serve the port too.
            for c in pod[path: "spec", "initContainers"]?.arrayValue ?? [] where c["restartPolicy"]?.stringValue == "Always" {
                if let n = namedPort(c, name, port.proto) { return n }
            }
            return nil
        }
    }

    private static func namedPort(_ container: JSON, _ name: String, _ proto: String) -> Int64? {
        for p in container["ports"]?.arrayValue ?? [] {
            if p["name"]?.stringValue == name, (p["protocol"]?.stringValue ?? "TCP") == proto {
                return p["containerPort"]?.intValue
            }
        }
        return nil
    }

    static func targetRef(_ pod: JSON) -> JSON {
        [
            "kind": "Pod",
            "namespace": .string(pod.namespace ?? ""),
            "name": .string(pod.name ?? ""),
            "uid": .string(pod.uid ?? ""),
        ]
    }

    static func nodeName(_ pod: JSON) -> String? {
        guard let n = pod[path: "spec", "nodeName"]?.stringValue, !n.isEmpty else { return nil }
        return n
    }

    /// Pods of the service: in its namespace and matching its selector (nothing without one).
    public static func selectedPods(_ service: JSON, from pods: [JSON]) -> [JSON] {
        guard let selector = selector(of: service) else { return [] }
        return pods.filter { pod in
            pod.namespace == service.namespace && selector.allSatisfy { pod.labels[$0.key] == $0.value }
        }
    }

    // MARK: Endpoints

    /// The subsets of the service's Endpoints, repacked into upstream's canonical layout:
    /// addresses grouped by the exact set of ports they serve, sorted by IP then pod UID.
    /// `pods` may be the whole namespace; the selector is applied here.
    public static func subsets(service: JSON, pods: [JSON]) -> [EndpointSubsetSpec] {
        let publish = publishNotReady(service)
        let servicePorts = ports(of: service)
        let headless = clusterIP(service) == "None"
        let family = endpointsFamily(service)
        var raw: [EndpointSubsetSpec] = []
        for pod in selectedPods(service, from: pods).sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) {
            guard shouldBeInEndpoints(pod, includeTerminating: publish) else { continue }
            let ips = podIPs(pod)
            let wanted = family ?? IP.family(of: ips.first ?? "") ?? "IPv4"
            guard let ip = ips.first(where: { IP.family(of: $0) == wanted }) else { continue }
            let address = EndpointAddressSpec(ip: ip, hostname: hostname(of: pod, for: service),
                                              nodeName: nodeName(pod), targetRef: targetRef(pod))
            let ready = publish || isReady(pod)
            func add(_ ports: [EndpointPortSpec]) {
                raw.append(ready ? EndpointSubsetSpec(addresses: [address], ports: ports)
                                 : EndpointSubsetSpec(notReadyAddresses: [address], ports: ports))
            }
            if servicePorts.isEmpty {
                // Only a headless service may have no ports; its endpoints then carry none.
                if headless { add([]) }
                continue
            }
            for sp in servicePorts {
                guard let number = findPort(pod, sp) else { continue }
                add([EndpointPortSpec(name: sp.name, port: number, proto: sp.proto, appProtocol: sp.appProtocol)])
            }
        }
        return repack(raw)
    }

    /// The family of the address the Endpoints carry per pod; nil means "the pod's primary".
    static func endpointsFamily(_ service: JSON) -> String? {
        if let first = service[path: "spec", "ipFamilies"]?.arrayValue?.first?.stringValue,
           first == "IPv4" || first == "IPv6" {
            return first
        }
        if isServiceIPSet(service) { return IP.family(of: clusterIP(service)) }
        return nil
    }

    /// Upstream's RepackSubsets: expand to (address, port, ready), de-duplicate addresses by IP
    /// and pod UID (not-ready wins over ready for the same port), then regroup ports that share
    /// exactly the same addresses. Subsets and ports come out in a fixed order (upstream orders
    /// them by a hash, which no client relies on).
    public static func repack(_ subsets: [EndpointSubsetSpec]) -> [EndpointSubsetSpec] {
        struct AddressKey: Hashable { var ip: String; var uid: String }
        var addresses: [AddressKey: EndpointAddressSpec] = [:]
        // nil port: the sentinel for subsets without ports, which must not be dropped.
        var byPort: [EndpointPortSpec?: [AddressKey: Bool]] = [:]
        var portOrder: [EndpointPortSpec?] = []

        func map(_ a: EndpointAddressSpec, _ port: EndpointPortSpec?, ready: Bool) {
            let key = AddressKey(ip: a.ip, uid: a.uid)
            if addresses[key] == nil { addresses[key] = a }
            if byPort[port] == nil {
                byPort[port] = [:]
                portOrder.append(port)
            }
            if let was = byPort[port]?[key], !was { return }
            byPort[port]?[key] = ready
        }
        for s in subsets {
            let ports: [EndpointPortSpec?] = s.ports.isEmpty ? [nil] : s.ports
            for p in ports {
                for a in s.addresses { map(a, p, ready: true) }
                for a in s.notReadyAddresses { map(a, p, ready: false) }
            }
        }

        struct Member: Hashable { var key: AddressKey; var ready: Bool }
        var groups: [Set<Member>: [EndpointPortSpec]] = [:]
        var groupOrder: [Set<Member>] = []
        for port in portOrder {
            let members = Set((byPort[port] ?? [:]).map { Member(key: $0.key, ready: $0.value) })
            if groups[members] == nil {
                groups[members] = []
                groupOrder.append(members)
            }
            if let port { groups[members]?.append(port) }
        }

        var out: [EndpointSubsetSpec] = []
        for members in groupOrder {
            var subset = EndpointSubsetSpec(ports: (groups[members] ?? []).sorted())
            for m in members {
                guard let a = addresses[m.key] else { continue }
                if m.ready { subset.addresses.append(a) } else { subset.notReadyAddresses.append(a) }
            }
            subset.addresses.sort(by: EndpointAddressSpec.repackOrder)
            subset.notReadyAddresses.sort(by: EndpointAddressSpec.repackOrder)
            out.append(subset)
        }
        return out.sorted { a, b in
            let pa = EndpointPortSpec.key(a.ports), pb = EndpointPortSpec.key(b.ports)
            if pa != pb { return pa < pb }
            let fa = (a.addresses.first ?? a.notReadyAddresses.first)?.ip ?? ""
            let fb = (b.addresses.first ?? b.notReadyAddresses.first)?.ip ?? ""
            return fa < fb
        }
    }

    /// Most addresses one Endpoints object carries; past it the controller truncates and says so.
    public static let maxEndpointsCapacity = 1000

    /// Cuts subsets down to `maxEndpointsCapacity` addresses the way upstream does: ready
    /// addresses are kept first, each subset keeping its proportional share (rounded up).
    /// Returns whether anything was cut.
    public static func truncate(_ subsets: inout [EndpointSubsetSpec]) -> Bool {
        let totalReady = subsets.reduce(0) { $0 + $1.addresses.count }
        let totalNotReady = subsets.reduce(0) { $0 + $1.notReadyAddresses.count }
        guard totalReady + totalNotReady > maxEndpointsCapacity else { return false }
        let truncateReady = totalReady > maxEndpointsCapacity
        let limit = truncateReady ? maxEndpointsCapacity : maxEndpointsCapacity - totalReady
        let total = truncateReady ? totalReady : totalNotReady
        var room = limit
        for i in subsets.indices {
            let inSubset = truncateReady ? subsets[i].addresses.count : subsets[i].notReadyAddresses.count
            let share = min(Int((Double(inSubset) / Double(total) * Double(limit)).rounded(.up)), room)
            if truncateReady {
                subsets[i].addresses = Array(subsets[i].addresses.prefix(share))
                subsets[i].notReadyAddresses = []
                room -= subsets[i].addresses.count
            } else {
                subsets[i].notReadyAddresses = Array(subsets[i].notReadyAddresses.prefix(share))
                room -= subsets[i].notReadyAddresses.count
            }
        }
        return true
    }

    // MARK: EndpointSlices

    /// The desired endpoints of the service's slices of one address type, grouped by the set of
    /// ports the pods serve (pods lacking a named port form their own group). Terminating pods
    /// are kept, marked terminating, so consumers can drain them.
    public static func sliceGroups(service: JSON, pods: [JSON], addressType: String) -> [SliceGroup] {
        let publish = publishNotReady(service)
        let servicePorts = ports(of: service)
        let headless = clusterIP(service) == "None"
        var groups: [String: SliceGroup] = [:]
        var order: [String] = []
        for pod in selectedPods(service, from: pods) {
            guard shouldBeInEndpoints(pod, includeTerminating: true) else { continue }
            var ports: [EndpointPortSpec] = []
            if !(servicePorts.isEmpty && headless) {
                for sp in servicePorts {
                    guard let number = findPort(pod, sp) else { continue }
                    ports.append(EndpointPortSpec(name: sp.name, port: number, proto: sp.proto, appProtocol: sp.appProtocol))
                }
            }
            let key = EndpointPortSpec.key(ports)
            if groups[key] == nil {
                groups[key] = SliceGroup(ports: ports, endpoints: [])
                order.append(key)
            }
            let serving = isReady(pod)
            let terminating = isTerminating(pod)
            let addresses = podIPs(pod).compactMap { ip -> String? in
                guard let parsed = IP.parse(ip), parsed.family == addressType else { return nil }
                return parsed.text
            }
            // A pod without an address of this family still makes its port group exist.
            guard !addresses.isEmpty else { continue }
            groups[key]?.endpoints.append(SliceEndpointSpec(
                addresses: addresses,
                // "ready" is never true for a terminating pod unless the service publishes
                // not-ready addresses, for clients that only look at "ready".
                ready: publish || (serving && !terminating),
                serving: serving,
                terminating: terminating,
                hostname: hostname(of: pod, for: service),
                nodeName: nodeName(pod),
                targetRef: targetRef(pod)))
        }
        return order.compactMap { key in
            groups[key].map { g in
                var g = g
                g.endpoints.sort { $0.identity < $1.identity }
                return g
            }
        }
    }

    // MARK: Helpers

    /// A target reference compared without its resourceVersion.
    static func withoutResourceVersion(_ ref: JSON?) -> JSON? {
        guard var ref else { return nil }
        ref["resourceVersion"] = nil
        return canonical(ref)
    }

    /// A value with object keys sorted and empty or null members dropped, so two encodings of
    /// the same content (one written by us, one read back from the store) compare equal.
    public static func canonical(_ value: JSON) -> JSON {
        switch value {
        case .object(let o):
            var out = JSONObject()
            for key in o.keys.sorted() {
                guard let v = o[key] else { continue }
                let c = canonical(v)
                if isEmpty(c) { continue }
                out[key] = c
            }
            return .object(out)
        case .array(let a):
            return .array(a.map(canonical))
        default:
            return value
        }
    }

    private static func isEmpty(_ v: JSON) -> Bool {
        switch v {
        case .null: return true
        case .array(let a): return a.isEmpty
        case .object(let o): return o.isEmpty
        default: return false
        }
    }

    /// A string map as a JSON object with sorted keys.
    static func stringMap(_ m: [String: String]) -> JSON {
        var o = JSONObject()
        for key in m.keys.sorted() { o[key] = .string(m[key] ?? "") }
        return .object(o)
    }

    static func annotations(_ obj: JSON) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in obj[path: "metadata", "annotations"]?.objectValue ?? [:] { out[k] = v.stringValue ?? "" }
        return out
    }

    /// An ownerReference naming `obj` as the managing controller.
    static func controllerRef(to obj: JSON, apiVersion: String, kind: String) -> JSON {
        [
            "apiVersion": .string(apiVersion),
            "kind": .string(kind),
            "name": .string(obj.name ?? ""),
            "uid": .string(obj.uid ?? ""),
            "controller": true,
            "blockOwnerDeletion": true,
        ]
    }

    /// Splits a work-queue key ("namespace/name").
    static func split(_ key: String) -> (namespace: String, name: String) {
        guard let slash = key.firstIndex(of: "/") else { return ("", key) }
        return (String(key[..<slash]), String(key[key.index(after: slash)...]))
    }
}

/// IP parsing for address families; the text is re-written in canonical form (as Go's
/// net.IP.String() does) so "::ffff:10.0.0.1" and "fd00:0::1" compare as consumers expect.
enum IP {
    struct Parsed {
        var family: String
        var text: String
    }

    static func parse(_ s: String) -> Parsed? {
        var v4 = in_addr()
        if s.withCString({ inet_pton(AF_INET, $0, &v4) }) == 1 {
            return Parsed(family: "IPv4", text: s)
        }
        var v6 = in6_addr()
        guard s.withCString({ inet_pton(AF_INET6, $0, &v6) }) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        // An IPv4-mapped IPv6 address is an IPv4 address to Kubernetes.
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return Parsed(family: "IPv4", text: bytes[12..<16].map(String.init).joined(separator: "."))
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return nil }
        let text = buffer.withUnsafeBufferPointer { p in p.baseAddress.map { String(cString: $0) } ?? s }
        return Parsed(family: "IPv6", text: text)
    }

    static func family(of s: String) -> String? { parse(s)?.family }
}

/// The `endpoints.kubernetes.io/last-change-trigger-time` value: the earliest change (a pod's
/// Ready transition or the service's creation) not yet reflected by a previous sync, so
/// consumers can measure how long a change took to reach them. Upstream's algorithm, with
/// the same known inaccuracy when one object changes twice between syncs.
final class TriggerTimeTracker: Sendable {
    struct State {
        var serviceTime: Double?
        var podTimes: [String: Double] = [:]
    }
    let states = Mutex<[String: State]>([:])

    /// Unix seconds to publish, or nil for "no annotation".
    func compute(key: String, service: JSON, pods: [JSON]) -> Double? {
        let previous = states.withLock { $0[key] }
        var state = previous ?? State()
        var earliest: Double?
        func consider(_ t: Double) { earliest = min(earliest ?? t, t) }
        var podTimes: [String: Double] = [:]
        for pod in pods {
            guard let t = EndpointsComputation.readyTransitionTime(pod), let name = pod.name else { continue }
            podTimes[name] = t
            if t > (state.podTimes[name] ?? -Double.infinity) { consider(t) }
        }
        let created = service[path: "metadata", "creationTimestamp"]?.stringValue.flatMap(Timestamp.parse)
        if let created, created > (state.serviceTime ?? -Double.infinity) { consider(created) }
        state.podTimes = podTimes
        state.serviceTime = created
        states.withLock { $0[key] = state }
        // A service seen for the first time: its creation is the trigger.
        if previous == nil { return created }
        return earliest
    }

    func forget(_ key: String) {
        states.withLock { _ = $0.removeValue(forKey: key) }
    }

    /// RFC 3339 as the annotation carries it (Go's RFC3339Nano of a whole-second time).
    static func format(_ t: Double) -> String {
        if t == t.rounded(.down) { return Timestamp.format(t) }
        return Timestamp.format(t, micro: true)
    }
}
