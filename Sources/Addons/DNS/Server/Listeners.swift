import NIOCore
import NIOPosix
import NIOSSL

/// UDP: reads many datagrams per wake-up (recvmmsg) and flushes the answers ready by then in
/// one go, which is what lets one event loop keep up with dnsperf.
///
/// Cache hits of one read batch are written one after another into one buffer and sent as
/// slices of it: a buffer per answer cost two allocations and two frees per query. The
/// buffer is only sliced once the batch is read, because writing to a buffer that slices
/// share would copy it.
final class UDPDNSHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let dispatcher: DNSDispatcher
    private var pendingFlush = false
    private var batch = DNSDispatcher.allocator.buffer(capacity: keptCapacity)
    private var batched: [(remote: SocketAddress, start: Int, length: Int)] = []
    /// 64 answers of 128 bytes: a full read of dnsperf-like queries.
    static let keptCapacity = 8192

    init(dispatcher: DNSDispatcher) {
        self.dispatcher = dispatcher
        batched.reserveCapacity(64)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let remote = envelope.remoteAddress
        let start = batch.writerIndex
        if dispatcher.shortcutAnswer(envelope.data, remote: remote, transport: .udp, appendingTo: &batch) {
            batched.append((remote, start, batch.writerIndex - start))
            return
        }
        switch dispatcher.handle(envelope.data, remote: remote, transport: .udp, eventLoop: context.eventLoop, shortcut: false) {
        case .silent:
            return
        case .reply(let answer):
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: answer)), promise: nil)
            pendingFlush = true
        case .later(let future):
            let channel = context.channel
            future.whenSuccess { answer in
                guard let answer else { return }
                let envelope = AddressedEnvelope(remoteAddress: remote, data: answer)
                channel.writeAndFlush(envelope, promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !batched.isEmpty {
            for answer in batched {
                guard let slice = batch.getSlice(at: answer.start, length: answer.length) else { continue }
                context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: answer.remote, data: slice)), promise: nil)
            }
            batched.removeAll(keepingCapacity: true)
            pendingFlush = true
        }
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
        // Sent by now unless the socket was full: then the slices still hold this storage and
        // the next write moves to a new one. A burst of large answers does not keep its size.
        if batch.capacity > Self.keptCapacity {
            batch = DNSDispatcher.allocator.buffer(capacity: Self.keptCapacity)
        } else {
            batch.clear()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A UDP socket sees ICMP errors of earlier sends (ECONNREFUSED); they are not fatal.
    }
}

/// TCP (and TLS): two-byte length-prefixed messages, several per connection, answered in
/// the order they complete.
final class TCPDNSHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let dispatcher: DNSDispatcher
    private var buffer = ByteBuffer()

    init(dispatcher: DNSDispatcher) { self.dispatcher = dispatcher }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        let remote = context.remoteAddress
        while let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) {
            buffer.moveReaderIndex(forwardBy: 2)
            guard let packet = buffer.readSlice(length: Int(length)) else { break }
            let outcome = dispatcher.handle(packet, remote: remote, transport: .tcp, eventLoop: context.eventLoop)
            switch outcome {
            case .silent:
                context.close(promise: nil)
                return
            case .reply(let answer):
                context.writeAndFlush(wrapOutboundOut(Self.frame(answer, context.channel.allocator)), promise: nil)
            case .later(let future):
                let channel = context.channel
                future.whenSuccess { answer in
                    guard let answer else { return }
                    channel.writeAndFlush(Self.frame(answer, channel.allocator), promise: nil)
                }
            }
        }
        buffer.discardReadBytes()
    }

    static func frame(_ answer: ByteBuffer, _ allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: answer.readableBytes + 2)
        out.writeInteger(UInt16(answer.readableBytes))
        out.writeImmutableBuffer(answer)
        return out
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Idle connections are closed, as CoreDNS's 10 s read timeout does.
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// The sockets of one Corefile listen key: UDP and TCP for dns://, TCP with TLS for tls://.
public final class DNSListener: Sendable {
    public let udp: (any Channel)?
    public let tcp: any Channel

    /// The bound addresses (the UDP one first, when there is one).
    public var addresses: [SocketAddress] { [udp?.localAddress, tcp.localAddress].compactMap { $0 } }

    init(udp: (any Channel)?, tcp: any Channel) {
        self.udp = udp
        self.tcp = tcp
    }

    /// Binds UDP then TCP on the same port (port 0 picks one for both).
    static func bind(host: String, port: Int, dispatcher: DNSDispatcher, tls: NIOSSLContext?,
                     group: any EventLoopGroup) async throws -> DNSListener {
        var udpChannel: (any Channel)?
        var tcpPort = port
        if tls == nil {
            let udp = try await DatagramBootstrap(group: group)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.datagramVectorReadMessageCount, value: 64)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 64 * 2048))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(UDPDNSHandler(dispatcher: dispatcher))
                    }
                }
                .bind(host: host, port: port).get()
            udpChannel = udp
            tcpPort = udp.localAddress?.port ?? port
        }
        do {
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let ops = channel.pipeline.syncOperations
                        if let tls { try ops.addHandler(NIOSSLServerHandler(context: tls)) }
                        try ops.addHandler(IdleStateHandler(readTimeout: .seconds(10)))
                        try ops.addHandler(TCPDNSHandler(dispatcher: dispatcher))
                    }
                }
                .bind(host: host, port: tcpPort).get()
            return DNSListener(udp: udpChannel, tcp: tcp)
        } catch {
            try? await udpChannel?.close()
            throw error
        }
    }

    func close() async {
        try? await udp?.close()
        try? await tcp.close()
    }
}
