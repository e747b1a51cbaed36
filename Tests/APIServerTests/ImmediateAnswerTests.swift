import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing
@testable import APIMachinery
@testable import APIServer
import Store

/// Accepts the tokens in `allowed`, with or without suspending, and counts its checks.
final class SwitchableTokens: Authenticating, Sendable {
    let allowed = Mutex<Set<String>>(["good"])
    let checks = Mutex(0)

    func authenticate(bearerToken: String) async -> RequestUser? { check(bearerToken) }
    func authenticate(clientCertificateDER der: [UInt8]) async -> RequestUser? { nil }
    func authenticateImmediately(bearerToken: String) -> (user: RequestUser, expires: Date)? {
        check(bearerToken).map { ($0, Date().addingTimeInterval(3600)) }
    }

    func check(_ token: String) -> RequestUser? {
        checks.withLock { $0 += 1 }
        return allowed.withLock { $0.contains(token) } ? RequestUser(name: "tester", groups: ["system:masters"]) : nil
    }
}

@Suite("GETs answered on the event loop")
struct ImmediateAnswerTests {
    static let bearer = ("Authorization", "Bearer good")

    static func head(_ uri: String, method: HTTPMethod = .GET, headers: [(String, String)] = [bearer]) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static func makeHandler(_ auth: SwitchableTokens) async throws -> APIHandler {
        let api = try await PodLogTests.makeAPI()
        try await PodLogTests.addPod(api, "nginx", containers: ["nginx"])
        let endpoints = try #require(Resources.find(group: "", version: "v1", resource: "endpoints"))
        _ = try await api.create(endpoints, namespace: "default",
                                 body: ["apiVersion": "v1", "kind": "Endpoints", "metadata": ["name": "nginx"]])
        return APIHandler(api: api, serverAddress: "127.0.0.1:6443", authenticator: auth, peerCertificates: nil)
    }

    static func answer(_ h: APIHandler, _ head: HTTPRequestHead, _ state: inout ImmediateConnectionState) -> ImmediateAnswer? {
        h.immediateAnswer(head, state: &state, certificateDER: { nil })
    }

    @Test("a GET of one object: the bytes the full path sends, as JSON and as a Table")
    func sameBytes() async throws {
        let h = try await Self.makeHandler(SwitchableTokens())
        var state = ImmediateConnectionState()
        for path in ["/api/v1/namespaces/default/pods/nginx", "/api/v1/namespaces/default", "/api/v1/namespaces/default/"] {
            let fast = try #require(Self.answer(h, Self.head(path), &state), "\(path)")
            let slow = try await HTTPHandlerTests.call(h, .get, path)
            #expect(slow.status == 200)
            #expect(fast.body == slow.body, "\(path)")
            #expect(fast.contentType == slow.headers[.contentType])
        }
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        let path = "/api/v1/namespaces/default/pods/nginx"
        let fast = try #require(Self.answer(h, Self.head(path, headers: [Self.bearer, ("Accept", accept)]), &state))
        let slow = try #require(try await HTTPHandlerTests.call(h, .get, path, headers: [.accept: accept]).json)
        let table = try JSON.parse(fast.body)
        #expect(table["kind"] == "Table")
        #expect(table["columnDefinitions"] == slow["columnDefinitions"])
        let row = table["rows"]?.arrayValue?.first, slowRow = slow["rows"]?.arrayValue?.first
        #expect(row?["object"] == slowRow?["object"] && row?["object"]?["metadata"]?["name"] == "nginx")
        #expect(row?["cells"]?.arrayValue?.first == "nginx")
    }

    @Test("everything else takes the full path, which words the answer", arguments: [
        "/api/v1/namespaces/default/pods/missing",
        "/api/v1/namespaces/default/pods/nginx?resourceVersion=0",
        "/api/v1/namespaces/default/pods/nginx/status",
        "/api/v1/namespaces/default/pods/nginx/log",
        "/api/v1/namespaces/default/pods",
        "/api/v1/pods/nginx",
        "/api/v1/namespaces/default/endpoints/nginx",
        "/api/v1/namespaces/default/pods/ngin%78",
        "/apis/apps/v1/namespaces/default/deployments/nginx",
        "/healthz", "/version", "/api", "/apis", "/openapi/v2",
    ])
    func declines(path: String) async throws {
        let h = try await Self.makeHandler(SwitchableTokens())
        var state = ImmediateConnectionState()
        #expect(Self.answer(h, Self.head(path), &state) == nil)
    }

    @Test("only an authenticated GET")
    func credentialsAndMethod() async throws {
        let h = try await Self.makeHandler(SwitchableTokens())
        let path = "/api/v1/namespaces/default/pods/nginx"
        var state = ImmediateConnectionState()
        #expect(Self.answer(h, Self.head(path), &state) != nil)
        for head in [Self.head(path, headers: []), Self.head(path, headers: [("Authorization", "Bearer bad")]),
                     Self.head(path, headers: [("Authorization", "Basic Z29vZA==")]), Self.head(path, method: .POST),
                     Self.head(path, method: .DELETE)] {
            var fresh = ImmediateConnectionState()
            #expect(Self.answer(h, head, &fresh) == nil, "\(head)")
        }
    }

    @Test("a connection's token is checked again once anything was written, so a revoked one stops at once")
    func tokenRechecks() async throws {
        let auth = SwitchableTokens()
        let h = try await Self.makeHandler(auth)
        let get = Self.head("/api/v1/namespaces/default/pods/nginx")
        var state = ImmediateConnectionState()
        #expect(Self.answer(h, get, &state) != nil)
        let checks = auth.checks.withLock { $0 }
        #expect(Self.answer(h, get, &state) != nil)
        #expect(auth.checks.withLock { $0 } == checks, "nothing was written: the check still holds")
        // Revoking the token is a write (its service account or pod goes away).
        auth.allowed.withLock { $0 = [] }
        _ = try await h.api.create(Resources.configMaps, namespace: "default",
                                   body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "write"]])
        #expect(Self.answer(h, get, &state) == nil)
        #expect(try await HTTPHandlerTests.call(h, .get, "/api/v1/namespaces/default/pods/nginx").status == 401)
        // Another token on the same connection is checked on its own.
        auth.allowed.withLock { $0 = ["other"] }
        #expect(Self.answer(h, Self.head(get.uri, headers: [("Authorization", "Bearer other")]), &state) != nil)
    }

    @Test("the Date header is HTTP's IMF-fixdate, in English whatever the locale")
    func dateHeader() {
        #expect(HTTPDate.format(1_796_125_957) == "Tue, 01 Dec 2026 11:52:37 GMT")
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.now.hasSuffix(" GMT") && HTTPDate.now.count == 29)
    }

    static let fast = ImmediateResponder { head, _, _ in
        head.uri == "/fast" ? ImmediateAnswer(contentType: "application/json", body: Array("{}".utf8)) : nil
    }

    static func request(_ channel: EmbeddedChannel, _ uri: String, headers: [(String, String)] = [], body: String? = nil) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(Self.head(uri, headers: headers)))
        if let body { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(string: body))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    static func passedOn(_ channel: EmbeddedChannel) throws -> [HTTPServerRequestPart] {
        var parts: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return parts
    }

    static func written(_ channel: EmbeddedChannel) throws -> [HTTPServerResponsePart] {
        var parts: [HTTPServerResponsePart] = []
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) { parts.append(part) }
        return parts
    }

    @Test("the connection handler answers in request order, passes the rest on whole, counts each, and leaves at an upgrade")
    func handlerOrder() throws {
        var responder = Self.fast
        let activity = RequestActivity()
        responder.activity = activity
        let channel = EmbeddedChannel(handler: ImmediateAnswerHandler(responder: responder))
        defer { _ = try? channel.finish() }

        try Self.request(channel, "/fast")
        #expect(try Self.passedOn(channel).isEmpty)
        let reply = try Self.written(channel)
        guard reply.count == 3, case .head(let head) = reply[0], case .body(.byteBuffer(let body)) = reply[1], case .end = reply[2] else {
            Issue.record("not a whole reply: \(reply)")
            return
        }
        #expect(head.status == .ok && head.headers["Content-Length"] == ["2"] && head.headers["Content-Type"] == ["application/json"])
        #expect(head.headers["Date"].first?.hasSuffix(" GMT") == true)
        #expect(String(buffer: body) == "{}")

        // While the async path still owes a reply, a fast request must wait its turn there too.
        try Self.request(channel, "/slow")
        try Self.request(channel, "/fast")
        let passed = try Self.passedOn(channel)
        #expect(passed.count == 4 && passed[2] == .head(Self.head("/fast", headers: [])), "\(passed)")
        #expect(try Self.written(channel).isEmpty)
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(try Self.written(channel).count == 2)
        try Self.request(channel, "/fast")
        #expect(try Self.written(channel).count == 3)

        // A GET with a body goes on with its head.
        try Self.request(channel, "/fast", headers: [("Content-Length", "2")], body: "{}")
        #expect(try Self.passedOn(channel).count == 3)
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        _ = try Self.written(channel)

        // An upgrade goes on, and the handler leaves: the connection will not carry HTTP any more.
        try channel.writeInbound(HTTPServerRequestPart.head(Self.head("/fast", headers: [("Upgrade", "websocket"), ("Connection", "Upgrade")])))
        #expect(try Self.passedOn(channel).count == 1)
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: ImmediateAnswerHandler.self) }
        try channel.writeInbound(ByteBuffer(string: "raw bytes"))
        #expect(try channel.readInbound(as: ByteBuffer.self) == ByteBuffer(string: "raw bytes"))
        // Every request counted for the daemon's idle trim, whichever path took it.
        #expect(activity.requests == 6)
    }

    @Test("over a real connection: pipelined requests are answered in order, whichever path serves each")
    func pipelinedOverSocket() async throws {
        let api = try await PodLogTests.makeAPI()
        try await PodLogTests.addPod(api, "nginx", containers: ["nginx"])
        let activity = RequestActivity()
        try await PodLogKubectlTests.withServer(api, activity: activity) { _, port in
            let socket = try RawSocket.connect(port: port)
            // A list (async path), a GET (event loop), a GET of a missing pod (async: 404), a GET again.
            let paths = ["/api/v1/namespaces/default/pods", "/api/v1/namespaces/default/pods/nginx",
                         "/api/v1/namespaces/default/pods/gone", "/api/v1/namespaces/default/pods/nginx"]
            socket.send(paths.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
            var received: [UInt8] = []
            var replies: [(head: String, body: [UInt8])] = []
            // Each read waits up to 5 s; a loaded machine (integration tests alongside) gets 30 s.
            var idleReads = 0
            while replies.count < paths.count, idleReads < 6 {
                if let (reply, rest) = Self.oneReply(received) {
                    replies.append(reply)
                    received = rest
                    continue
                }
                let more = socket.read()
                idleReads = more.isEmpty ? idleReads + 1 : 0
                received += more
            }
            #expect(replies.map { $0.head.split(separator: " ").dropFirst().first ?? "" } == ["200", "200", "404", "200"])
            let kinds = replies.map { (try? JSON.parse($0.body))?["kind"]?.stringValue ?? "" }
            #expect(kinds == ["PodList", "Pod", "Status", "Pod"])
        }
        // The server counted each request for the daemon's idle trim, whichever path answered it.
        #expect(activity.requests == 4)
    }

    /// The first whole reply in `bytes` (framed by Content-Length), and what follows it.
    static func oneReply(_ bytes: [UInt8]) -> ((head: String, body: [UInt8]), [UInt8])? {
        let marker = Array("\r\n\r\n".utf8)
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == marker }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self)
        let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
            .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
        guard bytes.count >= end + 4 + length else { return nil }
        return ((head, Array(bytes[end + 4..<end + 4 + length])), Array(bytes[(end + 4 + length)...]))
    }
}
