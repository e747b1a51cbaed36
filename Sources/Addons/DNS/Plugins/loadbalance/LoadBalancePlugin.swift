/// Shuffles the order of A, AAAA and MX records in each answer, so clients that take the
/// first address spread over all of them. CNAMEs stay first, as resolvers need them there.
public final class LoadBalancePlugin: DNSPlugin, PassesCachedAnswers {
    public let name = "loadbalance"

    public init() {}

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.isEmpty || d.args == ["round_robin"] else {
            throw PluginSetupError("loadbalance", line: d.line, "unknown policy \(d.args.joined(separator: " ")) (round_robin)")
        }
        return LoadBalancePlugin()
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        // A switch, not DNSResult.map: the usual synchronous answer needs no closure, and one
        // with nothing to move is handed on as it came.
        let result = next(request)
        switch result {
        case .done(let response): return Self.hasOrder(response) ? .done(Self.balanced(response)) : result
        case .later(let future): return .later(future.map(Self.balanced))
        }
    }

    public func leavesUnchanged(_ cached: DNSResponse) -> Bool { !Self.hasOrder(cached) }

    /// Whether the answer has records whose order can change: one address has none, and such
    /// an answer (and its wire form) stays as it is.
    static func hasOrder(_ response: DNSResponse) -> Bool {
        var movable = 0
        for r in response.message.answers where isMovable(r.type) {
            movable += 1
            if movable > 1 { return true }
        }
        return false
    }

    /// The response with its movable records shuffled.
    @Sendable static func balanced(_ response: DNSResponse) -> DNSResponse {
        guard hasOrder(response) else { return response }
        var m = response.message
        m.answers = shuffle(m.answers)
        // The stored wire form has the old order.
        return DNSResponse(message: m, plugin: response.plugin, error: response.error, wire: nil, ttlAge: response.ttlAge)
    }

    static func isMovable(_ type: DNSType) -> Bool { type == .a || type == .aaaa || type == .mx }

    static func shuffle(_ records: [DNSRecord]) -> [DNSRecord] {
        guard records.count > 1 else { return records }
        let fixed = records.filter { !isMovable($0.type) }
        let shuffled = records.filter { isMovable($0.type) }.shuffled()
        return fixed + shuffled
    }
}
