/// Marks a Corefile to be re-read: every `interval` (± `jitter`) the add-on compares the
/// file's SHA-512 with the running one and, when it changed, starts a server from the new
/// file in place of the old. The plugin itself only carries the settings; `DNSAddon` does the
/// work, because replacing a server is the process's job, not one server block's.
public final class ReloadPlugin: DNSPlugin {
    public let name = "reload"
    public let interval: Duration
    public let jitter: Duration

    public init(interval: Duration = .seconds(30), jitter: Duration = .seconds(15)) {
        self.interval = interval
        self.jitter = jitter
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.count <= 2 else { throw PluginSetupError("reload", line: d.line, "reload takes an interval and a jitter") }
        let interval = try d.args.first.map { a throws(PluginSetupError) -> Duration in
            guard let v = parseDuration(a), v >= .seconds(1) else { throw PluginSetupError("reload", line: d.line, "interval must be at least 1s") }
            return v
        } ?? .seconds(30)
        let jitter = try (d.args.count > 1 ? d.args[1] : nil).map { a throws(PluginSetupError) -> Duration in
            guard let v = parseDuration(a), v <= interval / 2 else {
                throw PluginSetupError("reload", line: d.line, "jitter must be at most half the interval")
            }
            return v
        } ?? min(.seconds(15), interval / 2)
        return ReloadPlugin(interval: interval, jitter: jitter)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }
}
