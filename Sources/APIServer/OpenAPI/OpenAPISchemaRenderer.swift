import APIMachinery

/// Turns registry definitions into OpenAPI schema objects.
///
/// The shapes follow what kube-apiserver serves, because kubectl reads them: `explain` guesses
/// a field's type from `items`, `additionalProperties`, a single-element `allOf` or a `$ref`;
/// kubectl ≤1.28 builds its validation and strategic-merge metadata from the swagger 2.0 form,
/// where a `$ref` must not carry a `type` and an array must have exactly one `items` schema.
struct OpenAPISchemaRenderer {
    let catalog: OpenAPICatalog
    let dialect: OpenAPIDialect

    /// The schema of a named definition, or nil when the catalog has no such name.
    func definition(_ name: String) -> JSON? {
        if let scalar = OpenAPIBuiltins.scalar(name, dialect: dialect) { return .object(scalar) }
        guard let def = catalog.definitions[name] else { return nil }
        var o: JSONObject = ["type": "object"]
        if !def.description.isEmpty { o["description"] = .string(def.description) }
        if !def.fields.isEmpty {
            var props = JSONObject()
            for field in def.fields.sorted(by: { $0.name < $1.name }) {
                props[field.name] = .object(property(field))
            }
            o["properties"] = .object(props)
        }
        // Sorted, like every other list whose order carries no meaning, so that registration
        // order never changes the bytes (and the hash kubectl caches by).
        let required = def.fields.filter(\.required).map(\.name).sorted().map { JSON.string($0) }
        if !required.isEmpty { o["required"] = .array(required) }
        if catalog.openEnded.contains(name) { o["x-kubernetes-preserve-unknown-fields"] = true }
        let gvks = catalog.gvks[name] ?? def.gvks
        if !gvks.isEmpty {
            o["x-kubernetes-group-version-kind"] = .array(gvks.map(Self.gvkObject))
        }
        return .object(o)
    }

    /// One property of an object: the field's schema with its description beside it.
    func property(_ field: Field) -> JSONObject {
        schema(field.schema, description: field.description)
    }

    /// A schema for `schema`; `description` is attached where OpenAPI allows it.
    func schema(_ schema: Schema, description: String = "") -> JSONObject {
        var o: JSONObject
        switch schema {
        case .ref(let name):
            return reference(name, description: description)
        case .intOrString:
            return reference(OpenAPINames.intOrString, description: description)
        case .quantity:
            return reference(OpenAPINames.quantity, description: description)
        case .time:
            return reference(OpenAPINames.time, description: description)
        case .string(let format, let values):
            o = ["type": "string"]
            if let format { o["format"] = .string(format) }
            if let values { o["enum"] = .array(values.map { .string($0) }) }
        case .integer(let format):
            o = ["type": "integer", "format": .string(format)]
        case .number:
            o = ["type": "number", "format": "double"]
        case .boolean:
            o = ["type": "boolean"]
        case .any:
            o = Self.freeForm
        case .array(let element, let semantics):
            o = ["type": "array", "items": .object(self.schema(element))]
            o["x-kubernetes-list-type"] = .string(semantics.listType.rawValue)
            if semantics.listType == .map, !semantics.mapKeys.isEmpty {
                o["x-kubernetes-list-map-keys"] = .array(semantics.mapKeys.map { .string($0) })
            }
            if let key = semantics.patchMergeKey { o["x-kubernetes-patch-merge-key"] = .string(key) }
            if let strategy = semantics.patchStrategy { o["x-kubernetes-patch-strategy"] = .string(strategy) }
        case .map(let value):
            o = ["type": "object", "additionalProperties": .object(self.schema(value))]
        }
        if !description.isEmpty { o["description"] = .string(description) }
        return o
    }

    /// A reference to a named definition. OpenAPI 3 ignores siblings of `$ref`, so a
    /// described reference is wrapped in a one-element `allOf`, as kube-apiserver does;
    /// swagger 2.0 clients (kubectl ≤1.28) expect the description right beside `$ref`.
    func reference(_ name: String, description: String) -> JSONObject {
        guard catalog.contains(name) else {
            // Already reported by the catalog; a free-form object keeps the document valid.
            var o = Self.freeForm
            if !description.isEmpty { o["description"] = .string(description) }
            return o
        }
        let ref: JSONObject = ["$ref": .string(dialect.refPrefix + name)]
        guard !description.isEmpty else { return ref }
        switch dialect {
        case .v2:
            var o = ref
            o["description"] = .string(description)
            return o
        case .v3:
            return ["allOf": [.object(ref)], "description": .string(description)]
        }
    }

    /// Arbitrary JSON object (RawExtension-like) whose fields the server keeps as sent.
    static let freeForm: JSONObject = ["type": "object", "x-kubernetes-preserve-unknown-fields": true]

    static func gvkObject(_ gvk: GroupVersionKind) -> JSON {
        ["group": .string(gvk.group), "kind": .string(gvk.kind), "version": .string(gvk.version)]
    }
}
