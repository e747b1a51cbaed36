import APIMachinery

/// Why a swagger 2.0 JSON document could not be turned into the gnostic protobuf form.
public struct OpenAPIEncodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// JSON-pointer-like location, e.g. "/definitions/io.k8s.api.core.v1.Pod/properties/spec".
    public let path: String
    public let message: String
    public var description: String { "cannot encode OpenAPI v2 as protobuf at \(path): \(message)" }
}

/// Encodes a swagger 2.0 document as a gnostic `openapi.v2.Document` protobuf message
/// (github.com/google/gnostic, openapiv2/OpenAPIv2.proto), the form kubectl 1.27 and 1.28
/// download from `/openapi/v2` for validation, `explain` and `apply`.
///
/// It covers the subset of swagger 2.0 labnode generates and refuses anything else by name,
/// so a new key in the generator cannot silently vanish from the protobuf. Vendor extensions
/// and enum values travel as `Any{yaml}`; the JSON text of the value is used as the YAML.
public enum GnosticOpenAPIv2 {
    public static func encode(_ document: JSON) throws(OpenAPIEncodingError) -> [UInt8] {
        try Encoder().document(try Encoder.object(document, ""))
    }
}

/// Protobuf wire-format writer. Zero values are left out, as proto3 encoders do; nested
/// messages are always written, even when empty, because presence matters to the reader
/// (an empty `properties` still makes a schema an object kind).
struct GnosticProtobufWriter {
    private(set) var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    mutating func key(_ field: Int, wireType: UInt8) {
        varint(UInt64(field) << 3 | UInt64(wireType))
    }

    mutating func string(_ field: Int, _ value: String) {
        guard !value.isEmpty else { return }
        lengthDelimited(field, Array(value.utf8))
    }

    mutating func lengthDelimited(_ field: Int, _ value: [UInt8]) {
        key(field, wireType: 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func message(_ field: Int, _ body: [UInt8]) {
        lengthDelimited(field, body)
    }

    mutating func bool(_ field: Int, _ value: Bool) {
        guard value else { return }
        key(field, wireType: 0)
        varint(1)
    }

    mutating func int64(_ field: Int, _ value: Int64) {
        guard value != 0 else { return }
        key(field, wireType: 0)
        varint(UInt64(bitPattern: value))
    }

    mutating func double(_ field: Int, _ value: Double) {
        guard value != 0 else { return }
        key(field, wireType: 1)
        var bits = value.bitPattern
        for _ in 0..<8 {
            bytes.append(UInt8(bits & 0xff))
            bits >>= 8
        }
    }
}

private struct Encoder {
    typealias Writer = GnosticProtobufWriter

    // MARK: JSON access

    static func object(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> JSONObject {
        guard case .object(let o) = v else { throw fail(path, "expected an object, found \(v.typeName)") }
        return o
    }

    static func string(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> String {
        guard case .string(let s) = v else { throw fail(path, "expected a string, found \(v.typeName)") }
        return s
    }

    static func bool(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> Bool {
        guard case .bool(let b) = v else { throw fail(path, "expected a boolean, found \(v.typeName)") }
        return b
    }

    static func array(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> [JSON] {
        guard case .array(let a) = v else { throw fail(path, "expected an array, found \(v.typeName)") }
        return a
    }

    static func strings(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> [String] {
        var out: [String] = []
        for (i, e) in try array(v, path).enumerated() { out.append(try string(e, "\(path)/\(i)")) }
        return out
    }

    static func int(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> Int64 {
        guard let i = v.intValue else { throw fail(path, "expected an integer, found \(v.typeName)") }
        return i
    }

    static func double(_ v: JSON, _ path: String) throws(OpenAPIEncodingError) -> Double {
        guard let d = v.doubleValue else { throw fail(path, "expected a number, found \(v.typeName)") }
        return d
    }

    static func fail(_ path: String, _ message: String) -> OpenAPIEncodingError {
        OpenAPIEncodingError(path: path.isEmpty ? "/" : path, message: message)
    }

    static func unsupported(_ path: String, _ key: String, in message: String) -> OpenAPIEncodingError {
        fail(path + "/" + key, "\(message) has no encoding for key \"\(key)\"")
    }

    /// Escapes a key for use in an error path (JSON pointer rules).
    static func child(_ path: String, _ key: String) -> String {
        var escaped = ""
        for ch in key {
            switch ch {
            case "~": escaped += "~0"
            case "/": escaped += "~1"
            default: escaped.append(ch)
            }
        }
        return path + "/" + escaped
    }

    // MARK: Shared pieces

    /// NamedAny{1 name, 2 Any{2 yaml}}.
    func namedAny(_ name: String, _ value: JSON) -> [UInt8] {
        var w = Writer()
        w.string(1, name)
        w.message(2, any(value))
        return w.bytes
    }

    /// Any{2 yaml}: JSON text is valid YAML (flow style), which is what kubectl unmarshals.
    func any(_ value: JSON) -> [UInt8] {
        var w = Writer()
        w.lengthDelimited(2, value.serialized())
        return w.bytes
    }

    // MARK: Messages

    func document(_ o: JSONObject) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child("", k)
            switch k {
            case "swagger": w.string(1, try Self.string(v, p))
            case "info": w.message(2, try info(try Self.object(v, p), p))
            case "host": w.string(3, try Self.string(v, p))
            case "basePath": w.string(4, try Self.string(v, p))
            case "schemes": for s in try Self.strings(v, p) { w.lengthDelimited(5, Array(s.utf8)) }
            case "consumes": for s in try Self.strings(v, p) { w.lengthDelimited(6, Array(s.utf8)) }
            case "produces": for s in try Self.strings(v, p) { w.lengthDelimited(7, Array(s.utf8)) }
            case "paths": w.message(8, try paths(try Self.object(v, p), p))
            case "definitions": w.message(9, try namedSchemas(try Self.object(v, p), p))
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported("", k, in: "Document") }
                w.message(16, namedAny(k, v))
            }
        }
        return w.bytes
    }

    func info(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            switch k {
            case "title": w.string(1, try Self.string(v, p))
            case "version": w.string(2, try Self.string(v, p))
            case "description": w.string(3, try Self.string(v, p))
            case "termsOfService": w.string(4, try Self.string(v, p))
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "Info") }
                w.message(7, namedAny(k, v))
            }
        }
        return w.bytes
    }

    /// Paths{1 vendor_extension, 2 NamedPathItem{1 name, 2 PathItem}}.
    func paths(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            if k.hasPrefix("x-") {
                w.message(1, namedAny(k, v))
                continue
            }
            let p = Self.child(path, k)
            var named = Writer()
            named.string(1, k)
            named.message(2, try pathItem(try Self.object(v, p), p))
            w.message(2, named.bytes)
        }
        return w.bytes
    }

    func pathItem(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        let methods = ["get": 2, "put": 3, "post": 4, "delete": 5, "options": 6, "head": 7, "patch": 8]
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            if let field = methods[k] {
                w.message(field, try operation(try Self.object(v, p), p))
                continue
            }
            switch k {
            case "$ref": w.string(1, try Self.string(v, p))
            case "parameters":
                for (i, e) in try Self.array(v, p).enumerated() { w.message(9, try parametersItem(e, "\(p)/\(i)")) }
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "PathItem") }
                w.message(10, namedAny(k, v))
            }
        }
        return w.bytes
    }

    func operation(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            switch k {
            case "tags": for s in try Self.strings(v, p) { w.lengthDelimited(1, Array(s.utf8)) }
            case "summary": w.string(2, try Self.string(v, p))
            case "description": w.string(3, try Self.string(v, p))
            case "operationId": w.string(5, try Self.string(v, p))
            case "produces": for s in try Self.strings(v, p) { w.lengthDelimited(6, Array(s.utf8)) }
            case "consumes": for s in try Self.strings(v, p) { w.lengthDelimited(7, Array(s.utf8)) }
            case "parameters":
                for (i, e) in try Self.array(v, p).enumerated() { w.message(8, try parametersItem(e, "\(p)/\(i)")) }
            case "responses": w.message(9, try responses(try Self.object(v, p), p))
            case "schemes": for s in try Self.strings(v, p) { w.lengthDelimited(10, Array(s.utf8)) }
            case "deprecated": w.bool(11, try Self.bool(v, p))
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "Operation") }
                w.message(13, namedAny(k, v))
            }
        }
        return w.bytes
    }

    /// ParametersItem{1 Parameter{1 BodyParameter | 2 NonBodyParameter} | 2 JsonReference}.
    func parametersItem(_ value: JSON, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        let o = try Self.object(value, path)
        var item = Writer()
        if let ref = o["$ref"] {
            var reference = Writer()
            reference.string(1, try Self.string(ref, Self.child(path, "$ref")))
            if let d = o["description"] { reference.string(2, try Self.string(d, Self.child(path, "description"))) }
            item.message(2, reference.bytes)
            return item.bytes
        }
        guard let location = o["in"]?.stringValue else { throw Self.fail(path, "a parameter needs \"in\"") }
        var parameter = Writer()
        if location == "body" {
            parameter.message(1, try bodyParameter(o, path))
        } else {
            // NonBodyParameter oneof: 1 header, 2 formData, 3 query, 4 path; the sub-schemas
            // number their fields differently (query and formData have allowEmptyValue at 5).
            let (field, layout): (Int, ParameterLayout)
            switch location {
            case "header": (field, layout) = (1, .headerOrPath)
            case "formData": (field, layout) = (2, .queryOrFormData)
            case "query": (field, layout) = (3, .queryOrFormData)
            case "path": (field, layout) = (4, .headerOrPath)
            default: throw Self.fail(Self.child(path, "in"), "unknown parameter location \"\(location)\"")
            }
            var nonBody = Writer()
            nonBody.message(field, try nonBodyParameter(o, layout, path))
            parameter.message(2, nonBody.bytes)
        }
        item.message(1, parameter.bytes)
        return item.bytes
    }

    func bodyParameter(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            switch k {
            case "description": w.string(1, try Self.string(v, p))
            case "name": w.string(2, try Self.string(v, p))
            case "in": w.string(3, try Self.string(v, p))
            case "required": w.bool(4, try Self.bool(v, p))
            case "schema": w.message(5, try schema(try Self.object(v, p), p))
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "BodyParameter") }
                w.message(6, namedAny(k, v))
            }
        }
        return w.bytes
    }

    enum ParameterLayout {
        case queryOrFormData, headerOrPath

        /// Field numbers of the keys labnode emits.
        var fields: [String: Int] {
            switch self {
            case .queryOrFormData:
                return ["required": 1, "in": 2, "description": 3, "name": 4, "allowEmptyValue": 5,
                        "type": 6, "format": 7, "collectionFormat": 9, "uniqueItems": 20, "enum": 21, "x-": 23]
            case .headerOrPath:
                return ["required": 1, "in": 2, "description": 3, "name": 4,
                        "type": 5, "format": 6, "collectionFormat": 8, "uniqueItems": 19, "enum": 20, "x-": 22]
            }
        }
    }

    func nonBodyParameter(_ o: JSONObject, _ layout: ParameterLayout, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        let fields = layout.fields
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            if k.hasPrefix("x-"), let field = fields["x-"] {
                w.message(field, namedAny(k, v))
                continue
            }
            guard let field = fields[k] else { throw Self.unsupported(path, k, in: "parameter") }
            switch k {
            case "required", "allowEmptyValue", "uniqueItems": w.bool(field, try Self.bool(v, p))
            case "enum": for e in try Self.array(v, p) { w.message(field, any(e)) }
            default: w.string(field, try Self.string(v, p))
            }
        }
        return w.bytes
    }

    /// Responses{1 NamedResponseValue{1 name, 2 ResponseValue{1 Response}}, 2 vendor_extension}.
    func responses(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            if k.hasPrefix("x-") {
                w.message(2, namedAny(k, v))
                continue
            }
            let p = Self.child(path, k)
            var value = Writer()
            value.message(1, try response(try Self.object(v, p), p))
            var named = Writer()
            named.string(1, k)
            named.message(2, value.bytes)
            w.message(1, named.bytes)
        }
        return w.bytes
    }

    func response(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            switch k {
            case "description": w.string(1, try Self.string(v, p))
            case "schema":
                var item = Writer()  // SchemaItem{1 Schema}
                item.message(1, try schema(try Self.object(v, p), p))
                w.message(2, item.bytes)
            default:
                guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "Response") }
                w.message(5, namedAny(k, v))
            }
        }
        return w.bytes
    }

    /// Definitions and Properties share one shape: {1 NamedSchema{1 name, 2 Schema}}.
    func namedSchemas(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            var named = Writer()
            named.string(1, k)
            named.message(2, try schema(try Self.object(v, p), p))
            w.message(1, named.bytes)
        }
        return w.bytes
    }

    func schema(_ o: JSONObject, _ path: String) throws(OpenAPIEncodingError) -> [UInt8] {
        let strings = ["$ref": 1, "format": 2, "title": 3, "description": 4, "pattern": 13, "discriminator": 26]
        let doubles = ["multipleOf": 6, "maximum": 7, "minimum": 9]
        let bools = ["exclusiveMaximum": 8, "exclusiveMinimum": 10, "uniqueItems": 16, "readOnly": 27]
        let ints = ["maxLength": 11, "minLength": 12, "maxItems": 14, "minItems": 15, "maxProperties": 17, "minProperties": 18]
        var w = Writer()
        for (k, v) in o {
            let p = Self.child(path, k)
            if let field = strings[k] {
                w.string(field, try Self.string(v, p))
            } else if let field = doubles[k] {
                w.double(field, try Self.double(v, p))
            } else if let field = bools[k] {
                w.bool(field, try Self.bool(v, p))
            } else if let field = ints[k] {
                w.int64(field, try Self.int(v, p))
            } else {
                switch k {
                case "default": w.message(5, any(v))
                case "example": w.message(30, any(v))
                case "required": for s in try Self.strings(v, p) { w.lengthDelimited(19, Array(s.utf8)) }
                case "enum": for e in try Self.array(v, p) { w.message(20, any(e)) }
                case "additionalProperties":
                    var item = Writer()  // AdditionalPropertiesItem{1 Schema | 2 bool}
                    if case .bool(let b) = v {
                        item.key(2, wireType: 0)
                        item.varint(b ? 1 : 0)
                    } else {
                        item.message(1, try schema(try Self.object(v, p), p))
                    }
                    w.message(21, item.bytes)
                case "type":
                    var item = Writer()  // TypeItem{1 repeated string}
                    let types: [String]
                    if let single = v.stringValue { types = [single] } else { types = try Self.strings(v, p) }
                    for t in types { item.lengthDelimited(1, Array(t.utf8)) }
                    w.message(22, item.bytes)
                case "items":
                    var item = Writer()  // ItemsItem{1 repeated Schema}
                    if case .array(let list) = v {
                        for (i, e) in list.enumerated() { item.message(1, try schema(try Self.object(e, "\(p)/\(i)"), "\(p)/\(i)")) }
                    } else {
                        item.message(1, try schema(try Self.object(v, p), p))
                    }
                    w.message(23, item.bytes)
                case "allOf":
                    for (i, e) in try Self.array(v, p).enumerated() {
                        w.message(24, try schema(try Self.object(e, "\(p)/\(i)"), "\(p)/\(i)"))
                    }
                case "properties": w.message(25, try namedSchemas(try Self.object(v, p), p))
                default:
                    guard k.hasPrefix("x-") else { throw Self.unsupported(path, k, in: "Schema") }
                    w.message(31, namedAny(k, v))
                }
            }
        }
        return w.bytes
    }
}
