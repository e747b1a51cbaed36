/// IPv4 addresses and networks as the pod network needs them.
///
/// Kept in a namespace so they do not clash with `Cluster`'s flag-parsing `IPv4Address` and
/// `IPv4CIDR` while both exist (Cluster imports this module).
public enum IPv4 {
    /// An IPv4 address held as a host-order integer, so masking and stepping are integer math.
    public struct Address: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var value: UInt32

        public init(_ value: UInt32) { self.value = value }

        public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
            value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
        }

        /// Parses dotted-quad text; returns nil for anything else (leading zeros included,
        /// since some tools read "010" as octal).
        public init?(_ text: some StringProtocol) {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var result: UInt32 = 0
            for part in parts {
                guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                      part.count == 1 || part.first != "0",
                      let octet = UInt32(part), octet <= 255
                else { return nil }
                result = result << 8 | octet
            }
            value = result
        }

        /// The four bytes in network order, as netlink attributes carry them.
        public var bytes: [UInt8] {
            [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }

        public var description: String { bytes.map(String.init).joined(separator: ".") }

        public static func < (lhs: Address, rhs: Address) -> Bool { lhs.value < rhs.value }
    }

    /// An address with a prefix length, such as the bridge's "10.244.0.1/24" or the pod
    /// subnet "10.244.0.0/24". The address keeps its host bits: for an interface address they
    /// are the point.
    public struct CIDR: Hashable, Sendable, CustomStringConvertible {
        public let address: Address
        public let prefixLength: Int

        /// Returns nil when the prefix length is outside 0...32.
        public init?(address: Address, prefixLength: Int) {
            guard (0...32).contains(prefixLength) else { return nil }
            self.address = address
            self.prefixLength = prefixLength
        }

        /// Parses "10.244.0.0/16"; nil for anything else.
        public init?(_ text: some StringProtocol) {
            let pieces = text.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count == 2, let address = Address(pieces[0]),
                  !pieces[1].isEmpty, pieces[1].count <= 2, pieces[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  let prefix = Int(pieces[1])
            else { return nil }
            self.init(address: address, prefixLength: prefix)
        }

        public var mask: UInt32 { prefixLength == 0 ? 0 : UInt32.max << UInt32(32 - prefixLength) }

        /// The network address (host bits cleared).
        public var network: Address { Address(address.value & mask) }

        /// The directed broadcast address (host bits set).
        public var broadcast: Address { Address(address.value | ~mask) }

        /// This network with host bits cleared, e.g. 10.244.0.1/24 -> 10.244.0.0/24.
        public var networkCIDR: CIDR { CIDR(unchecked: network, prefixLength) }

        public func contains(_ other: Address) -> Bool { other.value & mask == address.value & mask }

        /// The node's pod subnet carved from `--cluster-cidr`: its first /24, or the whole
        /// range when it is already smaller than a /24.
        public var firstSlash24: CIDR {
            prefixLength >= 24 ? networkCIDR : CIDR(unchecked: network, 24)
        }

        public var description: String { "\(address)/\(prefixLength)" }

        private init(unchecked address: Address, _ prefixLength: Int) {
            self.address = address
            self.prefixLength = prefixLength
        }
    }
}
