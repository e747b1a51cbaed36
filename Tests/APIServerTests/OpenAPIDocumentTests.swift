import APIMachinery
import APIServer
import Testing

private typealias S = OpenAPITestSupport

@Suite("OpenAPI v3 documents")
struct OpenAPIV3DocumentTests {
    let docs = OpenAPIFixtures.sharedDocuments

    @Test func indexPointsAtEveryGroupVersionWithItsHash() throws {
        let paths = try #require(docs.v3Index["paths"]?.objectValue)
        #expect(Array(paths.keys) == ["api/v1", "apis/apps/v1"])
        #expect(docs.v3Paths == ["api/v1", "apis/apps/v1"])
        for (path, entry) in paths {
            let hash = try #require(docs.v3Hashes[path])
            #expect(hash.count == 16 && hash.allSatisfy { $0.isHexDigit && !$0.isLowercase })
            #expect(entry["serverRelativeURL"]?.stringValue == "/openapi/v3/\(path)?hash=\(hash)")
            #expect(docs.v3Document(path: path) != nil)
        }
        #expect(try JSON.parse(docs.v3IndexJSON) == docs.v3Index)
        #expect(docs.v3Document(path: "/api/v1") == docs.v3Document(path: "api/v1"))
        #expect(docs.v3Document(path: "apis/batch/v1") == nil)
    }

    @Test(arguments: ["api/v1", "apis/apps/v1"])
    func documentHasOpenAPI3Header(path: String) throws {
        let doc = try S.parse(docs.v3Document(path: path))
        #expect(doc["openapi"] == "3.0.0")
        #expect(doc[path: "info", "title"] == "Kubernetes")
        #expect(doc[path: "info", "version"] == .string(OpenAPIDocuments.defaultVersion))
        #expect(doc[path: "components", "schemas"]?.objectValue?.isEmpty == false)
    }

    /// kubectl ≥1.29 decides whether the server validates fields by finding a PATCH operation
    /// tagged with the kind's GVK that has a `fieldValidation` query parameter; it stops at the
    /// first such PATCH, so every PATCH (subresources too) must have it.
    @Test(arguments: ["api/v1", "apis/apps/v1"])
    func everyWriteOperationNamesItsKindAndTakesFieldValidation(path: String) throws {
        let doc = try S.parse(docs.v3Document(path: path))
        var patches = 0
        for (p, method, op) in S.operations(doc) where ["patch", "post", "put"].contains(method) {
            guard op["x-kubernetes-action"] != "connect" else { continue }
            let gvk = try #require(op["x-kubernetes-group-version-kind"]?.objectValue, "\(method) \(p)")
            #expect(gvk["kind"]?.stringValue?.isEmpty == false, "\(method) \(p)")
            #expect(gvk["version"]?.stringValue?.isEmpty == false, "\(method) \(p)")
            #expect(gvk["group"]?.stringValue != nil, "\(method) \(p)")
            let params = (op["parameters"]?.arrayValue ?? []).compactMap { p -> String? in
                p["in"] == "query" ? p["name"]?.stringValue : nil
            }
            #expect(params.contains("fieldValidation"), "\(method) \(p)")
            #expect(params.contains("fieldManager"), "\(method) \(p)")
            #expect(params.contains("dryRun"), "\(method) \(p)")
            if method == "patch" {
                patches += 1
                #expect(params.contains("force"), "\(method) \(p)")
                #expect(op["x-kubernetes-action"] == "patch")
                let bodyTypes = op[path: "requestBody", "content"]?.objectValue?.keys.sorted() ?? []
                #expect(bodyTypes.contains("application/strategic-merge-patch+json"))
                #expect(bodyTypes.contains("application/apply-patch+yaml"))
            }
        }
        #expect(patches > 0)
    }

    @Test(arguments: OpenAPIFixtures.resources)
    func kubectlFindsAPatchOperationForEachKind(resource: ResourceInfo) throws {
        let doc = try S.parse(docs.v3Document(path: resource.group.isEmpty ? "api/v1" : "apis/\(resource.apiVersion)"))
        let found = S.operations(doc).contains { _, method, op in
            method == "patch"
                && op[path: "x-kubernetes-group-version-kind", "kind"] == .string(resource.kind)
                && op[path: "x-kubernetes-group-version-kind", "group"] == .string(resource.group)
                && op[path: "x-kubernetes-group-version-kind", "version"] == .string(resource.version)
        }
        #expect(found)
    }

    @Test(arguments: ["api/v1", "apis/apps/v1"])
    func everyReferenceResolvesInsideItsDocument(path: String) throws {
        let doc = try S.parse(docs.v3Document(path: path))
        let schemas = try #require(doc[path: "components", "schemas"]?.objectValue)
        let refs = S.refs(in: doc)
        #expect(!refs.isEmpty)
        for ref in refs {
            #expect(ref.hasPrefix("#/components/schemas/"), "\(ref)")
            #expect(schemas[String(ref.dropFirst("#/components/schemas/".count))] != nil, "dangling \(ref)")
        }
        // Only what the paths reach: the apps document does not carry Service.
        if path == "apis/apps/v1" {
            #expect(schemas["io.k8s.api.core.v1.Service"] == nil)
            #expect(schemas["io.k8s.api.core.v1.PodSpec"] != nil)
        }
    }

    /// The walk `kubectl explain svc.spec.ports` does.
    @Test func explainCanWalkFromServiceToItsPorts() throws {
        let doc = try S.parse(docs.v3Document(path: "api/v1"))
        let schemas = doc[path: "components", "schemas"]
        let (name, service) = try #require(S.schema(for: GroupVersionKind(group: "", version: "v1", kind: "Service"), in: schemas))
        #expect(name == "io.k8s.api.core.v1.Service")
        #expect(service["description"] == "Fixture: a stable address for pods.")
        #expect(service[path: "properties", "spec"] == [
            "allOf": [["$ref": "#/components/schemas/io.k8s.api.core.v1.ServiceSpec"]],
            "description": "Fixture: desired service.",
        ])
        let ports = try #require(schemas?[path: "io.k8s.api.core.v1.ServiceSpec", "properties", "ports"])
        #expect(ports == [
            "description": "Fixture: service ports.",
            "items": ["$ref": "#/components/schemas/io.k8s.api.core.v1.ServicePort"],
            "type": "array",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "port",
            "x-kubernetes-patch-strategy": "merge",
        ])
        let port = try #require(schemas?["io.k8s.api.core.v1.ServicePort"])
        #expect(port["required"] == ["port"])
        #expect(port["type"] == "object")
        #expect(port[path: "properties", "targetPort", "allOf"] == [["$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"]])
        #expect(schemas?["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]?.objectValue?.keys.sorted() == [
            "description", "format", "oneOf", "x-kubernetes-int-or-string",
        ])
        #expect(schemas?[path: "io.k8s.apimachinery.pkg.util.intstr.IntOrString", "format"] == "int-or-string")
        #expect(schemas?[path: "io.k8s.apimachinery.pkg.util.intstr.IntOrString", "x-kubernetes-int-or-string"] == true)
    }

    @Test func kindsListsAndSubresourceKindsCarryTheirGVKs() throws {
        let doc = try S.parse(docs.v3Document(path: "apis/apps/v1"))
        let schemas = doc[path: "components", "schemas"]
        let cases: [(GroupVersionKind, String)] = [
            (GroupVersionKind(group: "apps", version: "v1", kind: "Deployment"), "io.k8s.api.apps.v1.Deployment"),
            (GroupVersionKind(group: "apps", version: "v1", kind: "DeploymentList"), "io.k8s.api.apps.v1.DeploymentList"),
            (GroupVersionKind(group: "autoscaling", version: "v1", kind: "Scale"), "io.k8s.api.autoscaling.v1.Scale"),
            (GroupVersionKind(group: "", version: "v1", kind: "Status"), "io.k8s.apimachinery.pkg.apis.meta.v1.Status"),
        ]
        for (gvk, name) in cases {
            #expect(S.schema(for: gvk, in: schemas)?.name == name, "\(gvk)")
        }
        #expect(schemas?[path: "io.k8s.api.apps.v1.DeploymentList", "properties", "items", "items", "$ref"]
            == "#/components/schemas/io.k8s.api.apps.v1.Deployment")
        let scalePatch = doc[path: "paths", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale", "patch"]
        #expect(scalePatch?["x-kubernetes-group-version-kind"] == ["group": "autoscaling", "kind": "Scale", "version": "v1"])
        #expect(scalePatch?["operationId"] == "patchAppsV1NamespacedDeploymentScale")
    }

    @Test func pathsFollowTheResourceScopeAndVerbs() throws {
        let doc = try S.parse(docs.v3Document(path: "api/v1"))
        func methods(_ path: String) -> [String] {
            (doc[path: "paths", path]?.objectValue?.keys.filter { $0 != "parameters" } ?? []).sorted()
        }
        let cases: [(String, [String])] = [
            ("/api/v1/namespaces/{namespace}/pods", ["delete", "get", "post"]),
            ("/api/v1/namespaces/{namespace}/pods/{name}", ["delete", "get", "patch", "put"]),
            ("/api/v1/pods", ["get"]),
            ("/api/v1/namespaces/{namespace}/pods/{name}/status", ["get", "patch", "put"]),
            ("/api/v1/namespaces/{namespace}/pods/{name}/exec", ["get", "post"]),
            ("/api/v1/namespaces/{namespace}/pods/{name}/log", ["get"]),
            ("/api/v1/namespaces/{namespace}/pods/{name}/binding", ["post"]),
            ("/api/v1/namespaces/{namespace}/services/{name}/proxy/{path}", ["delete", "get", "head", "options", "patch", "post", "put"]),
            ("/api/v1/namespaces", ["get", "post"]),  // no deletecollection verb
            ("/api/v1/namespaces/{name}", ["delete", "get", "patch", "put"]),
            ("/api/v1/namespaces/{name}/finalize", ["put"]),
            ("/api/v1/namespaces/{namespace}/namespaces", []),
        ]
        for (path, expected) in cases {
            #expect(methods(path) == expected, "\(path)")
        }
        let list = doc[path: "paths", "/api/v1/pods", "get"]
        #expect(list?["x-kubernetes-action"] == "list")
        #expect(list?["operationId"] == "listCoreV1PodForAllNamespaces")
        let exec = doc[path: "paths", "/api/v1/namespaces/{namespace}/pods/{name}/exec", "post"]
        #expect(exec?["x-kubernetes-action"] == "connect")
        #expect(exec?["operationId"] == "connectCoreV1PostNamespacedPodExec")
        #expect(exec?["x-kubernetes-group-version-kind"] == ["group": "", "kind": "PodExecOptions", "version": "v1"])
        let itemParams = doc[path: "paths", "/api/v1/namespaces/{namespace}/pods/{name}", "parameters"]?.arrayValue ?? []
        #expect(itemParams.compactMap { $0["name"]?.stringValue } == ["namespace", "name", "pretty"])
        #expect(itemParams.first?["required"] == true)
        #expect(itemParams.first?["in"] == "path")
        let read = doc[path: "paths", "/api/v1/namespaces/{namespace}/pods/{name}", "get", "responses", "200", "content", "application/json", "schema", "$ref"]
        #expect(read == "#/components/schemas/io.k8s.api.core.v1.Pod")
    }

    /// Each registry Schema case, rendered as a property in both dialects.
    @Test(arguments: OpenAPISchemaCase.all)
    func schemaCasesRenderAsUpstreamDoes(_ c: OpenAPISchemaCase) throws {
        let v3Doc = try S.parse(docs.v3Document(path: "api/v1"))
        let v2Doc = try S.parse(docs.v2JSON)
        let v3Property = v3Doc[path: "components", "schemas", c.definition, "properties", c.field]
        let v2Property = v2Doc[path: "definitions", c.definition, "properties", c.field]
        #expect(v3Property.map(S.normalized) == S.normalized(try JSON.parse(c.v3)))
        #expect(v2Property.map(S.normalized) == S.normalized(try JSON.parse(c.v2)))
    }

    @Test func scalarWrappersHaveTheirDialectShapes() throws {
        let v3 = try S.parse(docs.v3Document(path: "api/v1"))[path: "components", "schemas"]
        let v2 = try S.parse(docs.v2JSON)["definitions"]
        let quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"
        let time = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
        let intOrString = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
        #expect(v3?[path: quantity, "oneOf"] == [["type": "string"], ["type": "number"]])
        #expect(v3?[path: quantity, "type"] == nil)
        #expect(v2?[path: quantity, "type"] == "string")
        #expect(v3?[path: time, "format"] == "date-time")
        #expect(v2?[path: time, "type"] == "string")
        #expect(v2?[path: intOrString, "type"] == "string")
        #expect(v2?[path: intOrString, "format"] == "int-or-string")
    }
}

@Suite("OpenAPI document identity")
struct OpenAPIDocumentIdentityTests {
    @Test func sameRegistryGivesIdenticalBytes() {
        let a = OpenAPIFixtures.documents()
        let b = OpenAPIFixtures.documents()
        // Compared as Bools: a failure should not print megabytes of bytes.
        #expect(Bool(a.v3IndexJSON == b.v3IndexJSON))
        for path in a.v3Paths { #expect(Bool(a.v3Document(path: path) == b.v3Document(path: path)), "\(path)") }
        #expect(Bool(a.v2JSON == b.v2JSON))
        #expect(Bool(a.v2Protobuf == b.v2Protobuf))
    }

    @Test func registrationOrderDoesNotMatter() {
        let reversed = TypeRegistry(OpenAPIFixtures.definitions.reversed().map { def in
            var d = def
            d.fields.reverse()
            return d
        })
        let a = OpenAPIFixtures.documents()
        let b = OpenAPIFixtures.documents(registry: reversed)
        #expect(Bool(a.v3IndexJSON == b.v3IndexJSON))
        #expect(Bool(a.v2Protobuf == b.v2Protobuf))
    }

    @Test func hashChangesOnlyForTheDocumentThatChanged() {
        var defs = OpenAPIFixtures.definitions
        let index = defs.firstIndex { $0.name == "io.k8s.api.core.v1.ServicePort" }
        if let index { defs[index].fields[0].description = "Fixture: a changed description." }
        #expect(index != nil)
        let before = OpenAPIFixtures.documents()
        let after = OpenAPIFixtures.documents(registry: TypeRegistry(defs))
        #expect(before.v3Hashes["api/v1"] != after.v3Hashes["api/v1"])
        #expect(before.v3Hashes["apis/apps/v1"] == after.v3Hashes["apis/apps/v1"])
        #expect(Bool(before.v3IndexJSON != after.v3IndexJSON))
        #expect(Bool(before.v2JSON != after.v2JSON))
        #expect(Bool(before.v2Protobuf != after.v2Protobuf))
    }
}

@Suite("OpenAPI with an incomplete registry")
struct OpenAPIIncompleteRegistryTests {
    @Test func missingKindsGetPlaceholdersAndAreReported() throws {
        let docs = OpenAPIFixtures.sharedDocuments
        // The fixture registry has no Namespace, Binding or Eviction.
        #expect(docs.problems.count == 3, "\(docs.problems)")
        for name in ["io.k8s.api.core.v1.Namespace", "io.k8s.api.core.v1.Binding", "io.k8s.api.policy.v1.Eviction"] {
            #expect(docs.problems.contains { $0.contains(name) }, "\(name)")
        }
        let schemas = try S.parse(docs.v3Document(path: "api/v1"))[path: "components", "schemas"]
        let namespace = try #require(S.schema(for: GroupVersionKind(group: "", version: "v1", kind: "Namespace"), in: schemas))
        #expect(namespace.schema["x-kubernetes-preserve-unknown-fields"] == true)
        #expect(namespace.schema[path: "properties", "metadata", "allOf"] != nil)
    }

    @Test func completeRegistryReportsNothing() {
        let resources = OpenAPIFixtures.resources
            .filter { $0.kind != "Namespace" }
            .map { r -> ResourceInfo in
                var r = r
                r.subresources.removeAll { $0 == "binding" || $0 == "eviction" }
                return r
            }
        let docs = OpenAPIFixtures.documents(resources: resources)
        #expect(docs.problems.isEmpty, "\(docs.problems)")
        #expect(!docs.v2Protobuf.isEmpty)
    }

    @Test func danglingReferencesBecomeFreeFormObjects() throws {
        let defs = OpenAPIFixtures.definitions + [
            TypeDefinition("io.example.v1.Widget", "Fixture: refers to nothing.",
                           gvks: [GroupVersionKind(group: "example.io", version: "v1", kind: "Widget")],
                           fields: [Field("part", 1, .ref("io.example.v1.Missing"), "Fixture: missing type.")]),
        ]
        let widget = ResourceInfo(group: "example.io", version: "v1", resource: "widgets", singular: "widget",
                                  kind: "Widget", namespaced: true, definition: "io.example.v1.Widget")
        let docs = OpenAPIFixtures.documents(registry: TypeRegistry(defs), resources: [widget])
        #expect(docs.problems == ["io.example.v1.Widget refers to io.example.v1.Missing, which is not defined"])
        let doc = try S.parse(docs.v3Document(path: "apis/example.io/v1"))
        #expect(doc[path: "components", "schemas", "io.example.v1.Widget", "properties", "part", "type"] == "object")
        let schemas = doc[path: "components", "schemas"]?.objectValue ?? [:]
        for ref in S.refs(in: doc) {
            #expect(schemas[String(ref.dropFirst("#/components/schemas/".count))] != nil, "dangling \(ref)")
        }
    }

    /// labnode's real resource list against the small fixture registry: nothing dangles and
    /// every kind can still be found by `explain` and by the fieldValidation check.
    @Test func realResourceListStaysConsistent() throws {
        let docs = OpenAPIFixtures.documents(resources: Resources.all)
        for path in docs.v3Paths {
            let doc = try S.parse(docs.v3Document(path: path))
            let schemas = doc[path: "components", "schemas"]
            for ref in S.refs(in: doc) {
                #expect(schemas?[String(ref.dropFirst("#/components/schemas/".count))] != nil, "dangling \(ref) in \(path)")
            }
            for r in Resources.all where OpenAPIRoutesPath.of(r) == path {
                #expect(S.schema(for: r.gvk, in: schemas) != nil, "\(r.gvk)")
            }
        }
        let v2 = try S.parse(docs.v2JSON)
        let definitions = v2["definitions"]?.objectValue ?? [:]
        for ref in S.refs(in: v2) {
            #expect(definitions[String(ref.dropFirst("#/definitions/".count))] != nil, "dangling \(ref)")
        }
        #expect(!docs.v2Protobuf.isEmpty)
        #expect(!docs.problems.contains { $0.contains("cannot encode") })
    }
}

enum OpenAPIRoutesPath {
    static func of(_ r: ResourceInfo) -> String { r.group.isEmpty ? "api/\(r.version)" : "apis/\(r.group)/\(r.version)" }
}

struct OpenAPISchemaCase: Sendable, CustomTestStringConvertible {
    var definition: String
    var field: String
    var v3: String
    var v2: String

    var testDescription: String { "\(definition).\(field)" }

    static let all: [OpenAPISchemaCase] = [
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.Secret", field: "data",
            v3: ##"{"additionalProperties":{"format":"byte","type":"string"},"description":"Fixture: base64 values.","type":"object"}"##,
            v2: ##"{"additionalProperties":{"format":"byte","type":"string"},"description":"Fixture: base64 values.","type":"object"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.Secret", field: "immutable",
            v3: ##"{"description":"Fixture: cannot change.","type":"boolean"}"##,
            v2: ##"{"description":"Fixture: cannot change.","type":"boolean"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.Secret", field: "weight",
            v3: ##"{"description":"Fixture: a number field.","format":"double","type":"number"}"##,
            v2: ##"{"description":"Fixture: a number field.","format":"double","type":"number"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.PodSpec", field: "restartPolicy",
            v3: ##"{"description":"Fixture: restart rule.","enum":["Always","Never","OnFailure"],"type":"string"}"##,
            v2: ##"{"description":"Fixture: restart rule.","enum":["Always","Never","OnFailure"],"type":"string"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", field: "generation",
            v3: ##"{"description":"Fixture: spec generation.","format":"int64","type":"integer"}"##,
            v2: ##"{"description":"Fixture: spec generation.","format":"int64","type":"integer"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", field: "finalizers",
            v3: ##"{"description":"Fixture: blockers of deletion.","items":{"type":"string"},"type":"array","x-kubernetes-list-type":"set","x-kubernetes-patch-strategy":"merge"}"##,
            v2: ##"{"description":"Fixture: blockers of deletion.","items":{"type":"string"},"type":"array","x-kubernetes-list-type":"set","x-kubernetes-patch-strategy":"merge"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.Container", field: "args",
            v3: ##"{"description":"Fixture: arguments.","items":{"type":"string"},"type":"array","x-kubernetes-list-type":"atomic"}"##,
            v2: ##"{"description":"Fixture: arguments.","items":{"type":"string"},"type":"array","x-kubernetes-list-type":"atomic"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", field: "creationTimestamp",
            v3: ##"{"allOf":[{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time"}],"description":"Fixture: when the object was created."}"##,
            v2: ##"{"$ref":"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Time","description":"Fixture: when the object was created."}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.api.core.v1.ResourceRequirements", field: "limits",
            v3: ##"{"additionalProperties":{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"},"description":"Fixture: maximum amounts.","type":"object"}"##,
            v2: ##"{"additionalProperties":{"$ref":"#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},"description":"Fixture: maximum amounts.","type":"object"}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry", field: "fieldsV1",
            v3: ##"{"description":"Fixture: the owned fields.","type":"object","x-kubernetes-preserve-unknown-fields":true}"##,
            v2: ##"{"description":"Fixture: the owned fields.","type":"object","x-kubernetes-preserve-unknown-fields":true}"##),
        OpenAPISchemaCase(
            definition: "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", field: "ownerReferences",
            v3: ##"{"description":"Fixture: owners.","items":{"$ref":"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"},"type":"array","x-kubernetes-list-map-keys":["uid"],"x-kubernetes-list-type":"map","x-kubernetes-patch-merge-key":"uid","x-kubernetes-patch-strategy":"merge"}"##,
            v2: ##"{"description":"Fixture: owners.","items":{"$ref":"#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"},"type":"array","x-kubernetes-list-map-keys":["uid"],"x-kubernetes-list-type":"map","x-kubernetes-patch-merge-key":"uid","x-kubernetes-patch-strategy":"merge"}"##),
    ]
}
