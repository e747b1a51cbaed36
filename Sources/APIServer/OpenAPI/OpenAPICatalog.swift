import APIMachinery

/// Which OpenAPI flavour a schema is rendered for; they differ in where definitions live
/// and in how a reference carries a description next to it.
enum OpenAPIDialect: Sendable {
    /// Swagger 2.0 (`/openapi/v2`): `#/definitions/`, `$ref` with sibling keys.
    case v2
    /// OpenAPI 3.0 (`/openapi/v3/...`): `#/components/schemas/`, `allOf: [{$ref}]` when a description sits beside it.
    case v3

    var refPrefix: String {
        switch self {
        case .v2: return "#/definitions/"
        case .v3: return "#/components/schemas/"
        }
    }
}

/// Every definition the documents may render: the registry's, plus the builtins, `<Kind>List`
/// types and placeholders the REST operations need, plus the extra GVKs to advertise.
struct OpenAPICatalog {
    private(set) var definitions: [String: TypeDefinition] = [:]
    /// GVKs to list in x-kubernetes-group-version-kind, per definition name.
    private(set) var gvks: [String: [GroupVersionKind]] = [:]
    /// What the registry lacked; the documents still hold together, but say so.
    private(set) var problems: [String] = []
    /// Placeholder definitions, whose objects may carry any field.
    private(set) var openEnded: Set<String> = []

    init(registry: TypeRegistry, needs: [OpenAPIKindNeed]) {
        for (name, def) in registry.definitions {
            definitions[name] = def
            gvks[name] = def.gvks
        }
        let builtins = Dictionary(uniqueKeysWithValues: OpenAPIBuiltins.definitions.map { ($0.name, $0) })
        // Every operation refers to these three; the registry's own version wins.
        for name in [OpenAPINames.status, OpenAPINames.deleteOptions, OpenAPINames.patch] {
            addBuiltinIfMissing(name, builtins)
        }
        for need in needs {
            provide(need, builtins)
        }
        // References to names nobody defines are rendered as free-form objects; report them once.
        var missing = Set<String>()
        for def in definitions.values {
            for name in Self.references(of: def) where !contains(name) {
                missing.insert("\(def.name) refers to \(name), which is not defined")
            }
        }
        problems.append(contentsOf: missing.sorted())
    }

    func contains(_ name: String) -> Bool {
        definitions[name] != nil || OpenAPINames.scalars.contains(name)
    }

    /// The names `roots` reach through field references (roots included), sorted.
    func closure(of roots: [String]) -> [String] {
        var seen = Set<String>()
        var stack = roots.filter { contains($0) }
        while let name = stack.popLast() {
            guard seen.insert(name).inserted else { continue }
            guard let def = definitions[name] else { continue }
            for next in Self.references(of: def) where contains(next) && !seen.contains(next) {
                stack.append(next)
            }
        }
        return seen.sorted()
    }

    /// Names of every definition a type's fields point at.
    static func references(of def: TypeDefinition) -> [String] {
        var out: [String] = []
        for field in def.fields { collectReferences(field.schema, into: &out) }
        return out
    }

    static func collectReferences(_ schema: Schema, into out: inout [String]) {
        switch schema {
        case .ref(let n): out.append(n)
        case .intOrString: out.append(OpenAPINames.intOrString)
        case .quantity: out.append(OpenAPINames.quantity)
        case .time: out.append(OpenAPINames.time)
        case .array(let e, _): collectReferences(e, into: &out)
        case .map(let v): collectReferences(v, into: &out)
        case .string, .integer, .number, .boolean, .any: break
        }
    }

    private mutating func addBuiltinIfMissing(_ name: String, _ builtins: [String: TypeDefinition]) {
        guard definitions[name] == nil, let def = builtins[name] else { return }
        definitions[name] = def
        gvks[name] = def.gvks
        // A builtin may itself refer to other builtins (Status -> StatusDetails -> StatusCause).
        for next in Self.references(of: def) { addBuiltinIfMissing(next, builtins) }
    }

    /// Makes sure `need.definition` exists and advertises `need.gvk`.
    private mutating func provide(_ need: OpenAPIKindNeed, _ builtins: [String: TypeDefinition]) {
        let name = need.definition
        if definitions[name] == nil {
            if builtins[name] != nil {
                addBuiltinIfMissing(name, builtins)
            } else if let item = need.listOf {
                addBuiltinIfMissing(OpenAPINames.listMeta, builtins)
                definitions[name] = OpenAPIBuiltins.list(of: item, itemDefinition: need.itemDefinition ?? item.definition)
                gvks[name] = []
            } else {
                definitions[name] = OpenAPIBuiltins.placeholder(
                    name: name, gvk: need.gvk, hasObjectMeta: definitions[OpenAPINames.objectMeta] != nil)
                gvks[name] = []
                openEnded.insert(name)
                problems.append("no definition \(name) for \(need.gvk); served a placeholder")
            }
        }
        if !(gvks[name] ?? []).contains(need.gvk) {
            gvks[name, default: []].append(need.gvk)
        }
    }
}

/// A kind that some REST operation returns or accepts, and the definition that must describe it.
struct OpenAPIKindNeed {
    var definition: String
    var gvk: GroupVersionKind
    /// Set for `<Kind>List` definitions, which can be synthesized from the item kind.
    var listOf: ResourceInfo? = nil
    var itemDefinition: String? = nil
}
