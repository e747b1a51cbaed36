/// Label selectors: the `?labelSelector=` string form and the `matchLabels`/`matchExpressions` object form.
public struct LabelSelector: Sendable, Equatable, CustomStringConvertible {
    public enum Operator: String, Sendable {
        case equals = "="
        case notEquals = "!="
        case `in` = "in"
        case notIn = "notin"
        case exists = "exists"
        case doesNotExist = "!"
    }

    public struct Requirement: Sendable, Equatable {
        public var key: String
        public var op: Operator
        public var values: [String]

        public func matches(_ labels: [String: String]) -> Bool {
            switch op {
            case .equals, .in: return labels[key].map { values.contains($0) } ?? false
            case .notEquals, .notIn: return labels[key].map { !values.contains($0) } ?? true
            case .exists: return labels[key] != nil
            case .doesNotExist: return labels[key] == nil
            }
        }
    }

    public var requirements: [Requirement]
    /// A selector object that is nil or `{}` matches everything in list calls but nothing in
    /// controllers; callers decide. `matchesNothing` marks the latter explicitly.
    public var matchesNothing = false

    public init(requirements: [Requirement] = []) { self.requirements = requirements }

    public static let everything = LabelSelector()
    public static let nothing: LabelSelector = {
        var s = LabelSelector()
        s.matchesNothing = true
        return s
    }()

    public func matches(_ labels: [String: String]) -> Bool {
        if matchesNothing { return false }
        return requirements.allSatisfy { $0.matches(labels) }
    }

    public var isEmpty: Bool { requirements.isEmpty && !matchesNothing }

    /// The string form, as `kubectl` and the Table printers show it.
    public var description: String {
        requirements.map { r in
            switch r.op {
            case .equals: return "\(r.key)=\(r.values.first ?? "")"
            case .notEquals: return "\(r.key)!=\(r.values.first ?? "")"
            case .in: return "\(r.key) in (\(r.values.joined(separator: ",")))"
            case .notIn: return "\(r.key) notin (\(r.values.joined(separator: ",")))"
            case .exists: return r.key
            case .doesNotExist: return "!\(r.key)"
            }
        }.joined(separator: ",")
    }

    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h`, reporting errors as apiserver does (400).
    public static func parse(_ text: String) throws(APIError) -> LabelSelector {
        var p = SelectorLexer(text)
        var reqs: [Requirement] = []
        p.skipSpace()
        if p.atEnd { return LabelSelector() }
        while true {
            p.skipSpace()
            var negate = false
            if p.peek == "!" {
                p.advance()
                negate = true
                p.skipSpace()
            }
            let key = p.word()
            guard !key.isEmpty else { throw bad(text, "found '\(p.rest)', expected: identifier") }
            p.skipSpace()
            if negate {
                reqs.append(Requirement(key: key, op: .doesNotExist, values: []))
            } else if p.atEnd || p.peek == "," {
                reqs.append(Requirement(key: key, op: .exists, values: []))
            } else if p.consume("==") || p.consume("=") {
                p.skipSpace()
                reqs.append(Requirement(key: key, op: .equals, values: [p.word()]))
            } else if p.consume("!=") {
                p.skipSpace()
                reqs.append(Requirement(key: key, op: .notEquals, values: [p.word()]))
            } else {
                let opWord = p.word()
                let op: Operator
                switch opWord {
                case "in": op = .in
                case "notin": op = .notIn
                default: throw bad(text, "found '\(opWord)', expected: in, notin, =, ==, !=, gt, lt")
                }
                p.skipSpace()
                guard p.consume("(") else { throw bad(text, "found '\(p.rest)', expected: '('") }
                var values: [String] = []
                while true {
                    p.skipSpace()
                    if p.consume(")") { break }
                    values.append(p.word())
                    p.skipSpace()
                    if p.consume(",") { continue }
                    if p.consume(")") { break }
                    throw bad(text, "found '\(p.rest)', expected: ',' or ')'")
                }
                reqs.append(Requirement(key: key, op: op, values: values))
            }
            p.skipSpace()
            if p.atEnd { break }
            guard p.consume(",") else { throw bad(text, "found '\(p.rest)', expected: ',' or 'end of string'") }
        }
        return LabelSelector(requirements: reqs)
    }

    static func bad(_ text: String, _ why: String) -> APIError {
        .badRequest("unable to parse requirement: \(why)")
    }

    /// Builds a selector from a `metav1.LabelSelector` object. nil gives `nothing`, as controllers use it;
    /// `{}` gives `everything`.
    public static func from(_ obj: JSON?) -> LabelSelector {
        guard let obj, case .object = obj else { return .nothing }
        var reqs: [Requirement] = []
        if let ml = obj["matchLabels"]?.objectValue {
            for (k, v) in ml.sorted(by: { $0.key < $1.key }) {
                reqs.append(Requirement(key: k, op: .equals, values: [v.stringValue ?? ""]))
            }
        }
        for e in obj["matchExpressions"]?.arrayValue ?? [] {
            let key = e["key"]?.stringValue ?? ""
            let values = e["values"]?.arrayValue?.compactMap(\.stringValue) ?? []
            switch e["operator"]?.stringValue {
            case "In": reqs.append(Requirement(key: key, op: .in, values: values))
            case "NotIn": reqs.append(Requirement(key: key, op: .notIn, values: values))
            case "Exists": reqs.append(Requirement(key: key, op: .exists, values: []))
            case "DoesNotExist": reqs.append(Requirement(key: key, op: .doesNotExist, values: []))
            default: return .nothing
            }
        }
        return LabelSelector(requirements: reqs)
    }

    /// A Service-style selector (a plain map): every pair must match.
    public static func from(map: [String: String]) -> LabelSelector {
        LabelSelector(requirements: map.sorted { $0.key < $1.key }.map { Requirement(key: $0.key, op: .equals, values: [$0.value]) })
    }
}

/// Field selectors: `metadata.name=x,spec.nodeName!=y`.
public struct FieldSelector: Sendable, Equatable {
    public struct Requirement: Sendable, Equatable {
        public var field: String
        public var value: String
        public var negate: Bool
    }

    public var requirements: [Requirement]

    public init(requirements: [Requirement] = []) { self.requirements = requirements }

    public static func parse(_ text: String) throws(APIError) -> FieldSelector {
        var reqs: [Requirement] = []
        for part in splitUnescaped(text) where !part.isEmpty {
            if let r = part.range(of: "!=") {
                reqs.append(Requirement(field: String(part[..<r.lowerBound]), value: unescape(String(part[r.upperBound...])), negate: true))
            } else if let r = part.range(of: "==") {
                reqs.append(Requirement(field: String(part[..<r.lowerBound]), value: unescape(String(part[r.upperBound...])), negate: false))
            } else if let r = part.range(of: "=") {
                reqs.append(Requirement(field: String(part[..<r.lowerBound]), value: unescape(String(part[r.upperBound...])), negate: false))
            } else {
                throw APIError.badRequest("invalid selector: '\(text)'; can't understand '\(part)'")
            }
        }
        return FieldSelector(requirements: reqs)
    }

    static func splitUnescaped(_ s: String) -> [String] {
        var parts: [String] = []
        var cur = ""
        var escaped = false
        for c in s {
            if escaped {
                cur.append("\\")
                cur.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == "," {
                parts.append(cur)
                cur = ""
            } else {
                cur.append(c)
            }
        }
        parts.append(cur)
        return parts
    }

    static func unescape(_ s: String) -> String {
        var out = ""
        var escaped = false
        for c in s {
            if escaped {
                out.append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        return out
    }

    /// `fields` maps each supported field path to the object's value (missing = "").
    public func matches(_ fields: [String: String]) -> Bool {
        requirements.allSatisfy { r in
            let v = fields[r.field] ?? ""
            return r.negate ? v != r.value : v == r.value
        }
    }

    public var isEmpty: Bool { requirements.isEmpty }
}

struct SelectorLexer {
    let chars: [Character]
    var i = 0

    init(_ s: String) { chars = Array(s) }

    var atEnd: Bool { i >= chars.count }
    var peek: Character? { atEnd ? nil : chars[i] }
    var rest: String { String(chars[min(i, chars.count)...]) }

    mutating func advance() { i += 1 }

    mutating func skipSpace() {
        while let c = peek, c == " " || c == "\t" { i += 1 }
    }

    mutating func consume(_ s: String) -> Bool {
        let cs = Array(s)
        guard i + cs.count <= chars.count, Array(chars[i..<(i + cs.count)]) == cs else { return false }
        i += cs.count
        return true
    }

    /// A label key or value: anything up to a space, comma, operator or parenthesis.
    mutating func word() -> String {
        var out = ""
        while let c = peek, !" \t,=!()".contains(c) {
            out.append(c)
            i += 1
        }
        return out
    }
}
