import APIMachinery

/// Checks a request body against the type registry the way kube-apiserver's decoder does:
/// values of the wrong JSON type are errors (400, worded like Go's encoding/json), and fields the
/// schema does not know are collected for `fieldValidation` (Strict fails, Warn warns).
struct SchemaCheck {
    let registry: TypeRegistry

    struct Problems {
        var unknownFields: [String] = []
        var typeErrors: [String] = []
    }

    func check(_ obj: JSON, definition: String) -> Problems {
        var p = Problems()
        walk(obj, .ref(definition), path: "", goPath: "", parent: short(definition), problems: &p)
        return p
    }

    func short(_ definition: String) -> String {
        String(definition.split(separator: ".").last ?? Substring(definition))
    }

    /// Go's name of the type a schema decodes into, for error messages.
    func goType(_ s: Schema) -> String {
        switch s {
        case .string(let format, _): return format == "byte" ? "[]uint8" : "string"
        case .integer(let format): return format == "int64" ? "int64" : "int32"
        case .number: return "float64"
        case .boolean: return "bool"
        case .ref(let n):
            let parts = n.split(separator: ".")
            let pkg = parts.count >= 2 ? String(parts[parts.count - 2]) : ""
            return pkg.isEmpty ? short(n) : "\(pkg).\(short(n))"
        case .array(let e, _): return "[]" + goType(e)
        case .map(let v): return "map[string]" + goType(v)
        case .intOrString: return "intstr.IntOrString"
        case .quantity: return "resource.Quantity"
        case .time: return "v1.Time"
        case .any: return "runtime.RawExtension"
        }
    }

    func walk(_ v: JSON, _ s: Schema, path: String, goPath: String, parent: String, problems p: inout Problems) {
        if case .null = v { return }  // null decodes to the zero value everywhere
        func typeError() {
            p.typeErrors.append("json: cannot unmarshal \(v.typeName) into Go struct field \(parent).\(goPath) of type \(goType(s))")
        }
        switch s {
        case .string:
            if v.stringValue == nil { typeError() }
        case .integer:
            guard let i = v.intValue else {
                typeError()
                return
            }
            if case .integer("int32") = s, i < Int64(Int32.min) || i > Int64(Int32.max) {
                p.typeErrors.append("json: cannot unmarshal number \(i) into Go struct field \(parent).\(goPath) of type int32")
            }
        case .number:
            if v.doubleValue == nil { typeError() }
        case .boolean:
            if v.boolValue == nil { typeError() }
        case .intOrString:
            if v.intValue == nil && v.stringValue == nil { typeError() }
        case .quantity:
            if v.stringValue == nil && v.doubleValue == nil { typeError() }
        case .time:
            if v.stringValue == nil { typeError() }
        case .any:
            return
        case .array(let e, _):
            guard let a = v.arrayValue else {
                typeError()
                return
            }
            for (i, item) in a.enumerated() {
                walk(item, e, path: "\(path)[\(i)]", goPath: goPath, parent: parent, problems: &p)
            }
        case .map(let valueSchema):
            guard let o = v.objectValue else {
                typeError()
                return
            }
            for (k, item) in o {
                walk(item, valueSchema, path: path.isEmpty ? k : "\(path).\(k)", goPath: goPath, parent: parent, problems: &p)
            }
        case .ref(let name):
            guard let def = registry[name] else { return }
            guard let o = v.objectValue else {
                typeError()
                return
            }
            for (k, item) in o {
                let childPath = path.isEmpty ? k : "\(path).\(k)"
                guard let field = def.field(named: k) else {
                    if path.isEmpty && (k == "apiVersion" || k == "kind") { continue }
                    p.unknownFields.append(childPath)
                    continue
                }
                let childGo = goPath.isEmpty ? k : "\(goPath).\(k)"
                walk(item, field.schema, path: childPath, goPath: childGo, parent: short(name), problems: &p)
            }
        }
    }
}
