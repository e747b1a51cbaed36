/// Facts about Kubernetes types that server-side apply needs and `Schema` does not (yet) carry.
///
/// Upstream reads them from OpenAPI extensions: `x-kubernetes-map-type: atomic` on a struct or
/// map (the Go markers `+structType=atomic` / `+mapType=atomic`), `default` on list-map key
/// fields, and the Go struct layout (a non-pointer struct field is always serialized, so it
/// never shows up as "added" in a diff). Keys are OpenAPI definition names, optionally followed
/// by `.field`.
public struct ApplyTypeFacts: Sendable {
    /// Struct types that are replaced as a whole, e.g. "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector".
    public var atomicTypes: Set<String>
    /// Map fields that are replaced as a whole, as "Definition.field", e.g. "io.k8s.api.core.v1.ServiceSpec.selector".
    public var atomicFields: Set<String>
    /// Defaults of list-map key fields, as "Definition.field" → value (ServicePort.protocol → "TCP").
    public var keyDefaults: [String: JSON]
    /// Names of struct-typed fields that Go always serializes (non-pointer structs such as
    /// `metadata`, `spec`, `template`). A diff treats a missing one as `{}`.
    public var valueStructFields: Set<String>
    /// Reject fields an apply body sets that the schema does not declare, with upstream's
    /// "field not declared in schema" error. Live objects are never rejected.
    public var rejectUndeclaredFields: Bool

    /// Facts for other types than Kubernetes' own (tests, custom resources).
    public init(atomicTypes: Set<String> = [], atomicFields: Set<String> = [], keyDefaults: [String: JSON] = [:],
                valueStructFields: Set<String> = [], rejectUndeclaredFields: Bool = true) {
        self.atomicTypes = atomicTypes
        self.atomicFields = atomicFields
        self.keyDefaults = keyDefaults
        self.valueStructFields = valueStructFields
        self.rejectUndeclaredFields = rejectUndeclaredFields
    }

    /// The facts of k8s.io/api and k8s.io/apimachinery (from their `+structType=atomic`,
    /// `+mapType=atomic` and `+default` markers).
    public static let kubernetes = ApplyTypeFacts(
        atomicTypes: [
            "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
            "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
            "io.k8s.api.core.v1.SecretReference",
            "io.k8s.api.core.v1.FileKeySelector",
            "io.k8s.api.core.v1.ObjectFieldSelector",
            "io.k8s.api.core.v1.ResourceFieldSelector",
            "io.k8s.api.core.v1.ConfigMapKeySelector",
            "io.k8s.api.core.v1.SecretKeySelector",
            "io.k8s.api.core.v1.NodeSelector",
            "io.k8s.api.core.v1.NodeSelectorTerm",
            "io.k8s.api.core.v1.TopologySelectorTerm",
            "io.k8s.api.core.v1.EvictionResponder",
            "io.k8s.api.core.v1.EndpointAddress",
            "io.k8s.api.core.v1.EndpointPort",
            "io.k8s.api.core.v1.ObjectReference",
            "io.k8s.api.core.v1.LocalObjectReference",
            "io.k8s.api.core.v1.TypedLocalObjectReference",
            "io.k8s.api.core.v1.ScopeSelector",
            "io.k8s.api.discovery.v1.EndpointPort",
            "io.k8s.api.networking.v1.ServiceBackendPort",
            "io.k8s.api.rbac.v1.Subject",
            "io.k8s.api.rbac.v1.RoleRef",
            "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
        ],
        atomicFields: [
            "io.k8s.api.core.v1.PodSpec.nodeSelector",
            "io.k8s.api.core.v1.ReplicationControllerSpec.selector",
            "io.k8s.api.core.v1.ServiceSpec.selector",
        ],
        keyDefaults: [
            "io.k8s.api.core.v1.ServicePort.protocol": "TCP",
            "io.k8s.api.core.v1.ContainerPort.protocol": "TCP",
        ],
        valueStructFields: ["metadata", "spec", "status", "template", "jobTemplate", "strategy",
                            "updateStrategy", "resources", "loadBalancer"]
    )
}

/// How server-side apply treats a value at some place in an object.
indirect enum ApplyNode {
    /// A string, number or bool (also IntOrString, Quantity, Time).
    case scalar
    /// Replaced and owned as a whole (atomic list, map or struct).
    case atomic
    /// An object with declared fields; undeclared members are `.deduced`.
    case structure(TypeDefinition)
    /// map[string]T, merged key by key.
    case map(Schema)
    /// A list of scalars identified by value.
    case set
    /// A list of objects identified by key fields; `owner` names the element's definition.
    case listMap(Schema, keys: [String], owner: String?)
    /// No schema: objects merge by key, lists are atomic (upstream's "deduced" type).
    case deduced

    var definition: TypeDefinition? {
        if case .structure(let d) = self { return d }
        return nil
    }
}

/// How a walk handles one concrete value: as a leaf, or by descending into it.
enum ApplyShape {
    case leaf, object, list
}

/// Resolves schemas into `ApplyNode`s.
struct ApplyTypes {
    let registry: TypeRegistry
    let facts: ApplyTypeFacts

    func node(_ schema: Schema, owner: String? = nil, field: String? = nil) -> ApplyNode {
        switch schema {
        case .string, .integer, .number, .boolean, .intOrString, .quantity, .time:
            return .scalar
        case .any:
            return .deduced
        case .ref(let name):
            guard let def = registry[name], !def.fields.isEmpty else { return .deduced }
            if facts.atomicTypes.contains(name) { return .atomic }
            return .structure(def)
        case .map(let value):
            if let owner, let field, facts.atomicFields.contains(owner + "." + field) { return .atomic }
            return .map(value)
        case .array(let element, let semantics):
            switch semantics.listType {
            case .atomic: return .atomic
            case .set: return .set
            case .map:
                if semantics.mapKeys.isEmpty { return .atomic }
                var elementOwner: String?
                if case .ref(let n) = element { elementOwner = n }
                return .listMap(element, keys: semantics.mapKeys, owner: elementOwner)
            }
        }
    }

    /// The node of member `key` of an object at `node`.
    func child(_ node: ApplyNode, _ key: String) -> ApplyNode {
        switch node {
        case .structure(let def):
            guard let f = def.field(named: key) else { return .deduced }
            return self.node(f.schema, owner: def.name, field: key)
        case .map(let value): return self.node(value)
        case .deduced: return .deduced
        default: return .deduced
        }
    }

    /// The node of the elements of a list at `node`.
    func element(_ node: ApplyNode) -> ApplyNode {
        switch node {
        case .listMap(let e, _, _): return self.node(e)
        case .set: return .scalar
        default: return .deduced
        }
    }

    /// Whether `key` is a declared field (not a map key) of objects at `node`.
    func isNamedField(_ node: ApplyNode, _ key: String) -> Bool {
        node.definition?.field(named: key) != nil
    }

    func shape(_ node: ApplyNode, _ value: JSON) -> ApplyShape {
        switch node {
        case .scalar, .atomic: return .leaf
        case .structure, .map, .deduced:
            if case .object = value { return .object }
            return .leaf
        case .set, .listMap:
            if case .array = value { return .list }
            return .leaf
        }
    }

    /// What Go would serialize for member `key` of a `node` object that does not set it, when
    /// that is not "nothing": upstream diffs typed Go objects, where a non-pointer struct is
    /// always `{}` and a field without `omitempty` (a required one) is at least `null`.
    /// Without this, creating an object would mark `.spec` or `.spec.template.spec.containers`
    /// as added in their own right, which apiserver does not.
    func zeroValue(_ node: ApplyNode, _ key: String) -> JSON? {
        guard let field = node.definition?.field(named: key) else { return nil }
        if facts.valueStructFields.contains(key), case .structure = child(node, key) { return .object([:]) }
        return field.required ? .null : nil
    }

    // MARK: List element identity

    enum ElementError: Error {
        case message(String)
    }

    /// The identity of one list element, worded like upstream when it has none.
    func pathElement(of item: JSON, in list: ApplyNode) -> Result<PathElement, ElementError> {
        switch list {
        case .listMap(_, let keys, let owner):
            guard case .object(let o) = item else {
                if case .null = item {
                    return .failure(.message("associative list with keys may not have a null element"))
                }
                return .failure(.message("associative list with keys may not have non-map elements"))
            }
            var fields: [KeyField] = []
            for k in keys {
                // A null key field counts as unset: stored objects never keep nulls, so treating
                // it as a value would make the element a different one after the first write.
                if let v = o[k], !v.isNull {
                    fields.append(KeyField(k, v))
                } else if let owner, let d = facts.keyDefaults[owner + "." + k] {
                    fields.append(KeyField(k, d))
                }
            }
            if fields.isEmpty {
                let names = "[" + keys.map(ApplyFormat.quote).joined(separator: " ") + "]"
                return .failure(.message("associative list with keys has an element that omits all key fields \(names) (and doesn't have default values for any key fields)"))
            }
            return .success(.key(sorting: fields))
        default:
            switch item {
            case .object: return .failure(.message("associative list without keys has an element that's a map type"))
            case .array: return .failure(.message("not supported: associative list with lists as elements"))
            case .null: return .failure(.message("associative list without keys has an element that's an explicit null"))
            default: return .success(.value(item))
            }
        }
    }

    /// Element identities for a list whose elements are known to be valid or that may hold
    /// anything (a stored object): an element without an identity is addressed by position.
    func pathElements(of items: [JSON], in list: ApplyNode) -> [PathElement] {
        items.enumerated().map { i, item in
            (try? pathElement(of: item, in: list).get()) ?? .index(i)
        }
    }
}
