import NIOSSL

/// `tls CERT KEY [CA]` in a `tls://` server block: DNS over TLS (RFC 7858) with that
/// certificate. The listener reads the context; queries pass straight through.
public final class TLSPlugin: DNSPlugin {
    public let name = "tls"
    public let context: NIOSSLContext

    public init(context: NIOSSLContext) { self.context = context }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.count == 2 || d.args.count == 3 else {
            throw PluginSetupError("tls", line: d.line, "tls needs CERT KEY [CA]")
        }
        do {
            let chain = try NIOSSLCertificate.fromPEMBytes(Array(try s.readFile(d.args[0]).utf8)).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(bytes: Array(try s.readFile(d.args[1]).utf8), format: .pem)
            var config = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
            if d.args.count == 3 {
                let cas = try NIOSSLCertificate.fromPEMBytes(Array(try s.readFile(d.args[2]).utf8))
                config.trustRoots = .certificates(cas)
                config.certificateVerification = .noHostnameVerification
            }
            config.applicationProtocols = ["dot"]
            return TLSPlugin(context: try NIOSSLContext(configuration: config))
        } catch let e as PluginSetupError {
            throw e
        } catch {
            throw PluginSetupError("tls", line: d.line, "cannot load certificate \(d.args[0]) or key \(d.args[1]): \(error)")
        }
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }
}
