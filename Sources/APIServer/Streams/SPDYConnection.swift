import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// How SPDY bytes travel: straight on the upgraded connection (kubectl up to 1.30), or
/// inside binary WebSocket messages (port-forward from kubectl 1.31).
enum SPDYCarrier: Sendable {
    case raw
    case webSocket
}

/// One stream the client opened (SYN_STREAM). The server answers each with SYN_REPLY at
/// once: kubectl waits for that reply before it uses the stream.
final class SPDYStream: Sendable {
    let id: UInt32
    let headers: [String: String]
    /// DATA from the client; finishes on FIN, RST_STREAM or the end of the connection.
    let inbound: AsyncStream<ByteBuffer>
    fileprivate let sink: AsyncStream<ByteBuffer>.Continuation
    // Strong: the connection drops its streams when it ends, which breaks the cycle.
    private let connection: SPDYConnection
    private let state = Mutex<(localClosed: Bool, reset: Bool)>((false, false))

    fileprivate init(id: UInt32, headers: [String: String], connection: SPDYConnection) {
        self.id = id
        self.headers = headers
        self.connection = connection
        (inbound, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
    }

    var streamType: String { headers["streamtype"] ?? "" }

    /// Sends DATA; `fin` closes the server's side. Suspends while the connection's send
    /// buffer is full (NIO's writability), which keeps a fast producer from queueing without
    /// bound while letting writes pipeline when the client keeps up.
    func write(_ bytes: ByteBuffer, fin: Bool = false) async {
        let allowed = state.withLock { s -> Bool in
            if s.localClosed || s.reset { return false }
            if fin { s.localClosed = true }
            return true
        }
        guard allowed else { return }
        let written = connection.send(.data(streamID: id, fin: fin, payload: bytes))
        if fin || !connection.channel.isWritable { try? await written.get() }
    }

    /// Closes the server's side (an empty DATA frame with FIN), once.
    func finish() async {
        await write(ByteBuffer(), fin: true)
    }

    /// Bytes the consumer of `inbound` has handed on, so that reading can resume.
    func consumed(_ count: Int) {
        connection.consumed(count)
    }

    /// True when the client reset the stream or the connection ended under it.
    var wasReset: Bool { state.withLock { $0.reset } }

    fileprivate func resetByPeer() {
        state.withLock { $0.reset = true }
        sink.finish()
    }
}

/// The server side of one SPDY/3.1 connection: parses frames as they arrive (on the event
/// loop), replies to new streams, answers PINGs, and hands streams to the session that
/// runs on top (exec, attach, port-forward).
final class SPDYConnection: Sendable {
    let channel: any Channel
    let carrier: SPDYCarrier
    let logger: Logger
    /// Streams in the order the client opened them; finishes when the client goes away.
    let streams: AsyncStream<SPDYStream>
    private let streamSink: AsyncStream<SPDYStream>.Continuation

    private struct State: ~Copyable {
        var writer: SPDYFrameWriter
        var open: [UInt32: SPDYStream] = [:]
        var lastStreamID: UInt32 = 0
        var buffered = 0
        var readingPaused = false
        var closed = false
    }
    private let state: Mutex<State>
    /// Client bytes queued in streams before reading pauses (port-forward into a slow pod).
    static let pauseAbove = 8 << 20
    static let resumeBelow = 1 << 20

    init(channel: any Channel, carrier: SPDYCarrier, logger: Logger) throws(SPDYProtocolError) {
        self.channel = channel
        self.carrier = carrier
        self.logger = logger
        state = Mutex(State(writer: try SPDYFrameWriter()))
        (streams, streamSink) = AsyncStream.makeStream(of: SPDYStream.self)
    }

    /// Encodes and queues a frame. Encoding happens under the lock and the write is
    /// queued on the event loop in that same order, which keeps the header compression
    /// context in step with the bytes on the wire.
    @discardableResult
    func send(_ frame: SPDYFrame) -> EventLoopFuture<Void> {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let channel = self.channel
        let carrier = self.carrier
        state.withLock { s in
            guard !s.closed else {
                promise.fail(ChannelError.ioOnClosedChannel)
                return
            }
            // DATA goes out as its 8-byte header and the payload as is (no copy); the carrier
            // frames them together.
            var head = channel.allocator.buffer(capacity: 64)
            var payload: ByteBuffer?
            if case .data(let id, let fin, let bytes) = frame {
                s.writer.encode(.data(streamID: id, fin: fin, payload: ByteBuffer()), into: &head)
                head.setInteger(UInt32(fin ? SPDYFrame.flagFin : 0) << 24 | UInt32(bytes.readableBytes), at: head.readerIndex + 4)
                payload = bytes
            } else {
                s.writer.encode(frame, into: &head)
            }
            let (header, body) = (head, payload)
            channel.eventLoop.execute {
                switch carrier {
                case .raw:
                    if let body {
                        channel.write(header, promise: nil)
                        channel.writeAndFlush(body, promise: promise)
                    } else {
                        channel.writeAndFlush(header, promise: promise)
                    }
                case .webSocket:
                    var message = header
                    if var body { message.writeBuffer(&body) }
                    channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: message), promise: promise)
                }
            }
        }
        return promise.futureResult
    }

    /// Handles one frame from the client (called on the event loop, in wire order).
    func received(_ frame: SPDYFrame) {
        switch frame {
        case .synStream(let id, _, let fin, let headers):
            let stream = SPDYStream(id: id, headers: headers, connection: self)
            let accepted = state.withLock { s -> Bool in
                // Client streams are odd and increasing (SPDY/3 2.3.2).
                guard !s.closed, id % 2 == 1, id > s.lastStreamID else { return false }
                s.lastStreamID = id
                s.open[id] = stream
                return true
            }
            guard accepted else {
                send(.rstStream(streamID: id, status: SPDYFrame.protocolError))
                return
            }
            send(.synReply(streamID: id, fin: false, headers: [:]))
            if fin { stream.sink.finish() }
            streamSink.yield(stream)
        case .data(let id, let fin, let payload):
            guard let stream = state.withLock({ $0.open[id] }) else {
                send(.rstStream(streamID: id, status: SPDYFrame.invalidStream))
                return
            }
            if payload.readableBytes > 0 {
                let pause = state.withLock { s -> Bool in
                    s.buffered += payload.readableBytes
                    if s.buffered > Self.pauseAbove && !s.readingPaused {
                        s.readingPaused = true
                        return true
                    }
                    return false
                }
                if pause { channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in } }
                stream.sink.yield(payload)
            }
            if fin { stream.sink.finish() }
        case .rstStream(let id, _):
            state.withLock { $0.open.removeValue(forKey: id) }?.resetByPeer()
        case .ping(let id):
            send(.ping(id: id))
        case .goAway:
            streamSink.finish()
        case .synReply, .settings, .headers, .windowUpdate:
            // kubectl does no flow control and the server opens no streams.
            break
        }
    }

    /// Drops a finished stream from the table (long port-forward sessions open many).
    func forget(_ id: UInt32) {
        state.withLock { _ = $0.open.removeValue(forKey: id) }
    }

    func consumed(_ count: Int) {
        let resume = state.withLock { s -> Bool in
            s.buffered = max(0, s.buffered - count)
            if s.readingPaused && s.buffered < Self.resumeBelow {
                s.readingPaused = false
                return true
            }
            return false
        }
        if resume { channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in } }
    }

    /// The client is gone (or sent garbage): every stream ends.
    func inputEnded() {
        let streams = state.withLock { s -> [SPDYStream] in
            let all = Array(s.open.values)
            s.open.removeAll()
            return all
        }
        for stream in streams { stream.resetByPeer() }
        streamSink.finish()
    }

    /// Says goodbye (GOAWAY), then closes the connection once the client has read what was
    /// sent: an abrupt close while it still writes would reset the connection and could
    /// cost it the last bytes.
    func close() async {
        let last = state.withLock { $0.lastStreamID }
        try? await send(.goAway(lastGoodStreamID: last, status: 0)).get()
        state.withLock { $0.closed = true }
        inputEnded()
        try? await channel.close(mode: .output).get()
        let channel = self.channel
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
        deadline.cancel()
    }
}

/// Feeds a raw SPDY byte stream (after an `Upgrade: SPDY/3.1`) to its connection.
final class SPDYBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let parser: SPDYFrameParser
    private let connection: SPDYConnection

    init(connection: SPDYConnection) throws(SPDYProtocolError) {
        self.connection = connection
        parser = try SPDYFrameParser()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        SPDYBytesHandler.feed(&bytes, parser: parser, connection: connection, context: context)
    }

    /// Shared with the WebSocket carrier: parse, dispatch, and on garbage say GOAWAY with
    /// PROTOCOL_ERROR and close.
    static func feed(_ bytes: inout ByteBuffer, parser: SPDYFrameParser, connection: SPDYConnection, context: ChannelHandlerContext) {
        parser.append(&bytes)
        do {
            while let frame = try parser.next() {
                connection.received(frame)
            }
        } catch {
            connection.logger.info("closing a SPDY connection after a bad frame", metadata: ["error": "\(error)"])
            let channel = context.channel
            connection.send(.goAway(lastGoodStreamID: 0, status: SPDYFrame.protocolError)).whenComplete { _ in
                channel.close(promise: nil)
            }
            connection.inputEnded()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.inputEnded()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            // SPDY has no half-closed connections: the client is gone, and closing the channel
            // is what cancels the sessions that were running for it.
            connection.inputEnded()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        connection.inputEnded()
        context.close(promise: nil)
    }
}
