import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The small HTTP listeners of health (:8080), ready (:8181) and prometheus (:9153). Plugins of
/// several server blocks may name the same address; they then share one listener.
public final class SharedPlugins: Sendable {
    public typealias Handler = @Sendable () -> (status: HTTPResponseStatus, contentType: String, body: [UInt8])

    struct Listener {
        var channel: (any Channel)?
        var routes: [String: Handler]
    }

    private let listeners = Mutex<[String: Listener]>([:])
    let group: any EventLoopGroup

    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.group = group
    }

    /// Serves `path` on `address` (`:8080`, `localhost:9153`, `127.0.0.1:0`); binds on first use.
    /// Returns the bound port.
    @discardableResult
    public func serve(address: String, path: String, handler: @escaping Handler) async throws -> Int {
        let (host, port) = try Self.split(address)
        let key = "\(host):\(port)"
        let existing = listeners.withLock { l -> (any Channel)? in
            l[key, default: Listener(channel: nil, routes: [:])].routes[path] = handler
            return l[key]?.channel
        }
        if let existing { return existing.localAddress?.port ?? port }
        let routes: @Sendable (String) -> Handler? = { [weak self] p in self?.listeners.withLock { $0[key]?.routes[p] } }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMapThrowing {
                    try channel.pipeline.syncOperations.addHandler(HTTPEndpointHandler(routes: routes))
                }
            }
            .bind(host: host, port: port).get()
        listeners.withLock { $0[key]?.channel = channel }
        return channel.localAddress?.port ?? port
    }

    /// The port bound for an address given to `serve` (tests use port 0).
    public func boundPort(_ address: String) -> Int? {
        guard let (host, port) = try? Self.split(address) else { return nil }
        return listeners.withLock { $0["\(host):\(port)"]?.channel?.localAddress?.port }
    }

    public func closeAll() async {
        let channels = listeners.withLock { l -> [any Channel] in
            let c = l.values.compactMap(\.channel)
            l = [:]
            return c
        }
        for c in channels { try? await c.close() }
    }

    /// `:8080` -> all addresses; `localhost:9153` -> loopback.
    static func split(_ address: String) throws -> (String, Int) {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]),
              (0...65535).contains(port) else {
            throw PluginSetupError("http", "invalid listen address \(address) (want HOST:PORT or :PORT)")
        }
        var host = String(address[..<colon])
        if host.isEmpty { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host, port)
    }
}

final class HTTPEndpointHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let routes: @Sendable (String) -> SharedPlugins.Handler?
    private var head: HTTPRequestHead?

    init(routes: @escaping @Sendable (String) -> SharedPlugins.Handler?) { self.routes = routes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body:
            break
        case .end:
            guard let head else { return }
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let (status, type, body) = routes(path)?() ?? (.notFound, "text/plain; charset=utf-8", Array("404 page not found\n".utf8))
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            if head.method != .HEAD {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            }
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [channel = context.channel] _ in
                if !keepAlive { channel.close(promise: nil) }
            }
            self.head = nil
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
