extension NameValidation {
    /// An IP address as 4 (IPv4) or 16 (IPv6) bytes.
    struct IP: Equatable {
        var bytes: [UInt8]

        var isIPv4: Bool { bytes.count == 4 || isIPv4Mapped }

        /// ::ffff:a.b.c.d, which Go treats as the IPv4 address it carries.
        var isIPv4Mapped: Bool {
            bytes.count == 16 && bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
        }

        /// The IPv4 bytes when this is an IPv4 (or IPv4-mapped) address.
        var v4: [UInt8]? {
            if bytes.count == 4 { return bytes }
            if isIPv4Mapped { return Array(bytes[12..<16]) }
            return nil
        }

        var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } || v4 == [0, 0, 0, 0] }

        var isLoopback: Bool {
            if let v4 { return v4[0] == 127 }
            return bytes == [UInt8](repeating: 0, count: 15) + [1]
        }

        var isLinkLocalUnicast: Bool {
            if let v4 { return v4[0] == 169 && v4[1] == 254 }
            return bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80
        }

        var isLinkLocalMulticast: Bool {
            if let v4 { return v4[0] == 224 && v4[1] == 0 && v4[2] == 0 }
            return bytes[0] == 0xff && bytes[1] & 0x0f == 0x02
        }
    }

    /// Parses like k8s.io/utils/net.ParseIPSloppy: dotted IPv4 (leading zeros tolerated, as the
    /// legacy fields do) or IPv6, with an optional trailing dotted IPv4 part.
    static func parseIP(_ s: String) -> IP? {
        if s.contains(":") { return parseIPv6(s).map(IP.init) }
        return parseIPv4(Substring(s)).map(IP.init)
    }

    private static func parseIPv4(_ s: Substring) -> [UInt8]? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            let significant = p.drop(while: { $0 == "0" })
            guard !p.isEmpty, p.allSatisfy({ $0.isASCII && $0.isNumber }), significant.count <= 3 else { return nil }
            let v = significant.isEmpty ? 0 : Int(significant) ?? 256
            guard v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    private static func parseIPv6(_ s: String) -> [UInt8]? {
        // Split around "::" (at most one).
        guard let halves = splitAtDoubleColon(s) else { return nil }
        func groups(_ part: String, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (i, f) in fields.enumerated() {
                if allowV4Tail && i == fields.count - 1 && f.contains(".") {
                    guard let v4 = parseIPv4(f) else { return nil }
                    out.append(contentsOf: v4)
                    continue
                }
                guard !f.isEmpty, f.count <= 4, let v = UInt16(f, radix: 16) else { return nil }
                out.append(UInt8(v >> 8))
                out.append(UInt8(v & 0xff))
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
              head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }

    /// Validation message for an unparsable IP, as validation.IsValidIP words it.
    public static let invalidIPMessage = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"

    /// validation.IsValidIP (legacy-field form): empty when `value` parses as an IP address.
    public static func isValidIP(_ value: String) -> [String] {
        parseIP(value) == nil ? [invalidIPMessage] : []
    }

    /// Parses "a.b.c.d/n" or "x::/n".
    static func parseCIDR(_ value: String) -> (IP, Int)? {
        let parts = value.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let ip = parseIP(String(parts[0])),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let bits = Int(parts[1]) else { return nil }
        let max = ip.bytes.count == 4 ? 32 : 128
        guard bits >= 0 && bits <= max else { return nil }
        return (ip, bits)
    }

    /// Splits an IPv6 literal at its "::"; nil when "::" appears twice or ":::" occurs.
    private static func splitAtDoubleColon(_ s: String) -> [String]? {
        guard let r = s.firstRange(of: "::") else { return [s] }
        let head = String(s[..<r.lowerBound])
        let tail = String(s[r.upperBound...])
        if tail.firstRange(of: "::") != nil || tail.hasPrefix(":") || head.hasSuffix(":") { return nil }
        return [head, tail]
    }
}
