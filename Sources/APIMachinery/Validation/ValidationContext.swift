import Collections

extension Validation {
    /// Collects field errors while reading a dynamic JSON object through typed accessors.
    ///
    /// Upstream decodes into Go structs first, so a wrong JSON type never reaches validation
    /// there. Here every read checks the type: a mismatch is recorded as an error and the field
    /// is then treated as absent, so later checks never see (or crash on) a wrong type.
    struct Context {
        var errors: [FieldError] = []

        mutating func add(_ e: FieldError) { errors.append(e) }
        mutating func add(_ es: [FieldError]) { errors.append(contentsOf: es) }

        /// Present and not null. JSON null decodes to the Go zero value, i.e. "not set".
        static func present(_ v: JSON?) -> JSON? {
            guard let v, !v.isNull else { return nil }
            return v
        }

        mutating func string(_ v: JSON?, _ p: Path) -> String? {
            guard let v = Context.present(v) else { return nil }
            if let s = v.stringValue { return s }
            add(.wrongType(p, expected: "string", actual: v))
            return nil
        }

        mutating func int(_ v: JSON?, _ p: Path) -> Int64? {
            guard let v = Context.present(v) else { return nil }
            if let i = v.intValue { return i }
            add(.wrongType(p, expected: "integer", actual: v))
            return nil
        }

        mutating func bool(_ v: JSON?, _ p: Path) -> Bool? {
            guard let v = Context.present(v) else { return nil }
            if let b = v.boolValue { return b }
            add(.wrongType(p, expected: "boolean", actual: v))
            return nil
        }

        /// An object (a struct or map in Go). Returns the JSON so nested reads keep working.
        mutating func object(_ v: JSON?, _ p: Path) -> JSON? {
            guard let v = Context.present(v) else { return nil }
            if v.objectValue != nil { return v }
            add(.wrongType(p, expected: "object", actual: v))
            return nil
        }

        mutating func array(_ v: JSON?, _ p: Path) -> [JSON]? {
            guard let v = Context.present(v) else { return nil }
            if let a = v.arrayValue { return a }
            add(.wrongType(p, expected: "array", actual: v))
            return nil
        }

        /// map[string]string (labels, annotations, selectors, ConfigMap data). Entries whose value
        /// is not a string are reported and left out.
        mutating func stringMap(_ v: JSON?, _ p: Path) -> [(key: String, value: String)]? {
            guard let o = object(v, p)?.objectValue else { return nil }
            var out: [(key: String, value: String)] = []
            for (k, value) in o {
                if value.isNull { continue }
                if let s = value.stringValue {
                    out.append((k, s))
                } else {
                    add(.wrongType(p.key(k), expected: "string", actual: value))
                }
            }
            return out
        }

        /// []string. Elements that are not strings are reported and left out.
        mutating func stringList(_ v: JSON?, _ p: Path) -> [String]? {
            guard let a = array(v, p) else { return nil }
            var out: [String] = []
            for (i, e) in a.enumerated() {
                if let s = e.stringValue {
                    out.append(s)
                } else if !e.isNull {
                    add(.wrongType(p.index(i), expected: "string", actual: e))
                }
            }
            return out
        }

        /// The object elements of a list, with their indexes; other elements are reported.
        mutating func objects(_ v: JSON?, _ p: Path) -> [(index: Int, item: JSON)] {
            guard let a = array(v, p) else { return [] }
            var out: [(index: Int, item: JSON)] = []
            for (i, e) in a.enumerated() {
                if e.objectValue != nil {
                    out.append((i, e))
                } else if e.isNull {
                    // A null list element decodes to a zero-valued struct in Go.
                    out.append((i, .object([:])))
                } else {
                    add(.wrongType(p.index(i), expected: "object", actual: e))
                }
            }
            return out
        }

        /// IntOrString: a JSON integer or string.
        enum IntOrString: Equatable {
            case int(Int64)
            case string(String)
        }

        mutating func intOrString(_ v: JSON?, _ p: Path) -> IntOrString? {
            guard let v = Context.present(v) else { return nil }
            if let i = v.intValue { return .int(i) }
            if let s = v.stringValue { return .string(s) }
            add(.wrongType(p, expected: "integer or string", actual: v))
            return nil
        }
    }
}
