import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
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

/// Where commands run: the node agent, injected by the cluster (APIServer knows no runtime).
public protocol PodExecSource: Sendable {
    /// Runs `options.command` in the container and returns its exit code. Errors thrown before
    /// the command starts (not running, no such executable) reach the client as a Status.
    func exec(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
              streams: ExecStreams) async throws(APIError) -> Int32
}

final class PodExecSourceSlot: Sendable {
    let source = Mutex<(any PodExecSource)?>(nil)
}

extension APIService {
    /// Connects (or, with nil, disconnects) the node agent's exec.
    public func setPodExecSource(_ source: (any PodExecSource)?) {
        podExecSource.source.withLock { $0 = source }
    }
}

/// `kubectl exec` over WebSocket (`v5.channel.k8s.io`, kubectl 1.30 and newer; `v4` too):
/// binary messages whose first byte is the channel (0 stdin, 1 stdout, 2 stderr, 3 the final
/// Status, 4 resize; 255 closes a stream in v5).
enum ExecWebSocket {
    static let protocols = ["v5.channel.k8s.io", "v4.channel.k8s.io"]

    /// The subprotocol to answer with, from the client's offer.
    static func negotiate(_ offered: String?) -> String? {
        let list = (offered ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return protocols.first { list.contains($0) }
    }

    /// The Status kubelet sends on channel 3 when the command ends.
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

    /// Runs the session once the connection is upgraded.
    static func run(inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, source: any PodExecSource,
                    namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
                    v5: Bool, logger: Logger) async {
        let (stdin, stdinSink) = AsyncStream.makeStream(of: [UInt8].self)
        let (resize, resizeSink) = AsyncStream.makeStream(of: TerminalSize.self)
        let writer = OutboundSerializer(outbound)
        let streams = ExecStreams(stdin: stdin, resize: resize) { channel, bytes in
            await writer.send(channel: channel, bytes)
        }
        // The reader runs beside the command: stdin and resize messages arrive while it runs.
        let reader = Task {
            do {
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .binary(var buffer) = message, let channel = buffer.readInteger(as: UInt8.self) else { continue }
                    let payload = buffer.readBytes(length: buffer.readableBytes) ?? []
                    switch channel {
                    case 0:
                        stdinSink.yield(payload)
                    case 4:
                        if let json = try? JSON.parse(payload), let w = json["Width"]?.intValue, let h = json["Height"]?.intValue {
                            resizeSink.yield(TerminalSize(width: UInt16(clamping: w), height: UInt16(clamping: h)))
                        }
                    case 255 where v5 && payload.first == 0:
                        stdinSink.finish()
                    default:
                        break
                    }
                }
            } catch {
                logger.debug("exec stream ended", metadata: ["error": "\(error)"])
            }
            stdinSink.finish()
            resizeSink.finish()
        }
        let final: JSON
        do {
            let code = try await source.exec(namespace: namespace, pod: pod, uid: uid, container: container,
                                             options: options, streams: streams)
            final = status(exitCode: code, command: options.command)
        } catch {
            final = failure(error)
        }
        await writer.send(channel: 3, final.serialized())
        await writer.close()
        reader.cancel()
    }
}

/// Writes channel messages one at a time (stdout and stderr come from different threads).
actor OutboundSerializer {
    let outbound: WebSocketOutboundWriter
    var closed = false

    init(_ outbound: WebSocketOutboundWriter) { self.outbound = outbound }

    func send(channel: UInt8, _ bytes: [UInt8]) async {
        guard !closed else { return }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(bytes.count + 1)
        buffer.writeInteger(channel)
        buffer.writeBytes(bytes)
        do {
            try await outbound.write(.binary(buffer))
        } catch {
            closed = true
        }
    }

    func close() async {
        guard !closed else { return }
        closed = true
        try? await outbound.close(.normalClosure, reason: nil)
    }
}

extension APIHandler {
    /// Decides a WebSocket upgrade: only `pods/NAME/exec` with a channel subprotocol, from an
    /// authenticated user, for a running container. Anything else falls through to the
    /// normal handler, which answers with a Status.
    func shouldUpgrade(_ request: HTTPRequest, channel: any Channel,
                       logger: Logger) async -> ShouldUpgradeResult<WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>> {
        let target = request.path ?? ""
        let pathPart = String(target.split(separator: "?", maxSplits: 1).first ?? "")
        let query = Query(target.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init))
        guard let info = RequestInfo.parse(method: "GET", path: pathPart, query: query),
              info.group.isEmpty, info.resource == "pods", info.subresource == "exec",
              let namespace = info.namespace, let name = info.name,
              let chosen = ExecWebSocket.negotiate(request.headerFields[HTTPField.Name("Sec-WebSocket-Protocol")!]),
              let source = api.podExecSource.source.withLock({ $0 })
        else { return .dontUpgrade }
        do {
            _ = try await authenticate(authorization: request.headerFields[.authorization], channel: channel)
            let pod = try await api.get(Resources.pods, namespace: namespace, name: name)
            let options = PodExecOptions(query: query)
            let container = try APIService.execContainerName(options.container, pod: pod)
            if options.command.isEmpty { return .dontUpgrade }
            let v5 = chosen.hasPrefix("v5")
            let uid = pod.uid ?? ""
            var headers = HTTPFields()
            headers[HTTPField.Name("Sec-WebSocket-Protocol")!] = chosen
            return .upgrade(headers) { inbound, outbound, _ in
                await ExecWebSocket.run(inbound: inbound, outbound: outbound, source: source, namespace: namespace, pod: name,
                                        uid: uid, container: container, options: options, v5: v5, logger: logger)
            }
        } catch {
            return .dontUpgrade
        }
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
