import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Detects a forwarding loop (the node's resolver sending our own queries back to us): at
/// start it sends `<random>.<random>.<zone> HINFO` to this server and counts how often that
/// name comes through. CoreDNS then exits, which crash-loops the pod; labnode says so in the
/// log instead and answers SERVFAIL for every name that would be forwarded, which breaks the
/// loop while cluster names keep working.
public final class LoopPlugin: DNSPlugin {
    public let name = "loop"
    let probe: DNSName
    let seen = Mutex(0)
    let detected = Mutex(false)
    let logger: Logger
    let zone: DNSName

    public init(zone: DNSName, logger: Logger) {
        self.zone = zone
        self.logger = logger
        let a = UInt64.random(in: 1...UInt64.max), b = UInt64.random(in: 1...UInt64.max)
        probe = DNSName("\(a).\(b).\(zone.isRoot ? "" : zone.description)") ?? zone
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        guard d.args.isEmpty, d.block.isEmpty else { throw PluginSetupError("loop", line: d.line, "loop takes no arguments") }
        return LoopPlugin(zone: s.zones.first ?? .root, logger: s.logger)
    }

    public var loopDetected: Bool { detected.withLock { $0 } }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        if request.question.type == .hinfo && request.question.name == probe {
            let n = seen.withLock { s -> Int in
                s += 1
                return s
            }
            if n > 2 {
                let first = detected.withLock { d -> Bool in
                    defer { d = true }
                    return !d
                }
                if first {
                    logger.error("plugin/loop: Loop (\(request.remoteAddress):\(request.remotePort) -> \(request.server)) detected for zone \"\(zone)\", see https://coredns.io/plugins/loop#troubleshooting. Query: \"HINFO \(probe)\". Forwarding is off until the upstream is fixed (labnode does not crash-loop).")
                }
                return .done(DNSResponse(message: request.reply(.serverFailure), plugin: name))
            }
        } else if loopDetected {
            return .done(DNSResponse(message: request.reply(.serverFailure), plugin: name, error: "forwarding loop detected"))
        }
        return next(request)
    }

    public func serverStarted(_ context: PluginContext) {
        guard let target = context.listenAddresses.first, let port = target.port else { return }
        let host = target.ipAddress == "0.0.0.0" || target.ipAddress == nil ? "127.0.0.1" : (target.ipAddress ?? "127.0.0.1")
        var m = DNSMessage()
        m.id = UInt16.random(in: 0...UInt16.max)
        m.recursionDesired = true
        m.questions = [DNSQuestion(name: probe, type: .hinfo)]
        let bytes = m.serialized()
        let group = context.eventLoopGroup
        // Fire and forget: the answer (SERVFAIL or NXDOMAIN from upstream) does not matter,
        // only how often the probe passes through serve().
        Task {
            guard let address = try? SocketAddress(ipAddress: host, port: port),
                  let channel = try? await DatagramBootstrap(group: group).bind(host: "0.0.0.0", port: 0).get() else { return }
            try? await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes)))
            try? await Task.sleep(for: .seconds(2))
            try? await channel.close()
        }
    }
}
