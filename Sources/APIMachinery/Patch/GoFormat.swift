/// Go's way of printing decoded JSON, for error messages.
///
/// kube-apiserver builds many patch error messages with `fmt` verbs applied to the
/// `map[string]interface{}` trees that encoding/json produces, e.g.
/// `map: map[name:x] does not contain declared merge key: port`. kubectl prints those
/// messages verbatim, so we render our `JSON` the same way.
enum GoFormat {
    /// `fmt.Sprintf("%v", v)`: maps as `map[k:v ...]` with sorted keys, slices as `[a b]`,
    /// strings unquoted, null as `<nil>`.
    static func value(_ v: JSON) -> String {
        var out = ""
        write(v, to: &out)
        return out
    }

    /// `%v` of a Go slice of JSON values, e.g. the patch list quoted in a `$setElementOrder` error.
    static func list(_ items: [JSON]) -> String { value(.array(items)) }

    private static func write(_ v: JSON, to out: inout String) {
        switch v {
        case .null: out += "<nil>"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += float(d)
        case .string(let s): out += s
        case .array(let a):
            out += "["
            for (i, e) in a.enumerated() {
                if i > 0 { out += " " }
                write(e, to: &out)
            }
            out += "]"
        case .object(let o):
            out += "map["
            // fmt sorts string map keys bytewise.
            let keys = o.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            for (i, k) in keys.enumerated() {
                if i > 0 { out += " " }
                out += k
                out += ":"
                write(o[k] ?? .null, to: &out)
            }
            out += "]"
        }
    }

    /// `fmt.Sprintf("%s", v)`: strings as they are, anything else flagged the way fmt flags a
    /// wrong verb, e.g. `%!s(int64=5)`.
    static func s(_ v: JSON) -> String {
        switch v {
        case .string(let str): return str
        case .null: return "%!s(<nil>)"
        case .bool, .int, .double: return "%!s(\(typeName(v))=\(value(v)))"
        case .array, .object: return value(v)
        }
    }

    /// `reflect.TypeOf(v).String()` for a value decoded by encoding/json (numbers as the
    /// apiserver decodes them: integers int64, the rest float64).
    static func typeName(_ v: JSON) -> String {
        switch v {
        case .null: return "%!s(<nil>)"
        case .bool: return "bool"
        case .int: return "int64"
        case .double: return "float64"
        case .string: return "string"
        case .array: return "[]interface {}"
        case .object: return "map[string]interface {}"
        }
    }

    /// `reflect.Kind` names, as the unstructured converter words its errors.
    static func kindName(_ v: JSON) -> String {
        switch v {
        case .null: return "invalid"
        case .bool: return "bool"
        case .int: return "int64"
        case .double: return "float64"
        case .string: return "string"
        case .array: return "slice"
        case .object: return "map"
        }
    }

    /// The word encoding/json uses in "cannot unmarshal X into Go value of type T".
    static func jsonKind(_ v: JSON) -> String {
        switch v {
        case .null: return "null"
        case .bool: return "bool"
        case .int, .double: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// `%v` of a float64: the shortest digits that round-trip, in exponent form when the
    /// decimal exponent is below -4 or at least 6 (Go's rule for the shortest `%g`).
    static func float(_ d: Double) -> String {
        if d == 0 { return d.sign == .minus ? "-0" : "0" }
        guard d.isFinite else { return d.isNaN ? "NaN" : (d < 0 ? "-Inf" : "+Inf") }
        let (digits, pointPosition) = shortestDigits(abs(d))
        let sign = d < 0 ? "-" : ""
        let exponent = pointPosition - 1
        if exponent < -4 || exponent >= 6 {
            var mantissa = String(digits.first ?? "0")
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let expSign = exponent < 0 ? "-" : "+"
            let expDigits = String(abs(exponent))
            return sign + mantissa + "e" + expSign + (expDigits.count < 2 ? "0" + expDigits : expDigits)
        }
        if pointPosition <= 0 {
            return sign + "0." + String(repeating: "0", count: -pointPosition) + digits
        }
        if pointPosition >= digits.count {
            return sign + digits + String(repeating: "0", count: pointPosition - digits.count)
        }
        let cut = digits.index(digits.startIndex, offsetBy: pointPosition)
        return sign + digits[..<cut] + "." + digits[cut...]
    }

    /// Significant digits (no leading or trailing zeros) and where the decimal point sits
    /// relative to them, taken from Swift's shortest round-trip rendering.
    private static func shortestDigits(_ d: Double) -> (String, Int) {
        let text = "\(d)"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var intPart = mantissa
        var fracPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            intPart = mantissa[..<dot]
            fracPart = mantissa[mantissa.index(after: dot)...]
        }
        var all = String(intPart) + String(fracPart)
        var point = intPart.count + exponent
        while all.first == "0" {
            all.removeFirst()
            point -= 1
        }
        while all.last == "0" { all.removeLast() }
        if all.isEmpty { return ("0", 1) }
        return (all, point)
    }

    /// `strconv.Quote`.
    static func quote(_ s: String) -> String { GoQuote.quote(s) }
}

extension JSON {
    /// Equality as JSON means it: object members compared regardless of order.
    ///
    /// `JSON`'s own `==` also compares member order, which is right for "did the stored
    /// bytes change" but wrong for a patch's `test` operation or for finding list elements.
    func sameValue(as other: JSON) -> Bool {
        switch (self, other) {
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            for (k, v) in a {
                guard let w = b[k], v.sameValue(as: w) else { return false }
            }
            return true
        case (.array(let a), .array(let b)):
            guard a.count == b.count else { return false }
            for (x, y) in zip(a, b) where !x.sameValue(as: y) { return false }
            return true
        default:
            return self == other
        }
    }
}
