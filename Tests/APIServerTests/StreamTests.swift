import Foundation
import NIOCore
import Synchronization
import Testing
import TestSupport
@testable import APIMachinery
@testable import APIServer

// MARK: - SPDY framing

@Suite struct SPDYFrameTests {
    @Test func dictionaryIsTheSpecOne() {
        // draft-mbelshe-httpbis-spdy-00 2.6.10.1: 1423 bytes, starting with "\0\0\0\u{7}options".
        #expect(SPDYDictionary.bytes.count == 1423)
        #expect(Array(SPDYDictionary.bytes.prefix(11)) == [0, 0, 0, 7] + Array("options".utf8))
        #expect(Array(SPDYDictionary.bytes.suffix(6)) == Array(",enq=0.".utf8).suffix(6))
    }

    @Test func framesRoundTripWithSharedHeaderContexts() throws {
        let writer = try SPDYFrameWriter()
        let parser = try SPDYFrameParser()
        let frames: [SPDYFrame] = [
            .synStream(streamID: 1, associatedID: 0, fin: false, headers: ["streamtype": "error"]),
            .synStream(streamID: 3, associatedID: 0, fin: true, headers: ["streamtype": "data", "port": "80", "requestid": "0"]),
            .synReply(streamID: 3, fin: false, headers: [:]),
            .data(streamID: 3, fin: true, payload: ByteBuffer(string: "hello")),
            .rstStream(streamID: 1, status: SPDYFrame.cancel),
            .ping(id: 7),
            .headers(streamID: 3, headers: ["a": "b"]),
            .windowUpdate(streamID: 3, delta: 100),
            .goAway(lastGoodStreamID: 3, status: 0),
        ]
        var wire = ByteBuffer()
        for frame in frames { writer.encode(frame, into: &wire) }
        // Byte by byte: a frame split anywhere waits for the rest.
        var decoded: [SPDYFrame] = []
        for byte in wire.readableBytesView {
            var one = ByteBuffer(bytes: [byte])
            parser.append(&one)
            while let frame = try parser.next() { decoded.append(frame) }
        }
        #expect(decoded == frames)
    }

    @Test("bad input is a protocol error, not a crash", arguments: [
        // A control frame of SPDY version 2.
        [0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0a, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        // SYN_STREAM whose header block is not zlib.
        [0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef],
        // RST_STREAM cut short.
        [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0, 0],
    ] as [[UInt8]])
    func rejects(bytes: [UInt8]) throws {
        let parser = try SPDYFrameParser()
        var buffer = ByteBuffer(bytes: bytes)
        parser.append(&buffer)
        #expect(throws: SPDYProtocolError.self) { _ = try parser.next() }
    }

    @Test func headerBlockBombIsRefused() throws {
        let writer = try SPDYFrameWriter()
        let parser = try SPDYFrameParser()
        var wire = ByteBuffer()
        writer.encode(.synStream(streamID: 1, associatedID: 0, fin: false,
                                 headers: ["x": String(repeating: "a", count: SPDYHeaderDecompressor.maxBlock + 10)]), into: &wire)
        parser.append(&wire)
        #expect(throws: SPDYProtocolError.self) { _ = try parser.next() }
    }
}

// MARK: - Sessions against an in-process server

/// A node agent stand-in for exec, attach and port-forward. Commands: `echo WORDS`, `cat`
/// (stdin back), `fail N` (stderr, exit N), `wait` (until the session is cancelled).
final class FakeStreamSource: PodStreamSource {
    /// A loopback echo server standing in for the pod's port 80.
    let echo: EchoServer
    let cancelled = Mutex(0)

    init() throws { echo = try EchoServer() }

    func exec(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
              streams: ExecStreams) async throws(APIError) -> Int32 {
        switch options.command.first ?? "" {
        case "echo":
            await streams.output(1, Array((options.command.dropFirst().joined(separator: " ") + "\n").utf8))
            return 0
        case "cat":
            for await chunk in streams.stdin { await streams.output(1, chunk) }
            return 0
        case "fail":
            await streams.output(2, Array("err\n".utf8))
            return Int32(options.command.last ?? "") ?? 1
        case "wait":
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
            cancelled.withLock { $0 += 1 }
            return 137
        default:
            throw APIError.internalError("executable file not found in $PATH: \(options.command.first ?? "")")
        }
    }

    func attach(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
                streams: ExecStreams) async throws(APIError) {
        await streams.output(1, Array("attached to \(container)\n".utf8))
        for await chunk in streams.stdin { await streams.output(1, chunk) }
    }

    func connect(namespace: String, pod: String, uid: String, port: Int) async throws(APIError) -> Int32 {
        guard port == 80 else { throw APIError(code: 500, reason: .internalError, message: "dial tcp 127.0.0.1:\(port): connect: connection refused") }
        do {
            return try RawSocket.connect(port: echo.port).takeDescriptor()
        } catch {
            throw APIError(code: 500, reason: .internalError, message: "\(error)")
        }
    }
}

/// Accepts loopback connections and echoes each until its peer closes.
final class EchoServer: Sendable {
    let port: Int
    private let stopping = Mutex(false)

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(listener, 16) == 0 else { throw RawSocket.Failure(description: "echo server: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        Thread { [self] in
            // Polls, so that `stop` ends this thread: a thread blocked in accept() would keep
            // the test process from exiting.
            while !self.stopping.withLock({ $0 }) {
                var pfd = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) <= 0 { continue }
                let client = accept(listener, nil, nil)
                if client < 0 { continue }
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
                        if n <= 0 { break }
                        _ = buffer.withUnsafeBytes { write(client, $0.baseAddress, n) }
                    }
                    close(client)
                }.start()
            }
            close(listener)
        }.start()
    }

    func stop() {
        stopping.withLock { $0 = true }
    }
}

/// A blocking loopback TCP client with a receive timeout, for speaking raw protocol bytes.
final class RawSocket {
    struct Failure: Error, CustomStringConvertible { var description: String }
    private(set) var fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { if fd >= 0 { close(fd) } }

    static func connect(port: Int) throws -> RawSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else {
            close(fd)
            throw Failure(description: "connect 127.0.0.1:\(port): errno \(errno)")
        }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return RawSocket(fd: fd)
    }

    /// Hands the descriptor over (the socket object no longer closes it).
    func takeDescriptor() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// Up to `max` bytes; empty at end of stream or after the timeout.
    func read(max: Int = 65536) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buffer.prefix(n)) : []
    }

    /// Reads an HTTP response head; returns it and any bytes after it.
    func readHead() -> (head: String, rest: [UInt8]) {
        var got: [UInt8] = []
        while true {
            let chunk = read()
            if chunk.isEmpty { return (String(decoding: got, as: UTF8.self), []) }
            got += chunk
            if let end = got.firstRange(of: Array("\r\n\r\n".utf8)) {
                return (String(decoding: got[..<end.lowerBound], as: UTF8.self), Array(got[end.upperBound...]))
            }
        }
    }

    /// True once the peer has closed (reads end-of-file within the timeout).
    func closedByPeer() -> Bool {
        for _ in 0..<20 where read().isEmpty {
            return true
        }
        return false
    }
}

/// The client side of a raw SPDY connection, built from the server's own codec.
final class SPDYTestClient {
    let socket: RawSocket
    let writer: SPDYFrameWriter
    let parser: SPDYFrameParser

    init(socket: RawSocket, leftover: [UInt8]) throws {
        self.socket = socket
        writer = try SPDYFrameWriter()
        parser = try SPDYFrameParser()
        var rest = ByteBuffer(bytes: leftover)
        parser.append(&rest)
    }

    func send(_ frame: SPDYFrame) {
        var out = ByteBuffer()
        writer.encode(frame, into: &out)
        socket.send(Array(out.readableBytesView))
    }

    /// The next frame from the server, nil if it closed or went quiet.
    func next() throws -> SPDYFrame? {
        while true {
            if let frame = try parser.next() { return frame }
            let bytes = socket.read()
            if bytes.isEmpty { return nil }
            var buffer = ByteBuffer(bytes: bytes)
            parser.append(&buffer)
        }
    }
}

@Suite("exec, attach and port-forward sessions", .serialized,
       .enabled(if: KubectlProcess.find("kubectl") != nil, "needs kubectl on PATH"))
struct StreamSessionTests {
    static func makeAPI(_ source: FakeStreamSource) async throws -> APIService {
        let api = try await PodLogTests.makeAPI()
        api.setPodStreamSource(source)
        try await PodLogTests.addPod(api, "busybox", containers: ["busybox"], status: PodLogTests.status([PodLogTests.running("busybox")]))
        try await PodLogTests.addPod(api, "done", containers: ["c"], status: PodLogTests.status(phase: "Succeeded", []))
        return api
    }

    static func upgrade(_ port: Int, _ target: String, spdy protocols: [String], method: String = "POST") -> (RawSocket, String, [UInt8])? {
        guard let socket = try? RawSocket.connect(port: port) else { return nil }
        let offers = protocols.map { "X-Stream-Protocol-Version: \($0)\r\n" }.joined()
        socket.send("\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\(offers)Content-Length: 0\r\n\r\n")
        let (head, rest) = socket.readHead()
        return (socket, head, rest)
    }

    /// Every kubectl here, SPDY (1.27-1.29, and newer ones told not to use WebSockets) and
    /// WebSocket (1.30+): output, exit codes with kubelet's Status, stdin.
    @Test func kubectlExecEveryVersion() async throws {
        let source = try FakeStreamSource()
        defer { source.echo.stop() }
        let api = try await Self.makeAPI(source)
        try await PodLogKubectlTests.withServer(api) { kubectl, _ in
            var runs: [(String, [String: String])] = KubectlProcess.versions.map { ($0, [:]) }
            runs.append(("kubectl", ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"]))
            for (binary, env) in runs {
                let label = "\(binary) \(env)"
                let echoed = try await kubectl.run(binary, ["exec", "busybox", "--", "echo", "hello", "there"], env: env)
                #expect(echoed.code == 0 && echoed.out == "hello there\n", "\(label): \(echoed)")
                let failed = try await kubectl.run(binary, ["exec", "busybox", "--", "fail", "3"], env: env)
                #expect(failed.code == 3 && failed.err.contains("err\n"), "\(label): \(failed)")
                #expect(failed.err.contains("command terminated with exit code 3"), "\(label): \(failed)")
                let typed = try await kubectl.run(binary, ["exec", "-i", "busybox", "--", "cat"], env: env, stdin: "line one\nline two\n")
                #expect(typed.code == 0 && typed.out == "line one\nline two\n", "\(label): \(typed)")
                let missing = try await kubectl.run(binary, ["exec", "busybox", "--", "nope"], env: env)
                #expect(missing.code != 0 && missing.err.contains("executable file not found"), "\(label): \(missing)")
                let attached = try await kubectl.run(binary, ["attach", "-i", "busybox"], env: env, stdin: "to the container\n")
                #expect(attached.out.contains("to the container"), "\(label): \(attached)")
            }
            // The checks kube-apiserver makes before it connects: a clear Status, no hang.
            let completed = try await kubectl.run("kubectl", ["exec", "done", "--", "echo"])
            #expect(completed.code != 0 && completed.err.contains("cannot exec into a container in a completed pod"), "\(completed)")
            let wrong = try await kubectl.run("kubectl", ["exec", "busybox", "-c", "nginx", "--", "echo"])
            #expect(wrong.code != 0 && wrong.err.contains("container nginx is not valid for pod busybox"), "\(wrong)")
            let absent = try await kubectl.run("kubectl", ["exec", "ghost", "--", "echo"])
            #expect(absent.code != 0 && absent.err.contains("not found"), "\(absent)")
        }
    }

    /// port-forward: raw SPDY (up to 1.30), SPDY inside WebSocket (1.31+); two connections
    /// at once through one session; a refused port reaches kubectl as an error.
    @Test(arguments: ["kubectl.1.30", "kubectl", "kubectl.1.37"])
    func kubectlPortForward(binary: String) async throws {
        guard KubectlProcess.find(binary) != nil else {
            print("SKIPPED: \(binary) is not installed")
            return
        }
        let source = try FakeStreamSource()
        defer { source.echo.stop() }
        let api = try await Self.makeAPI(source)
        try await PodLogKubectlTests.withServer(api) { kubectl, _ in
            let out = kubectl.directory + "/pf-out", err = kubectl.directory + "/pf-err"
            let pid = try kubectl.start(binary, ["port-forward", "pod/busybox", ":80", ":81"], outPath: out, errPath: err)
            defer {
                kill(pid, SIGTERM)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
            }
            // "Forwarding from 127.0.0.1:PORT -> 80"
            func localPort(_ remote: Int) -> Int? {
                let text = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") where line.hasPrefix("Forwarding from 127.0.0.1:") && line.hasSuffix("-> \(remote)") {
                    return Int(line.dropFirst("Forwarding from 127.0.0.1:".count).prefix { $0.isNumber })
                }
                return nil
            }
            var local: Int?
            for _ in 0..<200 where local == nil || localPort(81) == nil {
                try await Task.sleep(for: .milliseconds(25))
                local = localPort(80)
            }
            let port = try #require(local, "\((try? String(contentsOfFile: err, encoding: .utf8)) ?? "")")
            let a = try RawSocket.connect(port: port)
            let b = try RawSocket.connect(port: port)
            a.send("first connection")
            b.send("second connection")
            #expect(String(decoding: b.read(), as: UTF8.self) == "second connection")
            #expect(String(decoding: a.read(), as: UTF8.self) == "first connection")
            let big = [UInt8](repeating: 0x5a, count: 300_000)
            a.send(big)
            var back = 0
            while back < big.count {
                let chunk = a.read()
                if chunk.isEmpty { break }
                back += chunk.count
            }
            #expect(back == big.count)
            // Port 81 is refused in the pod: the error text reaches kubectl's stderr.
            let refused = try RawSocket.connect(port: try #require(localPort(81)))
            refused.send("x")
            #expect(refused.closedByPeer())
            try await Task.sleep(for: .milliseconds(200))
            let errors = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            #expect(errors.contains("error forwarding port 81 to pod busybox") && errors.contains("connection refused"), "\(errors)")
        }
    }

    /// Protocol abuse over raw sockets: each gets a clear refusal or a closed connection,
    /// and the server keeps answering.
    @Test func badInputOverRawConnections() async throws {
        let source = try FakeStreamSource()
        defer { source.echo.stop() }
        let api = try await Self.makeAPI(source)
        try await PodLogKubectlTests.withServer(api) { kubectl, port in
            let exec = "/api/v1/namespaces/default/pods/busybox/exec?command=wait&stdout=true&stderr=true"
            // An unknown stream protocol: 400 with a Status, not a 101.
            let (_, refused, _) = try #require(Self.upgrade(port, exec, spdy: ["v1.bogus.k8s.io"]))
            #expect(refused.hasPrefix("HTTP/1.1 400"), "\(refused)")
            // A WebSocket offering no known subprotocol: no 101 either.
            let ws = try RawSocket.connect(port: port)
            ws.send("GET \(exec) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                    + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: base64.channel.k8s.io\r\n\r\n")
            #expect(ws.readHead().head.hasPrefix("HTTP/1.1 400"))

            // A proper SPDY exec: each stream gets its SYN_REPLY, PINGs come back, DATA for a
            // stream that does not exist is reset.
            let (socket, head, rest) = try #require(Self.upgrade(port, exec, spdy: ["v4.channel.k8s.io", "v3.channel.k8s.io"]))
            #expect(head.hasPrefix("HTTP/1.1 101"), "\(head)")
            #expect(head.lowercased().contains("x-stream-protocol-version: v4.channel.k8s.io"), "\(head)")
            let client = try SPDYTestClient(socket: socket, leftover: rest)
            for (id, type) in [(1, "error"), (3, "stdout"), (5, "stderr")] {
                client.send(.synStream(streamID: UInt32(id), associatedID: 0, fin: false, headers: ["streamtype": type]))
                #expect(try client.next() == .synReply(streamID: UInt32(id), fin: false, headers: [:]))
            }
            client.send(.ping(id: 41))
            #expect(try client.next() == .ping(id: 41))
            client.send(.data(streamID: 99, fin: false, payload: ByteBuffer(string: "?")))
            #expect(try client.next() == .rstStream(streamID: 99, status: SPDYFrame.invalidStream))
            // Then garbage: GOAWAY with PROTOCOL_ERROR, the connection closes, and the command
            // that was running for it is cancelled.
            socket.send([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0e, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
            var sawGoAway = false
            while let frame = try client.next() {
                if case .goAway(_, let status) = frame, status == SPDYFrame.protocolError { sawGoAway = true }
            }
            #expect(sawGoAway)
            #expect(await Self.eventually { source.cancelled.withLock { $0 } == 1 })

            // A client that vanishes mid-command: the command is cancelled too.
            let (gone, goneHead, goneRest) = try #require(Self.upgrade(port, exec, spdy: ["v4.channel.k8s.io"]))
            #expect(goneHead.hasPrefix("HTTP/1.1 101"))
            let goneClient = try SPDYTestClient(socket: gone, leftover: goneRest)
            for (id, type) in [(1, "error"), (3, "stdout"), (5, "stderr")] {
                goneClient.send(.synStream(streamID: UInt32(id), associatedID: 0, fin: false, headers: ["streamtype": type]))
            }
            _ = try goneClient.next()
            shutdown(gone.fd, Int32(SHUT_RDWR))
            #expect(await Self.eventually { source.cancelled.withLock { $0 } == 2 })

            // port-forward in WebSocket messages must be binary: a text message closes it (1003).
            let pf = try RawSocket.connect(port: port)
            pf.send("GET /api/v1/namespaces/default/pods/busybox/portforward HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                    + "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    + "Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n")
            let (pfHead, _) = pf.readHead()
            #expect(pfHead.hasPrefix("HTTP/1.1 101") && pfHead.contains("SPDY/3.1+portforward.k8s.io"), "\(pfHead)")
            // A masked text frame "hi".
            pf.send([0x81, 0x82, 1, 2, 3, 4, UInt8(ascii: "h") ^ 1, UInt8(ascii: "i") ^ 2])
            let close = pf.read()
            #expect(close.first == 0x88 && close.count >= 4 && Int(close[2]) << 8 | Int(close[3]) == 1003, "\(close)")

            // Through all of it the server stayed healthy.
            let after = try await kubectl.run("kubectl", ["exec", "busybox", "--", "echo", "still", "here"])
            #expect(after.code == 0 && after.out == "still here\n", "\(after)")
        }
    }

    static func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return condition()
    }
}
