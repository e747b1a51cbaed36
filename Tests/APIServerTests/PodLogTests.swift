import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing
import TestSupport
@testable import APIMachinery
@testable import APIServer
import Store

/// A node agent stand-in: records each request and answers with a stream the test chooses.
final class FakePodLogSource: PodLogSource {
    struct Call: Sendable, Equatable {
        var namespace: String
        var pod: String
        var uid: String
        var container: PodLogContainer
        var options: PodLogOptions
    }

    let calls = Mutex<[Call]>([])
    let reply: @Sendable (Call) -> AsyncThrowingStream<[UInt8], any Error>

    init(reply: @escaping @Sendable (Call) -> AsyncThrowingStream<[UInt8], any Error>) {
        self.reply = reply
    }

    /// Answers every request with these lines.
    convenience init(lines: [String]) {
        self.init { _ in
            AsyncThrowingStream { c in
                for line in lines { c.yield(Array((line + "\n").utf8)) }
                c.finish()
            }
        }
    }

    var last: Call? { calls.withLock { $0.last } }

    func logs(namespace: String, pod: String, uid: String, container: PodLogContainer,
              options: PodLogOptions) async throws(APIError) -> AsyncThrowingStream<[UInt8], any Error> {
        let call = Call(namespace: namespace, pod: pod, uid: uid, container: container, options: options)
        calls.withLock { $0.append(call) }
        return reply(call)
    }
}

/// Hands each body chunk to the test as it is written.
struct StreamingWriter: ResponseBodyWriter {
    let chunks: AsyncStream<[UInt8]>.Continuation

    mutating func write(_ buffer: ByteBuffer) async throws { chunks.yield(Array(buffer: buffer)) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws { chunks.finish() }
}

@Suite("pods/log")
struct PodLogTests {
    struct Reply {
        var status: Int
        var headers: HTTPFields
        var body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: JSON? { try? JSON.parse(body) }
        var message: String? { json?["message"]?.stringValue }
    }

    /// The API with namespace "default" and the pods the tests use, scheduled unless said otherwise.
    static func makeAPI() async throws -> APIService {
        let api = APIService(store: MemoryStore())
        _ = try await api.create(Resources.namespaces, namespace: nil,
                                 body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        return api
    }

    static func addPod(_ api: APIService, _ name: String, containers: [String], initContainers: [String] = [],
                       node: String? = "labnode", status: JSON? = nil) async throws {
        var spec: JSON = ["containers": .array(containers.map { ["name": .string($0), "image": "busybox"] })]
        if !initContainers.isEmpty {
            spec["initContainers"] = .array(initContainers.map { ["name": .string($0), "image": "busybox"] })
        }
        if let node { spec["nodeName"] = .string(node) }
        let pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name)], "spec": spec]
        var created = try await api.create(Resources.pods, namespace: "default", body: pod)
        if let status {
            created["status"] = status
            _ = try await api.update(Resources.pods, namespace: "default", name: name, body: created, subresource: "status")
        }
    }

    static func running(_ name: String, restarts: Int = 0, id: String = "labnode://run", lastID: String? = nil) -> JSON {
        var s: JSON = ["name": .string(name), "restartCount": .int(Int64(restarts)), "containerID": .string(id),
                       "state": ["running": ["startedAt": "2026-11-30T03:18:31Z"]]]
        if let lastID { s["lastState"] = ["terminated": ["exitCode": 1, "containerID": .string(lastID)]] }
        return s
    }

    static func status(phase: String = "Running", _ containers: [JSON], init inits: [JSON] = []) -> JSON {
        var s: JSON = ["phase": .string(phase), "containerStatuses": .array(containers)]
        if !inits.isEmpty { s["initContainerStatuses"] = .array(inits) }
        return s
    }

    static func call(_ api: APIService, _ path: String, channel: (any Channel)? = nil) async throws -> Reply {
        let h = APIHandler(api: api, serverAddress: "127.0.0.1:6443", authenticator: nil, peerCertificates: nil)
        let head = HTTPRequest(method: .get, scheme: "https", authority: "127.0.0.1", path: path, headerFields: [:])
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        let context = APIRequestContext(source: ApplicationRequestContextSource(channel: channel ?? NIOAsyncTestingChannel(),
                                                                                logger: Logger(label: "test")))
        let response = try await h.respond(to: request, context: context)
        let writer = CollectingWriter()
        try await response.body.write(writer)
        return Reply(status: response.status.code, headers: response.headers, body: writer.box.bytes)
    }

    static let base = "/api/v1/namespaces/default/pods"

    // MARK: Errors, worded as kubectl prints them

    @Test("each refusal has upstream's status, reason and message")
    func errors() async throws {
        let api = try await Self.makeAPI()
        api.setPodLogSource(FakePodLogSource(lines: ["never"]))
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        try await Self.addPod(api, "multi", containers: ["a", "b"], initContainers: ["setup"])
        try await Self.addPod(api, "creating", containers: ["c"], status: Self.status(phase: "Pending", [
            ["name": "c", "restartCount": 0, "state": ["waiting": ["reason": "ContainerCreating"]]]]))
        try await Self.addPod(api, "fresh", containers: ["c"])
        try await Self.addPod(api, "behind-init", containers: ["main"], initContainers: ["setup"])
        try await Self.addPod(api, "pulling", containers: ["c"], status: Self.status(phase: "Pending", [
            ["name": "c", "restartCount": 0, "state": ["waiting": ["reason": "ErrImagePull", "message": "x"]]]]))
        try await Self.addPod(api, "backoff", containers: ["c"], status: Self.status(phase: "Pending", [
            ["name": "c", "restartCount": 0, "state": ["waiting": ["reason": "ImagePullBackOff"]]]]))
        try await Self.addPod(api, "nostate", containers: ["c"], status: Self.status([["name": "c", "restartCount": 0]]))
        try await Self.addPod(api, "gone", containers: ["c"], status: Self.status(phase: "Failed", [
            ["name": "c", "restartCount": 0, "state": ["terminated": ["exitCode": 137, "reason": "Error"]]]]))
        try await Self.addPod(api, "unknown", containers: ["c"], status: Self.status(phase: "Running", []))

        let cases: [(String, Int, String, String)] = [
            ("/ghost/log", 404, "NotFound", "pods \"ghost\" not found"),
            ("/nginx/log?container=nginx-x", 400, "BadRequest", "container nginx-x is not valid for pod nginx"),
            ("/multi/log", 400, "BadRequest", "a container name must be specified for pod multi, choose one of: [setup a b]"),
            ("/creating/log", 400, "BadRequest", "container \"c\" in pod \"creating\" is waiting to start: ContainerCreating"),
            ("/fresh/log", 400, "BadRequest", "container \"c\" in pod \"fresh\" is waiting to start: ContainerCreating"),
            ("/behind-init/log", 400, "BadRequest", "container \"main\" in pod \"behind-init\" is waiting to start: PodInitializing"),
            ("/behind-init/log?container=setup", 400, "BadRequest", "container \"setup\" in pod \"behind-init\" is waiting to start: ContainerCreating"),
            ("/pulling/log", 400, "BadRequest", "container \"c\" in pod \"pulling\" is waiting to start: image can't be pulled"),
            ("/backoff/log", 400, "BadRequest", "container \"c\" in pod \"backoff\" is waiting to start: trying and failing to pull image"),
            ("/nostate/log", 400, "BadRequest", "container \"c\" in pod \"nostate\" is waiting to start - no logs yet"),
            ("/gone/log", 400, "BadRequest", "container \"c\" in pod \"gone\" is terminated"),
            ("/unknown/log", 400, "BadRequest", "container \"c\" in pod \"unknown\" is not available"),
            ("/nginx/log?previous=true", 400, "BadRequest", "previous terminated container \"nginx\" in pod \"nginx\" not found"),
            ("/nginx/log?tailLines=-1", 422, "Invalid",
             "PodLogOptions \"nginx\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"),
            ("/nginx/log?limitBytes=0&sinceSeconds=0", 422, "Invalid",
             "PodLogOptions \"nginx\" is invalid: [limitBytes: Invalid value: 0: must be greater than 0, sinceSeconds: Invalid value: 0: must be greater than 0]"),
            ("/nginx/log?sinceSeconds=5&sinceTime=2026-11-30T03:18:31Z", 422, "Invalid",
             "PodLogOptions \"nginx\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"),
            ("/nginx/log?tailLines=ten", 400, "BadRequest", "strconv.ParseInt: parsing \"ten\": invalid syntax"),
            ("/nginx/log?limitBytes=99999999999999999999", 400, "BadRequest",
             "strconv.ParseInt: parsing \"99999999999999999999\": value out of range"),
            ("/nginx/log?sinceTime=yesterday", 400, "BadRequest",
             "parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" as \"2006\""),
        ]
        for (path, code, reason, message) in cases {
            let r = try await Self.call(api, Self.base + path)
            #expect(r.status == code, "\(path): \(r.text)")
            #expect(r.json?["kind"] == "Status" && r.json?["status"] == "Failure" && r.json?["code"] == .int(Int64(code)), "\(path)")
            #expect(r.json?["reason"]?.stringValue == reason, "\(path)")
            #expect(r.message == message, "\(path)")
        }
        // Nothing reached the node agent.
        #expect(FakePodLogSource.callCount(api) == 0)
    }

    @Test("without a node agent: 503; an unscheduled pod has an empty log, as on a real cluster")
    func noSourceAndUnscheduled() async throws {
        let api = try await Self.makeAPI()
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        try await Self.addPod(api, "pending", containers: ["nginx"], node: nil)
        let r = try await Self.call(api, Self.base + "/nginx/log")
        #expect(r.status == 503 && r.json?["reason"] == "ServiceUnavailable")
        #expect(r.message == "container logs are not available: the node agent is not running")
        // Checks that need no node agent still come first.
        #expect(try await Self.call(api, Self.base + "/nginx/log?container=x").status == 400)
        let empty = try await Self.call(api, Self.base + "/pending/log")
        #expect(empty.status == 200 && empty.body.isEmpty && empty.headers[.contentType] == "text/plain")
    }

    // MARK: What reaches the node agent

    @Test("the query is decoded as apiserver does and the run is resolved from the status")
    func queryParsing() async throws {
        let api = try await Self.makeAPI()
        let source = FakePodLogSource(lines: ["hello", "world"])
        api.setPodLogSource(source)
        try await Self.addPod(api, "nginx", containers: ["nginx"],
                              status: Self.status([Self.running("nginx", restarts: 3, id: "labnode://c3", lastID: "labnode://c2")]))
        let r = try await Self.call(api, Self.base + "/nginx/log?container=nginx&follow=true&previous=False&timestamps=1"
                                    + "&sinceSeconds=60&tailLines=10&limitBytes=500&insecureSkipTLSVerifyBackend&unknown=1")
        #expect(r.status == 200 && r.text == "hello\nworld\n")
        #expect(r.headers[.contentType] == "text/plain")
        let call = try #require(source.last)
        #expect(call.namespace == "default" && call.pod == "nginx" && !call.uid.isEmpty)
        #expect(call.container == PodLogContainer(name: "nginx", containerID: "labnode://c3", restartCount: 3))
        #expect(call.options == PodLogOptions(container: "nginx", follow: true, previous: false, timestamps: true,
                                              sinceSeconds: 60, tailLines: 10, limitBytes: 500,
                                              insecureSkipTLSVerifyBackend: true))

        // The pod's only container is picked; --previous means the run before; sinceTime drops fractions.
        _ = try await Self.call(api, Self.base + "/nginx/log?previous=true&sinceTime=2026-11-30T03:18:31.75Z")
        let previous = try #require(source.last)
        #expect(previous.container == PodLogContainer(name: "nginx", containerID: "labnode://c2", restartCount: 2))
        #expect(previous.options.previous && previous.options.container == "nginx")
        #expect(previous.options.sinceTime == Date(timeIntervalSince1970: 1_796_008_711))
    }

    @Test("which run is read, per container state",
          arguments: [
              // (state, lastState id, restartCount, previous) -> (containerID, restartCount)
              ("running", nil, 0, false, "labnode://now", 0),
              ("running", "labnode://old", 4, true, "labnode://old", 3),
              // Waiting to be restarted: the newest run is the last terminated one, for both.
              ("waiting", "labnode://crashed", 4, false, "labnode://crashed", 4),
              ("waiting", "labnode://crashed", 4, true, "labnode://crashed", 4),
              ("terminated", nil, 0, false, "labnode://done", 0),
              ("terminated", "labnode://before", 2, true, "labnode://before", 1),
          ] as [(String, String?, Int, Bool, String, Int)])
    func runs(state: String, lastID: String?, restarts: Int, previous: Bool, id: String, run: Int) async throws {
        let api = try await Self.makeAPI()
        let source = FakePodLogSource(lines: [])
        api.setPodLogSource(source)
        var s: JSON = ["name": "c", "restartCount": .int(Int64(restarts)), "containerID": "labnode://now"]
        switch state {
        case "running": s["state"] = ["running": ["startedAt": "2026-11-30T03:18:31Z"]]
        case "waiting": s["state"] = ["waiting": ["reason": "CrashLoopBackOff"]]
        default: s["state"] = ["terminated": ["exitCode": 0, "containerID": "labnode://done"]]
        }
        if let lastID { s["lastState"] = ["terminated": ["exitCode": 1, "containerID": .string(lastID)]] }
        try await Self.addPod(api, "p", containers: ["c"], status: Self.status([s]))
        let r = try await Self.call(api, Self.base + "/p/log" + (previous ? "?previous=true" : ""))
        #expect(r.status == 200, "\(r.text)")
        #expect(source.last?.container == PodLogContainer(name: "c", containerID: id, restartCount: run))
    }

    @Test("init containers' logs are served like any other")
    func initContainer() async throws {
        let api = try await Self.makeAPI()
        api.setPodLogSource(FakePodLogSource(lines: ["init done"]))
        try await Self.addPod(api, "p", containers: ["main"], initContainers: ["setup"], status: Self.status(phase: "Pending",
            [["name": "main", "restartCount": 0, "state": ["waiting": ["reason": "PodInitializing"]]]],
            init: [["name": "setup", "restartCount": 0, "state": ["terminated": ["exitCode": 0, "containerID": "labnode://s"]]]]))
        let r = try await Self.call(api, Self.base + "/p/log?container=setup")
        #expect(r.status == 200 && r.text == "init done\n")
        let main = try await Self.call(api, Self.base + "/p/log")
        #expect(main.message == "container \"main\" in pod \"p\" is waiting to start: PodInitializing")
    }

    // MARK: Streaming

    @Test("follow: each chunk reaches the client as the source yields it; the reply ends with the source")
    func followStreams() async throws {
        let api = try await Self.makeAPI()
        let (lines, feed) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
        api.setPodLogSource(FakePodLogSource { _ in lines })
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        let h = APIHandler(api: api, serverAddress: "127.0.0.1:6443", authenticator: nil, peerCertificates: nil)
        let head = HTTPRequest(method: .get, scheme: "https", authority: "127.0.0.1",
                               path: Self.base + "/nginx/log?follow=true", headerFields: [:])
        let context = APIRequestContext(source: ApplicationRequestContextSource(channel: NIOAsyncTestingChannel(),
                                                                                logger: Logger(label: "test")))
        let response = try await h.respond(to: Request(head: head, body: RequestBody(buffer: ByteBuffer())), context: context)
        #expect(response.status == .ok && response.headers[.contentType] == "text/plain")
        let (chunks, sink) = AsyncStream<[UInt8]>.makeStream()
        let writing = Task { try await response.body.write(StreamingWriter(chunks: sink)) }
        var received = chunks.makeAsyncIterator()
        // Each chunk is received before the next one exists: the reply streams, it is not collected.
        for i in 0..<3 {
            feed.yield(Array("line \(i)\n".utf8))
            let chunk = await received.next()
            #expect(chunk.map { String(decoding: $0, as: UTF8.self) } == "line \(i)\n")
        }
        feed.finish()
        #expect(await received.next() == nil)
        try await writing.value
    }

    @Test("a client that goes away stops the source's stream, even when the log is idle")
    func clientGone() async throws {
        let api = try await Self.makeAPI()
        let stopped = Mutex(false)
        api.setPodLogSource(FakePodLogSource { _ in
            AsyncThrowingStream { c in
                c.yield(Array("first\n".utf8))
                c.onTermination = { _ in stopped.withLock { $0 = true } }
            }
        })
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        let channel = NIOAsyncTestingChannel()
        let h = APIHandler(api: api, serverAddress: "127.0.0.1:6443", authenticator: nil, peerCertificates: nil)
        let head = HTTPRequest(method: .get, scheme: "https", authority: "127.0.0.1",
                               path: Self.base + "/nginx/log?follow=true", headerFields: [:])
        let context = APIRequestContext(source: ApplicationRequestContextSource(channel: channel, logger: Logger(label: "test")))
        let response = try await h.respond(to: Request(head: head, body: RequestBody(buffer: ByteBuffer())), context: context)
        let (chunks, sink) = AsyncStream<[UInt8]>.makeStream()
        let writing = Task { try await response.body.write(StreamingWriter(chunks: sink)) }
        var received = chunks.makeAsyncIterator()
        #expect(await received.next() == Array("first\n".utf8))
        try await channel.close()
        #expect(await received.next() == nil)
        try await writing.value
        let start = ContinuousClock.now
        while !stopped.withLock({ $0 }) && ContinuousClock.now - start < .seconds(2) {
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(stopped.withLock { $0 })
    }

    @Test("server shutdown ends open follows, as it ends watches")
    func shutdown() async throws {
        let api = try await Self.makeAPI()
        api.setPodLogSource(FakePodLogSource { _ in AsyncThrowingStream { _ in } })
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        let finished = Task { try await Self.call(api, Self.base + "/nginx/log?follow=true") }
        try await Task.sleep(for: .milliseconds(50))
        api.endWatches()
        let r = try await finished.value
        #expect(r.status == 200 && r.body.isEmpty)
    }

    @Test("a source that fails mid-stream ends the reply after what it sent")
    func failingSource() async throws {
        struct Broken: Error {}
        let api = try await Self.makeAPI()
        api.setPodLogSource(FakePodLogSource { _ in
            AsyncThrowingStream { c in
                c.yield(Array("partial\n".utf8))
                c.finish(throwing: Broken())
            }
        })
        try await Self.addPod(api, "nginx", containers: ["nginx"], status: Self.status([Self.running("nginx")]))
        let r = try await Self.call(api, Self.base + "/nginx/log")
        #expect(r.status == 200 && r.text == "partial\n")
    }
}

extension FakePodLogSource {
    /// How many requests the API's source has received (0 when it is not a fake).
    static func callCount(_ api: APIService) -> Int {
        guard let fake = api.podLogSource.source.withLock({ $0 }) as? FakePodLogSource else { return 0 }
        return fake.calls.withLock { $0.count }
    }
}

// MARK: - The real kubectl against an in-process server

/// Runs kubectl against a plain-HTTP API server on a loopback port, with a fake node agent.
@Suite("pods/log with the real kubectl", .serialized,
       .enabled(if: KubectlProcess.find("kubectl") != nil, "needs kubectl on PATH"))
struct PodLogKubectlTests {
    /// Starts the server, runs `body` with a kubeconfig for it, stops the server.
    static func withServer(_ api: APIService, _ body: (KubectlProcess) async throws -> Void) async throws {
        try await withServer(api) { kubectl, _ in try await body(kubectl) }
    }

    /// The same, also giving `body` the server's port (for raw connections).
    static func withServer(_ api: APIService, activity: RequestActivity = RequestActivity(),
                           _ body: (KubectlProcess, Int) async throws -> Void) async throws {
        var logger = Logger(label: "labnode.test")
        // Stopping the server by cancellation makes Hummingbird log an error that means nothing here.
        logger.logLevel = .critical
        let handler = APIHandler(api: api, serverAddress: "127.0.0.1", authenticator: nil, peerCertificates: nil,
                                 activity: activity)
        let (ports, portFeed) = AsyncStream<Int>.makeStream()
        let server = APIServerService(handler: handler, host: "127.0.0.1", port: 0, tls: nil, logger: logger,
                                      onListening: { portFeed.yield($0) })
        let running = Task { try await server.run() }
        defer { running.cancel() }
        var it = ports.makeAsyncIterator()
        let port = try #require(await it.next())
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-kubectl-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = """
            apiVersion: v1
            kind: Config
            clusters: [{name: lab, cluster: {server: "http://127.0.0.1:\(port)"}}]
            contexts: [{name: lab, context: {cluster: lab, user: lab, namespace: default}}]
            users: [{name: lab, user: {}}]
            current-context: lab
            """
        try Data(config.utf8).write(to: URL(fileURLWithPath: dir + "/config"))
        try await body(KubectlProcess(directory: dir), port)
        running.cancel()
        _ = try? await running.value
    }

    static func makeAPI(source: FakePodLogSource) async throws -> APIService {
        let api = try await PodLogTests.makeAPI()
        api.setPodLogSource(source)
        try await PodLogTests.addPod(api, "nginx", containers: ["nginx"],
                                     status: PodLogTests.status([PodLogTests.running("nginx", restarts: 1, lastID: "labnode://old")]))
        try await PodLogTests.addPod(api, "multi", containers: ["a", "b"],
                                     status: PodLogTests.status([PodLogTests.running("a"), PodLogTests.running("b")]))
        try await PodLogTests.addPod(api, "creating", containers: ["c"], status: PodLogTests.status(phase: "Pending", [
            ["name": "c", "restartCount": 0, "state": ["waiting": ["reason": "ContainerCreating"]]]]))
        return api
    }

    /// Each source reply names the container it is for, so output shows which request made it.
    static func namingSource() -> FakePodLogSource {
        FakePodLogSource { call in
            AsyncThrowingStream { c in
                c.yield(Array("\(call.pod)/\(call.container.name) line 1\n\(call.pod)/\(call.container.name) line 2\n".utf8))
                c.finish()
            }
        }
    }

    @Test("logs, -c, --tail/--timestamps/--since/--limit-bytes/--previous reach the node agent as kube-apiserver passes them on")
    func plainLogs() async throws {
        let source = Self.namingSource()
        let api = try await Self.makeAPI(source: source)
        try await Self.withServer(api) { kubectl in
            for binary in KubectlProcess.versions {
                let r = try await kubectl.run(binary, ["logs", "nginx"])
                #expect(r.code == 0 && r.out == "nginx/nginx line 1\nnginx/nginx line 2\n", "\(binary): \(r)")
            }
            let r = try await kubectl.run("kubectl", ["logs", "nginx", "-c", "nginx", "--tail=1", "--timestamps",
                                                      "--since=1h", "--limit-bytes=100", "--previous"])
            #expect(r.code == 0, "\(r)")
            let call = try #require(source.last)
            #expect(call.options == PodLogOptions(container: "nginx", previous: true, timestamps: true, sinceSeconds: 3600,
                                                  tailLines: 1, limitBytes: 100))
            #expect(call.container == PodLogContainer(name: "nginx", containerID: "labnode://old", restartCount: 0))
        }
    }

    @Test("-f streams until the node agent ends the log, then kubectl exits 0")
    func follow() async throws {
        let source = FakePodLogSource { _ in
            AsyncThrowingStream { c in
                let feeder = Task {
                    for i in 1...3 {
                        c.yield(Array("follow line \(i)\n".utf8))
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    c.finish()
                }
                c.onTermination = { _ in feeder.cancel() }
            }
        }
        let api = try await Self.makeAPI(source: source)
        try await Self.withServer(api) { kubectl in
            let r = try await kubectl.run("kubectl", ["logs", "-f", "nginx"])
            #expect(r.code == 0 && r.out == "follow line 1\nfollow line 2\nfollow line 3\n", "\(r)")
            #expect(source.last?.options.follow == true)
        }
    }

    @Test("-l with --prefix, --all-containers: one request per pod and container")
    func selectorsAndPrefixes() async throws {
        let source = Self.namingSource()
        let api = try await PodLogTests.makeAPI()
        api.setPodLogSource(source)
        for name in ["web-1", "web-2"] {
            var pod: JSON = ["apiVersion": "v1", "kind": "Pod", "metadata": ["name": .string(name), "labels": ["app": "web"]],
                             "spec": ["nodeName": "labnode", "containers": [["name": "c", "image": "busybox"]]]]
            pod = try await api.create(Resources.pods, namespace: "default", body: pod)
            pod["status"] = PodLogTests.status([PodLogTests.running("c")])
            _ = try await api.update(Resources.pods, namespace: "default", name: name, body: pod, subresource: "status")
        }
        try await PodLogTests.addPod(api, "multi", containers: ["a", "b"],
                                     status: PodLogTests.status([PodLogTests.running("a"), PodLogTests.running("b")]))
        try await Self.withServer(api) { kubectl in
            let r = try await kubectl.run("kubectl", ["logs", "-l", "app=web", "--prefix"])
            #expect(r.code == 0, "\(r)")
            #expect(r.out.split(separator: "\n").sorted() == [
                "[pod/web-1/c] web-1/c line 1", "[pod/web-1/c] web-1/c line 2",
                "[pod/web-2/c] web-2/c line 1", "[pod/web-2/c] web-2/c line 2"])
            // kubectl asks for the last 10 lines per pod when it selects by label.
            #expect(source.calls.withLock { $0.suffix(2).map(\.options.tailLines) } == [10, 10])
            let all = try await kubectl.run("kubectl", ["logs", "multi", "--all-containers"])
            // kubectl walks the containers in map order, so only the set of lines is fixed.
            #expect(all.code == 0, "\(all)")
            #expect(all.out.split(separator: "\n").sorted() == ["multi/a line 1", "multi/a line 2", "multi/b line 1", "multi/b line 2"])
            #expect(Set(source.calls.withLock { $0.suffix(2).map(\.container.name) }) == ["a", "b"])
        }
    }

    @Test("errors print as kubectl users know them")
    func errors() async throws {
        let api = try await Self.makeAPI(source: Self.namingSource())
        try await Self.withServer(api) { kubectl in
            let cases: [([String], String)] = [
                (["logs", "creating"], "Error from server (BadRequest): container \"c\" in pod \"creating\" is waiting to start: ContainerCreating"),
                (["logs", "multi", "--previous", "-c", "a"], "Error from server (BadRequest): previous terminated container \"a\" in pod \"multi\" not found"),
                (["logs", "nginx", "-c", "nginx-x"], "container nginx-x is not valid for pod nginx"),
                (["logs", "ghost"], "pods \"ghost\" not found"),
            ]
            for (args, message) in cases {
                let r = try await kubectl.run("kubectl", args)
                #expect(r.code == 1 && r.err.contains(message), "\(args): \(r)")
            }
        }
    }
}

/// kubectl as a child process: spawned with a clean signal mask (the test runner blocks SIGCHLD,
/// which Foundation's Process relies on), output to files, and waited for without blocking a
/// thread of the cooperative pool (the server under test runs on it).
struct KubectlProcess {
    struct Result: CustomStringConvertible {
        var code: Int32
        var out: String
        var err: String
        var description: String { "exit \(code)\nstdout:\n\(out)\nstderr:\n\(err)" }
    }

    let directory: String

    /// kubectl and the versioned builds present (kubectl.1.27 ... kubectl.1.37).
    static var versions: [String] {
        ["kubectl"] + (27...37).map { "kubectl.1.\($0)" }.filter { find($0) != nil }
    }

    static func find(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        guard name != "kubectl" else { return nil }
        // The versioned builds sit beside the machine's kubectl (a dispatcher), not on PATH;
        // scripts/setup --test puts the newest under .build-tools.
        if let kubectl = find("kubectl") {
            let beside = URL(fileURLWithPath: kubectl).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent(name).path
            if access(beside, X_OK) == 0 { return beside }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let local = root.appendingPathComponent(".build-tools/bin/\(name)").path
        return access(local, X_OK) == 0 ? local : nil
    }

    func run(_ binary: String, _ args: [String], timeout: Duration = .seconds(30), env: [String: String] = [:],
             stdin: String? = nil) async throws -> Result {
        let id = UUID().uuidString
        let outPath = "\(directory)/out-\(id)"
        let errPath = "\(directory)/err-\(id)"
        var stdinPath: String?
        if let stdin {
            stdinPath = "\(directory)/in-\(id)"
            try Data(stdin.utf8).write(to: URL(fileURLWithPath: "\(directory)/in-\(id)"))
        }
        let pid = try start(binary, args, env: env, stdinPath: stdinPath, outPath: outPath, errPath: errPath)
        let start = ContinuousClock.now
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if ContinuousClock.now - start > timeout {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        return Result(code: ChildProcess.exitCode(status), out: out, err: err)
    }

    /// Starts kubectl without waiting (port-forward); the caller stops it by pid.
    func start(_ binary: String, _ args: [String], env: [String: String] = [:], stdinPath: String? = nil,
               outPath: String, errPath: String) throws -> pid_t {
        let path = try #require(Self.find(binary))
        let full = [path, "--kubeconfig", directory + "/config", "--cache-dir", directory + "/cache"] + args
        return try ChildProcess.spawn(full, env: env.merging(["HOME": directory]) { a, _ in a }, stdinPath: stdinPath,
                                      outPath: outPath, errPath: errPath)
    }
}
