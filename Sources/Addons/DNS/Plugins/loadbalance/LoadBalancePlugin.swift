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
        let result = next(request)
        // One address has no order to change: the answer (and its wire form) stays as is.
        if case .done(let response) = result, !Self.hasOrder(response.message.answers) { return result }
        return result.map { response in
            guard Self.hasOrder(response.message.answers) else { return response }
            var r = response
            r.message.answers = Self.shuffle(r.message.answers)
            r.wire = nil
            return r
        }
    }

    /// Whether the answer has more than one record whose order can change.
    static func hasOrder(_ answers: [DNSRecord]) -> Bool {
        guard answers.count > 1 else { return false }
        var movable = 0
        for r in answers where r.type == .a || r.type == .aaaa || r.type == .mx {
            movable += 1
            if movable > 1 { return true }
        }
        return false
    }

    static let movable: Set<DNSType> = [.a, .aaaa, .mx]

    static func shuffle(_ records: [DNSRecord]) -> [DNSRecord] {
        guard records.count > 1 else { return records }
        let fixed = records.filter { !movable.contains($0.type) }
        let shuffled = records.filter { movable.contains($0.type) }.shuffled()
        return fixed + shuffled
    }
}
