import NIOCore
import NIOHTTP1
import NIOSSL

/// Sits between the HTTP/1.1 codec and the rest of a connection's pipeline and answers, on
/// the event loop, the requests `ImmediateResponder` can answer without waiting; every other
/// request goes on to Hummingbird (or to the upgraders) untouched.
///
/// Replies must leave in request order, so a request is only answered here while no earlier
/// one is still with the async path. The first upgrade request removes this handler: after it
/// the connection no longer carries HTTP.
final class ImmediateAnswerHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let responder: ImmediateResponder
    /// Requests passed on whose reply has not been written completely yet.
    var passedOn = 0
    /// A GET held back until its end shows it has no body.
    var held: HTTPRequestHead?
    var state = ImmediateConnectionState()

    init(responder: ImmediateResponder) {
        self.responder = responder
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            responder.activity?.noteRequest()
            if head.headers.contains(name: "upgrade") {
                passOn(context, head)
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
                return
            }
            if passedOn == 0, head.method == .GET, head.version == .http1_1, head.isKeepAlive {
                held = head
                return
            }
            passOn(context, head)
        case .body:
            if let head = held {
                held = nil
                passOn(context, head)
            }
            context.fireChannelRead(data)
        case .end:
            if let head = held {
                held = nil
                if let answer = responder.answer(head, &state, { Self.peerCertificateDER(context) }) {
                    write(answer, context: context)
                    return
                }
                passOn(context, head)
            }
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { passedOn = max(0, passedOn - 1) }
        context.write(data, promise: promise)
    }

    func passOn(_ context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        passedOn += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    static func peerCertificateDER(_ context: ChannelHandlerContext) -> [UInt8]? {
        (try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self))?.peerCertificate
            .flatMap { try? $0.toDERBytes() }
    }

    func write(_ answer: ImmediateAnswer, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.reserveCapacity(3)
        headers.add(name: "Content-Type", value: answer.contentType)
        headers.add(name: "Content-Length", value: String(answer.body.count))
        headers.add(name: "Date", value: HTTPDate.now)
        let buffer = context.channel.allocator.buffer(bytes: answer.body)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
