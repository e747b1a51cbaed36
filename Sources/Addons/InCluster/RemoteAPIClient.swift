import APIMachinery
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `APIClient` over the network: the API server's REST API on HTTPS/1.1 with a bearer token,
/// for components that run in a pod (the DNS add-on) rather than inside the labnode process.
///
/// One connection per request, closed when the answer is read (or, for a watch, when the
/// stream ends or its consumer goes away); nothing is pooled. Failures arrive as `APIError`:
/// the server's `Status` when it answered, otherwise 503 ServiceUnavailable with a message
/// naming the request and what broke (connect, TLS, timeout), so callers can retry as they
/// would on an overloaded server.
public final class RemoteAPIClient: APIClient {
    public let config: InClusterConfig
    let group: any EventLoopGroup
    let sslContext: NIOSSLContext?
    let userAgent: String
    let requestTimeout: Duration
    /// Debug lines on connections that fail below HTTP; the caller logs the errors it gets.
    let logger: Logger
    /// Connections currently open; tests watch it fall back to zero after a cancelled watch.
    let openConnections = NIOLockedValueBox(0)

    /// The largest answer read into memory (a list of every object of a resource).
    static let maxBodyBytes = 64 << 20
    /// The largest single watch event; kube-apiserver refuses objects above ~1.5 MiB anyway.
    static let maxEventBytes = 16 << 20

    /// - Parameters:
    ///   - requestTimeout: how long a request other than a watch may take once connected
    ///     (connecting has its own 10 s limit).
    ///   - userAgent: kube-apiserver names the field manager of an unnamed write after its first word.
    /// - Throws: `InClusterConfigError` when the CA bundle is not a usable PEM certificate.
    public init(config: InClusterConfig, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                userAgent: String = "labnode-dns", requestTimeout: Duration = .seconds(60),
                logger: Logger = Logger(label: "labnode.addons")) throws(InClusterConfigError) {
        self.config = config
        self.group = eventLoopGroup
        self.userAgent = userAgent
        self.requestTimeout = requestTimeout
        self.logger = logger
        sslContext = config.insecurePlainHTTP ? nil : try Self.makeSSLContext(caPEM: config.caCertificatePEM)
    }

    static func makeSSLContext(caPEM: String) throws(InClusterConfigError) -> NIOSSLContext {
        let roots: [NIOSSLCertificate]
        do {
            roots = try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8))
        } catch {
            throw InClusterConfigError(code: .invalidCertificate, message: "the cluster CA certificate is not valid PEM: \(error)")
        }
        guard !roots.isEmpty else {
            throw InClusterConfigError(code: .invalidCertificate, message: "the cluster CA bundle holds no certificate")
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        // Only the cluster CA: a pod must not accept a server vouched for by a public CA.
        tls.trustRoots = .certificates(roots)
        tls.certificateVerification = .fullVerification
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw InClusterConfigError(code: .invalidCertificate, message: "cannot build a TLS context from the cluster CA: \(error)")
        }
    }

    // MARK: - Verbs

    public func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) async throws(APIError) -> JSON {
        let request = try HTTPRequest(.GET, Self.path(r, namespace: namespace, name: name, subresource: subresource))
        let reply = try await exchange(request)
        return try decodeObject(reply, request)
    }

    public func list(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> ListResult {
        let request = HTTPRequest(.GET, Self.collectionPath(r, namespace: namespace), query: Self.listQuery(options, watch: false))
        let reply = try await exchange(request)
        let list = try decodeObject(reply, request)
        let rvText = list[path: "metadata", "resourceVersion"]?.stringValue ?? ""
        guard let resourceVersion = Int64(rvText) else {
            throw Self.malformed(request, "list metadata.resourceVersion \"\(rvText)\" is not a number")
        }
        var items = (list["items"]?.arrayValue ?? []).map { Self.typed($0, r) }
        // "Nothing" has no query form, so it is applied here.
        if options.labelSelector.matchesNothing { items = [] }
        let token = list[path: "metadata", "continue"]?.stringValue
        return ListResult(items: items, resourceVersion: resourceVersion,
                          continueToken: (token?.isEmpty ?? true) ? nil : token)
    }

    public func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions,
                       subresource: String?) async throws(APIError) -> JSON {
        let ns = namespace ?? body.namespace
        let path: String
        if let subresource {
            // `pods/NAME/binding` and `serviceaccounts/NAME/token`: the parent is named in the
            // body, as the in-process client takes it.
            guard let parent = body.name, !parent.isEmpty else {
                throw APIError.badRequest("create of \(r.resource)/\(subresource) needs the parent's name in metadata.name")
            }
            path = try Self.path(r, namespace: ns, name: parent, subresource: subresource)
        } else {
            path = Self.collectionPath(r, namespace: ns)
        }
        let request = HTTPRequest(.POST, path, query: Self.writeQuery(options), body: body.serialized())
        return try decodeObject(try await exchange(request), request)
    }

    public func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String?,
                       options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        let path = try Self.path(r, namespace: namespace ?? body.namespace, name: name, subresource: subresource)
        let request = HTTPRequest(.PUT, path, query: Self.writeQuery(options), body: body.serialized())
        let reply = try await exchange(request)
        return (try decodeObject(reply, request), reply.status == 201)
    }

    public func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
                      subresource: String?, options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool) {
        let path = try Self.path(r, namespace: namespace, name: name, subresource: subresource)
        let request = HTTPRequest(.PATCH, path, query: Self.writeQuery(options), body: body, contentType: type.rawValue)
        let reply = try await exchange(request)
        return (try decodeObject(reply, request), reply.status == 201)
    }

    public func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions) async throws(APIError) -> DeleteResult {
        let path = try Self.path(r, namespace: namespace, name: name, subresource: nil)
        let request = HTTPRequest(.DELETE, path, body: Self.deleteBody(options).serialized())
        let reply = try await exchange(request)
        let answer = try decodeObject(reply, request)
        if answer.kind == "Status" {
            // Gone for good; the server sends only its name and uid back.
            var gone: JSON = ["apiVersion": .string(r.apiVersion), "kind": .string(r.kind),
                              "metadata": ["name": .string(name)]]
            if r.namespaced, let namespace { gone[path: "metadata", "namespace"] = .string(namespace) }
            if let uid = answer[path: "details", "uid"]?.stringValue { gone[path: "metadata", "uid"] = .string(uid) }
            return .deleted(gone)
        }
        let object = Self.typed(answer, r)
        // kube-apiserver answers 202 while deletion is still under way. labnode answers 200 with
        // the object either way, so an object that may still exist is looked up again.
        if reply.status == 202 || !object.finalizers.isEmpty { return .pending(object) }
        guard object.deletionTimestamp != nil,
              (object[path: "metadata", "deletionGracePeriodSeconds"]?.intValue ?? 0) > 0 else {
            return .deleted(object)
        }
        do {
            let now = try await get(r, namespace: namespace, name: name, subresource: nil)
            return now.uid == object.uid ? .pending(now) : .deleted(object)
        } catch where error.reason == .notFound {
            return .deleted(object)
        }
    }

    /// Watches from `options.resourceVersion`. Bookmarks are always asked for, as client-go's
    /// reflector does, so an idle watcher's revision keeps up. The stream finishes when the
    /// server ends the watch; when the connection breaks or an event cannot be read, an ERROR
    /// event (503 or 500 Status) comes first. Ending the consumer's iteration closes the connection.
    public func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent> {
        // client-go's reflector spreads watch lifetimes over 5-10 minutes so watchers do not all
        // come back at once; the server ends the watch then, and our own deadline shortly after
        // catches a server that vanished without closing the connection.
        var options = options
        let timeout = options.timeoutSeconds ?? Int.random(in: 300..<600)
        options.timeoutSeconds = timeout
        let request = HTTPRequest(.GET, Self.collectionPath(r, namespace: namespace), query: Self.listQuery(options, watch: true))
        let (channel, tls) = try await connect(request)
        let underlying = channel.channel
        let lifetime = Duration.seconds(timeout + 30)
        let expired = NIOLockedValueBox(false)
        let deadline = underlying.eventLoop.scheduleTask(in: TimeAmount(lifetime)) {
            expired.withLockedValue { $0 = true }
            underlying.close(promise: nil)
        }
        let (events, continuation) = AsyncStream<APIWatchEvent>.makeStream()
        let opened = underlying.eventLoop.makePromise(of: Void.self)
        let dropNonBookmarks = options.labelSelector.matchesNothing
        let task = Task {
            var answered = false
            do {
                try await channel.executeThenClose { inbound, outbound in
                    try await Self.send(request, to: outbound, head: self.head(for: request))
                    var parts = inbound.makeAsyncIterator()
                    guard case .head(let head)? = try await parts.next() else { throw TransportFailure.closedEarly }
                    guard (200..<300).contains(head.status.code) else {
                        let body = try await Self.collectBody(&parts, limit: Self.maxBodyBytes)
                        answered = true
                        opened.fail(Self.statusError(status: Int(head.status.code), headers: head.headers, body: body, request: request))
                        return
                    }
                    answered = true
                    opened.succeed(())
                    var framer = LineFramer(limit: Self.maxEventBytes)
                    while let part = try await parts.next() {
                        guard case .body(let buffer) = part else { return }  // .end: the server ended the watch
                        for line in try framer.append(buffer.readableBytesView) {
                            let event = Self.decodeEvent(line, r)
                            if dropNonBookmarks && event.type != .bookmark && event.type != .error { continue }
                            if case .terminated = continuation.yield(event) { return }
                            // The server ends a watch after an ERROR; a line we could not read ends it here.
                            if event.type == .error { return }
                        }
                    }
                    throw TransportFailure.closedEarly
                }
            } catch {
                let e = self.transportError(request, error, timedOut: expired.withLockedValue { $0 } ? lifetime : nil, tls: tls)
                if !answered {
                    opened.fail(e)
                } else if !Task.isCancelled {
                    // Ending with ERROR rather than silently makes the informer say why it lists again.
                    continuation.yield(APIWatchEvent(type: .error, object: e.status))
                }
            }
            deadline.cancel()
            continuation.finish()
        }
        continuation.onTermination = { _ in
            task.cancel()
            underlying.close(promise: nil)
        }
        do {
            try await withTaskCancellationHandler {
                try await opened.futureResult.get()
            } onCancel: {
                underlying.close(promise: nil)
            }
        } catch {
            continuation.finish()
            throw error as? APIError ?? transportError(request, error, timedOut: nil, tls: tls)
        }
        return events
    }

    // MARK: - Paths and queries

    /// `/api/v1/namespaces/NS/services/NAME/status`, `/apis/discovery.k8s.io/v1/endpointslices`.
    static func path(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) throws(APIError) -> String {
        // An empty name would silently turn a get or delete into a request on the collection.
        guard !name.isEmpty else { throw APIError.badRequest("resource name may not be empty") }
        var p = collectionPath(r, namespace: namespace) + "/" + percentEncode(name, keeping: pathCharacters)
        if let subresource, !subresource.isEmpty { p += "/" + percentEncode(subresource, keeping: pathCharacters) }
        return p
    }

    static func collectionPath(_ r: ResourceInfo, namespace: String?) -> String {
        var p = r.group.isEmpty ? "/api/\(r.version)" : "/apis/\(r.group)/\(r.version)"
        if r.namespaced, let namespace, !namespace.isEmpty {
            p += "/namespaces/" + percentEncode(namespace, keeping: pathCharacters)
        }
        return p + "/" + r.resource
    }

    static func listQuery(_ o: ListOptions, watch: Bool) -> [(String, String)] {
        var q: [(String, String)] = []
        if watch { q.append(("watch", "true")) }
        if !o.labelSelector.requirements.isEmpty { q.append(("labelSelector", o.labelSelector.description)) }
        if !o.fieldSelector.isEmpty { q.append(("fieldSelector", fieldSelectorString(o.fieldSelector))) }
        if let rv = o.resourceVersion { q.append(("resourceVersion", rv)) }
        if let m = o.resourceVersionMatch { q.append(("resourceVersionMatch", m)) }
        if watch {
            q.append(("allowWatchBookmarks", "true"))
        } else {
            if let limit = o.limit { q.append(("limit", String(limit))) }
            if let c = o.continueToken { q.append(("continue", c)) }
        }
        if let s = o.sendInitialEvents { q.append(("sendInitialEvents", s ? "true" : "false")) }
        if let t = o.timeoutSeconds { q.append(("timeoutSeconds", String(t))) }
        return q
    }

    /// `metadata.name=a,spec.nodeName!=b`, escaping as apimachinery's `fields.EscapeValue` does.
    static func fieldSelectorString(_ s: FieldSelector) -> String {
        s.requirements.map { r in
            var value = ""
            for c in r.value {
                if c == "\\" || c == "," || c == "=" { value.append("\\") }
                value.append(c)
            }
            return r.field + (r.negate ? "!=" : "=") + value
        }.joined(separator: ",")
    }

    static func writeQuery(_ o: WriteOptions) -> [(String, String)] {
        var q: [(String, String)] = []
        if o.dryRun { q.append(("dryRun", "All")) }
        if let m = o.fieldManager, !m.isEmpty { q.append(("fieldManager", m)) }
        // Warn is what the server assumes when the parameter is absent.
        if o.fieldValidation != .warn { q.append(("fieldValidation", o.fieldValidation.rawValue)) }
        if o.force { q.append(("force", "true")) }
        return q
    }

    /// The DeleteOptions body client-go sends.
    static func deleteBody(_ o: DeleteOptions) -> JSON {
        var body: JSON = ["kind": "DeleteOptions", "apiVersion": "v1"]
        if let g = o.gracePeriodSeconds { body["gracePeriodSeconds"] = .int(g) }
        if let p = o.propagationPolicy { body["propagationPolicy"] = .string(p) }
        if let uid = o.preconditionUID { body[path: "preconditions", "uid"] = .string(uid) }
        if let rv = o.preconditionResourceVersion { body[path: "preconditions", "resourceVersion"] = .string(rv) }
        if o.dryRun { body["dryRun"] = ["All"] }
        return body
    }

    /// RFC 3986 unreserved characters, plus what may stand unescaped in a path segment.
    static let pathCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@".utf8)
    /// Query keys and values keep only unreserved characters: a raw `&`, `=` or `+` inside a
    /// selector would change how the server splits and decodes the query.
    static let queryCharacters = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    static func percentEncode(_ s: String, keeping allowed: Set<UInt8>) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count)
        for b in s.utf8 {
            if allowed.contains(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(b >> 4)], hex[Int(b & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: - Decoding answers

    func decodeObject(_ reply: HTTPReply, _ request: HTTPRequest) throws(APIError) -> JSON {
        do {
            return try JSON.parse(reply.body)
        } catch {
            throw Self.malformed(request, "the answer is not JSON: \(error.message)")
        }
    }

    static func malformed(_ request: HTTPRequest, _ why: String) -> APIError {
        APIError(code: 500, reason: .internalError, message: "\(request.method) \(request.target): \(why)")
    }

    /// List items arrive without kind and apiVersion from kube-apiserver; the in-process client
    /// gives them, and informer handlers may read them.
    static func typed(_ obj: JSON, _ r: ResourceInfo) -> JSON {
        guard case .object(let fields) = obj, fields["kind"] == nil || fields["apiVersion"] == nil else { return obj }
        var out: JSONObject = ["apiVersion": .string(r.apiVersion), "kind": .string(r.kind)]
        for (k, v) in fields where k != "apiVersion" && k != "kind" { out[k] = v }
        return .object(out)
    }

    /// One line of a watch body: `{"type":"ADDED","object":{...}}`. A line that is not an event
    /// becomes an ERROR event with reason InternalError, which ends the watch.
    static func decodeEvent(_ line: [UInt8], _ r: ResourceInfo) -> APIWatchEvent {
        let json: JSON
        do {
            json = try JSON.parse(line)
        } catch {
            return broken("unable to decode an event from the watch stream: \(error.message)")
        }
        guard let typeName = json["type"]?.stringValue, let type = APIWatchEvent.EventType(rawValue: typeName) else {
            return broken("unable to decode an event from the watch stream: got invalid watch event type: \(json["type"]?.description ?? "none")")
        }
        guard let object = json["object"], object.objectValue != nil else {
            return broken("unable to decode an event from the watch stream: \(typeName) event without an object")
        }
        if type == .error || type == .bookmark { return APIWatchEvent(type: type, object: object) }
        return APIWatchEvent(type: type, object: typed(object, r))
    }

    static func broken(_ message: String) -> APIWatchEvent {
        APIWatchEvent(type: .error, object: APIError(code: 500, reason: .internalError, message: message).status)
    }

    /// A non-2xx answer as the error the server meant: its Status body when there is one,
    /// else the reason its code stands for, worded as client-go words such answers.
    static func statusError(status: Int, headers: HTTPHeaders, body: [UInt8], request: HTTPRequest) -> APIError {
        let retryAfter = headers.first(name: "Retry-After").flatMap { Int($0) }
        if let s = try? JSON.parse(body), s.kind == "Status" {
            let code = s["code"]?.intValue.map { Int($0) } ?? status
            let reason = APIError.Reason(rawValue: s["reason"]?.stringValue ?? "") ?? reasonForCode(code)
            let causes = (s[path: "details", "causes"]?.arrayValue ?? []).map { c in
                APIError.Cause(reason: c["reason"]?.stringValue ?? "", message: c["message"]?.stringValue ?? "",
                               field: c["field"]?.stringValue ?? "")
            }
            func nonEmpty(_ v: JSON?) -> String? { v?.stringValue.flatMap { $0.isEmpty ? nil : $0 } }
            return APIError(code: code, reason: reason, message: s["message"]?.stringValue ?? "",
                            name: nonEmpty(s[path: "details", "name"]), group: nonEmpty(s[path: "details", "group"]),
                            kind: nonEmpty(s[path: "details", "kind"]), causes: causes,
                            retryAfterSeconds: s[path: "details", "retryAfterSeconds"]?.intValue.map { Int($0) } ?? retryAfter)
        }
        let reason = reasonForCode(status)
        var message: String
        switch status {
        case 401: message = "the server has asked for the client to provide credentials"
        case 403: message = "the server does not allow access to the requested resource"
        case 404: message = "the server could not find the requested resource"
        case 409: message = "the server reported a conflict"
        case 429: message = "the server has received too many requests and has asked us to try again later"
        case 500...: message = "an error on the server has prevented the request from succeeding"
        default: message = "the server rejected our request for an unknown reason"
        }
        let text = String(decoding: body.prefix(512), as: UTF8.self).trimmingSpaces
        if !text.isEmpty { message += " (\(request.method) \(request.target): \(text))" }
        return APIError(code: status, reason: reason, message: message, retryAfterSeconds: retryAfter)
    }

    static func reasonForCode(_ code: Int) -> APIError.Reason {
        switch code {
        case 400: .badRequest
        case 401: .unauthorized
        case 403: .forbidden
        case 404: .notFound
        case 405: .methodNotAllowed
        case 406: .notAcceptable
        case 409: .conflict
        case 410: .gone
        case 413: .requestEntityTooLarge
        case 415: .unsupportedMediaType
        case 422: .invalid
        case 429: .tooManyRequests
        case 500: .internalError
        case 503: .serviceUnavailable
        case 504: .timeout
        default: .unknown
        }
    }

    // MARK: - HTTP

    struct HTTPRequest: Sendable {
        var method: HTTPMethod
        var path: String
        var query: [(String, String)]
        var body: [UInt8]?
        var contentType: String

        init(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
             contentType: String = "application/json") {
            self.method = method
            self.path = path
            self.query = query
            self.body = body
            self.contentType = contentType
        }

        var target: String {
            guard !query.isEmpty else { return path }
            return path + "?" + query.map { k, v in
                RemoteAPIClient.percentEncode(k, keeping: RemoteAPIClient.queryCharacters) + "="
                    + RemoteAPIClient.percentEncode(v, keeping: RemoteAPIClient.queryCharacters)
            }.joined(separator: "&")
        }

        /// `GET https://10.96.0.1:443/api/v1/services`, as client-go names a request in errors.
        func summary(_ config: InClusterConfig) -> String { "\(method) \(config.baseURL)\(target)" }
    }

    struct HTTPReply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    /// What went wrong below HTTP, for the message of the 503 it becomes.
    enum TransportFailure: Error, CustomStringConvertible {
        case closedEarly
        case tooLarge(limit: Int)

        var description: String {
            switch self {
            case .closedEarly: "the server closed the connection before answering in full"
            case .tooLarge(let limit): "the answer is larger than \(limit >> 20) MiB"
            }
        }
    }

    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    func head(for request: HTTPRequest) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target)
        let host = config.host.contains(":") ? "[\(config.host)]" : config.host
        head.headers.add(name: "Host", value: "\(host):\(config.port)")
        head.headers.add(name: "Authorization", value: "Bearer \(config.token)")
        head.headers.add(name: "Accept", value: "application/json")
        head.headers.add(name: "User-Agent", value: userAgent)
        head.headers.add(name: "Connection", value: "close")
        if let body = request.body {
            head.headers.add(name: "Content-Type", value: request.contentType)
            head.headers.add(name: "Content-Length", value: String(body.count))
        }
        return head
    }

    /// The first TLS error a connection met. A failed handshake closes the channel, and the
    /// request's own write may then fail first with "I/O on closed channel"; this keeps the
    /// real cause for the error message.
    final class TLSFailure: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let first = NIOLockedValueBox<String?>(nil)
        let hostname = NIOLockedValueBox(false)

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if error is NIOSSLError || error is NIOSSLExtraError {
                first.withLockedValue { if $0 == nil { $0 = "\(error)" } }
                if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname { hostname.withLockedValue { $0 = true } }
            }
            context.fireErrorCaught(error)
        }
    }

    func connect(_ request: HTTPRequest) async throws(APIError) -> (Connection, TLSFailure) {
        let tlsFailure = TLSFailure()
        let ssl = sslContext
        // A certificate for an IP address is checked against the IP the socket is connected to
        // (NIOSSL compares the peer address with the IP SANs; SNI may not carry an IP). Behind
        // the `kubernetes` Service that is still the service IP: DNAT is invisible to the socket,
        // and labnode's serving certificate lists the service IP. A name goes in SNI and is
        // matched against the DNS SANs.
        let serverName = Self.isIPAddress(config.host) ? nil : config.host
        let counter = openConnections
        do {
            let channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(10))
                // A watch can be silent for minutes; keepalive lets the kernel notice a dead peer.
                .channelOption(.socketOption(.so_keepalive), value: 1)
                .connect(host: config.host, port: config.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let ssl {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: ssl, serverHostname: serverName))
                            try channel.pipeline.syncOperations.addHandler(tlsFailure)
                        }
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        return try Connection(wrappingChannelSynchronously: channel)
                    }
                }
            counter.withLockedValue { $0 += 1 }
            channel.channel.closeFuture.whenComplete { _ in counter.withLockedValue { $0 -= 1 } }
            return (channel, tlsFailure)
        } catch {
            throw transportError(request, error, timedOut: nil, tls: tlsFailure)
        }
    }

    /// Sends `request`, reads the whole answer; non-2xx answers are thrown as the server's error.
    func exchange(_ request: HTTPRequest) async throws(APIError) -> HTTPReply {
        let (connection, tls) = try await connect(request)
        let underlying = connection.channel
        let timedOut = NIOLockedValueBox(false)
        let timer = underlying.eventLoop.scheduleTask(in: TimeAmount(requestTimeout)) {
            timedOut.withLockedValue { $0 = true }
            underlying.close(promise: nil)
        }
        defer { timer.cancel() }
        let head = self.head(for: request)
        let reply: HTTPReply
        do {
            reply = try await connection.executeThenClose { inbound, outbound in
                try await Self.send(request, to: outbound, head: head)
                var parts = inbound.makeAsyncIterator()
                guard case .head(let head)? = try await parts.next() else { throw TransportFailure.closedEarly }
                let body = try await Self.collectBody(&parts, limit: Self.maxBodyBytes)
                return HTTPReply(status: Int(head.status.code), headers: head.headers, body: body)
            }
        } catch {
            throw transportError(request, error, timedOut: timedOut.withLockedValue { $0 } ? requestTimeout : nil, tls: tls)
        }
        guard (200..<300).contains(reply.status) else {
            throw Self.statusError(status: reply.status, headers: reply.headers, body: reply.body, request: request)
        }
        return reply
    }

    static func send(_ request: HTTPRequest, to outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
                     head: HTTPRequestHead) async throws {
        try await outbound.write(.head(head))
        if let body = request.body, !body.isEmpty {
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
        }
        try await outbound.write(.end(nil))
    }

    /// The body parts up to `.end`.
    static func collectBody(_ parts: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
                            limit: Int) async throws -> [UInt8] {
        var body: [UInt8] = []
        while let part = try await parts.next() {
            switch part {
            case .head:
                continue
            case .body(let buffer):
                guard body.count + buffer.readableBytes <= limit else { throw TransportFailure.tooLarge(limit: limit) }
                body += buffer.readableBytesView
            case .end:
                return body
            }
        }
        throw TransportFailure.closedEarly
    }

    /// No answer (or no whole one) from the server: a 503 naming the request and the cause.
    /// - Parameter timedOut: the time limit, when it was our timer that closed the connection.
    func transportError(_ request: HTTPRequest, _ error: any Error, timedOut: Duration?, tls: TLSFailure? = nil) -> APIError {
        let what: String
        if let tls, tls.hostname.withLockedValue({ $0 }) {
            what = "TLS handshake with \(config.baseURL) failed: the server certificate is not valid for \(config.host) "
                + "(it is not among the certificate's subject alternative names)"
        } else if let tls, let failure = tls.first.withLockedValue({ $0 }) {
            what = "TLS handshake with \(config.baseURL) failed (is ca.crt the CA that signed the server certificate?): \(failure)"
        } else if let timedOut {
            what = "no complete answer within \(timedOut)"
        } else if error is CancellationError {
            what = "the request was cancelled"
        } else if let e = error as? NIOSSLExtraError, e == .failedToValidateHostname {
            what = "TLS handshake with \(config.baseURL) failed: the server certificate is not valid for \(config.host) "
                + "(it is not among the certificate's subject alternative names)"
        } else if error is NIOSSLError || error is NIOSSLExtraError {
            what = "TLS handshake with \(config.baseURL) failed (is ca.crt the CA that signed the server certificate?): \(error)"
        } else if let e = error as? NIOConnectionError {
            let cause = e.connectionErrors.first.map { Self.describe($0.error) } ?? "\(e)"
            what = "dial tcp \(config.host):\(config.port): \(cause)"
        } else if let e = error as? ChannelError, case .connectTimeout = e {
            what = "dial tcp \(config.host):\(config.port): i/o timeout"
        } else {
            what = "\(error)"
        }
        logger.debug("no answer from the API server", metadata: ["request": "\(request.summary(config))", "error": "\(error)"])
        return APIError(code: 503, reason: .serviceUnavailable, message: "\(request.summary(config)): \(what)")
    }

    /// "connect: connection refused", as Go words a failed dial; NIO's own text repeats itself.
    static func describe(_ error: any Error) -> String {
        guard let e = error as? IOError else { return "\(error)" }
        return "connect: " + String(cString: strerror(e.errnoCode)).lowercased()
    }

    static func isIPAddress(_ host: String) -> Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}

/// Splits a byte stream into newline-terminated lines (the framing of a JSON watch body).
struct LineFramer {
    let limit: Int
    private var pending: [UInt8] = []

    init(limit: Int) { self.limit = limit }

    /// The complete lines `bytes` finishes, without their line ends; blank lines are skipped.
    mutating func append(_ bytes: some Collection<UInt8>) throws(RemoteAPIClient.TransportFailure) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for b in bytes {
            if b == UInt8(ascii: "\n") {
                if pending.last == UInt8(ascii: "\r") { pending.removeLast() }
                if !pending.isEmpty { lines.append(pending) }
                pending.removeAll(keepingCapacity: true)
            } else {
                guard pending.count < limit else { throw .tooLarge(limit: limit) }
                pending.append(b)
            }
        }
        return lines
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}
