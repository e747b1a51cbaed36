import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Testing
@testable import APIMachinery
@testable import APIServer
import Store

/// Collects a response body in memory.
struct CollectingWriter: ResponseBodyWriter {
    final class Box: @unchecked Sendable { var bytes: [UInt8] = [] }
    let box = Box()

    mutating func write(_ buffer: ByteBuffer) async throws { box.bytes += Array(buffer: buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// Accepts one bearer token; no client certificates.
struct OneToken: Authenticating {
    func authenticate(bearerToken: String) async -> RequestUser? {
        bearerToken == "good" ? RequestUser(name: "tester", groups: ["system:masters"]) : nil
    }
    func authenticate(clientCertificateDER der: [UInt8]) async -> RequestUser? { nil }
}

/// The HTTP layer as kubectl meets it, called in-process (no sockets).
@Suite("HTTP handler")
struct HTTPHandlerTests {
    struct Reply {
        var status: Int
        var headers: HTTPFields
        var body: [UInt8]
        var json: JSON? { try? JSON.parse(body) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    static func makeHandler() async throws -> APIHandler {
        let api = APIService(store: MemoryStore())
        let ns = Resources.all.first { $0.resource == "namespaces" }!
        _ = try await api.create(ns, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        return APIHandler(api: api, serverAddress: "127.0.0.1:6443", authenticator: OneToken(), peerCertificates: nil)
    }

    static func call(_ h: APIHandler, _ method: HTTPRequest.Method, _ path: String, body: [UInt8] = [],
                     headers: [HTTPField.Name: String] = [:], token: String? = "good") async throws -> Reply {
        var fields = HTTPFields()
        for (k, v) in headers { fields[k] = v }
        if let token { fields[.authorization] = "Bearer \(token)" }
        let head = HTTPRequest(method: method, scheme: "https", authority: "127.0.0.1", path: path, headerFields: fields)
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer(bytes: body)))
        let context = APIRequestContext(source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = try await h.respond(to: request, context: context)
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return Reply(status: response.status.code, headers: response.headers, body: writer.box.bytes)
    }

    static let json: [HTTPField.Name: String] = [.contentType: "application/json"]

    @Test("no credentials: 401 with a Status body; health needs none")
    func unauthenticated() async throws {
        let h = try await Self.makeHandler()
        let r = try await Self.call(h, .get, "/api/v1/namespaces", token: nil)
        #expect(r.status == 401)
        #expect(r.json?["kind"] == "Status" && r.json?["reason"] == "Unauthorized" && r.json?["code"] == 401)
        #expect(try await Self.call(h, .get, "/api/v1/namespaces", token: "bad").status == 401)
        #expect(try await Self.call(h, .get, "/healthz", token: nil).text == "ok")
        #expect(try await Self.call(h, .get, "/version", token: nil).json?["major"] == "1")
    }

    @Test("aggregated discovery carries its exact content type, scope and short names")
    func discovery() async throws {
        let h = try await Self.makeHandler()
        let accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        let core = try await Self.call(h, .get, "/api", headers: [.accept: accept])
        #expect(core.headers[.contentType] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
        let resources = core.json?["items"]?.arrayValue?.first?["versions"]?.arrayValue?.first?["resources"]?.arrayValue ?? []
        let svc = resources.first { $0["resource"] == "services" }
        #expect(svc?["scope"] == "Namespaced" && svc?["shortNames"] == ["svc"])
        #expect(svc?["responseKind"]?["kind"] == "Service")
        let legacy = try await Self.call(h, .get, "/apis", headers: [.accept: "application/json"])
        #expect(legacy.json?["kind"] == "APIGroupList")
        let apps = try await Self.call(h, .get, "/apis/apps/v1")
        #expect(apps.json?["resources"]?.arrayValue?.contains { $0["name"] == "deployments/scale" } == true)
        let v1beta = try await Self.call(h, .get, "/apis", headers: [.accept: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"])
        #expect(v1beta.json?["apiVersion"] == "apidiscovery.k8s.io/v2beta1")
    }

    @Test("OpenAPI: v3 index, documents with fieldValidation, v2 protobuf content type")
    func openAPI() async throws {
        let h = try await Self.makeHandler()
        let index = try await Self.call(h, .get, "/openapi/v3")
        let url = try #require(index.json?["paths"]?["api/v1"]?["serverRelativeURL"]?.stringValue)
        let doc = try await Self.call(h, .get, url)
        #expect(doc.status == 200)
        #expect(doc.text.contains("fieldValidation") && doc.text.contains("x-kubernetes-group-version-kind"))
        let v2 = try await Self.call(h, .get, "/openapi/v2", headers: [.accept: "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"])
        #expect(v2.headers[.contentType] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        #expect(v2.body.count > 1000)
    }

    @Test("v1 Endpoints answers carry 1.33's deprecation warning, errors too; other resources do not")
    func endpointsDeprecationWarning() async throws {
        let h = try await Self.makeHandler()
        let warning = #"299 - "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice""#
        let name = try #require(HTTPField.Name("Warning"))
        let list = try await Self.call(h, .get, "/api/v1/namespaces/default/endpoints")
        #expect(list.status == 200 && list.headers[values: name] == [warning])
        let missing = try await Self.call(h, .get, "/api/v1/namespaces/default/endpoints/nope")
        #expect(missing.status == 404 && missing.headers[values: name] == [warning])
        let body = #"{"apiVersion":"v1","kind":"Endpoints","metadata":{"name":"db"},"subsets":[{"addresses":[{"ip":"192.0.2.10"}],"ports":[{"port":5432}]}]}"#
        let created = try await Self.call(h, .post, "/api/v1/namespaces/default/endpoints", body: Array(body.utf8), headers: Self.json)
        #expect(created.status == 201 && created.headers[values: name] == [warning])
        #expect(try await Self.call(h, .get, "/api/v1/namespaces/default/services").headers[values: name].isEmpty)
        #expect(try await Self.call(h, .get, "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices").headers[values: name].isEmpty)
    }

    @Test("create, get as Table, list as Table with objects")
    func tables() async throws {
        let h = try await Self.makeHandler()
        let body = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"port":80}],"selector":{"app":"web"}}}"#
        let created = try await Self.call(h, .post, "/api/v1/namespaces/default/services", body: Array(body.utf8), headers: Self.json)
        #expect(created.status == 201, "\(created.text)")
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        let list = try await Self.call(h, .get, "/api/v1/namespaces/default/services?limit=500", headers: [.accept: table])
        #expect(list.json?["kind"] == "Table")
        let row = list.json?["rows"]?.arrayValue?.first
        #expect(row?["cells"]?.arrayValue?.first == "web")
        #expect(row?["object"]?["metadata"]?["namespace"] == "default")
        let full = try await Self.call(h, .get, "/api/v1/namespaces/default/services?includeObject=Object", headers: [.accept: table])
        #expect(full.json?["rows"]?.arrayValue?.first?["object"]?["spec"]?["ports"] != nil)
    }

    @Test("bad input gets the Status kube-apiserver would give", arguments: [
        ("POST", "/api/v1/namespaces/default/configmaps", "{not json", "application/json", 400),
        ("POST", "/api/v1/namespaces/default/configmaps", "{}", "text/csv", 415),
        ("POST", "/api/v1/namespaces/default/configmaps", #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#, "application/json", 422),
        ("POST", "/api/v1/namespaces/default/configmaps", #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x"}}"#, "application/json", 400),
        ("POST", "/api/v1/namespaces/default/services", #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"x"},"spec":{"ports":[{"port":"eighty"}]}}"#, "application/json", 400),
        ("GET", "/api/v1/namespaces/default/widgets", "", "application/json", 404),
        ("GET", "/apis/nope/v1/things", "", "application/json", 404),
        ("PATCH", "/api/v1/namespaces/default/configmaps/x", "{}", "application/json", 415),
        ("GET", "/api/v1/namespaces/default/configmaps?labelSelector=a%20in%20b", "", "application/json", 400),
    ])
    func badInput(method: String, path: String, body: String, contentType: String, code: Int) async throws {
        let h = try await Self.makeHandler()
        let r = try await Self.call(h, HTTPRequest.Method(method)!, path, body: Array(body.utf8), headers: [.contentType: contentType])
        #expect(r.status == code, "\(method) \(path): \(r.text)")
        #expect(r.json?["kind"] == "Status" && r.json?["status"] == "Failure" && r.json?["code"] == .int(Int64(code)), "\(r.text)")
    }

    @Test("a body over 3 MiB is refused with 413")
    func tooLarge() async throws {
        let h = try await Self.makeHandler()
        let big = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":""# + String(repeating: "x", count: 3 * 1024 * 1024 + 10) + "\"}}"
        let r = try await Self.call(h, .post, "/api/v1/namespaces/default/configmaps", body: Array(big.utf8), headers: Self.json)
        #expect(r.status == 413 && r.json?["reason"] == "RequestEntityTooLarge", "\(r.status)")
    }

    @Test("thousands of mutated bodies: every one answered with a Status or an object, never a 500")
    func fuzz() async throws {
        let h = try await Self.makeHandler()
        let seeds = [
            #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"f","labels":{"a":"b"}},"data":{"k":"v"}}"#,
            #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"NodePort","ports":[{"port":80,"targetPort":"http"}],"selector":{"app":"x"}}}"#,
            #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"d"}},"template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"nginx","ports":[{"containerPort":80}]}]}}}}"#,
        ]
        let paths = ["/api/v1/namespaces/default/configmaps", "/api/v1/namespaces/default/services",
                     "/apis/apps/v1/namespaces/default/deployments"]
        var rng = SystemRandomNumberGenerator()
        for i in 0..<3000 {
            let k = i % seeds.count
            var bytes = Array(seeds[k].utf8)
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let pos = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[pos] = UInt8.random(in: 0x20...0x7e, using: &rng)
                case 1: bytes.remove(at: pos)
                case 2: bytes.insert(Array("{}[]\":,0-".utf8).randomElement(using: &rng)!, at: pos)
                default: bytes[pos] = UInt8.random(in: 0...255, using: &rng)
                }
                if bytes.isEmpty { bytes = Array("{}".utf8) }
            }
            let method: HTTPRequest.Method = i % 5 == 4 ? .put : .post
            let path = method == .put ? paths[k] + "/f" : paths[k]
            let r = try await Self.call(h, method, path, body: bytes, headers: Self.json)
            #expect(r.status < 500, "\(String(decoding: bytes, as: UTF8.self)) -> \(r.status) \(r.text)")
            #expect(r.json != nil, "every answer is JSON")
        }
        // Still serving.
        #expect(try await Self.call(h, .get, "/api/v1/namespaces").status == 200)
    }
}
