/// labnode's own description of the Kubernetes types it serves.
///
/// One table of facts drives four things: the OpenAPI v2/v3 documents (`kubectl explain`,
/// client-side validation), the protobuf decoder for bodies kubectl ≥1.32 sends (field numbers),
/// strategic merge patch (merge keys and strategies) and server-side apply (list types and keys).
/// Field names, types and numbers are facts of the Kubernetes API; descriptions are our own words.
public indirect enum Schema: Sendable, Equatable {
    /// A string; `format` as OpenAPI spells it ("byte", "date-time", ...), `enumValues` when closed.
    case string(format: String? = nil, enumValues: [String]? = nil)
    /// An integer; format "int32" or "int64" (protobuf varint either way).
    case integer(format: String = "int32")
    /// A floating-point number (protobuf double).
    case number
    case boolean
    /// Another named type in the registry, e.g. "io.k8s.api.core.v1.PodSpec".
    case ref(String)
    /// A list; how it merges is described by `ListSemantics`.
    case array(Schema, ListSemantics = .atomic)
    /// map[string]T; in protobuf a repeated entry message {1: key, 2: value}.
    case map(Schema)
    /// k8s.io/apimachinery/pkg/util/intstr.IntOrString: JSON int or string; protobuf {1 type, 2 intVal, 3 strVal}.
    case intOrString
    /// resource.Quantity: JSON string; protobuf {1 string}.
    case quantity
    /// meta/v1.Time and MicroTime: RFC 3339 string; protobuf {1 seconds, 2 nanos}.
    case time
    /// runtime.RawExtension or free-form JSON; protobuf {1 raw bytes}.
    case any
}

/// How a list merges under strategic merge patch and server-side apply.
public struct ListSemantics: Sendable, Equatable {
    public enum ListType: String, Sendable { case atomic, set, map }
    /// x-kubernetes-list-type.
    public var listType: ListType
    /// x-kubernetes-list-map-keys (for `.map`).
    public var mapKeys: [String]
    /// x-kubernetes-patch-merge-key (strategic merge patch); nil means the list is replaced as a whole.
    public var patchMergeKey: String?
    /// x-kubernetes-patch-strategy: "merge", "replace", "retainKeys", "merge,retainKeys".
    public var patchStrategy: String?

    public init(listType: ListType, mapKeys: [String] = [], patchMergeKey: String? = nil, patchStrategy: String? = nil) {
        self.listType = listType
        self.mapKeys = mapKeys
        self.patchMergeKey = patchMergeKey
        self.patchStrategy = patchStrategy
    }

    public static let atomic = ListSemantics(listType: .atomic)
    public static let set = ListSemantics(listType: .set)
    /// A list of primitives merged as a set under SMP ("merge" strategy without a key).
    public static let mergedSet = ListSemantics(listType: .set, patchStrategy: "merge")

    /// A list of objects identified by `key` in both SMP and SSA (containers by name, ports by port ...).
    public static func map(_ keys: String..., mergeKey: String? = nil) -> ListSemantics {
        ListSemantics(listType: .map, mapKeys: keys, patchMergeKey: mergeKey ?? keys.first, patchStrategy: "merge")
    }
}

/// One field of a message-like type.
public struct Field: Sendable, Equatable {
    public var name: String
    /// Field number in k8s.io/api's generated.proto; 0 when the field has no protobuf form.
    public var proto: Int
    public var schema: Schema
    public var description: String
    public var required: Bool

    public init(_ name: String, _ proto: Int, _ schema: Schema, _ description: String = "", required: Bool = false) {
        self.name = name
        self.proto = proto
        self.schema = schema
        self.description = description
        self.required = required
    }
}

public struct GroupVersionKind: Sendable, Hashable, CustomStringConvertible {
    public var group: String
    public var version: String
    public var kind: String

    public init(group: String, version: String, kind: String) {
        self.group = group
        self.version = version
        self.kind = kind
    }

    /// "v1" for the core group, "apps/v1" otherwise.
    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }

    public var description: String { "\(apiVersion), Kind=\(kind)" }

    /// Parses an apiVersion string ("v1", "apps/v1") and a kind.
    public init(apiVersion: String, kind: String) {
        if let slash = apiVersion.firstIndex(of: "/") {
            group = String(apiVersion[..<slash])
            version = String(apiVersion[apiVersion.index(after: slash)...])
        } else {
            group = ""
            version = apiVersion
        }
        self.kind = kind
    }
}

/// A named message type: an object with fields (or, rarely, a string-valued alias).
public struct TypeDefinition: Sendable, Equatable {
    /// The OpenAPI definition name, e.g. "io.k8s.api.core.v1.Service".
    public var name: String
    public var description: String
    public var fields: [Field]
    /// The kinds this definition is the top-level schema of (x-kubernetes-group-version-kind).
    public var gvks: [GroupVersionKind]

    public init(_ name: String, _ description: String, gvks: [GroupVersionKind] = [], fields: [Field]) {
        self.name = name
        self.description = description
        self.fields = fields
        self.gvks = gvks
    }

    public func field(named n: String) -> Field? { fields.first { $0.name == n } }
}

/// All type definitions, looked up by name or by kind.
public struct TypeRegistry: Sendable {
    public private(set) var definitions: [String: TypeDefinition] = [:]
    private var byGVK: [GroupVersionKind: String] = [:]

    public init(_ defs: [TypeDefinition]) {
        for d in defs {
            definitions[d.name] = d
            for g in d.gvks { byGVK[g] = d.name }
        }
    }

    public subscript(name: String) -> TypeDefinition? { definitions[name] }

    public func definition(for gvk: GroupVersionKind) -> TypeDefinition? {
        byGVK[gvk].flatMap { definitions[$0] }
    }

    /// The schema at a JSON path (object keys only; list elements are stepped through),
    /// e.g. ["spec", "template", "spec", "containers"] from a Deployment.
    public func schema(at path: [String], from root: String) -> Schema? {
        var current: Schema = .ref(root)
        for key in path {
            guard let next = child(of: current, key) else { return nil }
            current = next
        }
        return current
    }

    /// The schema of member `key` of a value described by `schema` (through refs, lists and maps).
    public func child(of schema: Schema, _ key: String) -> Schema? {
        switch schema {
        case .ref(let n): return definitions[n]?.field(named: key)?.schema
        case .array(let e, _): return child(of: e, key)
        case .map(let v): return v
        default: return nil
        }
    }

    /// Follows refs until a non-ref schema (or the ref's definition) is reached.
    public func resolve(_ schema: Schema) -> TypeDefinition? {
        if case .ref(let n) = schema { return definitions[n] }
        return nil
    }
}
