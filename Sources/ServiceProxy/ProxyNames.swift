import Crypto

/// kube-proxy's chain names, hashed exactly as upstream so that trainees comparing with a real
/// node see the same shapes (proxy-dns-spec.md A2, A13).
public enum ProxyNames {
    /// `namespace/name` plus `:portName` when the port is named.
    public static func servicePortKey(namespace: String, name: String, portName: String) -> String {
        "\(namespace)/\(name)" + (portName.isEmpty ? "" : ":\(portName)")
    }

    /// First 16 characters of base32(SHA-256(key + protocol)), shared by the SVC, SVL, EXT and FW
    /// chains of one service port.
    public static func portProtoHash(key: String, protocol proto: String) -> String {
        String(base32(SHA256.hash(data: Array((key + proto.lowercased()).utf8))).prefix(16))
    }

    public static func serviceChain(key: String, protocol proto: String) -> String { "KUBE-SVC-" + portProtoHash(key: key, protocol: proto) }
    public static func localChain(key: String, protocol proto: String) -> String { "KUBE-SVL-" + portProtoHash(key: key, protocol: proto) }
    public static func externalChain(key: String, protocol proto: String) -> String { "KUBE-EXT-" + portProtoHash(key: key, protocol: proto) }
    public static func firewallChain(key: String, protocol proto: String) -> String { "KUBE-FW-" + portProtoHash(key: key, protocol: proto) }

    /// `KUBE-SEP-` + base32(SHA-256(key + protocol + "ip:port")).
    public static func endpointChain(key: String, protocol proto: String, endpoint: String) -> String {
        "KUBE-SEP-" + String(base32(SHA256.hash(data: Array((key + proto.lowercased() + endpoint).utf8))).prefix(16))
    }

    /// The chain prefixes kube-proxy owns in the nat table; anything else is someone else's.
    public static let ownedPrefixes = ["KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-"]

    /// nftables names: the first 8 characters of base32(SHA-256(name)), then the name.
    public static func nftHashed(_ name: String) -> String {
        String(base32(SHA256.hash(data: Array(name.utf8))).prefix(8)) + "-" + name
    }

    /// RFC 4648 base32, standard alphabet, with padding (only the prefix is ever used).
    static func base32<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        while out.count % 8 != 0 { out.append(UInt8(ascii: "=")) }
        return String(decoding: out, as: UTF8.self)
    }
}
