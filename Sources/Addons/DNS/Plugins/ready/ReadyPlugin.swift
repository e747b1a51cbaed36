import NIOHTTP1
import Synchronization

/// `GET :8181/ready` answers 200 "OK" once every plugin that reports readiness (kubernetes,
/// after its first sync) is ready, else 503 with the names of those that are not.
public final class ReadyPlugin: DNSPlugin {
    public let name = "ready"
    public let address: String
    let shared: SharedPlugins
    /// The plugins to ask; filled by the server once every chain is built.
    let watched = Mutex<[any DNSPlugin]>([])
    let stopping = Mutex(false)

    public init(address: String, shared: SharedPlugins) {
        self.address = address
        self.shared = shared
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.count <= 1, d.block.isEmpty else { throw PluginSetupError("ready", line: d.line, "ready takes at most one address") }
        return ReadyPlugin(address: d.args.first ?? ":8181", shared: s.shared)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }

    public func watch(_ plugins: [any DNSPlugin]) { watched.withLock { $0 = plugins } }

    /// During lameduck the server is on its way out: not ready, so no new traffic comes.
    public func markStopping() { stopping.withLock { $0 = true } }

    public var notReady: [String] {
        if stopping.withLock({ $0 }) { return ["lameduck"] }
        return watched.withLock { $0 }.filter { $0.isReady == false }.map(\.name).sorted()
    }

    public func start(_ context: PluginContext) async throws {
        try await shared.serve(address: address, path: "/ready") { [weak self] in
            let missing = self?.notReady ?? ["ready"]
            if missing.isEmpty { return (.ok, "text/plain; charset=utf-8", Array("OK".utf8)) }
            return (.serviceUnavailable, "text/plain; charset=utf-8", Array(missing.joined(separator: ", ").utf8))
        }
    }
}
