/// Prints errors that happened while answering (an upstream timing out, the API not synced):
/// `[ERROR] plugin/errors: 2 example.org. A: read udp ...: i/o timeout`.
///
/// It watches written answers (an observer) rather than wrapping `next`, so the common
/// error-free query costs it nothing.
public final class ErrorsPlugin: DNSPlugin, ShortcutObserver {
    public let name = "errors"
    let sink: LineSink

    public init(sink: LineSink) { self.sink = sink }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup, sink: LineSink) throws -> any DNSPlugin {
        for sub in d.block where sub.name != "consolidate" {
            throw PluginSetupError("errors", line: sub.line, "unknown property '\(sub.name)'")
        }
        return ErrorsPlugin(sink: sink)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }

    public func written(_ request: DNSRequest, _ response: DNSResponse, size: Int, duration: Duration) {
        guard let error = response.error else { return }
        let q = request.question
        sink.write("[ERROR] plugin/errors: \(response.message.rcode.rawValue) \(q.name) \(q.type): \(error)")
    }

    /// A stored answer carries no error: nothing to print.
    public func written(_ exchange: ShortcutExchange, size: Int, duration: Duration) {}
}
