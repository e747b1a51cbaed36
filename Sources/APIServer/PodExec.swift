import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The query of `pods/NAME/exec` (core/v1 PodExecOptions): `command` once per argv word.
public struct PodExecOptions: Sendable, Equatable {
    public var command: [String]
    public var container: String?
    public var stdin: Bool
    public var stdout: Bool
    public var stderr: Bool
    public var tty: Bool

    public init(command: [String], container: String? = nil, stdin: Bool = false, stdout: Bool = true,
                stderr: Bool = true, tty: Bool = false) {
        self.command = command
        self.container = container
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.tty = tty
    }

    init(query: Query) {
        func flag(_ key: String) -> Bool {
            guard let v = query[key] else { return false }
            return !(v == "0" || v.lowercased() == "false")
        }
        let container = query["container"] ?? ""
        self.init(command: query.all("command"), container: container.isEmpty ? nil : container,
                  stdin: flag("stdin"), stdout: flag("stdout"), stderr: flag("stderr"), tty: flag("tty"))
    }
}

/// A terminal size from the resize channel (`{"Width":100,"Height":30}`).
public struct TerminalSize: Sendable, Equatable {
    public var width: UInt16
    public var height: UInt16
    public init(width: UInt16, height: UInt16) {
        self.width = width
        self.height = height
    }
}

/// One exec session's streams, between the API server's connection and the node agent.
public struct ExecStreams: Sendable {
    /// What the client typed; ends when it closes stdin (or the connection).
    public let stdin: AsyncStream<[UInt8]>
    /// Terminal sizes, for a TTY session.
    public let resize: AsyncStream<TerminalSize>
    /// Sends output: `1` stdout, `2` stderr.
    public let output: @Sendable (_ channel: UInt8, _ bytes: [UInt8]) async -> Void
}

/// Where commands run and ports are dialled: the node agent, injected by the cluster
/// (APIServer knows no runtime).
public protocol PodStreamSource: Sendable {
    /// Runs `options.command` in the container and returns its exit code. Errors thrown before
    /// the command starts (not running, no such executable) reach the client as a Status.
    func exec(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
              streams: ExecStreams) async throws(APIError) -> Int32
    /// Joins the container's own stdio (`kubectl attach`, `kubectl run -it`) until the client
    /// detaches or the container ends.
    func attach(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
                streams: ExecStreams) async throws(APIError)
    /// A TCP socket connected to `port` on the pod's loopback, inside its network namespace
    /// (what the kubelet dials for `kubectl port-forward`). The caller owns the descriptor.
    func connect(namespace: String, pod: String, uid: String, port: Int) async throws(APIError) -> Int32
}

final class PodStreamSourceSlot: Sendable {
    let source = Mutex<(any PodStreamSource)?>(nil)
}

extension APIService {
    /// Connects (or, with nil, disconnects) the node agent's exec, attach and port-forward.
    public func setPodStreamSource(_ source: (any PodStreamSource)?) {
        podStreamSource.source.withLock { $0 = source }
    }
}

/// The end of an exec or attach: kubelet's Status on the error channel.
enum ExecStatus {
    /// The Status kubelet sends when the command ends.
    static func status(exitCode: Int32, command: [String]) -> JSON {
        if exitCode == 0 { return ["metadata": [:], "status": "Success"] }
        return [
            "metadata": [:], "status": "Failure",
            "message": .string("command terminated with non-zero exit code: error executing command [\(command.joined(separator: " "))], exit code \(exitCode)"),
            "reason": "NonZeroExitCode",
            "details": ["causes": [["reason": "ExitCode", "message": .string(String(exitCode))]]],
        ]
    }

    static func failure(_ error: APIError) -> JSON {
        ["metadata": [:], "status": "Failure", "message": .string(error.message), "reason": .string(error.reason.rawValue),
         "code": .int(Int64(error.code))]
    }
}

/// What an exec or attach session runs once its streams are in place; returns the exit code.
typealias ExecBody = @Sendable (ExecStreams) async throws(APIError) -> Int32

extension ExecStatus {
    /// Runs a session's body; when the client's connection closes first, the body is
    /// cancelled (an attached client that left stops following the container).
    static func run(_ body: @escaping ExecBody, _ streams: ExecStreams, until channel: any Channel,
                    command: [String]) async -> JSON {
        let work = Task { () async -> Result<Int32, APIError> in
            do throws(APIError) {
                return .success(try await body(streams))
            } catch {
                return .failure(error)
            }
        }
        channel.closeFuture.whenComplete { _ in work.cancel() }
        switch await work.value {
        case .success(let code): return status(exitCode: code, command: command)
        case .failure(let error): return failure(error)
        }
    }
}

/// Terminal sizes as kubectl sends them: `{"Width":100,"Height":30}`, one JSON object per line.
enum ResizeMessage {
    static func parse(_ bytes: [UInt8]) -> TerminalSize? {
        guard let json = try? JSON.parse(bytes), let w = json["Width"]?.intValue, let h = json["Height"]?.intValue else { return nil }
        return TerminalSize(width: UInt16(clamping: w), height: UInt16(clamping: h))
    }
}

/// exec and attach over WebSocket (`v5.channel.k8s.io` from kubectl 1.30, and `v4`):
/// binary messages whose first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 the final
/// Status, 4 resize; 255 closes a stream in v5).
enum ExecWebSocket {
    static let protocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]

    /// The subprotocol to answer with, from the client's offer.
    static func negotiate(_ offered: [String]) -> String? {
        protocols.first { offered.contains($0) }
    }

    static func run(messages: AsyncStream<ByteBuffer>, writer: WebSocketWriter, v5: Bool, command: [String],
                    logger: Logger, body: @escaping ExecBody) async {
        let (stdin, stdinSink) = AsyncStream.makeStream(of: [UInt8].self)
        let (resize, resizeSink) = AsyncStream.makeStream(of: TerminalSize.self)
        let streams = ExecStreams(stdin: stdin, resize: resize) { channel, bytes in
            var buffer = ByteBuffer()
            buffer.reserveCapacity(bytes.count + 1)
            buffer.writeInteger(channel)
            buffer.writeBytes(bytes)
            try? await writer.send(buffer).get()
        }
        // The reader runs beside the command: stdin and resize messages arrive while it runs.
        let reader = Task {
            for await var message in messages {
                guard let channel = message.readInteger(as: UInt8.self) else { continue }
                let payload = message.readBytes(length: message.readableBytes) ?? []
                switch channel {
                case 0:
                    stdinSink.yield(payload)
                case 4:
                    if let size = ResizeMessage.parse(payload) { resizeSink.yield(size) }
                case 255 where v5 && payload.first == 0:
                    stdinSink.finish()
                default:
                    break
                }
            }
            stdinSink.finish()
            resizeSink.finish()
        }
        let final = await ExecStatus.run(body, streams, until: writer.channel, command: command)
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt8(3))
        buffer.writeBytes(final.serialized())
        try? await writer.send(buffer).get()
        await writer.close()
        reader.cancel()
        stdinSink.finish()
        resizeSink.finish()
    }
}

/// exec and attach over SPDY/3.1 (kubectl 1.27-1.29, and the fallback of newer ones): the
/// client opens one stream per purpose (`streamtype` error, stdin, stdout, stderr, resize);
/// stdout and stderr end with FIN, then the Status goes on `error` (protocol v4).
enum ExecSPDY {
    /// Version 4 puts a Status on the error stream; older ones lose exit codes.
    static let version = "v4.channel.k8s.io"
    /// How long the client has to open its streams (the kubelet's default too).
    static let streamWait: Duration = .seconds(30)

    static func run(connection: SPDYConnection, options: PodExecOptions, logger: Logger, body: @escaping ExecBody) async {
        var wanted: Set<String> = ["error"]
        if options.stdin { wanted.insert("stdin") }
        if options.stdout { wanted.insert("stdout") }
        if options.stderr && !options.tty { wanted.insert("stderr") }
        if options.tty { wanted.insert("resize") }
        let timeout = Task {
            try await Task.sleep(for: streamWait)
            logger.info("closing an exec connection whose streams did not all arrive")
            connection.inputEnded()
        }
        var byType: [String: SPDYStream] = [:]
        for await stream in connection.streams {
            byType[stream.streamType] = stream
            if wanted.isSubset(of: Set(byType.keys)) { break }
        }
        timeout.cancel()
        guard wanted.isSubset(of: Set(byType.keys)), let errorStream = byType["error"] else {
            await connection.close()
            return
        }
        let stdout = byType["stdout"]
        let stderr = byType["stderr"]
        let stdinStream = byType["stdin"]
        let resizeStream = byType["resize"]
        let (stdin, stdinSink) = AsyncStream.makeStream(of: [UInt8].self)
        let (resize, resizeSink) = AsyncStream.makeStream(of: TerminalSize.self)
        let feeders = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    if let input = stdinStream {
                        for await chunk in input.inbound {
                            stdinSink.yield(Array(chunk.readableBytesView))
                            input.consumed(chunk.readableBytes)
                        }
                    }
                    stdinSink.finish()
                }
                group.addTask {
                    if let sizes = resizeStream {
                        var pending: [UInt8] = []
                        for await chunk in sizes.inbound {
                            pending += chunk.readableBytesView
                            sizes.consumed(chunk.readableBytes)
                            while let newline = pending.firstIndex(of: 0x0a) {
                                if let size = ResizeMessage.parse(Array(pending[..<newline])) { resizeSink.yield(size) }
                                pending.removeSubrange(...newline)
                            }
                        }
                    }
                    resizeSink.finish()
                }
            }
        }
        let streams = ExecStreams(stdin: stdin, resize: resize) { channel, bytes in
            let target = channel == 2 ? (stderr ?? stdout) : stdout
            await target?.write(ByteBuffer(bytes: bytes))
        }
        let final = await ExecStatus.run(body, streams, until: connection.channel, command: options.command)
        await stdout?.finish()
        await stderr?.finish()
        await errorStream.write(ByteBuffer(bytes: final.serialized()), fin: true)
        feeders.cancel()
        stdinSink.finish()
        resizeSink.finish()
        await connection.close()
    }
}

extension APIService {
    /// The container an exec means: the named one, or the pod's first (kubectl names it).
    static func execContainerName(_ requested: String?, pod: JSON) throws(APIError) -> String {
        let names = (pod[path: "spec", "containers"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
            + (pod[path: "spec", "initContainers"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        guard let requested else {
            guard let first = names.first else { throw APIError.badRequest("pod \(pod.name ?? "") has no containers") }
            return first
        }
        guard names.contains(requested) else {
            throw APIError.badRequest("container \(requested) is not valid for pod \(pod.name ?? "")")
        }
        return requested
    }
}
