import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// How a client asked to turn its HTTP/1.1 connection into a stream connection.
enum StreamUpgradeKind: Sendable {
    /// `Upgrade: websocket`, offering these `Sec-WebSocket-Protocol` values.
    case webSocket(offered: [String])
    /// `Upgrade: SPDY/3.1`, offering these `X-Stream-Protocol-Version` values.
    case spdy(offered: [String])
}

/// An accepted upgrade: the protocol to name in the 101, and the session that runs after it.
struct StreamPlan: Sendable {
    /// Subprotocol (WebSocket) or stream protocol version (SPDY) agreed on.
    var chosenProtocol: String
    /// True when the WebSocket messages carry SPDY (port-forward from kubectl 1.31).
    var spdyInWebSocket = false
    var run: @Sendable (StreamTransport) async -> Void
}

/// What a session talks over once the connection is upgraded.
enum StreamTransport: Sendable {
    /// WebSocket binary messages, first byte the channel (exec, attach).
    case channels(messages: AsyncStream<ByteBuffer>, writer: WebSocketWriter)
    /// SPDY streams, raw or inside WebSocket messages.
    case spdy(SPDYConnection)
}

/// Decides an upgrade request: the plan, or the Status that declines it. NIO's upgrade
/// handler does not pass a declined request on to HTTP, so the channel answers it itself.
typealias StreamPlanner = @Sendable (HTTPRequestHead, StreamUpgradeKind, any Channel, Logger) async -> Result<StreamPlan, APIError>

/// The API server's HTTP/1.1 connection: plain requests go to Hummingbird's responder;
/// `Upgrade: websocket` and `Upgrade: SPDY/3.1` requests for exec, attach and
/// port-forward become stream sessions. Hummingbird's WebSocket channel knows only
/// WebSocket, and kubectl before 1.30 speaks only SPDY, so both upgraders live here.
struct StreamingHTTPChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case upgraded(@Sendable () async -> Void)
        case notUpgraded(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
        /// Why the first request's upgrade was declined, if it was.
        let declined: NIOLockedValueBox<APIError?>
    }

    let responder: HTTPChannelHandler.Responder
    let planner: StreamPlanner
    /// Answers plain GETs on the event loop (`ImmediateAnswerHandler`); nil sends everything
    /// through Hummingbird.
    let immediate: ImmediateResponder?
    let configuration = HTTP1Channel.Configuration()
    /// Largest WebSocket frame accepted from a client (kubectl's are at most 32 KiB).
    static let maxFrameSize = 1 << 20

    init(responder: @escaping HTTPChannelHandler.Responder, immediate: ImmediateResponder? = nil,
         planner: @escaping StreamPlanner) {
        self.planner = planner
        self.immediate = immediate
        self.responder = Self.reconnectingResponder(responder)
    }

    /// An upgrade request can only be served as a connection's first request (NIO's
    /// upgrade handler is gone after it). A later one is told to come back on a new
    /// connection, with a redirect to the same URL and `Connection: close`.
    static func reconnectingResponder(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct Reconnect: Error {}
        return { request, writer, channel in
            let upgrade = (request.headers[.upgrade] ?? "").lowercased()
            guard upgrade == "websocket" || upgrade == "spdy/3.1" else {
                try await responder(request, writer, channel)
                return
            }
            var target = request.uri.path
            if let query = request.uri.query { target += "?\(query)" }
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: target]))
            throw Reconnect()
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let planner = self.planner
            // The plan decided while building the 101, for the pipeline step that follows it.
            let decided = NIOLockedValueBox<StreamPlan?>(nil)
            let declined = NIOLockedValueBox<APIError?>(nil)
            let webSocket = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: Self.maxFrameSize,
                shouldUpgrade: { channel, head in
                    let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
                    promise.completeWithTask {
                        let offered = head.headers["Sec-WebSocket-Protocol"]
                            .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
                        let plan: StreamPlan
                        switch await planner(head, .webSocket(offered: offered), channel, logger) {
                        case .success(let accepted): plan = accepted
                        case .failure(let error):
                            declined.withLockedValue { $0 = error }
                            return nil
                        }
                        decided.withLockedValue { $0 = plan }
                        return HTTPHeaders([("Sec-WebSocket-Protocol", plan.chosenProtocol)])
                    }
                    return promise.futureResult
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let plan = decided.withLockedValue({ $0 }) else { throw ChannelError.inappropriateOperationForState }
                        let closeSent = NIOLockedValueBox(false)
                        let transport: StreamTransport
                        if plan.spdyInWebSocket {
                            let connection = try SPDYConnection(channel: channel, carrier: .webSocket, logger: logger)
                            try channel.pipeline.syncOperations.addHandler(WebSocketConnectionHandler(
                                delivery: .spdy(try SPDYFrameParser(), connection), closeSent: closeSent))
                            transport = .spdy(connection)
                        } else {
                            let (messages, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
                            try channel.pipeline.syncOperations.addHandler(WebSocketConnectionHandler(
                                delivery: .messages(sink), closeSent: closeSent))
                            transport = .channels(messages: messages, writer: WebSocketWriter(channel: channel, closeSent: closeSent))
                        }
                        return UpgradeResult.upgraded { await plan.run(transport) }
                    }
                }
            )
            let spdy = SPDYUpgrader(planner: planner, decided: decided, declined: declined, logger: logger)
            let upgrades = NIOTypedHTTPServerUpgradeConfiguration<UpgradeResult>(
                upgraders: [webSocket, spdy],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        return UpgradeResult.notUpgraded(try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true)))
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgrades)
            pipeline.enablePipelining = false  // NIOAsyncChannel pipelines HTTP
            pipeline.enableErrorHandling = false  // Hummingbird answers malformed requests
            pipeline.enableResponseHeaderValidation = false  // HTTPTypes validates
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            if let immediate = self.immediate {
                // Between the codec and the upgrader, so that it sees requests before anything decides on them.
                let upgrader = try channel.pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<UpgradeResult>.self)
                try channel.pipeline.syncOperations.addHandler(ImmediateAnswerHandler(responder: immediate), position: .before(upgrader))
            }
            return Value(upgradeResult: result, channel: channel, declined: declined)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .notUpgraded(let http):
                if let refusal = value.declined.withLockedValue({ $0 }) {
                    await Self.refuse(http, refusal)
                } else {
                    await handleHTTP(asyncChannel: http, logger: logger)
                }
            case .upgraded(let session):
                await session()
            }
        } catch let error as ChannelError where error == .inputClosed {
            logger.trace("connection closed during an upgrade")
        } catch {
            logger.debug("connection ended during an upgrade", metadata: ["error": "\(error)"])
        }
    }
}

extension StreamingHTTPChannel {
    /// Answers a declined upgrade with its Status and closes the connection (kubectl then
    /// falls back from WebSocket to SPDY, or prints the message).
    static func refuse(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, _ error: APIError) async {
        let body = ByteBuffer(bytes: error.status.serialized())
        let head = HTTPResponse(status: .init(code: error.code),
                                headerFields: [.contentType: "application/json", .contentLength: String(body.readableBytes),
                                               .connection: "close"])
        try? await http.executeThenClose { _, outbound in
            try await outbound.write(contentsOf: [.head(head), .body(body), .end(nil)])
        }
    }
}

/// `Upgrade: SPDY/3.1` (kubectl up to 1.29 for exec and attach, up to 1.30 for port-forward,
/// and any kubectl after a WebSocket refusal). The 101 names the chosen
/// `X-Stream-Protocol-Version`; afterwards the connection carries SPDY frames.
struct SPDYUpgrader: NIOTypedHTTPServerProtocolUpgrader {
    typealias UpgradeResult = StreamingHTTPChannel.UpgradeResult
    struct Declined: Error {}

    let planner: StreamPlanner
    let decided: NIOLockedValueBox<StreamPlan?>
    let declined: NIOLockedValueBox<APIError?>
    let logger: Logger

    var supportedProtocol: String { "spdy/3.1" }
    var requiredUpgradeHeaders: [String] { [] }

    func buildUpgradeResponse(channel: any Channel, upgradeRequest: HTTPRequestHead,
                              initialResponseHeaders: HTTPHeaders) -> EventLoopFuture<HTTPHeaders> {
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders.self)
        let (planner, decided, declined, logger) = (self.planner, self.decided, self.declined, self.logger)
        promise.completeWithTask {
            // Several offers come as repeated headers or as one comma-separated list.
            let offered = upgradeRequest.headers["X-Stream-Protocol-Version"]
                .flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
            let plan: StreamPlan
            switch await planner(upgradeRequest, .spdy(offered: offered), channel, logger) {
            case .success(let accepted): plan = accepted
            case .failure(let error):
                declined.withLockedValue { $0 = error }
                throw Declined()
            }
            decided.withLockedValue { $0 = plan }
            var headers = initialResponseHeaders
            headers.add(name: "X-Stream-Protocol-Version", value: plan.chosenProtocol)
            return headers
        }
        return promise.futureResult
    }

    func upgrade(channel: any Channel, upgradeRequest: HTTPRequestHead) -> EventLoopFuture<UpgradeResult> {
        let (decided, logger) = (self.decided, self.logger)
        return channel.eventLoop.makeCompletedFuture {
            guard let plan = decided.withLockedValue({ $0 }) else { throw Declined() }
            let connection = try SPDYConnection(channel: channel, carrier: .raw, logger: logger)
            try channel.pipeline.syncOperations.addHandler(try SPDYBytesHandler(connection: connection))
            return UpgradeResult.upgraded { await plan.run(.spdy(connection)) }
        }
    }
}
