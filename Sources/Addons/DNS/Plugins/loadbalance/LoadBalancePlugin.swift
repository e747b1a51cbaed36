/// Shuffles the order of A, AAAA and MX records in each answer, so clients that take the
/// first address spread over all of them. CNAMEs stay first, as resolvers need them there.
public final class LoadBalancePlugin: DNSPlugin {
    public let name = "loadbalance"

    public init() {}

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.isEmpty || d.args == ["round_robin"] else {
            throw PluginSetupError("loadbalance", line: d.line, "unknown policy \(d.args.joined(separator: " ")) (round_robin)")
        }
        return LoadBalancePlugin()
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        // A switch, not DNSResult.map: the usual synchronous answer needs no closure.
        switch next(request) {
        case .done(let response): .done(Self.balanced(response))
        case .later(let future): .later(future.map(Self.balanced))
        }
    }

    /// The response with its movable records shuffled. One address has no order to change:
    /// such an answer (and its wire form) stays as it is.
    @Sendable static func balanced(_ response: DNSResponse) -> DNSResponse {
        guard response.message.answers.lazy.filter({ isMovable($0.type) }).count > 1 else { return response }
        var r = response
        r.message.answers = shuffle(r.message.answers)
        r.wire = nil
        return r
    }

    static func isMovable(_ type: DNSType) -> Bool { type == .a || type == .aaaa || type == .mx }

    static func shuffle(_ records: [DNSRecord]) -> [DNSRecord] {
        guard records.count > 1 else { return records }
        let fixed = records.filter { !isMovable($0.type) }
        let shuffled = records.filter { isMovable($0.type) }.shuffled()
        return fixed + shuffled
    }
}
