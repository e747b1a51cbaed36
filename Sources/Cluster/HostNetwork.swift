import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

// The host checks `labnode up` runs before it touches anything: address and CIDR parsing for the
// flags, the node IP default, overlap of our ranges with the host's routes, and free ports.
// Everything that reads the host takes its input as a parameter (a file path, a list of
// interfaces) so tests feed fixtures instead of needing a particular machine.

/// A failed host check or an unparsable network flag. `description` is one line meant to be
/// printed as is by `labnode up`.
public enum HostNetworkError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidAddress(String, reason: String)
    case invalidCIDR(String, reason: String)
    case cidrTooLarge(flag: String, cidr: IPv4CIDR, minimumPrefix: Int)
    case invalidPortRange(String, reason: String)
    case overlapsHostRoute(flag: String, cidr: IPv4CIDR, route: HostRoute)
    case portInUse(host: String, port: Int, purpose: String, reason: String)
    case cannotRead(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidAddress(text, reason):
            return "invalid IPv4 address \"\(text)\": \(reason)"
        case let .invalidCIDR(text, reason):
            return "invalid CIDR \"\(text)\": \(reason)"
        case let .cidrTooLarge(flag, _, minimumPrefix):
            // Same wording as kube-apiserver's check of --service-cluster-ip-range.
            return "specified \(flag) is too large; for 32-bit addresses, the mask must be >= \(minimumPrefix)"
        case let .invalidPortRange(text, reason):
            return "invalid port range \"\(text)\": \(reason)"
        case let .overlapsHostRoute(flag, cidr, route):
            return "\(flag) \(cidr) overlaps the host route \(route.destination) on \(route.interface); choose a range the host does not use"
        case let .portInUse(host, port, purpose, reason):
            let what = purpose.isEmpty ? "" : " (\(purpose))"
            return "port \(port) on \(host)\(what) is not available: \(reason)"
        case let .cannotRead(path, reason):
            return "cannot read \(path): \(reason)"
        }
    }
}

// MARK: - Addresses and CIDRs

/// An IPv4 address held as a host-order 32-bit integer, so arithmetic and masking are plain
/// integer operations.
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Parses dotted-quad notation. Leading zeros are refused: some tools read them as octal,
    /// so "010.0.0.1" would mean different things to different programs.
    public init(parsing text: String) throws {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else {
            throw HostNetworkError.invalidAddress(text, reason: "expected four dot-separated numbers")
        }
        var result: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw HostNetworkError.invalidAddress(text, reason: "\"\(part)\" is not a number from 0 to 255")
            }
            guard part.count == 1 || part.first != "0" else {
                throw HostNetworkError.invalidAddress(text, reason: "\"\(part)\" has a leading zero")
            }
            guard let octet = UInt32(part), octet <= 255 else {
                throw HostNetworkError.invalidAddress(text, reason: "\"\(part)\" is not a number from 0 to 255")
            }
            result = result << 8 | octet
        }
        value = result
    }

    /// The four bytes in network order, as they appear on the wire and in certificates.
    public var bytes: [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    public var isLoopback: Bool { value >> 24 == 127 }

    public var description: String {
        bytes.map(String.init).joined(separator: ".")
    }

    public static func < (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.value < rhs.value }
}

/// An IPv4 network in CIDR notation. The stored address is always the network address
/// (host bits cleared).
public struct IPv4CIDR: Hashable, Sendable, CustomStringConvertible {
    public let network: IPv4Address
    public let prefixLength: Int

    /// Builds a CIDR from any address in it; host bits are cleared.
    public init(address: IPv4Address, prefixLength: Int) throws {
        guard (0...32).contains(prefixLength) else {
            throw HostNetworkError.invalidCIDR("\(address)/\(prefixLength)", reason: "prefix length must be 0-32")
        }
        self.prefixLength = prefixLength
        self.network = IPv4Address(address.value & IPv4CIDR.mask(prefixLength))
    }

    /// Parses "10.96.0.0/12".
    ///
    /// kube-apiserver reads `--service-cluster-ip-range` with a sloppy parser that silently
    /// clears host bits ("10.96.0.5/12" becomes 10.96.0.0/12); that is the default here too.
    /// Pass `allowHostBits: false` to refuse such input instead.
    public init(parsing text: String, allowHostBits: Bool = true) throws {
        let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 2 else {
            throw HostNetworkError.invalidCIDR(text, reason: "expected an address and a prefix length, like 10.96.0.0/12")
        }
        let address: IPv4Address
        do {
            address = try IPv4Address(parsing: String(pieces[0]))
        } catch let HostNetworkError.invalidAddress(_, reason) {
            throw HostNetworkError.invalidCIDR(text, reason: reason)
        }
        let prefixText = pieces[1]
        guard !prefixText.isEmpty, prefixText.count <= 2, prefixText.allSatisfy({ $0.isASCII && $0.isNumber }),
              prefixText.count == 1 || prefixText.first != "0",
              let prefix = Int(prefixText), (0...32).contains(prefix)
        else {
            throw HostNetworkError.invalidCIDR(text, reason: "prefix length must be 0-32")
        }
        let cleared = IPv4Address(address.value & IPv4CIDR.mask(prefix))
        if !allowHostBits && cleared != address {
            throw HostNetworkError.invalidCIDR(text, reason: "host bits are set; did you mean \(cleared)/\(prefix)?")
        }
        self.network = cleared
        self.prefixLength = prefix
    }

    static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << UInt32(32 - prefix)
    }

    public var mask: IPv4Address { IPv4Address(IPv4CIDR.mask(prefixLength)) }

    /// Number of addresses, network and broadcast included (2^(32-prefix)).
    public var size: UInt64 { UInt64(1) << UInt64(32 - prefixLength) }

    public var lastAddress: IPv4Address { IPv4Address(network.value | ~IPv4CIDR.mask(prefixLength)) }

    public func contains(_ address: IPv4Address) -> Bool {
        address.value & IPv4CIDR.mask(prefixLength) == network.value
    }

    /// True when one network contains the other (CIDR blocks either nest or are disjoint).
    public func overlaps(_ other: IPv4CIDR) -> Bool {
        let shorter = min(prefixLength, other.prefixLength)
        let mask = IPv4CIDR.mask(shorter)
        return network.value & mask == other.network.value & mask
    }

    /// The address `n` steps after the network address: `nth(1)` is the first service IP
    /// (the `kubernetes` Service), `nth(10)` the DNS Service. Nil outside the range.
    public func nth(_ n: UInt64) -> IPv4Address? {
        guard n < size else { return nil }
        return IPv4Address(network.value + UInt32(n))
    }

    /// kube-apiserver refuses a service range with more than 20 host bits (prefix < 12 for IPv4).
    public func checkServiceRangeSize(flag: String = "--service-cluster-ip-range") throws {
        let maximumHostBits = 20
        if 32 - prefixLength > maximumHostBits {
            throw HostNetworkError.cidrTooLarge(flag: flag, cidr: self, minimumPrefix: 32 - maximumHostBits)
        }
    }

    public var description: String { "\(network)/\(prefixLength)" }
}

/// An inclusive TCP/UDP port range such as the NodePort range.
public struct PortRange: Hashable, Sendable, CustomStringConvertible {
    public let lowerBound: Int
    public let upperBound: Int

    public init(_ lowerBound: Int, _ upperBound: Int) {
        self.lowerBound = lowerBound
        self.upperBound = upperBound
    }

    /// Parses "30000-32767", "30000+2767" or "30000"; see `HostNetwork.parsePortRange(_:)`.
    public init(parsing text: String) throws {
        self = try HostNetwork.parsePortRange(text)
    }

    public var count: Int { max(0, upperBound - lowerBound + 1) }

    public func contains(_ port: Int) -> Bool { port >= lowerBound && port <= upperBound }

    public var description: String { "\(lowerBound)-\(upperBound)" }
}

/// One IPv4 route of the host's main routing table.
public struct HostRoute: Hashable, Sendable, CustomStringConvertible {
    public var interface: String
    public var destination: IPv4CIDR
    public var gateway: IPv4Address
    public var metric: Int

    public init(interface: String, destination: IPv4CIDR, gateway: IPv4Address = IPv4Address(0), metric: Int = 0) {
        self.interface = interface
        self.destination = destination
        self.gateway = gateway
        self.metric = metric
    }

    public var isDefault: Bool { destination.prefixLength == 0 }

    public var description: String { "\(destination) dev \(interface)" }
}

/// An IPv4 address assigned to a local interface.
public struct InterfaceAddress: Hashable, Sendable {
    public var interface: String
    public var address: IPv4Address
    public var isUp: Bool
    public var isLoopback: Bool

    public init(interface: String, address: IPv4Address, isUp: Bool = true, isLoopback: Bool = false) {
        self.interface = interface
        self.address = address
        self.isUp = isUp
        self.isLoopback = isLoopback
    }
}

// MARK: - Host checks

/// Functions that read the host: routes, interface addresses, ports.
public enum HostNetwork {
    /// Parses a port range the way kube-apiserver reads `--service-node-port-range`:
    /// "30000-32767", "30000+2767" (base plus offset) or a single port "30000".
    public static func parsePortRange(_ text: String) throws -> PortRange {
        func number(_ piece: Substring) throws -> Int {
            guard !piece.isEmpty, piece.count <= 5, piece.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(piece) else {
                throw HostNetworkError.invalidPortRange(text, reason: "\"\(piece)\" is not a port number")
            }
            return value
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw HostNetworkError.invalidPortRange(text, reason: "expected a range like 30000-32767")
        }
        let hyphens = trimmed.split(separator: "-", omittingEmptySubsequences: false)
        let pluses = trimmed.split(separator: "+", omittingEmptySubsequences: false)
        let low: Int
        let high: Int
        switch (hyphens.count, pluses.count) {
        case (1, 1):
            low = try number(Substring(trimmed))
            high = low
        case (2, 1):
            low = try number(hyphens[0])
            high = try number(hyphens[1])
        case (1, 2):
            low = try number(pluses[0])
            high = low + (try number(pluses[1]))
        default:
            throw HostNetworkError.invalidPortRange(text, reason: "expected a range like 30000-32767")
        }
        guard low >= 1 else {
            throw HostNetworkError.invalidPortRange(text, reason: "ports start at 1")
        }
        guard low <= 65535, high <= 65535 else {
            throw HostNetworkError.invalidPortRange(text, reason: "the port range cannot be greater than 65535")
        }
        guard high >= low else {
            throw HostNetworkError.invalidPortRange(text, reason: "end port cannot be less than start port")
        }
        return PortRange(low, high)
    }

    /// The host's IPv4 routes from a file in the format of /proc/net/route; routes that are not
    /// up (flag RTF_UP missing) are skipped. Empty when the file cannot be read: without a
    /// routing table there is nothing to overlap.
    public static func hostRoutes(path: String = "/proc/net/route") -> [HostRoute] {
        (try? readHostRoutes(path: path)) ?? []
    }

    /// `hostRoutes(path:)`, but an unreadable file is an error.
    public static func readHostRoutes(path: String = "/proc/net/route") throws -> [HostRoute] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw HostNetworkError.cannotRead(path: path, reason: error.localizedDescription)
        }
        return parseProcNetRoute(text)
    }

    /// Parses the text of /proc/net/route. The kernel prints each address as the 32-bit value of its
    /// network-order bytes in host byte order, so the value is read back through `bigEndian`.
    public static func parseProcNetRoute(_ text: String) -> [HostRoute] {
        let routeUp: UInt32 = 0x1
        var routes: [HostRoute] = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count >= 8,
                  let destination = UInt32(fields[1], radix: 16),
                  let gateway = UInt32(fields[2], radix: 16),
                  let flags = UInt32(fields[3], radix: 16),
                  let metric = Int(fields[6]),
                  let mask = UInt32(fields[7], radix: 16)
            else { continue }
            guard flags & routeUp != 0 else { continue }
            let maskValue = UInt32(bigEndian: mask)
            // A valid netmask is a run of ones followed by zeros; anything else is not a CIDR route.
            let prefix = maskValue.nonzeroBitCount
            guard IPv4CIDR.mask(prefix) == maskValue,
                  let cidr = try? IPv4CIDR(address: IPv4Address(UInt32(bigEndian: destination)), prefixLength: prefix)
            else { continue }
            routes.append(HostRoute(
                interface: String(fields[0]),
                destination: cidr,
                gateway: IPv4Address(UInt32(bigEndian: gateway)),
                metric: metric
            ))
        }
        return routes
    }

    /// The first host route whose destination overlaps `cidr`, or nil. The default route
    /// (0.0.0.0/0) overlaps everything and is not a conflict; routes on `ignoringInterfaces`
    /// (labnode's own bridge from an earlier run, for example) do not count either.
    public static func overlappingRoute(for cidr: IPv4CIDR, ignoringInterfaces: Set<String> = [], routes: [HostRoute]) -> HostRoute? {
        routes.first { route in
            !route.isDefault && !ignoringInterfaces.contains(route.interface) && route.destination.overlaps(cidr)
        }
    }

    /// Reads the host routes from `routesPath` and throws a one-line error naming `flag` when
    /// `cidr` overlaps one of them.
    public static func checkNoRouteOverlap(
        _ cidr: IPv4CIDR, flag: String, ignoringInterfaces: Set<String> = [], routesPath: String = "/proc/net/route"
    ) throws {
        let routes = try readHostRoutes(path: routesPath)
        if let route = overlappingRoute(for: cidr, ignoringInterfaces: ignoringInterfaces, routes: routes) {
            throw HostNetworkError.overlapsHostRoute(flag: flag, cidr: cidr, route: route)
        }
    }

    /// The IPv4 addresses of the host's interfaces, from getifaddrs(3).
    public static func interfaceAddresses() -> [InterfaceAddress] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var result: [InterfaceAddress] = []
        var cursor: UnsafeMutablePointer<ifaddrs>? = first
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let socketAddress = entry.pointee.ifa_addr,
                  socketAddress.pointee.sa_family == sa_family_t(AF_INET),
                  let namePointer = entry.pointee.ifa_name
            else { continue }
            let ipv4 = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
            let flags = Int32(bitPattern: UInt32(entry.pointee.ifa_flags))
            result.append(InterfaceAddress(
                interface: String(cString: namePointer),
                address: IPv4Address(UInt32(bigEndian: ipv4)),
                isUp: flags & Int32(IFF_UP) != 0,
                isLoopback: flags & Int32(IFF_LOOPBACK) != 0
            ))
        }
        return result
    }

    /// Picks the node IP: the address of the interface that holds the default route (lowest metric
    /// first), else the first non-loopback address of an interface that is up.
    public static func chooseNodeIP(routes: [HostRoute], interfaces: [InterfaceAddress]) -> IPv4Address? {
        let usable = interfaces.filter { $0.isUp && !$0.isLoopback && !$0.address.isLoopback }
        let defaults = routes.filter(\.isDefault).sorted { $0.metric < $1.metric }
        for route in defaults {
            let onInterface = usable.filter { $0.interface == route.interface }
            // Prefer the address whose subnet holds the gateway when an interface has several.
            if let match = onInterface.first(where: { address in
                routes.contains { $0.interface == route.interface && !$0.isDefault && $0.destination.contains(address.address) && $0.destination.contains(route.gateway) }
            }) ?? onInterface.first {
                return match.address
            }
        }
        return usable.first?.address
    }

    /// The default node IP of this host, as a string, or nil when the host has no usable IPv4 address.
    public static func defaultNodeIP(routesPath: String = "/proc/net/route") -> String? {
        let routes = hostRoutes(path: routesPath)
        return chooseNodeIP(routes: routes, interfaces: interfaceAddresses())?.description
    }

    /// True when a TCP listener could bind `host:port` right now. SO_REUSEADDR is set like a real
    /// server sets it, so sockets lingering in TIME_WAIT do not count as "in use".
    public static func isTCPPortFree(host: String = "0.0.0.0", port: Int) -> Bool {
        (try? checkTCPPortFree(host: host, port: port)) != nil
    }

    /// Throws a one-line error saying why `host:port` cannot be bound (in use, permission, bad host).
    public static func checkTCPPortFree(host: String = "0.0.0.0", port: Int, purpose: String = "") throws {
        func failure(_ reason: String) -> HostNetworkError {
            .portInUse(host: host, port: port, purpose: purpose, reason: reason)
        }
        guard (1...65535).contains(port) else { throw failure("port must be 1-65535") }
        let isIPv6 = host.contains(":")
        #if canImport(Glibc)
        // Close-on-exec: a child spawned meanwhile must not inherit the probe and hold the port.
        let streamType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let streamType = SOCK_STREAM
        #endif
        let fd = socket(isIPv6 ? AF_INET6 : AF_INET, streamType, 0)
        guard fd >= 0 else { throw failure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var yes: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))

        let result: Int32
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { throw failure("\"\(host)\" is not an IP address") }
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw failure("\"\(host)\" is not an IP address") }
            result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        if result != 0 {
            let code = errno
            throw failure(code == EADDRINUSE ? "already in use" : String(cString: strerror(code)))
        }
    }
}
