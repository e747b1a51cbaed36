import APIMachinery

/// Renders the dialect-neutral operations as swagger 2.0 or OpenAPI 3.0 path items.
struct OpenAPIPathRenderer {
    let schemas: OpenAPISchemaRenderer

    var dialect: OpenAPIDialect { schemas.dialect }

    func pathItem(_ path: OpenAPIPath) -> JSON {
        var o = JSONObject()
        for op in path.operations { o[op.method] = operation(op) }
        if !path.parameters.isEmpty { o["parameters"] = .array(path.parameters.map(parameter)) }
        return .object(o)
    }

    func operation(_ op: OpenAPIOperation) -> JSON {
        var o: JSONObject = [
            "description": .string(op.description),
            "operationId": .string(op.id),
            "tags": [.string(op.tag)],
            "x-kubernetes-action": .string(op.action),
            "x-kubernetes-group-version-kind": OpenAPISchemaRenderer.gvkObject(op.gvk),
        ]
        var parameters = op.parameters.map(parameter)
        var responses = JSONObject()
        switch dialect {
        case .v3:
            if let body = op.body { o["requestBody"] = requestBody(body) }
            for r in op.responses {
                var response: JSONObject = ["description": .string(r.description)]
                if let payload = r.payload {
                    var content = JSONObject()
                    for type in op.produces { content[type] = ["schema": .object(payloadSchema(payload))] }
                    response["content"] = .object(content)
                }
                responses[r.code] = .object(response)
            }
        case .v2:
            if let body = op.body {
                let (consumes, schema, required) = bodyParts(body)
                parameters.insert(
                    ["in": "body", "name": "body", "required": .bool(required), "schema": .object(schema)], at: 0)
                o["consumes"] = .array(consumes.map { .string($0) })
            }
            o["produces"] = .array(op.produces.map { .string($0) })
            o["schemes"] = ["https"]
            for r in op.responses {
                var response: JSONObject = ["description": .string(r.description)]
                if let payload = r.payload { response["schema"] = .object(payloadSchema(payload)) }
                responses[r.code] = .object(response)
            }
        }
        if !parameters.isEmpty { o["parameters"] = .array(parameters) }
        o["responses"] = .object(responses)
        return .object(o)
    }

    func parameter(_ p: OpenAPIParameter) -> JSON {
        var o: JSONObject = [
            "description": .string(p.description),
            "in": .string(p.location.rawValue),
            "name": .string(p.name),
        ]
        if p.required { o["required"] = true }
        // `uniqueItems: true` is what kube-apiserver puts on every parameter; keep the same shape.
        switch dialect {
        case .v3: o["schema"] = ["type": .string(p.type), "uniqueItems": true]
        case .v2:
            o["type"] = .string(p.type)
            o["uniqueItems"] = true
        }
        return .object(o)
    }

    private func payloadSchema(_ payload: OpenAPIPayload) -> JSONObject {
        switch payload {
        case .definition(let name): return schemas.reference(name, description: "")
        case .text: return ["type": "string"]
        }
    }

    /// Content types, schema and whether the body is required.
    private func bodyParts(_ body: OpenAPIBody) -> ([String], JSONObject, Bool) {
        switch body {
        case .object(let name): return (["*/*"], schemas.reference(name, description: ""), true)
        case .patch: return (OpenAPIRoutes.patchTypes, schemas.reference(OpenAPINames.patch, description: ""), true)
        case .deleteOptions: return (["*/*"], schemas.reference(OpenAPINames.deleteOptions, description: ""), false)
        }
    }

    private func requestBody(_ body: OpenAPIBody) -> JSON {
        let (types, schema, required) = bodyParts(body)
        var content = JSONObject()
        for type in types { content[type] = ["schema": .object(schema)] }
        var o: JSONObject = ["content": .object(content)]
        if required { o["required"] = true }
        return .object(o)
    }
}
