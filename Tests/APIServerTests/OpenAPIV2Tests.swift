import APIMachinery
import APIServer
import Testing

private typealias S = OpenAPITestSupport
private typealias Proto = OpenAPIProtoMessage

@Suite("OpenAPI v2 (swagger 2.0) JSON")
struct OpenAPIV2JSONTests {
    let docs = OpenAPIFixtures.sharedDocuments

    @Test func everyReferenceResolvesAndNoOpenAPI3KeywordLeaks() throws {
        let doc = try S.parse(docs.v2JSON)
        #expect(doc["swagger"] == "2.0")
        let definitions = try #require(doc["definitions"]?.objectValue)
        // Every registry definition is present, reachable or not (as upstream serves it).
        for name in OpenAPIFixtures.registry.definitions.keys {
            #expect(definitions[name] != nil, "\(name)")
        }
        for ref in S.refs(in: doc) {
            #expect(ref.hasPrefix("#/definitions/"), "\(ref)")
            #expect(definitions[String(ref.dropFirst("#/definitions/".count))] != nil, "dangling \(ref)")
        }
        let keys = S.keys(in: doc)
        for keyword in ["allOf", "oneOf", "components", "requestBody", "content"] {
            #expect(!keys.contains(keyword), "\(keyword)")
        }
    }

    @Test func patchOperationCarriesBodyAndQueryParameters() throws {
        let doc = try S.parse(docs.v2JSON)
        let patch = try #require(doc[path: "paths", "/api/v1/namespaces/{namespace}/services/{name}", "patch"])
        #expect(patch["x-kubernetes-group-version-kind"] == ["group": "", "kind": "Service", "version": "v1"])
        #expect(patch["x-kubernetes-action"] == "patch")
        #expect(patch["operationId"] == "patchCoreV1NamespacedService")
        let parameters = try #require(patch["parameters"]?.arrayValue)
        #expect(parameters.first == [
            "in": "body", "name": "body", "required": true,
            "schema": ["$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"],
        ])
        let fieldValidation = parameters.first { $0["name"] == "fieldValidation" }
        #expect(fieldValidation?["in"] == "query")
        #expect(fieldValidation?["type"] == "string")
        #expect(parameters.contains { $0["name"] == "force" && $0["type"] == "boolean" })
        #expect(patch["consumes"]?.arrayValue?.contains("application/strategic-merge-patch+json") == true)
        #expect(patch[path: "responses", "200", "schema", "$ref"] == "#/definitions/io.k8s.api.core.v1.Service")
    }

    @Test(arguments: [false, true])
    func operationIDsAreUnique(realResources: Bool) throws {
        let docs = realResources ? OpenAPIFixtures.documents(resources: Resources.all) : docs
        let doc = try S.parse(docs.v2JSON)
        var seen: [String: String] = [:]
        for (path, method, op) in S.operations(doc) {
            let id = try #require(op["operationId"]?.stringValue)
            #expect(seen[id] == nil, "\(id): \(method) \(path) and \(seen[id] ?? "")")
            seen[id] = "\(method) \(path)"
        }
        #expect(seen.count > 40)
        if realResources {
            #expect(seen["listDiscoveryV1NamespacedEndpointSlice"] != nil)
            #expect(seen["patchCoordinationV1NamespacedLease"] != nil)
            #expect(seen["createCoreV1NamespacedServiceAccountToken"] != nil)
            #expect(seen["connectCoreV1GetNodeProxyWithPath"] != nil)
        }
    }
}

@Suite("OpenAPI v2 protobuf (gnostic)")
struct OpenAPIV2ProtobufTests {
    let docs = OpenAPIFixtures.sharedDocuments

    @Test func documentHeaderDecodes() throws {
        let document = try Proto(docs.v2Protobuf)
        #expect(document.string(1) == "2.0")  // swagger
        let info = try #require(try document.message(2))
        #expect(info.string(1) == "Kubernetes")
        #expect(info.string(2) == OpenAPIDocuments.defaultVersion)
        let json = try S.parse(docs.v2JSON)
        let paths = try #require(try document.message(8))
        #expect(try paths.named(2).map(\.name) == json["paths"]?.objectValue?.keys.map { $0 })
        let definitions = try #require(try document.message(9))
        #expect(try definitions.named(1).map(\.name) == json["definitions"]?.objectValue?.keys.map { $0 })
    }

    /// The check kubectl 1.27/1.28 run on the protobuf: a PATCH for the GVK with fieldValidation.
    @Test func patchOperationDecodesWithGVKAndFieldValidation() throws {
        let document = try Proto(docs.v2Protobuf)
        let paths = try #require(try document.message(8))
        let item = try #require(try paths.named(2, "/api/v1/namespaces/{namespace}/pods/{name}"))
        let patch = try #require(try item.message(8))  // PathItem.patch
        #expect(patch.string(5) == "patchCoreV1NamespacedPod")  // operation_id
        let extensions = try patch.named(13)
        let gvkYAML = try #require(extensions.first { $0.name == "x-kubernetes-group-version-kind" }?.value.string(2))
        #expect(try JSON.parse(gvkYAML) == ["group": "", "kind": "Pod", "version": "v1"])
        let action = try #require(extensions.first { $0.name == "x-kubernetes-action" }?.value.string(2))
        #expect(action == "\"patch\"")

        var queryNames: [String] = []
        var bodyRef: String?
        for item in try patch.messages(8) {  // ParametersItem
            let parameter = try #require(try item.message(1))
            if let body = try parameter.message(1) {
                #expect(body.string(3) == "body")
                #expect(body.bool(4))
                bodyRef = try body.message(5)?.string(1)
            } else if let query = try parameter.message(2)?.message(3) {
                #expect(query.string(2) == "query")
                #expect(query.bool(20))  // unique_items
                if let name = query.string(4) { queryNames.append(name) }
                if query.string(4) == "fieldValidation" { #expect(query.string(6) == "string") }
                if query.string(4) == "force" { #expect(query.string(6) == "boolean") }
            }
        }
        #expect(queryNames == ["dryRun", "fieldManager", "fieldValidation", "force"])
        #expect(bodyRef == "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch")

        let responses = try #require(try patch.message(9))
        let ok = try #require(try responses.named(1, "200"))
        let response = try #require(try ok.message(1))
        #expect(response.string(1) == "OK")
        #expect(try response.message(2)?.message(1)?.string(1) == "#/definitions/io.k8s.api.core.v1.Pod")

        let pathParameters = try item.messages(9).compactMap { try $0.message(1)?.message(2)?.message(4) }
        #expect(pathParameters.compactMap { $0.string(4) } == ["namespace", "name"])
        #expect(pathParameters.allSatisfy { $0.bool(1) && $0.string(2) == "path" && $0.string(5) == "string" })
    }

    @Test func schemasDecodeWithRefsTypesAndExtensions() throws {
        let document = try Proto(docs.v2Protobuf)
        let definitions = try #require(try document.message(9))

        let service = try #require(try definitions.named(1, "io.k8s.api.core.v1.Service"))
        #expect(service.string(4) == "Fixture: a stable address for pods.")
        #expect(try service.message(22)?.strings(1) == ["object"])
        let gvk = try #require(try service.named(31).first { $0.name == "x-kubernetes-group-version-kind" }?.value.string(2))
        #expect(try JSON.parse(gvk) == [["group": "", "kind": "Service", "version": "v1"]])
        let spec = try #require(try service.message(25)?.named(1, "spec"))
        #expect(spec.string(1) == "#/definitions/io.k8s.api.core.v1.ServiceSpec")
        #expect(spec.string(4) == "Fixture: desired service.")
        #expect(spec.all(22).isEmpty)  // a $ref must not carry a type for kubectl ≤1.28

        let ports = try #require(try definitions.named(1, "io.k8s.api.core.v1.ServiceSpec")?.message(25)?.named(1, "ports"))
        #expect(try ports.message(22)?.strings(1) == ["array"])
        let items = try #require(try ports.message(23)?.messages(1))
        #expect(items.count == 1)
        #expect(items.first?.string(1) == "#/definitions/io.k8s.api.core.v1.ServicePort")
        let extensions = Dictionary(uniqueKeysWithValues: try ports.named(31).map { ($0.name, $0.value.string(2) ?? "") })
        #expect(extensions == [
            "x-kubernetes-list-map-keys": #"["port","protocol"]"#,
            "x-kubernetes-list-type": #""map""#,
            "x-kubernetes-patch-merge-key": #""port""#,
            "x-kubernetes-patch-strategy": #""merge""#,
        ])

        let port = try #require(try definitions.named(1, "io.k8s.api.core.v1.ServicePort"))
        #expect(port.strings(19) == ["port"])  // required
        let proto = try #require(try port.message(25)?.named(1, "protocol"))
        #expect(try proto.messages(20).compactMap { $0.string(2) } == [#""SCTP""#, #""TCP""#, #""UDP""#])

        let selector = try #require(try definitions.named(1, "io.k8s.api.core.v1.ServiceSpec")?.message(25)?.named(1, "selector"))
        let valueSchema = try #require(try selector.message(21)?.message(1))  // AdditionalPropertiesItem.schema
        #expect(try valueSchema.message(22)?.strings(1) == ["string"])
    }

    @Test func encoderWritesKnownBytes() throws {
        #expect(try GnosticOpenAPIv2.encode(["swagger": "2.0"]) == [0x0a, 0x03] + Array("2.0".utf8))
        // Definitions{NamedSchema{name "A", Schema{type TypeItem{"object"}, additionalProperties{boolean true}}}}
        let bytes = try GnosticOpenAPIv2.encode(["definitions": ["A": ["type": "object", "additionalProperties": true]]])
        let schema: [UInt8] = [0xb2, 0x01, 0x08, 0x0a, 0x06] + Array("object".utf8) + [0xaa, 0x01, 0x02, 0x10, 0x01]
        let named: [UInt8] = [0x0a, 0x01, 0x41, 0x12, UInt8(schema.count)] + schema
        #expect(bytes == [0x4a, UInt8(named.count + 2), 0x0a, UInt8(named.count)] + named)
        // A long string needs a two-byte length varint (300 = 0xac 0x02).
        let long = String(repeating: "x", count: 300)
        #expect(try GnosticOpenAPIv2.encode(["swagger": .string(long)]).prefix(3) == [0x0a, 0xac, 0x02])
    }

    @Test(arguments: [
        (#"{"definitions":{"A":{"bogus":1}}}"#, "/definitions/A/bogus"),
        (#"{"paths":{"/x":{"trace":{}}}}"#, "/paths/~1x/trace"),
        (#"{"info":{"title":3}}"#, "/info/title"),
        (#"{"paths":{"/x":{"get":{"parameters":[{"in":"cookie","name":"c"}]}}}}"#, "/paths/~1x/get/parameters/0/in"),
    ])
    func encoderRefusesWhatItCannotEncode(document: String, path: String) throws {
        let value = try JSON.parse(document)
        #expect(throws: OpenAPIEncodingError.self) { try GnosticOpenAPIv2.encode(value) }
        do {
            _ = try GnosticOpenAPIv2.encode(value)
        } catch {
            #expect(error.path == path)
        }
    }
}
