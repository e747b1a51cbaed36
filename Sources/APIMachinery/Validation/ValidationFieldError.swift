import Collections

extension Validation {
    /// A field path printed exactly as k8s.io/apimachinery's `field.Path` prints it:
    /// children joined by ".", list indexes and map keys in brackets (`spec.ports[0]`,
    /// `metadata.annotations[example.com/x]`). Map keys are not quoted, as upstream.
    public struct Path: Sendable, Hashable, CustomStringConvertible {
        public private(set) var text: String

        public init(_ names: String...) {
            text = names.joined(separator: ".")
        }

        private init(text: String) {
            self.text = text
        }

        /// Upstream's `field.NewPath("")`, which prints as "[]" (used for whole-object errors).
        public static let emptyRoot = Path(text: "[]")

        public func child(_ name: String) -> Path {
            Path(text: text.isEmpty ? name : text + "." + name)
        }

        public func child(_ first: String, _ rest: String...) -> Path {
            var p = child(first)
            for r in rest { p = p.child(r) }
            return p
        }

        public func index(_ i: Int) -> Path {
            Path(text: text + "[\(i)]")
        }

        public func key(_ k: String) -> Path {
            Path(text: text + "[\(k)]")
        }

        public var description: String { text }
    }

    /// The value shown after "Invalid value: " in a message. Go prints integers and booleans
    /// with %v, strings with %q and everything else with %#v; `goSyntax` carries that text.
    public enum BadValue: Sendable, Equatable {
        case int(Int64)
        case bool(Bool)
        case string(String)
        /// Text already rendered the way Go's %#v renders the upstream type.
        case goSyntax(String)
        /// The error kind does not print a value (Required, Forbidden, TooLong, ...).
        case omitted

        var rendered: String? {
            switch self {
            case .int(let i): return String(i)
            case .bool(let b): return b ? "true" : "false"
            case .string(let s): return GoSyntax.quote(s)
            case .goSyntax(let s): return s
            case .omitted: return nil
            }
        }
    }

    /// One validation failure, shaped like upstream's `field.Error`.
    public struct FieldError: Sendable, Equatable, CustomStringConvertible {
        /// The cause type sent in `details.causes[].reason`; raw values are upstream's.
        public enum Kind: String, Sendable {
            case notFound = "FieldValueNotFound"
            case required = "FieldValueRequired"
            case duplicate = "FieldValueDuplicate"
            case invalid = "FieldValueInvalid"
            case notSupported = "FieldValueNotSupported"
            case forbidden = "FieldValueForbidden"
            case tooLong = "FieldValueTooLong"
            case tooMany = "FieldValueTooMany"
            case internalError = "InternalError"
            case typeInvalid = "FieldValueTypeInvalid"

            /// The words that start the message, as upstream's ErrorType.String().
            var words: String {
                switch self {
                case .notFound: return "Not found"
                case .required: return "Required value"
                case .duplicate: return "Duplicate value"
                case .invalid, .typeInvalid: return "Invalid value"
                case .notSupported: return "Unsupported value"
                case .forbidden: return "Forbidden"
                case .tooLong: return "Too long"
                case .tooMany: return "Too many"
                case .internalError: return "Internal error"
                }
            }
        }

        public var kind: Kind
        public var field: String
        public var value: BadValue
        public var detail: String

        public init(kind: Kind, field: String, value: BadValue, detail: String) {
            self.kind = kind
            self.field = field
            self.value = value
            self.detail = detail
        }

        /// The message without the field, as upstream's ErrorBody(); this is what a cause carries.
        public var body: String {
            var s: String
            switch kind {
            case .required, .forbidden, .tooLong, .internalError:
                s = kind.words
            default:
                if let v = value.rendered {
                    s = "\(kind.words): \(v)"
                } else {
                    s = kind.words
                }
            }
            if !detail.isEmpty { s += ": " + detail }
            return s
        }

        /// "field: body", as upstream's Error().
        public var description: String { "\(field): \(body)" }

        public var cause: APIError.Cause {
            APIError.Cause(reason: kind.rawValue, message: body, field: field)
        }

        // MARK: Constructors mirroring field.Required, field.Invalid, ...

        static func required(_ p: Path, _ detail: String = "") -> FieldError {
            FieldError(kind: .required, field: p.text, value: .omitted, detail: detail)
        }

        static func invalid(_ p: Path, _ value: BadValue, _ detail: String) -> FieldError {
            FieldError(kind: .invalid, field: p.text, value: value, detail: detail)
        }

        static func invalid(_ p: Path, _ value: String, _ detail: String) -> FieldError {
            invalid(p, .string(value), detail)
        }

        static func invalid(_ p: Path, _ value: Int64, _ detail: String) -> FieldError {
            invalid(p, .int(value), detail)
        }

        static func forbidden(_ p: Path, _ detail: String) -> FieldError {
            FieldError(kind: .forbidden, field: p.text, value: .omitted, detail: detail)
        }

        static func duplicate(_ p: Path, _ value: BadValue) -> FieldError {
            FieldError(kind: .duplicate, field: p.text, value: value, detail: "")
        }

        static func notFound(_ p: Path, _ value: BadValue) -> FieldError {
            FieldError(kind: .notFound, field: p.text, value: value, detail: "")
        }

        /// field.NotSupported: the supported values are listed quoted, in the order given.
        static func notSupported(_ p: Path, _ value: BadValue, _ supported: [String]) -> FieldError {
            let detail = supported.isEmpty ? "" : "supported values: " + supported.map(GoSyntax.quote).joined(separator: ", ")
            return FieldError(kind: .notSupported, field: p.text, value: value, detail: detail)
        }

        static func tooLong(_ p: Path, _ maxLength: Int) -> FieldError {
            let unit = maxLength == 1 ? "byte" : "bytes"
            return FieldError(kind: .tooLong, field: p.text, value: .omitted, detail: "may not be more than \(maxLength) \(unit)")
        }

        static func tooMany(_ p: Path, actual: Int, max: Int) -> FieldError {
            FieldError(kind: .tooMany, field: p.text, value: .int(Int64(actual)), detail: "must have at most \(max) items")
        }

        /// A JSON value of the wrong type. Upstream rejects these while decoding (400); we report
        /// them as causes worded like CRD schema validation, so a caller can still answer 422.
        static func wrongType(_ p: Path, expected: String, actual: JSON) -> FieldError {
            let actualName = GoSyntax.schemaTypeName(actual)
            return FieldError(kind: .typeInvalid, field: p.text, value: .string(actualName),
                              detail: "\(p.text) in body must be of type \(expected): \"\(actualName)\"")
        }
    }
}

extension Validation {
    /// Renders values the way Go's fmt package does for the types upstream puts in messages.
    enum GoSyntax {
        /// strconv.Quote.
        static func quote(_ s: String) -> String { GoQuote.quote(s) }

        /// map[string]string as %#v prints it: keys sorted, `(nil)` for a missing map.
        static func stringMap(_ pairs: [(String, String)]?) -> String {
            guard let pairs else { return "map[string]string(nil)" }
            let sorted = pairs.sorted { $0.0 < $1.0 }
            return "map[string]string{" + sorted.map { "\(quote($0.0)):\(quote($0.1))" }.joined(separator: ", ") + "}"
        }

        /// []string as %#v prints it.
        static func stringSlice(_ items: [String]?) -> String {
            guard let items else { return "[]string(nil)" }
            return "[]string{" + items.map(quote).joined(separator: ", ") + "}"
        }

        /// A JSON object's string members as key/value pairs (non-strings rendered as JSON text).
        static func pairs(_ json: JSON?) -> [(String, String)]? {
            guard let o = json?.objectValue else { return nil }
            return o.map { ($0.key, $0.value.stringValue ?? $0.value.text) }
        }

        /// intstr.IntOrString as %#v prints it.
        static func intOrString(_ json: JSON?) -> String {
            if let i = json?.intValue {
                return "intstr.IntOrString{Type:0, IntVal:\(i), StrVal:\"\"}"
            }
            let s = json?.stringValue ?? ""
            if json?.stringValue == nil {
                return "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}"
            }
            return "intstr.IntOrString{Type:1, IntVal:0, StrVal:\(quote(s))}"
        }

        /// metav1.LabelSelector as %#v prints it (the Go package is named v1).
        static func labelSelector(_ json: JSON?) -> String {
            let matchLabels = stringMap(pairs(json?["matchLabels"]))
            var exprs = "[]v1.LabelSelectorRequirement(nil)"
            if let list = json?["matchExpressions"]?.arrayValue {
                let items = list.map { e -> String in
                    let key = quote(e["key"]?.stringValue ?? "")
                    let op = quote(e["operator"]?.stringValue ?? "")
                    let values = stringSlice(e["values"]?.arrayValue?.map { $0.stringValue ?? $0.text })
                    return "v1.LabelSelectorRequirement{Key:\(key), Operator:\(op), Values:\(values)}"
                }
                exprs = "[]v1.LabelSelectorRequirement{" + items.joined(separator: ", ") + "}"
            }
            return "v1.LabelSelector{MatchLabels:\(matchLabels), MatchExpressions:\(exprs)}"
        }

        /// The JSON type as an OpenAPI schema names it.
        static func schemaTypeName(_ v: JSON) -> String {
            switch v {
            case .null: return "null"
            case .bool: return "boolean"
            case .int: return "integer"
            case .double(let d): return d.rounded() == d ? "integer" : "number"
            case .string: return "string"
            case .array: return "array"
            case .object: return "object"
            }
        }
    }
}
