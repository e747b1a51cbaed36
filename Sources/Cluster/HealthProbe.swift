import NIOCore
import NIOPosix
import NIOSSL

/// A one-shot HTTPS GET against the cluster's own API, trusting only the cluster CA.
///
/// `labnode up` and `labnode status` use it to tell "the process runs" from "the API answers".
public enum HealthProbe {
    public struct Reply: Sendable {
        public var status: Int
        public var body: String
    }

    public static func get(host: String, port: Int, path: String, caPEM: String, timeout: TimeAmount = .seconds(2)) async throws -> Reply {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(caPEM.utf8)))
        tls.certificateVerification = .noHostnameVerification
        tls.applicationProtocols = ["http/1.1"]
        let context = try NIOSSLContext(configuration: tls)
        let collector = ReplyCollector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(collector)
                }
            }
            .connect(host: host, port: port).get()
        let request = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: labnode-probe\r\nConnection: close\r\n\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request)).get()
        let scheduled = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        try await channel.closeFuture.get()
        scheduled.cancel()
        let text = collector.text()
        guard text.hasPrefix("HTTP/1."), let code = Int(text.dropFirst(9).prefix(3)) else {
            throw ClusterError.daemon("no HTTP reply from \(host):\(port)")
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Reply(status: code, body: body)
    }

    final class ReplyCollector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        // Touched only on the channel's event loop until the channel closes; read after.
        private var buffer = ByteBuffer()

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            buffer.writeBuffer(&b)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }

        func text() -> String { String(buffer: buffer) }
    }
}
