import APIMachinery
import Logging
import NIOCore
import NIOPosix

/// `kubectl port-forward` (portforward.k8s.io over SPDY, raw or inside WebSocket messages).
/// Per local connection kubectl opens an `error` and a `data` stream sharing a `requestid`
/// and naming the `port`; the server dials the port in the pod, copies bytes both ways,
/// maps half-closes to FIN, and writes dial failures on the error stream.
enum PortForwardSession {
    static let spdyProtocol = "portforward.k8s.io"
    static let webSocketProtocol = "SPDY/3.1+portforward.k8s.io"

    static func run(connection: SPDYConnection, target: StreamTarget, source: any PodStreamSource, logger: Logger) async {
        await withTaskGroup(of: Void.self) { group in
            var waiting: [String: (error: SPDYStream?, data: SPDYStream?)] = [:]
            for await stream in connection.streams {
                let request = stream.headers["requestid"] ?? ""
                var pair = waiting[request] ?? (nil, nil)
                switch stream.streamType {
                case "error": pair.error = stream
                case "data": pair.data = stream
                default:
                    logger.debug("port-forward stream of unknown type", metadata: ["type": "\(stream.streamType)"])
                    continue
                }
                guard let error = pair.error, let data = pair.data else {
                    waiting[request] = pair
                    continue
                }
                waiting[request] = nil
                group.addTask {
                    await forward(error: error, data: data, target: target, source: source, channel: connection.channel, logger: logger)
                    connection.forget(error.id)
                    connection.forget(data.id)
                }
            }
            // The client went away: every pair's streams were reset, so the copies end.
        }
        await connection.close()
    }

    static func forward(error: SPDYStream, data: SPDYStream, target: StreamTarget, source: any PodStreamSource,
                        channel: any Channel, logger: Logger) async {
        guard let port = Int(data.headers["port"] ?? ""), (1...65535).contains(port) else {
            await fail(error: error, data: data, "invalid port \(data.headers["port"] ?? "")")
            return
        }
        let pod: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            let fd = try await source.connect(namespace: target.namespace, pod: target.pod, uid: target.uid, port: port)
            pod = try await ClientBootstrap(group: channel.eventLoop)
                .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
                // Bulk copies: large reads mean fewer, larger DATA frames.
                .channelOption(ChannelOptions.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 4096, initial: 65536, maximum: 1 << 20))
                .withConnectedSocket(fd) { child in
                    child.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: child,
                                                                    configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch let failure as APIError {
            await fail(error: error, data: data,
                       "error forwarding port \(port) to pod \(target.pod), uid \(target.uid): \(failure.message)")
            return
        } catch let failure {
            await fail(error: error, data: data,
                       "error forwarding port \(port) to pod \(target.pod), uid \(target.uid): \(failure)")
            return
        }
        do {
            try await pod.executeThenClose { inbound, outbound in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    // Client to pod; FIN becomes a half-close, a reset ends both directions.
                    group.addTask {
                        for await chunk in data.inbound {
                            try await outbound.write(chunk)
                            data.consumed(chunk.readableBytes)
                        }
                        if data.wasReset { throw CancellationError() }
                        outbound.finish()
                    }
                    // Pod to client; the pod's end of stream becomes FIN.
                    group.addTask {
                        for try await chunk in inbound {
                            await data.write(chunk)
                        }
                        await data.finish()
                    }
                    try await group.waitForAll()
                }
            }
        } catch {
            logger.debug("port-forward connection ended", metadata: ["port": "\(port)", "error": "\(error)"])
        }
        await data.finish()
        await error.finish()
    }

    private static func fail(error: SPDYStream, data: SPDYStream, _ message: String) async {
        await error.write(ByteBuffer(string: message), fin: true)
        await data.finish()
    }
}
