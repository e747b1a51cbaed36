/// A domain name, kept in uncompressed wire form (length-prefixed labels ending in the root's
/// zero byte) so that reading, comparing and writing it needs no string work on the hot path.
///
/// Case is preserved as asked (answers echo the asker's spelling) but names compare and hash
/// case-insensitively, as DNS requires.
public struct DNSName: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Wire form, at most 255 bytes, always ending in 0.
    public private(set) var wire: [UInt8]

    public static let root = DNSName(uncheckedWire: [0])
    public static let maxLength = 255

    init(uncheckedWire: [UInt8]) { wire = uncheckedWire }

    /// Parses presentation form (`nginx.default.svc.cluster.local.`; the trailing dot is
    /// optional, `\.` and `\DDD` escapes are understood). Nil for an empty label, a label over
    /// 63 bytes or a name over 255.
    public init?(_ text: some StringProtocol) {
        if text == "." || text.isEmpty {
            wire = [0]
            return
        }
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        var label: [UInt8] = []
        var bytes = Array(text.utf8)[...]
        func flush() -> Bool {
            guard !label.isEmpty, label.count <= 63 else { return false }
            out.append(UInt8(label.count))
            out += label
            label.removeAll(keepingCapacity: true)
            return true
        }
        while let b = bytes.popFirst() {
            switch b {
            case UInt8(ascii: "."):
                guard flush() else { return nil }
            case UInt8(ascii: "\\"):
                guard let next = bytes.first else { return nil }
                if next >= 0x30 && next <= 0x39, bytes.count >= 3 {
                    let digits = bytes.prefix(3)
                    guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                          let v = UInt8(String(decoding: digits, as: UTF8.self)) else { return nil }
                    label.append(v)
                    bytes = bytes.dropFirst(3)
                } else {
                    label.append(next)
                    bytes = bytes.dropFirst()
                }
            default:
                label.append(b)
            }
        }
        if !label.isEmpty { guard flush() else { return nil } }
        out.append(0)
        guard out.count <= Self.maxLength else { return nil }
        wire = out
    }

    public init(stringLiteral value: String) {
        self = DNSName(value) ?? .root
    }

    /// Builds from labels (each 1...63 bytes); nil when the result would be too long.
    public init?(labels: [[UInt8]]) {
        var out: [UInt8] = []
        for l in labels {
            guard !l.isEmpty, l.count <= 63 else { return nil }
            out.append(UInt8(l.count))
            out += l
        }
        out.append(0)
        guard out.count <= Self.maxLength else { return nil }
        wire = out
    }

    /// The labels, leftmost first.
    public var labels: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var i = 0
        while i < wire.count, wire[i] != 0 {
            let n = Int(wire[i])
            result.append(wire[(i + 1)..<(i + 1 + n)])
            i += 1 + n
        }
        return result
    }

    public var labelCount: Int {
        var count = 0
        var i = 0
        while i < wire.count, wire[i] != 0 {
            count += 1
            i += 1 + Int(wire[i])
        }
        return count
    }

    public var isRoot: Bool { wire.count == 1 }

    /// The labels as lower-case strings, leftmost first (what name-parsing plugins match on).
    public var lowercasedLabels: [String] {
        labels.map { String(decoding: $0.map(Self.lower), as: UTF8.self) }
    }

    /// Presentation form with the trailing dot, in the asker's case.
    public var description: String {
        if isRoot { return "." }
        var s = ""
        s.reserveCapacity(wire.count + 4)
        for label in labels {
            for b in label {
                switch b {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("), UInt8(ascii: ")"),
                     UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    s.append("\\")
                    s.unicodeScalars.append(Unicode.Scalar(b))
                case 0x21...0x7e:
                    s.unicodeScalars.append(Unicode.Scalar(b))
                default:
                    let d = String(b)
                    s += "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }
            s.append(".")
        }
        return s
    }

    /// Lower-cased presentation form, for keys and comparisons in text.
    public var lowercased: String { description.lowercased() }

    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5a ? b | 0x20 : b }

    /// The name in lower case, wire form (a cache key).
    public var canonical: DNSName { DNSName(uncheckedWire: wire.map(Self.lower)) }

    /// Whether this name equals `zone` or lies below it.
    public func isSubdomain(of zone: DNSName) -> Bool {
        let offset = wire.count - zone.wire.count
        guard offset >= 0 else { return false }
        // The suffix must start on a label boundary.
        var i = 0
        while i < offset { i += 1 + Int(wire[i]) }
        guard i == offset else { return false }
        for j in 0..<zone.wire.count where Self.lower(wire[offset + j]) != Self.lower(zone.wire[j]) { return false }
        return true
    }

    /// The labels left of `zone` (which this name must be under), leftmost first.
    public func labels(above zone: DNSName) -> [ArraySlice<UInt8>] {
        Array(labels.dropLast(zone.labelCount))
    }

    /// `label.self`, or nil when too long.
    public func prepending(_ label: some StringProtocol) -> DNSName? {
        let bytes = Array(label.utf8)
        guard !bytes.isEmpty, bytes.count <= 63, wire.count + bytes.count + 1 <= Self.maxLength else { return nil }
        return DNSName(uncheckedWire: [UInt8(bytes.count)] + bytes + wire)
    }

    /// The name one label up; root stays root.
    public var parent: DNSName {
        guard !isRoot else { return self }
        return DNSName(uncheckedWire: Array(wire[(1 + Int(wire[0]))...]))
    }

    public static func == (a: DNSName, b: DNSName) -> Bool {
        guard a.wire.count == b.wire.count else { return false }
        // Most comparisons (cache keys) are of names spelled alike: one bytewise compare.
        if a.wire == b.wire { return true }
        for i in 0..<a.wire.count where lower(a.wire[i]) != lower(b.wire[i]) { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // One bulk combine of the lower-cased bytes: per-byte combines dominated cache lookups.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: wire.count) { buffer in
            for i in 0..<wire.count { buffer[i] = Self.lower(wire[i]) }
            hasher.combine(bytes: UnsafeRawBufferPointer(buffer))
        }
    }
}
