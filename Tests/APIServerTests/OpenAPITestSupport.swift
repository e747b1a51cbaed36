import APIMachinery
import APIServer
import Testing

/// Helpers shared by the OpenAPI tests: JSON walking and a minimal protobuf reader.
enum OpenAPITestSupport {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ bytes: [UInt8]?) throws -> JSON {
        guard let bytes else { throw Failure(description: "document missing") }
        return try JSON.parse(bytes)
    }

    /// Every "$ref" value anywhere in `value`.
    static func refs(in value: JSON) -> [String] {
        var out: [String] = []
        collect(value, into: &out) { key, v in key == "$ref" ? v.stringValue : nil }
        return out
    }

    /// Every object key anywhere in `value` (to check which keywords a dialect uses).
    static func keys(in value: JSON) -> Set<String> {
        var out: [String] = []
        collect(value, into: &out) { key, _ in key }
        return Set(out)
    }

    static func collect(_ value: JSON, into out: inout [String], _ pick: (String, JSON) -> String?) {
        switch value {
        case .object(let o):
            for (k, v) in o {
                if let s = pick(k, v) { out.append(s) }
                collect(v, into: &out, pick)
            }
        case .array(let a):
            for v in a { collect(v, into: &out, pick) }
        default:
            break
        }
    }

    /// Every (path, method, operation) of a document's `paths`.
    static func operations(_ document: JSON) -> [(path: String, method: String, op: JSON)] {
        var out: [(String, String, JSON)] = []
        guard let paths = document["paths"]?.objectValue else { return [] }
        for (path, item) in paths {
            for (method, op) in item.objectValue ?? [:] where method != "parameters" {
                out.append((path, method, op))
            }
        }
        return out
    }

    /// What kubectl's explain does: the schema whose x-kubernetes-group-version-kind lists the GVK.
    static func schema(for gvk: GroupVersionKind, in schemas: JSON?) -> (name: String, schema: JSON)? {
        for (name, schema) in schemas?.objectValue ?? [:] {
            for entry in schema["x-kubernetes-group-version-kind"]?.arrayValue ?? [] {
                if entry["group"]?.stringValue == gvk.group, entry["version"]?.stringValue == gvk.version,
                   entry["kind"]?.stringValue == gvk.kind {
                    return (name, schema)
                }
            }
        }
        return nil
    }

    /// Recursively sorted keys, so two JSON values compare equal regardless of key order.
    static func normalized(_ value: JSON) -> JSON {
        switch value {
        case .object(let o):
            var sorted = JSONObject()
            for k in o.keys.sorted() { sorted[k] = o[k].map(normalized) }
            return .object(sorted)
        case .array(let a):
            return .array(a.map(normalized))
        default:
            return value
        }
    }
}

/// A protobuf message read without a schema: field number -> values, in wire order.
struct OpenAPIProtoMessage {
    enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case fixed32(UInt32)
        case bytes([UInt8])
    }

    var fields: [(number: Int, value: Value)] = []

    init(_ bytes: [UInt8]) throws {
        var i = 0
        func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < bytes.count, shift < 64 else { throw OpenAPITestSupport.Failure(description: "truncated varint at \(i)") }
                let b = bytes[i]
                i += 1
                result |= UInt64(b & 0x7f) << shift
                if b & 0x80 == 0 { return result }
                shift += 7
            }
        }
        func take(_ n: Int) throws -> [UInt8] {
            guard n >= 0, i + n <= bytes.count else { throw OpenAPITestSupport.Failure(description: "truncated field at \(i)") }
            defer { i += n }
            return Array(bytes[i..<(i + n)])
        }
        while i < bytes.count {
            let key = try varint()
            let number = Int(key >> 3)
            switch key & 7 {
            case 0: fields.append((number, .varint(try varint())))
            case 1:
                let b = try take(8)
                fields.append((number, .fixed64(b.reversed().reduce(0) { $0 << 8 | UInt64($1) })))
            case 2:
                let n = Int(try varint())
                fields.append((number, .bytes(try take(n))))
            case 5:
                let b = try take(4)
                fields.append((number, .fixed32(b.reversed().reduce(0) { $0 << 8 | UInt32($1) })))
            default:
                throw OpenAPITestSupport.Failure(description: "unsupported wire type \(key & 7) at \(i)")
            }
        }
    }

    func all(_ number: Int) -> [Value] { fields.filter { $0.number == number }.map(\.value) }

    func strings(_ number: Int) -> [String] {
        all(number).compactMap { if case .bytes(let b) = $0 { return String(decoding: b, as: UTF8.self) } else { return nil } }
    }

    func string(_ number: Int) -> String? { strings(number).last }

    func messages(_ number: Int) throws -> [OpenAPIProtoMessage] {
        try all(number).compactMap { if case .bytes(let b) = $0 { return try OpenAPIProtoMessage(b) } else { return nil } }
    }

    func message(_ number: Int) throws -> OpenAPIProtoMessage? { try messages(number).last }

    func bool(_ number: Int) -> Bool {
        all(number).contains { if case .varint(let v) = $0 { return v != 0 } else { return false } }
    }

    /// Entries of a repeated Named* message (1 name, 2 value) as (name, value message).
    func named(_ number: Int) throws -> [(name: String, value: OpenAPIProtoMessage)] {
        try messages(number).map { entry in
            (entry.string(1) ?? "", try entry.message(2) ?? OpenAPIProtoMessage([]))
        }
    }

    func named(_ number: Int, _ name: String) throws -> OpenAPIProtoMessage? {
        try named(number).first { $0.name == name }?.value
    }
}
