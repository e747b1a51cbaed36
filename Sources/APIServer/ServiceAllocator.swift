import APIMachinery
import Logging

/// The cluster-wide pools a Service draws from: ClusterIPs from `--service-cluster-ip-range`
/// and node ports from `--service-node-port-range`.
public struct ServiceRanges: Sendable, Equatable {
    /// Network address of the service range, host order.
    public let network: UInt32
    public let prefixLength: Int
    public let nodePorts: ClosedRange<Int>

    public init(network: UInt32, prefixLength: Int, nodePorts: ClosedRange<Int>) {
        self.network = network
        self.prefixLength = prefixLength
        self.nodePorts = nodePorts
    }

    /// Usable addresses are network+1 ... broadcast-1 (as upstream's allocator for ranges
    /// bigger than /31).
    var ipCount: Int { max(0, (1 << (32 - prefixLength)) - 2) }
    var cidrText: String { "\(ServiceAllocator.format(network))/\(prefixLength)" }

    /// The ClusterIP at `offset` from the network address: 1 is the `kubernetes` service, 10 the DNS service.
    public func address(_ offset: Int) -> String { ServiceAllocator.format(network &+ UInt32(offset)) }
}

/// Hands out ClusterIPs and node ports as part of a Service's write, as kube-apiserver's
/// service storage does: a requested value is honoured or refused with 422; otherwise a free
/// one is picked at random from the upper part of the range (the lower part is kept for
/// requested values, KEP-3070), never the DNS service's address.
///
/// Allocations live in memory and are rebuilt from the stored Services at start, so a crash
/// between allocation and write cannot leak; `repair` re-checks against the store while
/// keeping allocations of writes still in flight.
public actor ServiceAllocator {
    public let ranges: ServiceRanges
    var ips = Set<Int>()        // offsets from the network address
    var ports = Set<Int>()
    var inFlight: [Int: Reservation] = [:]
    var nextID = 0
    /// While a repair reads the store: what was allocated and released meanwhile.
    var repairLog: (allocatedIPs: Set<Int>, allocatedPorts: Set<Int>, releasedIPs: Set<Int>, releasedPorts: Set<Int>)?
    let logger: Logger

    /// What one write took and will give back.
    public struct Reservation: Sendable {
        let id: Int
        var allocatedIPs: [Int] = []
        var allocatedPorts: [Int] = []
        var releaseIPs: [Int] = []
        var releasePorts: [Int] = []
        let dryRun: Bool
    }

    public init(ranges: ServiceRanges, logger: Logger = Logger(label: "labnode.apiserver.allocator")) {
        self.ranges = ranges
        self.logger = logger
    }

    // MARK: Write path

    /// Fills in the ClusterIP and node ports `service` needs that `old` (nil on create) did not
    /// hold, and works out what `old` held that `service` gives up. Throws the API error a
    /// refused request gets; nothing stays reserved then.
    public func allocate(_ proposed: JSON, old: JSON?, dryRun: Bool) throws(APIError) -> (JSON, Reservation) {
        var service = proposed
        nextID += 1
        var r = Reservation(id: nextID, dryRun: dryRun)
        do {
            try allocateClusterIP(&service, old: old, &r)
            try allocateNodePorts(&service, old: old, &r)
        } catch {
            revert(r)
            throw error
        }
        if dryRun {
            // A dry run shows what would be allocated but keeps nothing.
            revert(r)
            return (service, Reservation(id: r.id, dryRun: true))
        }
        inFlight[r.id] = r
        return (service, r)
    }

    /// The write succeeded: what the old state held and the new one does not goes back to the pool.
    public func commit(_ r: Reservation) {
        inFlight[r.id] = nil
        guard !r.dryRun else { return }
        for ip in r.releaseIPs { releaseIP(ip) }
        for port in r.releasePorts { releasePort(port) }
    }

    /// The write failed: what it took goes back.
    public func revert(_ r: Reservation) {
        inFlight[r.id] = nil
        for ip in r.allocatedIPs { releaseIP(ip) }
        for port in r.allocatedPorts { releasePort(port) }
    }

    /// A Service was deleted.
    public func release(_ service: JSON) {
        for ip in Self.clusterIPOffsets(service, ranges) { releaseIP(ip) }
        for port in Self.nodePorts(service) where ranges.nodePorts.contains(port) { releasePort(port) }
    }

    // MARK: Rebuild and repair

    /// Marks what the stored Services hold (at start, before any write).
    public func rebuild(from services: [JSON]) {
        ips = []
        ports = []
        for s in services { mark(s) }
    }

    /// Call before reading the Services for `finishRepair`.
    public func beginRepair() {
        repairLog = ([], [], [], [])
    }

    /// Abandons a repair whose read of the Services failed.
    public func cancelRepair() {
        repairLog = nil
    }

    /// Makes the pools match `services` (read after `beginRepair`), keeping what in-flight
    /// writes hold. Returns how many allocations were leaked and are now free again.
    @discardableResult
    public func finishRepair(services: [JSON]) -> Int {
        guard let log = repairLog else { return 0 }
        repairLog = nil
        var stored = (ips: Set<Int>(), ports: Set<Int>())
        for s in services {
            stored.ips.formUnion(Self.clusterIPOffsets(s, ranges))
            stored.ports.formUnion(Self.nodePorts(s).filter { ranges.nodePorts.contains($0) })
        }
        var keepIPs = stored.ips.subtracting(log.releasedIPs).union(log.allocatedIPs)
        var keepPorts = stored.ports.subtracting(log.releasedPorts).union(log.allocatedPorts)
        for r in inFlight.values {
            keepIPs.formUnion(r.allocatedIPs)
            keepPorts.formUnion(r.allocatedPorts)
        }
        let leaked = ips.subtracting(keepIPs).count + ports.subtracting(keepPorts).count
        if leaked > 0 { logger.info("released \(leaked) leaked service allocations") }
        ips = keepIPs
        ports = keepPorts
        return leaked
    }

    public var allocatedIPCount: Int { ips.count }
    public var allocatedPortCount: Int { ports.count }

    // MARK: ClusterIP

    func allocateClusterIP(_ service: inout JSON, old: JSON?, _ r: inout Reservation) throws(APIError) {
        let type = service[path: "spec", "type"]?.stringValue ?? "ClusterIP"
        let oldType = old?[path: "spec", "type"]?.stringValue
        let oldIPs = old.map { Self.clusterIPOffsets($0, ranges) } ?? []
        if type == "ExternalName" {
            // ClusterIP types -> ExternalName gives the address back.
            r.releaseIPs += oldIPs
            return
        }
        // An existing (non-ExternalName) service keeps its address; the API forbids changing it.
        if let old, oldType != "ExternalName" {
            _ = old
            return
        }
        let requested = service[path: "spec", "clusterIP"]?.stringValue ?? ""
        if requested == "None" { return }
        let offset: Int
        if requested.isEmpty {
            guard let free = pickIP() else {
                throw APIError.internalError("failed to allocate a serviceIP: range is full")
            }
            offset = free
        } else {
            guard let value = Self.parse(requested), Self.inRange(value, ranges) else {
                throw invalidIP(service, requested, "the provided IP (\(requested)) is not in the valid range. The range of valid IPs is \(ranges.cidrText)")
            }
            offset = Int(value &- ranges.network)
            guard !ips.contains(offset) else {
                throw invalidIP(service, requested, "provided IP is already allocated")
            }
        }
        takeIP(offset)
        r.allocatedIPs.append(offset)
        let ip = ranges.address(offset)
        service[path: "spec", "clusterIP"] = .string(ip)
        service[path: "spec", "clusterIPs"] = [.string(ip)]
    }

    func invalidIP(_ service: JSON, _ ip: String, _ why: String) -> APIError {
        let ips = (service[path: "spec", "clusterIPs"]?.arrayValue ?? [.string(ip)]).compactMap(\.stringValue)
        let value = "[]string{" + ips.map { GoQuote.quote($0) }.joined(separator: ", ") + "}"
        let e = Validation.FieldError(kind: .invalid, field: "spec.clusterIPs", value: .goSyntax(value),
                                      detail: "failed to allocate IP \(ip): \(why)")
        return APIError.invalid(kind: "Service", name: service.name ?? "", causes: [e.cause])
    }

    /// A random free offset in the upper band, else the lower band; never the DNS address (10).
    func pickIP() -> Int? {
        let count = ranges.ipCount
        guard count > 0 else { return nil }
        let band = min(max(16, count / 16), 256)
        let reserved = 10
        let bands = band < count ? [band + 1...count, 1...band] : [1...count]
        if let free = Self.pickFree(in: bands, isFree: { $0 != reserved && !ips.contains($0) }) { return free }
        // Only the reserved address is left: better to use it than to fail.
        return ips.contains(reserved) || reserved > count ? nil : reserved
    }

    /// Scans each band from a random start, wrapping around, for the first value `isFree` accepts.
    static func pickFree(in bands: [ClosedRange<Int>], isFree: (Int) -> Bool) -> Int? {
        for band in bands {
            let start = Int.random(in: 0..<band.count)
            for i in 0..<band.count {
                let value = band.lowerBound + (start + i) % band.count
                if isFree(value) { return value }
            }
        }
        return nil
    }

    func takeIP(_ offset: Int) {
        ips.insert(offset)
        repairLog?.allocatedIPs.insert(offset)
    }

    func releaseIP(_ offset: Int) {
        ips.remove(offset)
        repairLog?.releasedIPs.insert(offset)
    }

    // MARK: Node ports

    func allocateNodePorts(_ service: inout JSON, old: JSON?, _ r: inout Reservation) throws(APIError) {
        let type = service[path: "spec", "type"]?.stringValue ?? "ClusterIP"
        let held = Set(old.map(Self.nodePorts) ?? [])
        let wantsPorts = type == "NodePort" || type == "LoadBalancer"
        let allocateNew = type == "NodePort"
            || (type == "LoadBalancer" && service[path: "spec", "allocateLoadBalancerNodePorts"]?.boolValue != false)
        var kept = Set<Int>()
        if wantsPorts, var list = service[path: "spec", "ports"]?.arrayValue {
            // Ports with the same number (53/TCP and 53/UDP) share one node port, as upstream.
            var byPort: [Int64: Int] = [:]
            for (i, p) in list.enumerated() {
                let requested = Int(p["nodePort"]?.intValue ?? 0)
                let number = p["port"]?.intValue ?? 0
                if requested != 0 {
                    if !held.contains(requested) && !kept.contains(requested) {
                        try takeRequestedPort(requested, index: i, service: service)
                        r.allocatedPorts.append(requested)
                    }
                    kept.insert(requested)
                    byPort[number] = requested
                } else if let shared = byPort[number] {
                    list[i]["nodePort"] = .int(Int64(shared))
                } else if allocateNew {
                    guard let free = pickPort() else {
                        throw APIError.internalError("failed to allocate a nodePort: range is full")
                    }
                    takePort(free)
                    r.allocatedPorts.append(free)
                    kept.insert(free)
                    byPort[number] = free
                    list[i]["nodePort"] = .int(Int64(free))
                }
            }
            service[path: "spec", "ports"] = .array(list)
        }
        // A LoadBalancer with externalTrafficPolicy Local needs a health-check port.
        let needsHC = type == "LoadBalancer" && service[path: "spec", "externalTrafficPolicy"]?.stringValue == "Local"
        if needsHC {
            let requested = Int(service[path: "spec", "healthCheckNodePort"]?.intValue ?? 0)
            if requested != 0 {
                if !held.contains(requested) && !kept.contains(requested) {
                    guard ranges.nodePorts.contains(requested), !ports.contains(requested) else {
                        throw APIError.internalError("failed to allocate requested HealthCheck NodePort \(requested): provided port is already allocated")
                    }
                    takePort(requested)
                    r.allocatedPorts.append(requested)
                }
                kept.insert(requested)
            } else {
                guard let free = pickPort() else {
                    throw APIError.internalError("failed to allocate a HealthCheck NodePort 0: range is full")
                }
                takePort(free)
                r.allocatedPorts.append(free)
                kept.insert(free)
                service[path: "spec", "healthCheckNodePort"] = .int(Int64(free))
            }
        }
        r.releasePorts += held.subtracting(kept).filter { ranges.nodePorts.contains($0) }
    }

    func takeRequestedPort(_ port: Int, index: Int, service: JSON) throws(APIError) {
        let why: String
        if !ranges.nodePorts.contains(port) {
            why = "provided port is not in the valid range. The range of valid ports is \(ranges.nodePorts.lowerBound)-\(ranges.nodePorts.upperBound)"
        } else if ports.contains(port) {
            why = "provided port is already allocated"
        } else {
            takePort(port)
            return
        }
        let e = Validation.FieldError(kind: .invalid, field: "spec.ports[\(index)].nodePort", value: .int(Int64(port)), detail: why)
        throw APIError.invalid(kind: "Service", name: service.name ?? "", causes: [e.cause])
    }

    func pickPort() -> Int? {
        let range = ranges.nodePorts
        let band = min(max(16, range.count / 32), 128)
        let bands = band < range.count
            ? [range.lowerBound + band...range.upperBound, range.lowerBound...range.lowerBound + band - 1] : [range]
        return Self.pickFree(in: bands) { !ports.contains($0) }
    }

    func takePort(_ port: Int) {
        ports.insert(port)
        repairLog?.allocatedPorts.insert(port)
    }

    func releasePort(_ port: Int) {
        ports.remove(port)
        repairLog?.releasedPorts.insert(port)
    }

    // MARK: Reading a Service

    func mark(_ service: JSON) {
        for ip in Self.clusterIPOffsets(service, ranges) {
            if ips.contains(ip) { logger.warning("cluster IP \(ranges.address(ip)) is held by more than one service (\(service.namespace ?? "")/\(service.name ?? ""))") }
            ips.insert(ip)
        }
        for p in Self.nodePorts(service) where ranges.nodePorts.contains(p) { ports.insert(p) }
    }

    static func clusterIPOffsets(_ service: JSON, _ ranges: ServiceRanges) -> [Int] {
        guard service[path: "spec", "type"]?.stringValue != "ExternalName" else { return [] }
        var ips = (service[path: "spec", "clusterIPs"]?.arrayValue ?? []).compactMap(\.stringValue)
        if ips.isEmpty, let ip = service[path: "spec", "clusterIP"]?.stringValue { ips = [ip] }
        return ips.compactMap { s in
            guard let v = parse(s), inRange(v, ranges) else { return nil }
            return Int(v &- ranges.network)
        }
    }

    static func nodePorts(_ service: JSON) -> [Int] {
        var out = (service[path: "spec", "ports"]?.arrayValue ?? []).compactMap { $0["nodePort"]?.intValue }.map(Int.init)
        if let hc = service[path: "spec", "healthCheckNodePort"]?.intValue { out.append(Int(hc)) }
        return Array(Set(out.filter { $0 != 0 }))
    }

    static func inRange(_ value: UInt32, _ ranges: ServiceRanges) -> Bool {
        let offset = Int(value &- ranges.network)
        let mask: UInt32 = ranges.prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - ranges.prefixLength)
        return value & mask == ranges.network && offset >= 1 && offset <= ranges.ipCount
    }

    /// Dotted quad to host order; nil for anything else (IPv6, garbage).
    static func parse(_ s: String) -> UInt32? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let n = UInt32(p), n < 256 else { return nil }
            v = v << 8 | n
        }
        return v
    }

    static func format(_ v: UInt32) -> String {
        "\(v >> 24).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)"
    }
}
