/// One line per query in CoreDNS's default format:
/// `[INFO] 10.244.0.7:41234 - 4321 "A IN nginx.default.svc.cluster.local. udp 63 false 512" NOERROR qr,aa,rd 144 0.000171s`.
public final class LogPlugin: DNSPlugin, DNSObserver {
    public let name = "log"

    public enum ResponseClass: String, Sendable { case all, success, denial, error }

    let sink: LineSink
    let zones: [DNSName]
    let classes: Set<ResponseClass>

    public init(sink: LineSink, zones: [DNSName] = [.root], classes: Set<ResponseClass> = [.all]) {
        self.sink = sink
        self.zones = zones
        self.classes = classes
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup, sink: LineSink) throws -> any DNSPlugin {
        var zones: [DNSName] = []
        for arg in d.args {
            // A custom format ({remote} ...) is accepted but the default layout is printed.
            if arg.contains("{") { continue }
            guard let z = DNSName(arg) else { throw PluginSetupError("log", line: d.line, "invalid name \(arg)") }
            zones.append(z)
        }
        var classes: Set<ResponseClass> = []
        for sub in d.block {
            guard sub.name == "class" else { throw PluginSetupError("log", line: sub.line, "unknown property '\(sub.name)'") }
            for c in sub.args {
                guard let v = ResponseClass(rawValue: c) else {
                    throw PluginSetupError("log", line: sub.line, "unknown class \(c) (all, success, denial, error)")
                }
                classes.insert(v)
            }
        }
        return LogPlugin(sink: sink, zones: zones.isEmpty ? [.root] : zones, classes: classes.isEmpty ? [.all] : classes)
    }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult { next(request) }
    public var servesQueries: Bool { false }

    public func written(_ request: DNSRequest, _ response: DNSResponse, size: Int, duration: Duration) {
        guard zones.contains(where: { request.question.name.isSubdomain(of: $0) }) else { return }
        let m = response.message
        if !classes.contains(.all) {
            let c: ResponseClass
            switch m.rcode {
            case .noError where m.answers.isEmpty, .nameError: c = .denial
            case .noError: c = .success
            default: c = .error
            }
            guard classes.contains(c) else { return }
        }
        sink.write(Self.line(request, m, size: size, duration: duration))
    }

    static func line(_ r: DNSRequest, _ m: DNSMessage, size: Int, duration: Duration) -> String {
        let remote = r.remoteAddress.contains(":") ? "[\(r.remoteAddress)]" : r.remoteAddress
        let q = r.question
        let doBit = r.message.edns?.dnssecOK == true
        let bufsize = r.transport == .udp ? r.message.maxUDPSize : 65535
        var flags: [String] = []
        if m.isResponse { flags.append("qr") }
        if m.authoritative { flags.append("aa") }
        if m.truncated { flags.append("tc") }
        if m.recursionDesired { flags.append("rd") }
        if m.recursionAvailable { flags.append("ra") }
        if m.authenticData { flags.append("ad") }
        if m.checkingDisabled { flags.append("cd") }
        return "[INFO] \(remote):\(r.remotePort) - \(r.message.id) \"\(q.type) \(DNSClass.name(q.qclass)) \(q.name) \(r.transport.label) \(r.size) \(doBit) \(bufsize)\" \(m.rcode) \(flags.joined(separator: ",")) \(size) \(seconds(duration))s"
    }

    /// Go's `strconv.FormatFloat(d.Seconds(), 'f', -1, 64)`: no trailing zeros.
    static func seconds(_ d: Duration) -> String {
        let (s, atto) = d.components
        let nanos = atto / 1_000_000_000
        var frac = String(nanos)
        frac = String(repeating: "0", count: max(0, 9 - frac.count)) + frac
        while frac.hasSuffix("0") { frac.removeLast() }
        return frac.isEmpty ? "\(s)" : "\(s).\(frac)"
    }
}
