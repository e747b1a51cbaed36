/// Finds patch values whose JSON type cannot fill their field, as kube-apiserver finds them
/// when it converts the patched map into the Go type (runtime.DefaultUnstructuredConverter).
///
/// Only JSON types are checked (an object where a list belongs, a string for an int32, ...);
/// unknown fields, enum values and formats are validation's business, not the patch's.
/// Directive members (`$patch`, `$retainKeys`, `$setElementOrder/...`,
/// `$deleteFromPrimitiveList/...`) are skipped, and null fits everything.
enum PatchTypeCheck {
    /// The converter's message for the first misfit, or nil when everything fits.
    static func problem(in value: JSON, schema: Schema?, registry: TypeRegistry) -> String? {
        if value.isNull { return nil }
        guard let schema else { return nil }
        switch schema {
        case .any:
            return nil
        case .ref(let name):
            guard case .object(let o) = value else { return "cannot restore struct from: \(GoFormat.kindName(value))" }
            // Unknown or field-less definitions (string aliases) are not checked.
            guard let definition = registry[name], !definition.fields.isEmpty else { return nil }
            for (key, member) in o where !key.hasPrefix("$") {
                guard let field = definition.field(named: key) else { continue }
                if let problem = problem(in: member, schema: field.schema, registry: registry) { return problem }
            }
            return nil
        case .map(let valueSchema):
            guard case .object(let o) = value else { return "cannot restore map from \(GoFormat.kindName(value))" }
            for (key, member) in o where !key.hasPrefix("$") {
                if let problem = problem(in: member, schema: valueSchema, registry: registry) { return problem }
            }
            return nil
        case .array(let element, _):
            guard case .array(let items) = value else { return "cannot restore slice from \(GoFormat.kindName(value))" }
            for item in items {
                if let problem = problem(in: item, schema: element, registry: registry) { return problem }
            }
            return nil
        case .string:
            switch value {
            case .string: return nil
            case .int: return "cannot convert int64 to string"
            default: return "unrecognized type: string"
            }
        case .integer(let format):
            switch value {
            case .int: return nil
            case .double(let d): return d.rounded(.towardZero) == d ? nil : "cannot convert float64 to \(format)"
            default: return "unrecognized type: \(format)"
            }
        case .number:
            switch value {
            case .int, .double: return nil
            default: return "unrecognized type: float64"
            }
        case .boolean:
            if case .bool = value { return nil }
            return "unrecognized type: bool"
        case .intOrString:
            switch value {
            case .int, .string: return nil
            case .double(let d) where d.rounded(.towardZero) == d: return nil
            case .double(let d): return "json: cannot unmarshal number \(GoFormat.float(d)) into Go value of type int32"
            default: return "json: cannot unmarshal \(GoFormat.jsonKind(value)) into Go value of type int32"
            }
        case .quantity:
            switch value {
            case .string, .int, .double: return nil
            default: return "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
            }
        case .time:
            if case .string = value { return nil }
            return "json: cannot unmarshal \(GoFormat.jsonKind(value)) into Go value of type string"
        }
    }
}
