import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import Synchronization

/// Certificates and keys the HTTPS listener needs, all PEM.
public struct TLSMaterial: Sendable {
    public var certificateChainPEM: String
    public var privateKeyPEM: String
    /// Client certificates are optional, but when presented they must chain to this CA.
    public var clientCAPEM: String

    public init(certificateChainPEM: String, privateKeyPEM: String, clientCAPEM: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.clientCAPEM = clientCAPEM
    }

    func serverConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        let cas = try NIOSSLCertificate.fromPEMBytes(Array(clientCAPEM.utf8))
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.certificateVerification = .optionalVerification
        c.trustRoots = .certificates(cas)
        c.sendCANameList = true
        // HTTP/1.1 only: exec and port-forward are HTTP/1.1 upgrades, and kubectl would pick h2 if offered.
        c.applicationProtocols = ["http/1.1"]
        return c
    }
}

/// Reads the verified peer certificate from the connection's TLS handler.
public struct NIOSSLPeerCertificates: PeerCertificateSource {
    public init() {}

    public func peerCertificateDER(_ channel: any Channel) async -> [UInt8]? {
        guard let cert = try? await channel.nioSSL_peerCertificate().get() else { return nil }
        return try? cert.toDERBytes()
    }
}

/// The API server as a service of the cluster's ServiceGroup.
public struct APIServerService: Service {
    public let handler: APIHandler
    public let host: String
    public let port: Int
    public let tls: TLSMaterial?
    public let logger: Logger
    /// Called with the bound port once the listener is up (port 0 binds an ephemeral one).
    public let onListening: @Sendable (Int) async -> Void

    public init(handler: APIHandler, host: String, port: Int, tls: TLSMaterial?, logger: Logger,
                onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.handler = handler
        self.host = host
        self.port = port
        self.tls = tls
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        let server: HTTPServerBuilder
        let handler = self.handler
        // exec, attach and port-forward arrive as WebSocket or SPDY upgrades; every other
        // request is plain HTTP/1.1.
        let http = HTTPServerBuilder { responder in
            StreamingHTTPChannel(responder: responder, immediate: handler.immediateResponder) { head, kind, channel, logger in
                await handler.planStream(head, kind: kind, channel: channel, logger: logger)
            }
        }
        if let tls {
            server = try .tls(http, tlsConfiguration: tls.serverConfiguration())
        } else {
            server = http
        }
        let onListening = self.onListening
        let app = Application(
            responder: handler,
            server: server,
            configuration: .init(address: .hostname(host, port: port), serverName: nil, backlog: 1024),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        let api = handler.api
        try await withGracefulShutdownHandler {
            try await app.run()
        } onGracefulShutdown: {
            api.endWatches()
        }
    }
}
