/// One step of a field path, in the vocabulary of sigs.k8s.io/structured-merge-diff.
///
/// Server-side apply tracks ownership per path. A path walks objects by field name and lists
/// by element identity: a list-map element by its key fields, a set element by its value.
/// Positions (`index`) only exist for completeness; Kubernetes never writes them.
public enum PathElement: Sendable, CustomStringConvertible {
    /// A member of an object or map: `f:name` in FieldsV1, `.name` in messages.
    case field(String)
    /// A list-map element identified by its key fields, kept sorted by name: `k:{...}`.
    case key([KeyField])
    /// A set element identified by its value: `v:...`.
    case value(JSON)
    /// A list position: `i:3`.
    case index(Int)

    /// The element as apiserver prints it in conflict messages: `.spec`, `[port=80,protocol="TCP"]`,
    /// `[="x"]`, `[0]`.
    public var description: String {
        switch self {
        case .field(let name): return "." + name
        case .key(let fields):
            return "[" + fields.map { "\($0.name)=\(ApplyFormat.valueString($0.value))" }.joined(separator: ",") + "]"
        case .value(let v): return "[=" + ApplyFormat.valueString(v) + "]"
        case .index(let i): return "[\(i)]"
        }
    }

    /// A key element from unsorted fields; sorting makes equal keys compare equal.
    public static func key(sorting fields: [KeyField]) -> PathElement {
        .key(fields.enumerated().sorted { a, b in
            let c = ApplyValueOrder.compareStrings(a.element.name, b.element.name)
            return c != 0 ? c < 0 : a.offset < b.offset
        }.map(\.element))
    }
}

/// One key field of a list-map element, e.g. `port: 80`.
public struct KeyField: Sendable {
    public var name: String
    public var value: JSON

    public init(_ name: String, _ value: JSON) {
        self.name = name
        self.value = value
    }
}

extension PathElement: Comparable, Hashable {
    /// The total order structured-merge-diff sorts sets by: fields, then keys, then values,
    /// then indexes.
    public static func compare(_ a: PathElement, _ b: PathElement) -> Int {
        switch (a, b) {
        case (.field(let x), .field(let y)): return ApplyValueOrder.compareStrings(x, y)
        case (.field, _): return -1
        case (_, .field): return 1
        case (.key(let x), .key(let y)): return ApplyValueOrder.compareKeys(x, y)
        case (.key, _): return -1
        case (_, .key): return 1
        case (.value(let x), .value(let y)): return ApplyValueOrder.compare(x, y)
        case (.value, _): return -1
        case (_, .value): return 1
        case (.index(let x), .index(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        }
    }

    public static func < (a: PathElement, b: PathElement) -> Bool { compare(a, b) < 0 }
    public static func == (a: PathElement, b: PathElement) -> Bool { compare(a, b) == 0 }

    /// Hashes a canonical form so that elements equal under `compare` (80 and 80.0, objects
    /// in any key order) hash alike.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .field(let n):
            hasher.combine(0)
            hasher.combine(Array(n.utf8))
        case .key(let fields):
            hasher.combine(1)
            for f in fields {
                hasher.combine(Array(f.name.utf8))
                ApplyValueOrder.hash(f.value, into: &hasher)
            }
        case .value(let v):
            hasher.combine(2)
            ApplyValueOrder.hash(v, into: &hasher)
        case .index(let i):
            hasher.combine(3)
            hasher.combine(i)
        }
    }
}

/// A path from the object root: `[.field("spec"), .field("replicas")]`.
public typealias FieldPath = [PathElement]

extension Array where Element == PathElement {
    /// The path as apiserver prints it: `.spec.ports[port=80,protocol="TCP"].targetPort`.
    public var pathString: String { map(\.description).joined() }
}

// MARK: - FieldsV1 keys

/// Why a FieldsV1 document or one of its keys could not be read.
public struct FieldsV1Error: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

extension PathElement {
    /// The FieldsV1 key for this element: `f:name`, `k:{"port":80,"protocol":"TCP"}`, `v:"x"`, `i:0`.
    public var fieldsV1Key: String {
        switch self {
        case .field(let n): return "f:" + n
        case .key(let fields):
            var out = "k:{"
            for (i, f) in fields.enumerated() {
                if i > 0 { out += "," }
                out += ApplyFormat.json(.string(f.name))
                out += ":"
                out += ApplyFormat.json(f.value)
            }
            return out + "}"
        case .value(let v): return "v:" + ApplyFormat.json(v)
        case .index(let i): return "i:\(i)"
        }
    }

    /// Reads a FieldsV1 key. Returns nil for a well-formed key of a type this server does not
    /// know (upstream drops those silently, so a newer format does not break older readers).
    public static func parse(fieldsV1Key s: String) throws(FieldsV1Error) -> PathElement? {
        let bytes = Array(s.utf8)
        guard bytes.count >= 2 else { throw FieldsV1Error("key must be 2 characters long: \(s)") }
        guard bytes[1] == UInt8(ascii: ":") else { throw FieldsV1Error("missing colon: \(s)") }
        let rest = String(decoding: bytes[2...], as: UTF8.self)
        switch bytes[0] {
        case UInt8(ascii: "f"):
            return .field(rest)
        case UInt8(ascii: "v"):
            do {
                return .value(try JSON.parse(rest))
            } catch {
                throw FieldsV1Error("invalid value in \(s): \(error.message)")
            }
        case UInt8(ascii: "k"):
            let parsed: JSON
            do {
                parsed = try JSON.parse(rest)
            } catch {
                throw FieldsV1Error("invalid key in \(s): \(error.message)")
            }
            guard case .object(let o) = parsed else {
                throw FieldsV1Error("invalid key in \(s): expected an object")
            }
            return .key(sorting: o.map { KeyField($0.key, $0.value) })
        case UInt8(ascii: "i"):
            guard let i = Int(rest) else { throw FieldsV1Error("invalid index in \(s)") }
            return .index(i)
        default:
            return nil
        }
    }
}

// MARK: - Value order and equality

/// Ordering and equality of JSON values as structured-merge-diff defines them: numbers compare
/// numerically whatever their encoding, objects regardless of member order, and values of
/// different kinds order as number < string < bool < list < map < null.
enum ApplyValueOrder {
    static func compareStrings(_ a: String, _ b: String) -> Int {
        // Go compares strings byte by byte; Swift's `<` uses Unicode canonical order instead.
        var i = a.utf8.makeIterator()
        var j = b.utf8.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return 0
            case (nil, _): return -1
            case (_, nil): return 1
            case (let x?, let y?):
                if x != y { return x < y ? -1 : 1 }
            }
        }
    }

    static func stringsEqual(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    private static func rank(_ v: JSON) -> Int {
        switch v {
        case .int, .double: return 0
        case .string: return 1
        case .bool: return 2
        case .array: return 3
        case .object: return 4
        case .null: return 5
        }
    }

    static func compare(_ a: JSON, _ b: JSON) -> Int {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x < y ? -1 : (x == y ? 0 : 1)
        case (.int, .double), (.double, .int), (.double, .double):
            let x = a.doubleValue ?? 0, y = b.doubleValue ?? 0
            return x < y ? -1 : (x > y ? 1 : 0)
        case (.string(let x), .string(let y)): return compareStrings(x, y)
        case (.bool(let x), .bool(let y)): return x == y ? 0 : (x ? 1 : -1)
        case (.array(let x), .array(let y)):
            for (l, r) in zip(x, y) {
                let c = compare(l, r)
                if c != 0 { return c }
            }
            return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
        case (.object(let x), .object(let y)): return compareObjects(x, y)
        case (.null, .null): return 0
        default:
            let ra = rank(a), rb = rank(b)
            return ra < rb ? -1 : (ra == rb ? 0 : 1)
        }
    }

    /// Objects compare as their entries sorted by key; a key only one side has makes the side
    /// that lacks it greater at that position, as upstream's zip does.
    private static func compareObjects(_ x: JSONObject, _ y: JSONObject) -> Int {
        if x.isEmpty && y.isEmpty { return 0 }
        var keys = Array(x.keys)
        for k in y.keys where x[k] == nil { keys.append(k) }
        keys.sort { compareStrings($0, $1) < 0 }
        for (i, k) in keys.enumerated() {
            if i == x.count { return -1 }
            if i == y.count { return 1 }
            guard let l = x[k] else { return 1 }
            guard let r = y[k] else { return -1 }
            let c = compare(l, r)
            if c != 0 { return c }
        }
        return 0
    }

    static func compareKeys(_ x: [KeyField], _ y: [KeyField]) -> Int {
        for (l, r) in zip(x, y) {
            let c = compareStrings(l.name, r.name)
            if c != 0 { return c }
            let v = compare(l.value, r.value)
            if v != 0 { return v }
        }
        return x.count < y.count ? -1 : (x.count == y.count ? 0 : 1)
    }

    /// Semantic equality: 1 == 1.0, objects equal whatever their member order.
    static func equal(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int(let x), .int(let y)): return x == y
        case (.int, .double), (.double, .int), (.double, .double): return a.doubleValue == b.doubleValue
        case (.string(let x), .string(let y)): return stringsEqual(x, y)
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x {
                guard let w = y[k], equal(v, w) else { return false }
            }
            return true
        default: return false
        }
    }

    /// Equal objects hash equally: keys are sorted and integral doubles hash as integers.
    static func hash(_ v: JSON, into h: inout Hasher) {
        switch v {
        case .null: h.combine(5)
        case .bool(let b): h.combine(2); h.combine(b)
        case .int(let i): h.combine(0); h.combine(Double(i))
        case .double(let d): h.combine(0); h.combine(d)
        case .string(let s): h.combine(1); h.combine(Array(s.utf8))
        case .array(let a):
            h.combine(3)
            h.combine(a.count)
            for e in a { hash(e, into: &h) }
        case .object(let o):
            h.combine(4)
            h.combine(o.count)
            for k in o.keys.sorted(by: { compareStrings($0, $1) < 0 }) {
                h.combine(Array(k.utf8))
                if let e = o[k] { hash(e, into: &h) }
            }
        }
    }
}

// MARK: - Go formatting

/// Text formats that must match what Go (and so apiserver) prints byte for byte.
enum ApplyFormat {
    /// A value as structured-merge-diff's `value.ToString` renders it inside messages.
    static func valueString(_ v: JSON) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return String(i)
        case .double(let d): return formatFloat(d, style: .g)
        case .string(let s): return quote(s)
        case .array(let a): return "[" + a.map(valueString).joined(separator: ",") + "]"
        case .object(let o):
            return o.keys.sorted { ApplyValueOrder.compareStrings($0, $1) < 0 }
                .map { "\($0)=\(valueString(o[$0] ?? .null))" }.joined()
        }
    }

    /// Go's `%q`.
    static func quote(_ s: String) -> String { GoQuote.quote(s) }

    /// Compact JSON as Go's encoding/json writes it: object keys sorted, `<`, `>` and `&`
    /// escaped, floats in Go's shortest form.
    static func json(_ v: JSON) -> String {
        var out = ""
        writeJSON(v, into: &out)
        return out
    }

    static func writeJSON(_ v: JSON, into out: inout String) {
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? formatFloat(d, style: .json) : "null"
        case .string(let s): writeString(s, into: &out)
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += "," }
                writeJSON(e, into: &out)
            }
            out += "]"
        case .object(let o):
            out += "{"
            for (i, k) in o.keys.sorted(by: { ApplyValueOrder.compareStrings($0, $1) < 0 }).enumerated() {
                if i > 0 { out += "," }
                writeString(k, into: &out)
                out += ":"
                writeJSON(o[k] ?? .null, into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += "\\u" + GoQuote.hex(u.value, width: 4)
            default:
                if u.value < 0x20 {
                    out += "\\u" + GoQuote.hex(u.value, width: 4)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    enum FloatStyle {
        /// encoding/json: plain decimals, exponent form below 1e-6 and from 1e21.
        case json
        /// fmt's `%v`: exponent form below 1e-4 and from 1e6, with a two-digit exponent.
        case g
    }

    /// Formats a finite double the way Go's strconv does with the shortest round-tripping digits.
    static func formatFloat(_ d: Double, style: FloatStyle) -> String {
        guard d.isFinite else { return d.isNaN ? "NaN" : (d < 0 ? "-Inf" : "+Inf") }
        let (negative, digits, point) = shortestDigits(d)
        let sign = negative ? "-" : ""
        if digits.isEmpty { return sign + "0" }
        let exponent = point - 1
        let useExponent: Bool
        switch style {
        case .json:
            let a = abs(d)
            useExponent = a < 1e-6 || a >= 1e21
        case .g:
            useExponent = exponent < -4 || exponent >= 6
        }
        if useExponent {
            var m = String(digits.first ?? "0")
            if digits.count > 1 { m += "." + digits.dropFirst() }
            let e = abs(exponent)
            let es = e < 10 && style == .g ? "0\(e)" : "\(e)"
            return sign + m + "e" + (exponent < 0 ? "-" : "+") + es
        }
        if point <= 0 {
            return sign + "0." + String(repeating: "0", count: -point) + digits
        }
        if point >= digits.count {
            return sign + digits + String(repeating: "0", count: point - digits.count)
        }
        let idx = digits.index(digits.startIndex, offsetBy: point)
        return sign + digits[..<idx] + "." + digits[idx...]
    }

    /// The shortest digits that read back as `d`, and where the decimal point goes
    /// (value = 0.digits × 10^point). Swift's description already picks the shortest digits.
    private static func shortestDigits(_ d: Double) -> (Bool, String, Int) {
        var text = d.magnitude.description
        let negative = d.sign == .minus && d != 0
        var exp = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        var intPart = text
        var fracPart = ""
        if let dot = text.firstIndex(of: ".") {
            intPart = String(text[..<dot])
            fracPart = String(text[text.index(after: dot)...])
        }
        var digits = intPart + fracPart
        var point = intPart.count + exp
        while digits.first == "0" {
            digits.removeFirst()
            point -= 1
        }
        while digits.last == "0" { digits.removeLast() }
        return (negative, digits, digits.isEmpty ? 0 : point)
    }
}
