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
        next(request).map { response in
            let movable = response.message.answers.reduce(0) { $0 + (Self.movable.contains($1.type) ? 1 : 0) }
            // One address has no order to change: the answer (and its wire form) stays as is.
            guard movable > 1 else { return response }
            var r = response
            r.message.answers = Self.shuffle(r.message.answers)
            r.wire = nil
            return r
        }
    }

    static let movable: Set<DNSType> = [.a, .aaaa, .mx]

    static func shuffle(_ records: [DNSRecord]) -> [DNSRecord] {
        guard records.count > 1 else { return records }
        let fixed = records.filter { !movable.contains($0.type) }
        let shuffled = records.filter { movable.contains($0.type) }.shuffled()
        return fixed + shuffled
    }
}
