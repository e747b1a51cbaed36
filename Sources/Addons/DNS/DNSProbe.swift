import NIOCore
import NIOPosix

/// One question to a DNS server over UDP, for callers outside the server: `labnode up`
/// checking that the add-on really answers (an endpoint left over from the previous run can
/// look ready before the new pod listens), and benchmarks.
public enum DNSProbe {
    /// The answer, or nil when none came within `timeout` (or the socket failed).
    public static func ask(server: String, port: Int = 53, name: String, type: DNSType = .a, timeout: Duration = .milliseconds(500),
                           group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async -> DNSMessage? {
        guard let address = try? SocketAddress(ipAddress: server, port: port), let qname = DNSName(name) else { return nil }
        var query = DNSMessage()
        query.id = UInt16.random(in: 0...UInt16.max)
        query.recursionDesired = true
        query.questions = [DNSQuestion(name: qname, type: type)]
        let id = query.id
        let bytes = query.serialized()
        let loop = group.next()
        let answer = loop.makePromise(of: DNSMessage?.self)
        let bootstrap = DatagramBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ForwardReplyHandler { reply, from in
                    guard from == address, let m = try? DNSMessage(parsing: reply), m.id == id else { return }
                    answer.succeed(m)
                })
            }
        }
        guard let channel = try? await bootstrap.bind(host: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0).get() else { return nil }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { answer.succeed(nil) }
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes)), promise: nil)
        let result = try? await answer.futureResult.get()
        timer.cancel()
        try? await channel.close()
        return result ?? nil
    }
}
