import NIOCore
/// Reading and writing DNS messages on the wire (RFC 1035 4.1, RFC 6891 for OPT).

/// Why a packet could not be read. The server answers FORMERR when at least the header was
/// readable, and stays silent otherwise, as CoreDNS does.
public struct DNSParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The header's id, when the first 12 bytes were there.
    public var id: UInt16?
    public init(_ message: String, id: UInt16? = nil) {
        self.message = message
        self.id = id
    }
    public var description: String { message }
}

///
/// It reads memory it does not own (a received datagram's buffer, an array's storage) and must
/// not outlive the closure that lent it; everything it returns is copied out.
struct WireReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(DNSParseError) -> UInt8 {
        guard offset < bytes.count else { throw DNSParseError("message truncated at byte \(offset)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSParseError) -> UInt16 {
        guard offset + 2 <= bytes.count else { throw DNSParseError("message truncated at byte \(offset)") }
        defer { offset += 2 }
        return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
    }

    mutating func u32() throws(DNSParseError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw DNSParseError("message truncated at byte \(offset)") }
        defer { offset += 4 }
        return UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    mutating func take(_ n: Int) throws(DNSParseError) -> [UInt8] {
        guard n >= 0, offset + n <= bytes.count else { throw DNSParseError("message truncated at byte \(offset)") }
        defer { offset += n }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
    }

    /// A possibly compressed name. Pointers must point backwards, which also rules out loops.
    mutating func name() throws(DNSParseError) -> DNSName {
        // A question's name is never compressed: found whole in place, it is one copy.
        var end = offset
        while end < bytes.count, bytes[end] & 0xc0 == 0 {
            if bytes[end] == 0 {
                guard end + 1 - offset <= DNSName.maxLength else { break }
                let wire = Array(UnsafeRawBufferPointer(rebasing: bytes[offset...end]))
                offset = end + 1
                return DNSName(uncheckedWire: wire)
            }
            end += 1 + Int(bytes[end])
        }
        return try compressedName()
    }

    private mutating func compressedName() throws(DNSParseError) -> DNSName {
        var out: [UInt8] = []
        // One allocation for most names instead of one per doubling as labels are appended
        // (not 255: names are kept in cached answers).
        out.reserveCapacity(64)
        var pos = offset
        var jumped = false
        var hops = 0
        while true {
            guard pos < bytes.count else { throw DNSParseError("name runs past the end of the message") }
            let len = bytes[pos]
            switch len & 0xc0 {
            case 0x00:
                if len == 0 {
                    out.append(0)
                    if !jumped { offset = pos + 1 }
                    guard out.count <= DNSName.maxLength else { throw DNSParseError("name longer than 255 bytes") }
                    return DNSName(uncheckedWire: out)
                }
                let n = Int(len)
                guard pos + 1 + n <= bytes.count else { throw DNSParseError("label runs past the end of the message") }
                out.append(len)
                out += bytes[(pos + 1)...(pos + n)]
                guard out.count < DNSName.maxLength else { throw DNSParseError("name longer than 255 bytes") }
                pos += 1 + n
            case 0xc0:
                guard pos + 1 < bytes.count else { throw DNSParseError("compression pointer truncated") }
                let target = Int(len & 0x3f) << 8 | Int(bytes[pos + 1])
                guard target < pos else { throw DNSParseError("compression pointer does not point backwards (loop)") }
                hops += 1
                guard hops <= 126 else { throw DNSParseError("too many compression pointers") }
                if !jumped { offset = pos + 2 }
                jumped = true
                pos = target
            default:
                throw DNSParseError("unknown label type 0x\(String(len, radix: 16))")
            }
        }
    }
}

extension DNSMessage {
    /// Reads a message; throws on anything malformed (with the id when the header was read).
    public init(parsing bytes: [UInt8]) throws(DNSParseError) {
        self = try bytes.withUnsafeBytes { raw in Result { () throws(DNSParseError) in try DNSMessage(parsing: raw) } }.get()
    }

    /// Reads a message straight from a received buffer, without copying it first.
    public init(parsing buffer: ByteBuffer) throws(DNSParseError) {
        self = try buffer.withUnsafeReadableBytes { raw in Result { () throws(DNSParseError) in try DNSMessage(parsing: raw) } }.get()
    }

    init(parsing bytes: UnsafeRawBufferPointer) throws(DNSParseError) {
        guard bytes.count >= 12 else { throw DNSParseError("message shorter than a header (\(bytes.count) bytes)") }
        var r = WireReader(bytes)
        self.init()
        id = try r.u16()
        do throws(DNSParseError) {
            let flags = try r.u16()
            isResponse = flags & 0x8000 != 0
            opcode = UInt8(flags >> 11 & 0xf)
            authoritative = flags & 0x0400 != 0
            truncated = flags & 0x0200 != 0
            recursionDesired = flags & 0x0100 != 0
            recursionAvailable = flags & 0x0080 != 0
            authenticData = flags & 0x0020 != 0
            checkingDisabled = flags & 0x0010 != 0
            rcode = DNSRcode(rawValue: flags & 0xf)
            let qd = Int(try r.u16()), an = Int(try r.u16()), ns = Int(try r.u16()), ar = Int(try r.u16())
            // A question takes at least 5 bytes and a record 11: counts that cannot fit are lies.
            guard qd * 5 + (an + ns + ar) * 11 <= r.remaining else {
                throw DNSParseError("section counts (\(qd)/\(an)/\(ns)/\(ar)) exceed the message's \(bytes.count) bytes")
            }
            for _ in 0..<qd {
                let name = try r.name()
                let type = DNSType(try r.u16())
                let qclass = try r.u16()
                questions.append(DNSQuestion(name: name, type: type, qclass: qclass))
            }
            answers = try Self.records(an, &r)
            authorities = try Self.records(ns, &r)
            var seenOPT = false
            for record in try Self.records(ar, &r, allowOPT: true) {
                if case .raw(.opt, let optData) = record.data {
                    guard !seenOPT, record.name.isRoot else { throw DNSParseError("more than one OPT record, or OPT not at the root") }
                    seenOPT = true
                    var e = EDNS(udpPayloadSize: record.rclass, version: UInt8(record.ttl >> 16 & 0xff),
                                 dnssecOK: record.ttl & 0x8000 != 0)
                    rcode = DNSRcode(rawValue: UInt16(record.ttl >> 24) << 4 | rcode.rawValue)
                    e.options = try Self.options(optData)
                    edns = e
                } else {
                    additionals.append(record)
                }
            }
        } catch {
            throw DNSParseError(error.message, id: id)
        }
    }

    /// The EDNS options in an OPT record's data.
    private static func options(_ data: [UInt8]) throws(DNSParseError) -> [(code: UInt16, data: [UInt8])] {
        try data.withUnsafeBytes { raw in
            Result { () throws(DNSParseError) in
                var o = WireReader(raw)
                var options: [(code: UInt16, data: [UInt8])] = []
                while o.remaining > 0 {
                    let code = try o.u16()
                    let length = Int(try o.u16())
                    options.append((code, try o.take(length)))
                }
                return options
            }
        }.get()
    }

    private static func records(_ count: Int, _ r: inout WireReader, allowOPT: Bool = false) throws(DNSParseError) -> [DNSRecord] {
        var out: [DNSRecord] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let name = try r.name()
            let type = DNSType(try r.u16())
            let rclass = try r.u16()
            let ttl = try r.u32()
            let length = Int(try r.u16())
            guard length <= r.remaining else { throw DNSParseError("record data runs past the end of the message") }
            let end = r.offset + length
            let data: DNSRData
            switch type {
            case .a where length == 4:
                data = .a(IPv4(try r.u32()))
            case .aaaa where length == 16:
                data = .aaaa(try r.take(16))
            case .cname:
                data = .cname(try r.name())
            case .ptr:
                data = .ptr(try r.name())
            case .ns:
                data = .ns(try r.name())
            case .mx:
                data = .mx(preference: try r.u16(), exchange: try r.name())
            case .srv:
                data = .srv(priority: try r.u16(), weight: try r.u16(), port: try r.u16(), target: try r.name())
            case .soa:
                data = .soa(SOA(mname: try r.name(), rname: try r.name(), serial: try r.u32(), refresh: try r.u32(),
                                retry: try r.u32(), expire: try r.u32(), minimum: try r.u32()))
            case .txt:
                var strings: [[UInt8]] = []
                while r.offset < end {
                    let n = Int(try r.u8())
                    strings.append(try r.take(n))
                }
                data = .txt(strings)
            case .opt where allowOPT:
                data = .raw(.opt, try r.take(length))
            case .opt:
                throw DNSParseError("OPT record outside the additional section")
            default:
                data = .raw(type, try r.take(length))
            }
            guard r.offset == end else { throw DNSParseError("\(type) record data has the wrong length") }
            out.append(DNSRecord(name: name, type: type, rclass: rclass, ttl: ttl, data: data))
        }
        return out
    }
}

/// Writes a message with name compression (RFC 1035 4.1.4).
struct WireWriter {
    var bytes: [UInt8] = []
    /// Where each record's TTL was written.
    var ttlOffsets: [Int] = []
    /// Names written uncompressed so far: where their labels start in `bytes`. A message
    /// holds a handful of names, so a linear search beats hashing every suffix.
    private var written: [(start: Int, end: Int)] = []

    init(capacity: Int = 512) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xff)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xffff)) }

    /// The offset of an earlier copy of `wire[from...]` (label by label, ignoring case), if any.
    private func earlier(_ wire: [UInt8], from: Int) -> Int? {
        for w in written {
            var at = w.start
            while at < w.end {
                if matches(wire, from, at) { return at }
                at += 1 + Int(bytes[at])
            }
        }
        return nil
    }

    /// Whether the name at `bytes[at]` (following its compression pointers) spells `wire[from...]`.
    private func matches(_ wire: [UInt8], _ from: Int, _ at: Int) -> Bool {
        var i = from, j = at, hops = 0
        while true {
            guard j < bytes.count else { return false }
            var len = bytes[j]
            if len & 0xc0 == 0xc0 {
                guard j + 1 < bytes.count, hops < 64 else { return false }
                j = Int(len & 0x3f) << 8 | Int(bytes[j + 1])
                hops += 1
                continue
            }
            guard wire[i] == len else { return false }
            if len == 0 { return true }
            len = len & 0x3f
            guard j + Int(len) < bytes.count else { return false }
            for k in 1...Int(len) where DNSName.lower(wire[i + k]) != DNSName.lower(bytes[j + k]) { return false }
            i += 1 + Int(len)
            j += 1 + Int(len)
        }
    }

    mutating func name(_ n: DNSName, compress: Bool = true) {
        let wire = n.wire
        var i = 0
        let start = bytes.count
        while i < wire.count - 1 {
            if compress, let at = earlier(wire, from: i) {
                u16(0xc000 | UInt16(at))
                if i > 0, start < 0x3fff { written.append((start, bytes.count - 2)) }
                return
            }
            let len = Int(wire[i])
            bytes += wire[i...(i + len)]
            i += 1 + len
        }
        bytes.append(0)
        // Pointers reach only the first 16 KiB.
        if i > 0, start < 0x3fff { written.append((start, bytes.count - 1)) }
    }

    mutating func record(_ r: DNSRecord, age: UInt32 = 0) {
        name(r.name)
        u16(r.type.rawValue)
        u16(r.rclass)
        ttlOffsets.append(bytes.count)
        u32(r.ttl > age ? r.ttl - age : 0)
        let lengthAt = bytes.count
        u16(0)
        switch r.data {
        case .a(let ip): u32(ip.value)
        case .aaaa(let b): bytes += b
        case .cname(let n), .ptr(let n), .ns(let n): name(n)
        case .mx(let p, let n):
            u16(p)
            name(n)
        case .srv(let p, let w, let port, let target):
            u16(p)
            u16(w)
            u16(port)
            // RFC 2782: the target is not compressed.
            name(target, compress: false)
        case .soa(let s):
            name(s.mname)
            name(s.rname)
            u32(s.serial)
            u32(s.refresh)
            u32(s.retry)
            u32(s.expire)
            u32(s.minimum)
        case .txt(let strings):
            for s in strings {
                let chunk = s.prefix(255)
                u8(UInt8(chunk.count))
                bytes += chunk
            }
        case .hinfo(let cpu, let os):
            u8(UInt8(min(cpu.count, 255)))
            bytes += cpu.prefix(255)
            u8(UInt8(min(os.count, 255)))
            bytes += os.prefix(255)
        case .raw(_, let b): bytes += b
        }
        let length = bytes.count - lengthAt - 2
        bytes[lengthAt] = UInt8(length >> 8)
        bytes[lengthAt + 1] = UInt8(length & 0xff)
    }
}

extension DNSMessage {
    var flags: UInt16 {
        var f: UInt16 = 0
        if isResponse { f |= 0x8000 }
        f |= UInt16(opcode & 0xf) << 11
        if authoritative { f |= 0x0400 }
        if truncated { f |= 0x0200 }
        if recursionDesired { f |= 0x0100 }
        if recursionAvailable { f |= 0x0080 }
        if authenticData { f |= 0x0020 }
        if checkingDisabled { f |= 0x0010 }
        f |= rcode.rawValue & 0xf
        return f
    }

    /// The wire form. With `maxSize`, records that do not fit are left out and TC is set
    /// (the asker retries over TCP), keeping the question and the OPT record.
    public func serialized(maxSize: Int = 65535) -> [UInt8] {
        let full = encode(answers: answers, authorities: authorities, additionals: additionals, truncated: truncated)
        if full.count <= maxSize { return full }
        // Drop additionals first, then authorities, then answers from the end, until it fits.
        var an = answers, ns = authorities, ar = additionals
        while true {
            if !ar.isEmpty { ar.removeLast() } else if !ns.isEmpty { ns.removeLast() } else if !an.isEmpty { an.removeLast() } else { break }
            let attempt = encode(answers: an, authorities: ns, additionals: ar, truncated: true)
            if attempt.count <= maxSize { return attempt }
        }
        return encode(answers: [], authorities: [], additionals: [], truncated: true)
    }

    /// The whole message in wire form with where its TTLs are (for the cache's fast path).
    public func wireAnswer() -> WireAnswer {
        var w = WireWriter()
        encode(into: &w, answers: answers, authorities: authorities, additionals: additionals, truncated: truncated)
        // Kept by the cache: a copy of its own size, not the writer's 512-byte buffer (that was
        // half of a cache entry's memory).
        let bytes = [UInt8](unsafeUninitializedCapacity: w.bytes.count) { out, count in
            count = w.bytes.withUnsafeBufferPointer { out.initialize(fromContentsOf: $0) }
        }
        return WireAnswer(bytes: bytes, ttlOffsets: w.ttlOffsets)
    }

    private func encode(answers: [DNSRecord], authorities: [DNSRecord], additionals: [DNSRecord], truncated: Bool) -> [UInt8] {
        var w = WireWriter()
        encode(into: &w, answers: answers, authorities: authorities, additionals: additionals, truncated: truncated)
        return w.bytes
    }

    private func encode(into w: inout WireWriter, answers: [DNSRecord], authorities: [DNSRecord], additionals: [DNSRecord],
                        truncated: Bool) {
        var m = self
        m.truncated = truncated
        w.u16(id)
        w.u16(m.flags)
        w.u16(UInt16(questions.count))
        w.u16(UInt16(answers.count))
        w.u16(UInt16(authorities.count))
        w.u16(UInt16(additionals.count + (edns == nil ? 0 : 1)))
        for q in questions {
            w.name(q.name)
            w.u16(q.type.rawValue)
            w.u16(q.qclass)
        }
        for r in answers { w.record(r, age: ttlAge) }
        for r in authorities { w.record(r, age: ttlAge) }
        for r in additionals { w.record(r, age: ttlAge) }
        if let e = edns {
            w.u8(0)
            w.u16(DNSType.opt.rawValue)
            w.u16(e.udpPayloadSize)
            let extended = UInt32(rcode.rawValue >> 4 & 0xff)
            w.u32(extended << 24 | UInt32(e.version) << 16 | (e.dnssecOK ? 0x8000 : 0))
            var length = 0
            for o in e.options { length += 4 + o.data.count }
            w.u16(UInt16(length))
            for o in e.options {
                w.u16(o.code)
                w.u16(UInt16(o.data.count))
                w.bytes += o.data
            }
        }
    }
}
