import Foundation
import Networking
import Synchronization

/// Where a LoadBalancer address is made the node's own, so the node answers ARP for it on
/// its LAN. A seam, so the bookkeeping is tested without netlink.
public protocol AddressHolder: Sendable {
    func add(_ address: String) throws
    func remove(_ address: String) throws
}

/// LoadBalancer addresses from `--lb-pool` that are not the node's own address: each is added
/// as a /32 to the interface that holds the node address, while some Service uses it, and
/// removed after. What was added is written down, so a restart after a crash removes it too.
public final class LoadBalancerAddresses: Sendable {
    let holder: any AddressHolder
    let nodeIP: String
    let recordPath: String?
    private let held: Mutex<Set<String>>

    public init(holder: any AddressHolder, nodeIP: String, recordPath: String?) {
        self.holder = holder
        self.nodeIP = nodeIP
        self.recordPath = recordPath
        var loaded = Set<String>()
        if let recordPath, let data = FileManager.default.contents(atPath: recordPath),
           let list = try? JSONDecoder().decode([String].self, from: data) {
            loaded = Set(list)
        }
        held = Mutex(loaded)
    }

    /// The addresses `ports` need on the LAN.
    public func wanted(_ ports: [ProxyServicePort]) -> Set<String> {
        Set(ports.flatMap(\.loadBalancerIPs)).subtracting([nodeIP])
    }

    /// Adds what is newly wanted, removes what no longer is.
    public func update(_ wanted: Set<String>) throws {
        try held.withLock { held in
            guard held != wanted else { return }
            defer { save(held) }
            for address in held.subtracting(wanted).sorted() {
                try holder.remove(address)
                held.remove(address)
            }
            for address in wanted.subtracting(held).sorted() {
                try holder.add(address)
                held.insert(address)
            }
        }
    }

    public func removeAll() throws { try update([]) }

    public var current: Set<String> { held.withLock { $0 } }

    private func save(_ held: Set<String>) {
        guard let recordPath else { return }
        if let data = try? JSONEncoder().encode(held.sorted()) {
            _ = FileManager.default.createFile(atPath: recordPath, contents: data)
        }
    }
}

/// The real holder: /32 addresses on the link that carries the node address, over netlink.
public struct LinkAddressHolder: AddressHolder {
    let nodeIP: String

    public init(nodeIP: String) { self.nodeIP = nodeIP }

    func linkIndex() throws -> Int32 {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else {
            throw ServiceProxyError(message: "getifaddrs: \(String(cString: strerror(errno)))")
        }
        defer { freeifaddrs(list) }
        var entry: UnsafeMutablePointer<ifaddrs>? = first
        while let e = entry {
            if let sa = e.pointee.ifa_addr, sa.pointee.sa_family == sa_family_t(AF_INET) {
                var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                let address = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                var copy = address
                inet_ntop(AF_INET, &copy, &text, socklen_t(INET_ADDRSTRLEN))
                if String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) == nodeIP {
                    let index = if_nametoindex(e.pointee.ifa_name)
                    guard index > 0 else { break }
                    return Int32(index)
                }
            }
            entry = e.pointee.ifa_next
        }
        throw ServiceProxyError(message: "no interface holds the node address \(nodeIP), so LoadBalancer addresses cannot be answered on its LAN")
    }

    public func add(_ address: String) throws {
        guard let ip = IPv4.Address(address), let cidr = IPv4.CIDR(address: ip, prefixLength: 32) else {
            throw ServiceProxyError(message: "LoadBalancer address \(address) is not IPv4")
        }
        let session = NetlinkSession(socket: try RouteNetlinkSocket())
        do {
            try session.addAddress(cidr, index: try linkIndex())
        } catch let error as NetlinkError where error.errno == EEXIST {
            // Already there (a restart).
        }
    }

    public func remove(_ address: String) throws {
        guard let ip = IPv4.Address(address), let cidr = IPv4.CIDR(address: ip, prefixLength: 32) else { return }
        let session = NetlinkSession(socket: try RouteNetlinkSocket())
        try session.removeAddress(cidr, index: try linkIndex())
    }
}
