/// A DNS message (RFC 1035 section 4), the form every plugin reads and writes.
///
/// Records keep their names as `DNSName` (original case, compared case-insensitively) and
/// their data decoded for the types a cluster DNS answers; any other type is carried as raw
/// bytes, so a forwarded answer of an exotic type survives the round trip unchanged.
public struct DNSMessage: Sendable, Equatable {
    public var id: UInt16 = 0
    public var isResponse = false
    public var opcode: UInt8 = 0
    public var authoritative = false
    public var truncated = false
    public var recursionDesired = false
    public var recursionAvailable = false
    public var authenticData = false
    public var checkingDisabled = false
    /// The full response code: the header's 4 bits plus EDNS's 8 extended bits.
    public var rcode: DNSRcode = .noError
    public var questions: [DNSQuestion] = []
    public var answers: [DNSRecord] = []
    public var authorities: [DNSRecord] = []
    /// Additional records other than the OPT pseudo-record, which is `edns`.
    public var additionals: [DNSRecord] = []
    public var edns: EDNS?
    /// Seconds to take off every record's TTL when the message is written (not below 0): how
    /// the cache serves an aged answer without copying its records.
    public var ttlAge: UInt32 = 0

    public init() {}

    /// The first question; every query the server accepts has exactly one.
    public var question: DNSQuestion? { questions.first }

    /// A response to `query`: same id, question, RD and CD; EDNS echoed when the query had it.
    public static func reply(to query: DNSMessage, rcode: DNSRcode = .noError) -> DNSMessage {
        var m = DNSMessage()
        m.id = query.id
        m.isResponse = true
        m.opcode = query.opcode
        m.recursionDesired = query.recursionDesired
        m.checkingDisabled = query.checkingDisabled
        m.questions = query.questions
        m.rcode = rcode
        if let e = query.edns {
            m.edns = EDNS(udpPayloadSize: max(e.udpPayloadSize, 512), dnssecOK: e.dnssecOK)
        }
        return m
    }

    /// The largest UDP answer the asker accepts: its EDNS buffer size, or 512.
    public var maxUDPSize: Int {
        guard let e = edns else { return 512 }
        return Int(max(512, e.udpPayloadSize))
    }
}

public struct DNSQuestion: Sendable, Equatable {
    public var name: DNSName
    public var type: DNSType
    public var qclass: UInt16

    public init(name: DNSName, type: DNSType, qclass: UInt16 = DNSClass.internet) {
        self.name = name
        self.type = type
        self.qclass = qclass
    }
}

public enum DNSClass {
    public static let internet: UInt16 = 1
    public static let chaos: UInt16 = 3
    public static let none: UInt16 = 254
    public static let any: UInt16 = 255

    public static func name(_ c: UInt16) -> String {
        switch c {
        case internet: "IN"
        case chaos: "CH"
        case 4: "HS"
        case none: "NONE"
        case any: "ANY"
        default: "CLASS\(c)"
        }
    }
}

/// EDNS(0) from the OPT pseudo-record (RFC 6891).
public struct EDNS: Sendable, Equatable {
    public var udpPayloadSize: UInt16
    public var version: UInt8 = 0
    public var dnssecOK = false
    /// Options as read (code, data); kept so a forwarded query carries them.
    public var options: [(code: UInt16, data: [UInt8])] = []

    public init(udpPayloadSize: UInt16 = 1232, version: UInt8 = 0, dnssecOK: Bool = false) {
        self.udpPayloadSize = udpPayloadSize
        self.version = version
        self.dnssecOK = dnssecOK
    }

    public static func == (a: EDNS, b: EDNS) -> Bool {
        a.udpPayloadSize == b.udpPayloadSize && a.version == b.version && a.dnssecOK == b.dnssecOK
            && a.options.map(\.code) == b.options.map(\.code) && a.options.map(\.data) == b.options.map(\.data)
    }
}

public struct DNSRecord: Sendable, Equatable {
    public var name: DNSName
    public var type: DNSType
    public var rclass: UInt16
    public var ttl: UInt32
    public var data: DNSRData

    public init(name: DNSName, ttl: UInt32, data: DNSRData, rclass: UInt16 = DNSClass.internet) {
        self.name = name
        self.type = data.type
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }

    init(name: DNSName, type: DNSType, rclass: UInt16, ttl: UInt32, data: DNSRData) {
        self.name = name
        self.type = type
        self.rclass = rclass
        self.ttl = ttl
        self.data = data
    }
}

public enum DNSRData: Sendable, Equatable {
    case a(IPv4)
    case aaaa([UInt8])
    case cname(DNSName)
    case ptr(DNSName)
    case ns(DNSName)
    case mx(preference: UInt16, exchange: DNSName)
    case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
    case txt([[UInt8]])
    case soa(SOA)
    case hinfo(cpu: [UInt8], os: [UInt8])
    /// Any other type, as its wire bytes (names inside are not decompressed: such types
    /// must not use compression, RFC 3597).
    case raw(DNSType, [UInt8])

    public var type: DNSType {
        switch self {
        case .a: .a
        case .aaaa: .aaaa
        case .cname: .cname
        case .ptr: .ptr
        case .ns: .ns
        case .mx: .mx
        case .srv: .srv
        case .txt: .txt
        case .soa: .soa
        case .hinfo: .hinfo
        case .raw(let t, _): t
        }
    }

    public static func txt(_ strings: String...) -> DNSRData { .txt(strings.map { Array($0.utf8) }) }
}

public struct SOA: Sendable, Equatable {
    public var mname: DNSName
    public var rname: DNSName
    public var serial: UInt32
    public var refresh: UInt32
    public var retry: UInt32
    public var expire: UInt32
    public var minimum: UInt32

    public init(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32) {
        self.mname = mname
        self.rname = rname
        self.serial = serial
        self.refresh = refresh
        self.retry = retry
        self.expire = expire
        self.minimum = minimum
    }
}

/// An IPv4 address as its four bytes packed big-endian.
public struct IPv4: Sendable, Hashable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: some StringProtocol) {
        var parts: [UInt32] = []
        for piece in text.split(separator: ".", omittingEmptySubsequences: false) {
            guard !piece.isEmpty, piece.count <= 3, let n = UInt32(piece), n <= 255 else { return nil }
            parts.append(n)
        }
        guard parts.count == 4 else { return nil }
        value = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
    }

    public var bytes: [UInt8] { [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)] }

    public var description: String { bytes.map(String.init).joined(separator: ".") }
}

public struct DNSType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ v: UInt16) { rawValue = v }

    public static let a = DNSType(1)
    public static let ns = DNSType(2)
    public static let cname = DNSType(5)
    public static let soa = DNSType(6)
    public static let ptr = DNSType(12)
    public static let hinfo = DNSType(13)
    public static let mx = DNSType(15)
    public static let txt = DNSType(16)
    public static let aaaa = DNSType(28)
    public static let srv = DNSType(33)
    public static let opt = DNSType(41)
    public static let ds = DNSType(43)
    public static let rrsig = DNSType(46)
    public static let nsec = DNSType(47)
    public static let dnskey = DNSType(48)
    public static let nsec3 = DNSType(50)
    public static let https = DNSType(65)
    public static let ixfr = DNSType(251)
    public static let axfr = DNSType(252)
    public static let any = DNSType(255)

    static let names: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV",
        41: "OPT", 43: "DS", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 64: "SVCB", 65: "HTTPS",
        251: "IXFR", 252: "AXFR", 255: "ANY",
    ]

    /// The mnemonic, or `TYPE<n>` (RFC 3597) for a type without one.
    public var description: String { Self.names[rawValue] ?? "TYPE\(rawValue)" }

    public init?(name: String) {
        let upper = name.uppercased()
        if let hit = Self.names.first(where: { $0.value == upper }) {
            rawValue = hit.key
        } else if upper.hasPrefix("TYPE"), let n = UInt16(upper.dropFirst(4)) {
            rawValue = n
        } else {
            return nil
        }
    }
}

public struct DNSRcode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let noError = DNSRcode(rawValue: 0)
    public static let formatError = DNSRcode(rawValue: 1)
    public static let serverFailure = DNSRcode(rawValue: 2)
    public static let nameError = DNSRcode(rawValue: 3)
    public static let notImplemented = DNSRcode(rawValue: 4)
    public static let refused = DNSRcode(rawValue: 5)
    public static let badVersion = DNSRcode(rawValue: 16)

    /// The names dig and CoreDNS print.
    public var description: String {
        switch rawValue {
        case 0: "NOERROR"
        case 1: "FORMERR"
        case 2: "SERVFAIL"
        case 3: "NXDOMAIN"
        case 4: "NOTIMP"
        case 5: "REFUSED"
        case 6: "YXDOMAIN"
        case 7: "YXRRSET"
        case 8: "NXRRSET"
        case 9: "NOTAUTH"
        case 10: "NOTZONE"
        case 16: "BADVERS"
        default: "RCODE\(rawValue)"
        }
    }
}
