import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOWebSocket
import Synchronization

/// The server end of an upgraded WebSocket, on top of NIO's frame codec: answers pings,
/// completes the close handshake, and delivers the payload either as whole binary messages
/// (exec and attach channels) or as a byte stream (SPDY carried inside the messages, which
/// kubectl 1.31+ uses for port-forward; a frame may end mid-SPDY-frame).
final class WebSocketConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Delivery {
        case messages(AsyncStream<ByteBuffer>.Continuation)
        case spdy(SPDYFrameParser, SPDYConnection)
    }

    private let delivery: Delivery
    private let maxMessage: Int
    private var partial: ByteBuffer?
    private var partialIsBinary = false
    private let closeSent: NIOLockedValueBox<Bool>

    init(delivery: Delivery, closeSent: NIOLockedValueBox<Bool>, maxMessage: Int = 1 << 20) {
        self.delivery = delivery
        self.closeSent = closeSent
        self.maxMessage = maxMessage
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .pong:
            break
        case .connectionClose:
            var data = frame.unmaskedData
            let code = data.readInteger(as: UInt16.self) ?? 1000
            respondToClose(context: context, code: code)
        case .text, .binary, .continuation:
            if frame.opcode != .continuation {
                partialIsBinary = frame.opcode == .binary
                partial = nil
            }
            guard partialIsBinary else {
                // Every kubectl stream protocol is binary; text is a protocol violation.
                fail(context: context, code: 1003)
                return
            }
            var payload = frame.unmaskedData
            switch delivery {
            case .spdy(let parser, let connection):
                SPDYBytesHandler.feed(&payload, parser: parser, connection: connection, context: context)
            case .messages(let sink):
                if partial == nil { partial = payload } else { partial?.writeBuffer(&payload) }
                if (partial?.readableBytes ?? 0) > maxMessage {
                    fail(context: context, code: 1009)
                    return
                }
                if frame.fin, let message = partial {
                    partial = nil
                    sink.yield(message)
                }
            }
        default:
            fail(context: context, code: 1002)
        }
    }

    private func respondToClose(context: ChannelHandlerContext, code: UInt16) {
        let first = closeSent.withLockedValue { sent -> Bool in
            defer { sent = true }
            return !sent
        }
        ended()
        let channel = context.channel
        if first {
            var body = context.channel.allocator.buffer(capacity: 2)
            body.writeInteger(code)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: body))).whenComplete { _ in
                channel.close(promise: nil)
            }
        } else {
            context.close(promise: nil)
        }
    }

    private func fail(context: ChannelHandlerContext, code: UInt16) {
        respondToClose(context: context, code: code)
    }

    private func ended() {
        switch delivery {
        case .messages(let sink): sink.finish()
        case .spdy(_, let connection): connection.inputEnded()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        ended()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed {
            // End of stream without a close frame: the client is gone.
            ended()
            context.close(promise: nil)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ended()
        context.close(promise: nil)
    }
}

/// Writes binary messages and the closing handshake of an upgraded WebSocket.
struct WebSocketWriter: Sendable {
    let channel: any Channel
    let closeSent: NIOLockedValueBox<Bool>

    func send(_ payload: ByteBuffer) -> EventLoopFuture<Void> {
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, data: payload))
    }

    /// Sends a close frame (1000 unless told) and waits briefly for the client's answer,
    /// which closes the connection.
    func close(code: UInt16 = 1000) async {
        let first = closeSent.withLockedValue { sent -> Bool in
            defer { sent = true }
            return !sent
        }
        if first {
            var body = channel.allocator.buffer(capacity: 2)
            body.writeInteger(code)
            try? await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: body)).get()
        }
        let channel = self.channel
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
        try? await channel.closeFuture.get()
        deadline.cancel()
    }
}
