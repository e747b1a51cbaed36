/// Decodes the Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
/// that kubectl ≥1.32 sends for typed `create` commands, into the same JSON the older
/// kubectl sends for the same command.
///
/// The wire format is the 4-byte magic "k8s\0" followed by a `runtime.Unknown` message
/// {1 typeMeta {1 apiVersion, 2 kind}, 2 raw, 3 contentEncoding, 4 contentType}; `raw` is the
/// typed message, numbered as in k8s.io/api's generated.proto. There is no schema on the
/// wire, so the decoder walks the `TypeRegistry` definition of the kind: field numbers come
/// from `Field.proto`, value shapes from `Field.schema`.
///
/// Zero values: the Go sender writes every non-pointer field, empty or not. JSON from the same
/// Go structs leaves out `omitempty` fields that are zero, so the decoder drops a zero scalar
/// unless Go's JSON would still write it: the field has no `omitempty`, or it is a Go pointer
/// (present means set, as in `replicas: 0`); see `zeroValueKept`. Nested messages are kept even
/// when empty (`"resources": {}`), as Go's JSON keeps struct fields; a zero `metav1.Time` is
/// left out instead of becoming `null`, and so are unset pointers (Go's `null`).
public enum KubernetesProtobuf {
    /// The prefix of every Kubernetes protobuf body.
    public static let magic: [UInt8] = [0x6b, 0x38, 0x73, 0x00]

    /// The media type these bodies are sent with.
    public static let mediaType = "application/vnd.kubernetes.protobuf"

    /// Nested messages deeper than this are refused; real objects stay far below it.
    static let maxDepth = 64

    /// Decodes a whole request body into a JSON object whose first members are `apiVersion`
    /// and `kind`. Throws `APIError.badRequest` when the body is not a well-formed envelope,
    /// names a kind the registry does not know, or its message does not fit the schema.
    public static func decode(_ body: [UInt8], registry: TypeRegistry = .kubernetes) throws(APIError) -> JSON {
        guard body.count >= magic.count, Array(body[0..<magic.count]) == magic else {
            throw APIError.badRequest("invalid protobuf body: it does not start with the \"k8s\\0\" prefix")
        }
        let decoder = MessageDecoder(bytes: body, registry: registry)
        let envelope = try decoder.envelope(magic.count..<body.count)

        guard !envelope.kind.isEmpty else {
            throw APIError.badRequest("invalid protobuf body: the envelope names no kind")
        }
        if !envelope.contentEncoding.isEmpty {
            throw APIError.badRequest("invalid protobuf body: content encoding \"\(envelope.contentEncoding)\" is not supported")
        }
        if !envelope.contentType.isEmpty && envelope.contentType != mediaType {
            throw APIError.badRequest("invalid protobuf body: inner content type \"\(envelope.contentType)\" is not supported")
        }
        let gvk = GroupVersionKind(apiVersion: envelope.apiVersion, kind: envelope.kind)
        guard let definition = registry.definition(for: gvk) else {
            throw APIError.badRequest("no kind \"\(envelope.kind)\" is registered for version \"\(envelope.apiVersion)\"")
        }

        var object = JSONObject()
        object["apiVersion"] = .string(envelope.apiVersion)
        object["kind"] = .string(envelope.kind)
        let fields = try decoder.message(envelope.raw, definition.name, depth: 1)
        for (key, value) in fields where key != "apiVersion" && key != "kind" {
            object[key] = value
        }
        return .object(object)
    }
}

extension KubernetesProtobuf {
    /// The `runtime.Unknown` wrapper, with `raw` left as a range of the body.
    struct Envelope {
        var apiVersion = ""
        var kind = ""
        var raw: Range<Int>
        var contentEncoding = ""
        var contentType = ""
    }

    /// Protobuf wire types that Kubernetes messages use.
    enum WireType: UInt8 {
        case varint = 0
        case fixed64 = 1
        case lengthDelimited = 2
        case startGroup = 3
        case endGroup = 4
        case fixed32 = 5

        var name: String {
            switch self {
            case .varint: "varint"
            case .fixed64: "fixed64"
            case .lengthDelimited: "length-delimited"
            case .startGroup: "start-group"
            case .endGroup: "end-group"
            case .fixed32: "fixed32"
            }
        }
    }

    /// Reads protobuf primitives from one range of a byte array. Every read is bounds-checked
    /// and advances, so a loop over `atEnd` always terminates.
    struct WireReader {
        let bytes: [UInt8]
        private(set) var position: Int
        let end: Int

        init(_ bytes: [UInt8], _ range: Range<Int>) {
            self.bytes = bytes
            self.position = range.lowerBound
            self.end = range.upperBound
        }

        var atEnd: Bool { position >= end }

        mutating func varint() throws(APIError) -> UInt64 {
            let start = position
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < end else {
                    throw malformed("truncated varint at byte \(start)")
                }
                let byte = bytes[position]
                position += 1
                // The tenth byte may only contribute the top bit of a 64-bit value.
                if shift == 63 && byte > 1 {
                    throw malformed("varint at byte \(start) overflows 64 bits")
                }
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
            }
        }

        mutating func fixed64() throws(APIError) -> UInt64 {
            guard end - position >= 8 else { throw malformed("truncated fixed64 at byte \(position)") }
            var value: UInt64 = 0
            for i in 0..<8 { value |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return value
        }

        mutating func fixed32() throws(APIError) -> UInt32 {
            guard end - position >= 4 else { throw malformed("truncated fixed32 at byte \(position)") }
            var value: UInt32 = 0
            for i in 0..<4 { value |= UInt32(bytes[position + i]) << (8 * UInt32(i)) }
            position += 4
            return value
        }

        /// The payload range of a length-delimited value.
        mutating func lengthDelimited() throws(APIError) -> Range<Int> {
            let at = position
            let length = try varint()
            guard length <= UInt64(end - position) else {
                throw malformed("length \(length) at byte \(at) runs past the end of its message")
            }
            let range = position..<(position + Int(length))
            position = range.upperBound
            return range
        }

        /// The next field number and wire type.
        mutating func tag() throws(APIError) -> (number: Int, wireType: WireType) {
            let at = position
            let key = try varint()
            let number = key >> 3
            guard number >= 1 && number <= 536_870_911 else {
                throw malformed("invalid field number \(number) at byte \(at)")
            }
            guard let wireType = WireType(rawValue: UInt8(key & 7)) else {
                throw malformed("invalid wire type \(key & 7) at byte \(at)")
            }
            return (Int(number), wireType)
        }

        /// Skips a value of a field the schema does not know.
        mutating func skip(_ wireType: WireType) throws(APIError) {
            switch wireType {
            case .varint: _ = try varint()
            case .fixed64: _ = try fixed64()
            case .fixed32: _ = try fixed32()
            case .lengthDelimited: _ = try lengthDelimited()
            case .startGroup, .endGroup:
                // Groups are deprecated and never produced by Kubernetes' generated code.
                throw malformed("unsupported \(wireType.name) wire type at byte \(position)")
            }
        }

        func malformed(_ what: String) -> APIError {
            APIError.badRequest("invalid protobuf body: \(what)")
        }
    }

    /// Walks protobuf messages of one body along the registry's definitions.
    struct MessageDecoder {
        let bytes: [UInt8]
        let registry: TypeRegistry

        init(bytes: [UInt8], registry: TypeRegistry) {
            self.bytes = bytes
            self.registry = registry
        }

        // MARK: Envelope

        func envelope(_ range: Range<Int>) throws(APIError) -> Envelope {
            var result = Envelope(raw: range.upperBound..<range.upperBound)
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                switch number {
                case 1...4:
                    guard wireType == .lengthDelimited else {
                        throw reader.malformed("envelope field \(number) has wire type \(wireType.name), expected length-delimited")
                    }
                    let payload = try reader.lengthDelimited()
                    switch number {
                    case 1: try typeMeta(payload, into: &result)
                    case 2: result.raw = payload
                    case 3: result.contentEncoding = string(payload)
                    default: result.contentType = string(payload)
                    }
                default:
                    try reader.skip(wireType)
                }
            }
            return result
        }

        private func typeMeta(_ range: Range<Int>, into envelope: inout Envelope) throws(APIError) {
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                if (number == 1 || number == 2) && wireType == .lengthDelimited {
                    let value = string(try reader.lengthDelimited())
                    if number == 1 { envelope.apiVersion = value } else { envelope.kind = value }
                } else if number == 1 || number == 2 {
                    throw reader.malformed("typeMeta field \(number) has wire type \(wireType.name), expected length-delimited")
                } else {
                    try reader.skip(wireType)
                }
            }
        }

        // MARK: Messages

        /// Decodes one message described by the definition `name`, members in definition order.
        func message(_ range: Range<Int>, _ name: String, depth: Int) throws(APIError) -> JSONObject {
            guard depth <= KubernetesProtobuf.maxDepth else {
                throw APIError.badRequest("invalid protobuf body: messages nested deeper than \(KubernetesProtobuf.maxDepth)")
            }
            guard let definition = registry[name] else {
                throw APIError.internalError("no schema for protobuf message \(name)")
            }
            let inlined = KubernetesProtobuf.inlinedMessages[name] ?? [:]
            var members = JSONObject()
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                if let field = definition.fields.first(where: { $0.proto == number }) {
                    try decodeField(field, of: definition, wireType, &reader, into: &members, depth: depth)
                } else if let embedded = inlined[number] {
                    guard wireType == .lengthDelimited else {
                        throw wrongWireType(wireType, number: number, "(inline \(embedded))", in: definition)
                    }
                    let inner = try message(try reader.lengthDelimited(), embedded, depth: depth + 1)
                    for (key, value) in inner { merge(value, into: &members, key) }
                } else {
                    try reader.skip(wireType)
                }
            }
            // Wire order is field-number order; JSON readers expect the Go declaration order.
            var ordered = JSONObject(minimumCapacity: members.count)
            for field in definition.fields {
                if let value = members.removeValue(forKey: field.name) { ordered[field.name] = value }
            }
            for (key, value) in members { ordered[key] = value }
            return ordered
        }

        private func decodeField(_ field: Field, of definition: TypeDefinition, _ wireType: WireType,
                                 _ reader: inout WireReader, into members: inout JSONObject, depth: Int) throws(APIError) {
            let key = definition.name + "#" + field.name
            switch field.schema {
            case .array(let element, _):
                var items = members[field.name]?.arrayValue ?? []
                members[field.name] = nil  // avoid a copy while appending
                if wireType == .lengthDelimited, element.isPackable {
                    // Packed repeated scalars: one length-delimited run of values.
                    var packed = WireReader(bytes, try reader.lengthDelimited())
                    while !packed.atEnd {
                        if let value = try scalar(element, element.packedWireType, &packed, field, definition, key: key, depth: depth) {
                            items.append(value)
                        }
                    }
                } else if let value = try scalar(element, wireType, &reader, field, definition, key: key, depth: depth) {
                    items.append(value)
                }
                if !items.isEmpty { members[field.name] = .array(items) }

            case .map(let valueSchema):
                guard wireType == .lengthDelimited else {
                    throw wrongWireType(wireType, number: field.proto, field.name, in: definition)
                }
                let (entryKey, entryValue) = try mapEntry(try reader.lengthDelimited(), valueSchema, field, definition,
                                                          key: key, depth: depth)
                var map = members[field.name]?.objectValue ?? [:]
                members[field.name] = nil
                map[entryKey] = entryValue
                members[field.name] = .object(map)

            default:
                let value = try scalar(field.schema, wireType, &reader, field, definition, key: key, depth: depth)
                guard let value else {
                    members[field.name] = nil
                    return
                }
                if value.isZeroScalar && !KubernetesProtobuf.zeroValueKept.contains(key) {
                    // Last value wins in protobuf, so a later zero also clears an earlier value.
                    members[field.name] = nil
                } else {
                    merge(value, into: &members, field.name)
                }
            }
        }

        /// One map entry message {1 key, 2 value}; a missing part is the zero value.
        private func mapEntry(_ range: Range<Int>, _ valueSchema: Schema, _ field: Field, _ definition: TypeDefinition,
                              key: String, depth: Int) throws(APIError) -> (String, JSON) {
            var entryKey = ""
            var entryValue: JSON?
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                switch number {
                case 1:
                    guard wireType == .lengthDelimited else {
                        throw wrongWireType(wireType, number: field.proto, field.name + " (map key)", in: definition)
                    }
                    entryKey = string(try reader.lengthDelimited())
                case 2:
                    entryValue = try scalar(valueSchema, wireType, &reader, field, definition, key: key, depth: depth)
                default:
                    try reader.skip(wireType)
                }
            }
            return (entryKey, entryValue ?? valueSchema.zeroValue)
        }

        /// Decodes a single non-repeated value. Returns nil for a value JSON leaves out entirely
        /// (a zero time, an empty raw extension).
        private func scalar(_ schema: Schema, _ wireType: WireType, _ reader: inout WireReader, _ field: Field,
                            _ definition: TypeDefinition, key: String, depth: Int) throws(APIError) -> JSON? {
            let expected = schema.packedWireType
            guard wireType == expected else {
                throw wrongWireType(wireType, number: field.proto, field.name, in: definition)
            }
            switch schema {
            case .string(let format, _):
                let payload = try reader.lengthDelimited()
                if format == "byte" { return .string(Base64.encode(bytes[payload])) }
                return .string(string(payload))
            case .integer(let format):
                let raw = try reader.varint()
                if format == "int64" { return .int(Int64(bitPattern: raw)) }
                // int32 negatives arrive sign-extended to 64 bits; keep the low 32 bits.
                return .int(Int64(Int32(truncatingIfNeeded: raw)))
            case .boolean:
                return .bool(try reader.varint() != 0)
            case .number:
                let value = Double(bitPattern: try reader.fixed64())
                // JSON has no NaN or infinity.
                guard value.isFinite else { throw reader.malformed("non-finite number in \(definition.name).\(field.name)") }
                return .double(value)
            case .ref(let name):
                return .object(try message(try reader.lengthDelimited(), name, depth: depth + 1))
            case .intOrString:
                return try intOrString(try reader.lengthDelimited())
            case .quantity:
                let text = try singleString(try reader.lengthDelimited())
                // An empty Quantity message is the zero quantity, which Go prints as "0".
                return .string(text.isEmpty ? "0" : text)
            case .time:
                return try time(try reader.lengthDelimited(), micro: KubernetesProtobuf.microTimeFields.contains(key))
            case .any:
                return try rawJSON(try reader.lengthDelimited(), field: field, definition)
            case .array, .map:
                throw APIError.internalError("protobuf: nested list or map in \(definition.name).\(field.name) is not supported")
            }
        }

        // MARK: Special messages

        /// IntOrString {1 type (0 int, 1 string), 2 intVal, 3 strVal}.
        private func intOrString(_ range: Range<Int>) throws(APIError) -> JSON {
            var type: UInt64 = 0
            var intVal: Int64 = 0
            var strVal = ""
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                switch (number, wireType) {
                case (1, .varint): type = try reader.varint()
                case (2, .varint): intVal = Int64(Int32(truncatingIfNeeded: try reader.varint()))
                case (3, .lengthDelimited): strVal = string(try reader.lengthDelimited())
                case (1...3, _): throw reader.malformed("IntOrString field \(number) has wire type \(wireType.name)")
                default: try reader.skip(wireType)
                }
            }
            return type == 1 ? .string(strVal) : .int(intVal)
        }

        /// Quantity {1 string}; also FieldsV1/RawExtension {1 bytes}.
        private func singleString(_ range: Range<Int>) throws(APIError) -> String {
            string(try singleBytes(range))
        }

        private func singleBytes(_ range: Range<Int>) throws(APIError) -> Range<Int> {
            var result = range.lowerBound..<range.lowerBound
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                if number == 1 {
                    guard wireType == .lengthDelimited else {
                        throw reader.malformed("field 1 of a wrapper message has wire type \(wireType.name)")
                    }
                    result = try reader.lengthDelimited()
                } else {
                    try reader.skip(wireType)
                }
            }
            return result
        }

        /// meta/v1 Time and MicroTime {1 seconds, 2 nanos}; zero means unset.
        private func time(_ range: Range<Int>, micro: Bool) throws(APIError) -> JSON? {
            var seconds: Int64 = 0
            var nanos: Int64 = 0
            var reader = WireReader(bytes, range)
            while !reader.atEnd {
                let (number, wireType) = try reader.tag()
                switch (number, wireType) {
                case (1, .varint): seconds = Int64(bitPattern: try reader.varint())
                case (2, .varint): nanos = Int64(Int32(truncatingIfNeeded: try reader.varint()))
                case (1...2, _): throw reader.malformed("timestamp field \(number) has wire type \(wireType.name)")
                default: try reader.skip(wireType)
                }
            }
            if seconds == 0 && nanos == 0 { return nil }
            guard let text = Timestamp.format(seconds: seconds, nanos: nanos, micro: micro) else {
                throw APIError.badRequest("invalid protobuf body: timestamp \(seconds)s \(nanos)ns is out of range")
            }
            return .string(text)
        }

        /// RawExtension / FieldsV1 {1 raw JSON}.
        private func rawJSON(_ range: Range<Int>, field: Field, _ definition: TypeDefinition) throws(APIError) -> JSON? {
            let raw = try singleBytes(range)
            if raw.isEmpty { return nil }
            do {
                return try JSON.parse(bytes[raw])
            } catch {
                throw APIError.badRequest("invalid protobuf body: \(definition.name).\(field.name) does not hold JSON: \(error.message)")
            }
        }

        // MARK: Helpers

        private func string(_ range: Range<Int>) -> String {
            String(decoding: bytes[range], as: UTF8.self)
        }

        private func wrongWireType(_ wireType: WireType, number: Int, _ what: String, in definition: TypeDefinition) -> APIError {
            APIError.badRequest("invalid protobuf body: field \(number) (\(what)) of \(definition.name) has wire type \(wireType.name)")
        }

        /// Repeated occurrences of a message field merge, as protobuf specifies.
        private func merge(_ value: JSON, into members: inout JSONObject, _ key: String) {
            guard let existing = members[key] else {
                members[key] = value
                return
            }
            switch (existing, value) {
            case (.object(var old), .object(let new)):
                members[key] = nil
                for (k, v) in new { merge(v, into: &old, k) }
                members[key] = .object(old)
            case (.array(let old), .array(let new)):
                members[key] = .array(old + new)
            default:
                members[key] = value
            }
        }
    }
}

extension Schema {
    /// The wire type a single value of this schema uses.
    fileprivate var packedWireType: KubernetesProtobuf.WireType {
        switch self {
        case .integer, .boolean: .varint
        case .number: .fixed64
        default: .lengthDelimited
        }
    }

    /// Numbers and booleans may arrive packed into one length-delimited run.
    fileprivate var isPackable: Bool { packedWireType != .lengthDelimited }

    /// The value of a map entry whose value part is missing.
    fileprivate var zeroValue: JSON {
        switch self {
        case .string: .string("")
        case .integer: .int(0)
        case .boolean: .bool(false)
        case .number: .double(0)
        case .quantity: .string("0")
        case .intOrString: .int(0)
        case .ref, .map: .object([:])
        case .array: .array([])
        case .time, .any: .null
        }
    }
}

extension JSON {
    /// A value Go's `omitempty` leaves out: "", 0, false. Objects never count as empty,
    /// because Go's JSON keeps struct fields. An IntOrString zero (0 or "") does count, though
    /// Go would print it: an unset `targetPort` then stays unset instead of becoming 0, which
    /// the server defaults the same way.
    fileprivate var isZeroScalar: Bool {
        switch self {
        case .string(let s): s.isEmpty
        case .int(let i): i == 0
        case .double(let d): d == 0
        case .bool(let b): !b
        case .null: true
        case .array, .object: false
        }
    }
}

extension KubernetesProtobuf {
    /// Standard base64 with padding, as Go's encoding/json writes []byte.
    enum Base64 {
        private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

        static func encode(_ input: ArraySlice<UInt8>) -> String {
            var out: [UInt8] = []
            out.reserveCapacity((input.count + 2) / 3 * 4)
            var i = input.startIndex
            while i < input.endIndex {
                let b0 = UInt32(input[i])
                let b1 = i + 1 < input.endIndex ? UInt32(input[i + 1]) : 0
                let b2 = i + 2 < input.endIndex ? UInt32(input[i + 2]) : 0
                let triple = b0 << 16 | b1 << 8 | b2
                out.append(alphabet[Int(triple >> 18 & 63)])
                out.append(alphabet[Int(triple >> 12 & 63)])
                out.append(i + 1 < input.endIndex ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
                out.append(i + 2 < input.endIndex ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
                i += 3
            }
            return String(decoding: out, as: UTF8.self)
        }
    }

    /// UTC timestamps as meta/v1 Time ("2006-01-02T15:04:05Z") and MicroTime
    /// ("2006-01-02T15:04:05.000000Z") print them.
    enum Timestamp {
        /// Seconds of 0001-01-01 and 9999-12-31T23:59:59 relative to the Unix epoch; JSON timestamps
        /// outside four-digit years are not valid RFC 3339.
        static let range: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

        static func format(seconds: Int64, nanos: Int64, micro: Bool) -> String? {
            guard range.contains(seconds), (0..<1_000_000_000).contains(nanos) else { return nil }
            return APIMachinery.Timestamp.format(seconds: seconds, micros: micro ? nanos / 1000 : nil)
        }
    }
}
