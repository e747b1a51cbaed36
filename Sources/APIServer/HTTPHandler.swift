import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// Who made a request, once authenticated.
public struct RequestUser: Sendable, Equatable {
    public var name: String
    public var groups: [String]

    public init(name: String, groups: [String]) {
        self.name = name
        self.groups = groups
    }
}

/// Turns credentials into a user: bearer tokens and (verified) client certificates.
public protocol Authenticating: Sendable {
    func authenticate(bearerToken: String) async -> RequestUser?
    /// `der` is the client certificate the TLS layer already verified against the cluster CA.
    func authenticate(clientCertificateDER der: [UInt8]) async -> RequestUser?
    /// The same decisions without suspending, for the event-loop fast path: nil when the
    /// credential is refused or cannot be checked without waiting (the request then takes the
    /// async path, which answers 401 if it must). A token's answer says until when it holds.
    func authenticateImmediately(bearerToken: String) -> (user: RequestUser, expires: Date)?
    func authenticateImmediately(clientCertificateDER der: [UInt8]) -> RequestUser?
}

extension Authenticating {
    public func authenticateImmediately(bearerToken: String) -> (user: RequestUser, expires: Date)? { nil }
    public func authenticateImmediately(clientCertificateDER der: [UInt8]) -> RequestUser? { nil }
}

/// The version the server reports; `minor` follows the requesting kubectl when it can.
public struct ServerVersion: Sendable {
    public var major = "1"
    public var minor = "33"
    public var patch = "0"

    public init() {}

    /// kubectl warns when client and server minors differ by more than one; a lab cluster has no
    /// reason to make every trainee read that warning, so /version answers with the client's minor
    /// (from its User-Agent) within the range labnode is tested against.
    func json(userAgent: String?) -> JSON {
        var minor = self.minor
        if let ua = userAgent, let r = ua.range(of: "/v1.") {
            let digits = ua[r.upperBound...].prefix { $0.isNumber }
            if let m = Int(digits), (27...37).contains(m) { minor = String(m) }
        }
        let git = "v\(major).\(minor).\(patch)-labnode"
        return ["major": .string(major), "minor": .string(minor), "gitVersion": .string(git),
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-11-30T00:00:00Z", "goVersion": "swift6", "compiler": "swiftc",
                "platform": "linux/amd64"]
    }
}

/// The request context: Hummingbird's, plus the connection (for the TLS peer certificate).
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Bodies above 3 MiB are refused with 413, as kube-apiserver does.
    public var maxUploadSize: Int { APIHandler.maxBodyBytes }
}

/// Obtains the verified client certificate of a connection, if any (nil for plain HTTP).
public protocol PeerCertificateSource: Sendable {
    func peerCertificateDER(_ channel: any Channel) async -> [UInt8]?
}

/// The OpenAPI documents, built on first use: they take most of a second to generate and tens of
/// megabytes while doing it, and most cluster starts are never asked for them (kubectl caches
/// them by hash), so start-up and an idle daemon do without.
final class LazyOpenAPI: Sendable {
    let registry: TypeRegistry
    let resources: [ResourceInfo]
    let built = NIOLockedValueBox<OpenAPIDocuments?>(nil)

    init(registry: TypeRegistry, resources: [ResourceInfo]) {
        self.registry = registry
        self.resources = resources
    }

    var documents: OpenAPIDocuments {
        built.withLockedValue { docs in
            if let docs { return docs }
            let made = OpenAPIDocuments(registry: registry, resources: resources)
            docs = made
            return made
        }
    }
}

/// The HTTP face of `APIService`: routing, content negotiation, authentication and encoding.
public struct APIHandler: HTTPResponder {
    public typealias Context = APIRequestContext

    public static let maxBodyBytes = 3 * 1024 * 1024

    let api: APIService
    let discovery: Discovery
    let openapi: LazyOpenAPI
    let authenticator: (any Authenticating)?
    let peerCertificates: (any PeerCertificateSource)?
    let version: ServerVersion
    let logger: Logger
    /// Readiness as /readyz reports it; the cluster flips it once bootstrapping is done.
    let ready: @Sendable () -> Bool
    /// Every request arriving on a connection is counted here.
    public let activity: RequestActivity

    public init(api: APIService, serverAddress: String, authenticator: (any Authenticating)?,
                peerCertificates: (any PeerCertificateSource)?, version: ServerVersion = ServerVersion(),
                logger: Logger = Logger(label: "labnode.apiserver"), ready: @escaping @Sendable () -> Bool = { true },
                activity: RequestActivity = RequestActivity()) {
        self.api = api
        self.discovery = Discovery(resources: Resources.all, serverAddress: serverAddress)
        self.openapi = LazyOpenAPI(registry: api.registry, resources: Resources.all)
        self.authenticator = authenticator
        self.peerCertificates = peerCertificates
        self.version = version
        self.logger = logger
        self.ready = ready
        self.activity = activity
    }

    public func respond(to request: Request, context: Context) async throws -> Response {
        do {
            return try await route(request, context)
        } catch let e as APIError {
            return Self.error(e)
        } catch where (error as? HTTPError)?.status == .contentTooLarge {
            return Self.tooLarge
        } catch is NIOTooManyBytesError {
            return Self.tooLarge
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            return Self.error(.internalError("\(error)"))
        }
    }

    // MARK: Routing

    func route(_ request: Request, _ context: Context) async throws -> Response {
        let path = request.uri.path
        let query = Query(request.uri.query)
        let method = request.method.rawValue

        // Health and version are readable without credentials, as on a kubeadm cluster.
        switch path {
        case "/healthz", "/livez", "/readyz", "/healthz/ping", "/livez/ping", "/readyz/ping":
            if path.hasPrefix("/readyz") && !ready() {
                return Response(status: .internalServerError, headers: [.contentType: "text/plain; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: "[-]labnode-bootstrap failed: not finished\nreadyz check failed\n")))
            }
            if query["verbose"] != nil {
                return Self.text("[+]ping ok\n[+]etcd ok\n[+]labnode-bootstrap ok\n\(path.dropFirst()) check passed\n")
            }
            return Self.text("ok")
        case "/version", "/version/":
            return Self.json(version.json(userAgent: request.headers[.userAgent]))
        default:
            break
        }

        // Every authenticated user may do everything (no RBAC yet); the user matters for refusing the rest.
        _ = try await authenticate(request, context)

        if path == "/api" || path == "/api/" {
            let form = Discovery.form(accept: request.headers[.accept])
            if form == .legacy { return Self.json(discovery.apiVersions) }
            return Self.json(discovery.aggregated(core: true, form: form),
                             contentType: form == .v2 ? Discovery.aggregatedV2Type : Discovery.aggregatedV2Beta1Type)
        }
        if path == "/apis" || path == "/apis/" {
            let form = Discovery.form(accept: request.headers[.accept])
            if form == .legacy { return Self.json(discovery.apiGroupList) }
            return Self.json(discovery.aggregated(core: false, form: form),
                             contentType: form == .v2 ? Discovery.aggregatedV2Type : Discovery.aggregatedV2Beta1Type)
        }
        if path.hasPrefix("/openapi/") {
            return try openAPI(path: path, request: request)
        }
        let parts = path.split(separator: "/").map(String.init)
        if parts.count == 2, parts[0] == "api", let doc = discovery.apiResourceList(group: "", version: parts[1]) {
            return Self.json(doc)
        }
        if parts.count == 2, parts[0] == "apis", let doc = discovery.apiGroupDocument(parts[1]) {
            return Self.json(doc)
        }
        if parts.count == 3, parts[0] == "apis", let doc = discovery.apiResourceList(group: parts[1], version: parts[2]) {
            return Self.json(doc)
        }
        guard let info = RequestInfo.parse(method: method, path: path, query: query) else {
            throw Self.pathNotFound
        }
        guard let resource = Resources.find(group: info.group, version: info.version, resource: info.resource) else {
            throw Self.pathNotFound
        }
        if let sub = info.subresource, !resource.subresources.contains(sub) {
            throw Self.pathNotFound
        }
        if resource.namespaced == false && info.namespace != nil {
            throw Self.pathNotFound
        }
        if info.verb == .get, info.subresource == "log", resource.group.isEmpty, resource.resource == "pods",
           let ns = info.namespace, let name = info.name {
            return try await podLog(namespace: ns, name: name, query: query, channel: context.channel)
        }
        guard let warning = Self.deprecationWarning(resource) else {
            return try await serve(info, resource, request, query)
        }
        // Every answer about a deprecated resource carries the warning, errors too.
        var response: Response
        do {
            response = try await serve(info, resource, request, query)
        } catch let e as APIError {
            response = Self.error(e)
        }
        Self.addWarnings([warning], to: &response)
        return response
    }

    /// What kube-apiserver 1.33+ says on every request to v1 Endpoints (KEP-4974); kubectl
    /// prints it as `Warning: ...`, on `kubectl get svc,ep` as on a real cluster.
    static func deprecationWarning(_ r: ResourceInfo) -> String? {
        r.group.isEmpty && r.resource == "endpoints" ? "v1 Endpoints is deprecated in v1.33+; use discovery.k8s.io/v1 EndpointSlice" : nil
    }

    static var tooLarge: Response {
        error(APIError(code: 413, reason: .requestEntityTooLarge, message: "Request entity too large: limit is \(maxBodyBytes)"))
    }

    static let pathNotFound = APIError(code: 404, reason: .notFound, message: "the server could not find the requested resource")

    func authenticate(_ request: Request, _ context: Context) async throws(APIError) -> RequestUser {
        try await authenticate(authorization: request.headers[.authorization], channel: context.channel)
    }

    /// A bearer token if one is sent, else the verified client certificate of the connection.
    func authenticate(authorization: String?, channel: any Channel) async throws(APIError) -> RequestUser {
        guard let authenticator else {
            return RequestUser(name: "system:anonymous", groups: ["system:masters"])
        }
        if let auth = authorization {
            if let token = Self.bearerToken(auth), let user = await authenticator.authenticate(bearerToken: token) {
                return user
            }
            throw APIError.unauthorized
        }
        if let der = await peerCertificates?.peerCertificateDER(channel),
           let user = await authenticator.authenticate(clientCertificateDER: der) {
            return user
        }
        throw APIError.unauthorized
    }

    /// The token of an `Authorization: Bearer <token>` header (the scheme in any case); nil
    /// for any other scheme. Plain UTF-8 slicing: Foundation's trimming converts through
    /// UTF-16, and tokens are long.
    static func bearerToken(_ authorization: String) -> String? {
        let parts = authorization.utf8.split(separator: UInt8(ascii: " "), maxSplits: 1)
        guard parts.count == 2, String(decoding: parts[0], as: UTF8.self).lowercased() == "bearer" else { return nil }
        return String(decoding: parts[1], as: UTF8.self)
    }

    func openAPI(path: String, request: Request) throws(APIError) -> Response {
        let openapi = self.openapi.documents
        if path == "/openapi/v2" {
            let accept = request.headers[.accept] ?? ""
            if accept.contains("protobuf") {
                return Response(status: .ok,
                                headers: [.contentType: "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"],
                                body: .init(byteBuffer: ByteBuffer(bytes: openapi.v2Protobuf)))
            }
            return Self.bytes(openapi.v2JSON, contentType: "application/json")
        }
        if path == "/openapi/v3" || path == "/openapi/v3/" {
            return Self.json(openapi.v3Index)
        }
        let sub = String(path.dropFirst("/openapi/v3/".count))
        if let doc = openapi.v3Document(path: sub) {
            var r = Self.bytes(doc, contentType: "application/json")
            r.headers[.cacheControl] = "public, immutable"
            return r
        }
        throw Self.pathNotFound
    }

    // MARK: Resource verbs

    func serve(_ info: RequestInfo, _ r: ResourceInfo, _ request: Request, _ query: Query) async throws -> Response {
        let accept = request.headers[.accept] ?? ""
        let ns = info.namespace
        switch info.verb {
        case .get:
            if info.subresource != nil && info.subresource != "status" && info.subresource != "scale" {
                throw APIError(code: 503, reason: .serviceUnavailable,
                               message: "\(r.resource)/\(info.subresource ?? "") is not available on this node yet")
            }
            let table = try TableRequest(accept: accept, query: query)
            if table == nil && info.subresource == nil {
                return Self.bytes(try await api.getEncoded(r, namespace: ns, name: info.name ?? ""), contentType: "application/json")
            }
            let obj = try await api.get(r, namespace: ns, name: info.name ?? "", subresource: info.subresource)
            if let table, info.subresource == nil {
                return Self.json(TablePrinter.table(resource: r, objects: [obj], listResourceVersion: obj.resourceVersion, continueToken: nil,
                                                    includeObject: table.includeObject, now: Date().timeIntervalSince1970))
            }
            return Self.json(obj)
        case .list:
            let options = try ListOptions(query: query)
            let result = try await api.list(r, namespace: ns, options: options)
            if let table = try TableRequest(accept: accept, query: query) {
                return Self.json(TablePrinter.table(resource: r, objects: result.items,
                                                    listResourceVersion: String(result.resourceVersion),
                                                    continueToken: result.continueToken, includeObject: table.includeObject,
                                                    now: Date().timeIntervalSince1970))
            }
            var meta: JSON = ["resourceVersion": .string(String(result.resourceVersion))]
            if let c = result.continueToken { meta["continue"] = .string(c) }
            return Self.json(["kind": .string(r.listKind), "apiVersion": .string(r.apiVersion), "metadata": meta,
                              "items": .array(result.items)])
        case .watch:
            let options = try ListOptions(query: query)
            let events = try await api.watch(r, namespace: ns, options: options)
            return watchResponse(events, r, table: try TableRequest(accept: accept, query: query))
        case .create:
            let options = try WriteOptions(query: query, userAgent: request.headers[.userAgent])
            let body = try await decodeBody(request, r)
            var warnings: [String] = []
            if info.subresource == nil { try checkFields(body, r, options, &warnings) }
            if let sub = info.subresource {
                let out = try await api.createSubresource(r, namespace: ns, name: info.name, body: body, subresource: sub)
                return Self.json(out, status: .created)
            }
            if info.name != nil {
                throw APIError.methodNotAllowed("the server does not allow this method on the requested resource")
            }
            let created = try await api.create(r, namespace: ns, body: body, options: options)
            return Self.json(created, status: .created, warnings: warnings)
        case .update:
            let options = try WriteOptions(query: query, userAgent: request.headers[.userAgent])
            let body = try await decodeBody(request, r, subresource: info.subresource)
            var warnings: [String] = []
            if info.subresource == nil { try checkFields(body, r, options, &warnings) }
            let (obj, created) = try await api.update(r, namespace: ns, name: info.name ?? "", body: body,
                                                      subresource: info.subresource, options: options)
            let out = info.subresource == "scale" ? try api.scale(of: obj, r) : obj
            return Self.json(out, status: created ? .created : .ok, warnings: warnings)
        case .patch:
            let options = try WriteOptions(query: query, userAgent: request.headers[.userAgent])
            let contentType = Self.mediaType(request.headers[.contentType] ?? "")
            guard let type = PatchType(rawValue: contentType) else {
                throw APIError(code: 415, reason: .unsupportedMediaType,
                               message: "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json")
            }
            var body = Array(buffer: try await request.body.collect(upTo: Self.maxBodyBytes))
            if type == .apply, (try? JSON.parse(body)) == nil {
                // Server-side apply bodies are YAML (kubectl sends JSON, which is YAML too).
                body = try YAMLBody.toJSON(String(decoding: body, as: UTF8.self)).serialized()
            }
            let (obj, created) = try await api.patch(r, namespace: ns, name: info.name ?? "", type: type, body: body,
                                                     subresource: info.subresource, options: options)
            return Self.json(obj, status: created ? .created : .ok)
        case .delete:
            let raw = Array(buffer: try await request.body.collect(upTo: Self.maxBodyBytes))
            let body = raw.isEmpty ? nil : try Self.parseJSON(raw)
            let options = try DeleteOptions(query: query, body: body)
            switch try await api.delete(r, namespace: ns, name: info.name ?? "", options: options) {
            case .pending(let obj):
                return Self.json(obj)
            case .deleted(let obj):
                if r.resource == "pods" || r.resource == "namespaces" { return Self.json(obj) }
                return Self.json(["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success",
                                  "details": ["name": .string(obj.name ?? ""), "group": .string(r.group),
                                              "kind": .string(r.resource), "uid": .string(obj.uid ?? "")]])
            }
        case .deletecollection:
            let raw = Array(buffer: try await request.body.collect(upTo: Self.maxBodyBytes))
            let body = raw.isEmpty ? nil : try Self.parseJSON(raw)
            let options = try DeleteOptions(query: query, body: body)
            let listOptions = try ListOptions(query: query)
            _ = try await api.deleteCollection(r, namespace: ns, listOptions: listOptions, options: options)
            return Self.json(["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success"])
        case .connect:
            if info.subresource == "proxy" {
                return try await proxy(info, request, rawQuery: request.uri.query)
            }
            if r.group.isEmpty, r.resource == "pods" {
                try await refuseStream(info, query: query)
            }
            throw APIError(code: 503, reason: .serviceUnavailable,
                           message: "\(r.resource)/\(info.subresource ?? "") is not available on this node yet")
        }
    }

    /// `as=Table` in Accept, and whether rows carry the object (`includeObject`).
    struct TableRequest {
        var includeObject: IncludeObject

        init?(accept: String, query: Query) throws(APIError) {
            guard accept.contains("as=Table") else { return nil }
            guard let include = IncludeObject(queryValue: query["includeObject"] ?? "") else {
                throw APIError.badRequest("includeObject must be one of None, Metadata, Object")
            }
            includeObject = include
        }
    }

    func watchResponse(_ events: AsyncStream<APIWatchEvent>, _ r: ResourceInfo, table: TableRequest?) -> Response {
        let body = ResponseBody { writer in
            var first = true
            for await ev in events {
                var out = ev
                if let table, ev.type != .bookmark, ev.type != .error {
                    out.object = TablePrinter.table(resource: r, objects: [ev.object], listResourceVersion: ev.object.resourceVersion,
                                                    continueToken: nil, includeObject: table.includeObject,
                                                    now: Date().timeIntervalSince1970, includeColumnDefinitions: first)
                    first = false
                }
                var bytes = out.json.serialized()
                bytes.append(0x0a)
                try await writer.write(ByteBuffer(bytes: bytes))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-cache, private"], body: body)
    }

    // MARK: Bodies

    func decodeBody(_ request: Request, _ r: ResourceInfo, subresource: String? = nil) async throws -> JSON {
        let raw = Array(buffer: try await request.body.collect(upTo: Self.maxBodyBytes))
        let contentType = Self.mediaType(request.headers[.contentType] ?? "application/json").lowercased()
        switch contentType {
        case "application/json", "":
            return try Self.parseJSON(raw, kind: r.kind, version: r.version)
        case "application/yaml", "application/x-yaml", "text/yaml":
            return try YAMLBody.toJSON(String(decoding: raw, as: UTF8.self))
        case "application/vnd.kubernetes.protobuf":
            return try KubernetesProtobuf.decode(raw, registry: api.registry)
        default:
            throw APIError.unsupportedMediaType(contentType)
        }
    }

    /// "application/json; charset=utf-8" -> "application/json".
    static func mediaType(_ header: String) -> String {
        let first = header.split(separator: ";", maxSplits: 1).first ?? ""
        return String(first.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }

    static func parseJSON(_ raw: [UInt8], kind: String? = nil, version: String? = nil) throws(APIError) -> JSON {
        do {
            return try JSON.parse(raw)
        } catch {
            if let kind, let version {
                throw APIError.badRequest("\(kind) in version \"\(version)\" cannot be handled as a \(kind): \(error.message)")
            }
            throw APIError.badRequest("error decoding body: \(error.message)")
        }
    }

    /// Unknown fields and type mismatches, per `fieldValidation` (types are always enforced).
    func checkFields(_ body: JSON, _ r: ResourceInfo, _ options: WriteOptions, _ warnings: inout [String]) throws(APIError) {
        let problems = SchemaCheck(registry: api.registry).check(body, definition: r.definition)
        if let typeError = problems.typeErrors.first {
            throw APIError.badRequest("\(r.kind) in version \"\(r.version)\" cannot be handled as a \(r.kind): \(typeError)")
        }
        guard !problems.unknownFields.isEmpty else { return }
        switch options.fieldValidation {
        case .strict:
            let list = problems.unknownFields.map { "unknown field \"\($0)\"" }
            throw APIError.badRequest("strict decoding error: " + list.joined(separator: ", "))
        case .warn:
            warnings += problems.unknownFields.map { "unknown field \"\($0)\"" }
        case .ignore:
            break
        }
    }

    // MARK: Encoding

    static func json(_ value: JSON, status: HTTPResponse.Status = .ok, contentType: String = "application/json",
                     warnings: [String] = []) -> Response {
        var r = bytes(value.serialized(), contentType: contentType, status: status)
        addWarnings(warnings, to: &r)
        return r
    }

    /// `Warning: 299 - "text"` headers, as kube-apiserver sends them.
    static func addWarnings(_ warnings: [String], to r: inout Response) {
        guard let name = HTTPField.Name("Warning") else { return }
        for w in warnings {
            r.headers.append(HTTPField(name: name, value: "299 - \"\(w.replacingOccurrences(of: "\"", with: "\\\""))\""))
        }
    }

    static func bytes(_ b: [UInt8], contentType: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: b)))
    }

    static func text(_ s: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: s)))
    }

    static func error(_ e: APIError) -> Response {
        json(e.status, status: HTTPResponse.Status(code: e.code))
    }
}
