import Glibc
import Synchronization

/// The one host side effect of `NetlinkSession`: moving datagrams to and from the kernel.
///
/// Keeping it this small lets every rtnetlink message be checked byte for byte in tests with
/// `RecordingNetlinkSocket`, without root.
public protocol NetlinkSocket: AnyObject, Sendable {
    /// Sends one datagram holding one request.
    func send(_ datagram: [UInt8]) throws
    /// Waits for the next datagram from the kernel and returns it whole.
    func receive() throws -> [UInt8]
}

/// A real NETLINK_ROUTE socket.
///
/// A netlink socket belongs to the network namespace of the thread that created it, for its
/// whole life, whichever thread later uses it. That is what lets us configure a pod's
/// interfaces: `open(inNetworkNamespaceAt:)` creates the socket on a short-lived thread that
/// has joined the pod's namespace, and the caller then talks through it from anywhere.
public final class RouteNetlinkSocket: NetlinkSocket {
    private let descriptor: Int32
    /// Replies to one request are small; 64 KiB is far more than a single link dump entry
    /// and leaves room for the kernel's extended-ack text.
    private static let receiveBufferSize = 64 * 1024

    /// Opens a socket in the network namespace of the calling thread.
    ///
    /// - Parameter receiveTimeoutSeconds: how long `receive()` waits. The kernel answers every
    ///   request we send at once; the timeout only turns a bug (waiting for a reply that will
    ///   never come) into an error instead of a hung node agent.
    public init(receiveTimeoutSeconds: Int = 10) throws {
        descriptor = try RawNetlink.open(protocol: NetlinkABI.protocolRoute, name: "NETLINK_ROUTE", receiveTimeoutSeconds: receiveTimeoutSeconds)
    }


    /// Opens a socket that lives in the network namespace at `path` (such as
    /// `/run/netns/NAME` or `/proc/PID/ns/net`). The calling thread is not moved.
    public static func open(inNetworkNamespaceAt path: String) throws -> RouteNetlinkSocket {
        try NetworkNamespace.run(inNamespaceAt: path) { try RouteNetlinkSocket() }
    }

    deinit {
        close(descriptor)
    }

    public func send(_ datagram: [UInt8]) throws {
        while true {
            let sent = datagram.withUnsafeBytes { raw in
                Glibc.send(descriptor, raw.baseAddress, raw.count, 0)
            }
            if sent == datagram.count { return }
            let code = errno
            if sent < 0 && code == EINTR { continue }
            throw NetlinkError(operation: "send netlink request", errno: sent < 0 ? code : EMSGSIZE,
                               detail: sent < 0 ? nil : "sent \(sent) of \(datagram.count) bytes")
        }
    }

    public func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: Self.receiveBufferSize)
        while true {
            // MSG_TRUNC makes recv report the datagram's real size, so a reply that did not
            // fit is an error instead of silently cut messages.
            let received = buffer.withUnsafeMutableBytes { raw in
                recv(descriptor, raw.baseAddress, raw.count, Int32(MSG_TRUNC))
            }
            if received < 0 {
                let code = errno
                if code == EINTR { continue }
                throw NetlinkError(operation: "receive netlink reply", errno: code,
                                   detail: code == EAGAIN ? "no reply from the kernel before the timeout" : nil)
            }
            guard received <= buffer.count else {
                throw NetlinkError(operation: "receive netlink reply", errno: EMSGSIZE,
                                   detail: "reply of \(received) bytes exceeds the \(buffer.count)-byte buffer")
            }
            return Array(buffer[0..<received])
        }
    }
}

/// A `NetlinkSocket` for tests: records every request and answers from a responder closure.
///
/// The default responder acknowledges every request, which is what the kernel does when all
/// goes well. Tests that need lookups or failures pass their own responder, typically built
/// from `acknowledgement(for:errno:message:)` and `linkReply(for:...)`.
public final class RecordingNetlinkSocket: NetlinkSocket {
    /// Given one request's bytes, the datagrams the "kernel" sends back.
    public typealias Responder = @Sendable (_ request: [UInt8]) -> [[UInt8]]

    private struct State {
        var sent: [[UInt8]] = []
        var pending: [[UInt8]] = []
    }

    private let state = Mutex(State())
    private let responder: Responder

    public init(responder: @escaping Responder = { [RecordingNetlinkSocket.acknowledgement(for: $0)] }) {
        self.responder = responder
    }

    /// Every datagram sent, in order.
    public var sentRequests: [[UInt8]] { state.withLock { $0.sent } }

    public func send(_ datagram: [UInt8]) throws {
        let replies = responder(datagram)
        state.withLock {
            $0.sent.append(datagram)
            $0.pending.append(contentsOf: replies)
        }
    }

    public func receive() throws -> [UInt8] {
        let next: [UInt8]? = state.withLock {
            $0.pending.isEmpty ? nil : $0.pending.removeFirst()
        }
        guard let next else {
            throw NetlinkError(operation: "receive netlink reply", errno: EAGAIN,
                               detail: "the recording socket has no reply queued")
        }
        return next
    }

    /// An NLMSG_ERROR reply to `request`: an acknowledgement when `errno` is 0, otherwise a
    /// refusal carrying `-errno` and, like a kernel with extended acks, an optional message.
    /// It is capped (the request is not echoed), as our real sockets ask for.
    public static func acknowledgement(for request: [UInt8], errno: Int32 = 0, message: String? = nil) -> [UInt8] {
        var reply = NetlinkRequest(type: NetlinkABI.error,
                                   flags: NetlinkABI.capped | (message == nil ? 0 : NetlinkABI.ackTLVs))
        reply.append(-errno)
        reply.appendRaw(request.prefix(NetlinkABI.headerSize))
        if let message {
            reply.attribute(NetlinkABI.errorAttributeMessage, string: message)
        }
        return reply.finished(sequence: requestSequence(request))
    }

    /// An RTM_NEWLINK reply describing one link, as the kernel sends for RTM_GETLINK.
    public static func linkReply(for request: [UInt8], index: Int32, name: String, flags: UInt32 = 0,
                                 mtu: UInt32 = 1500, master: Int32? = nil, kind: String? = nil) -> [UInt8] {
        var reply = NetlinkRequest(type: NetlinkABI.newLink, flags: 0)
        reply.appendLinkHeader(index: index, flags: flags)
        reply.attribute(NetlinkABI.iflaIfname, string: name)
        reply.attribute(NetlinkABI.iflaMTU, uint32: mtu)
        if let master { reply.attribute(NetlinkABI.iflaMaster, int32: master) }
        if let kind {
            reply.nested(NetlinkABI.iflaLinkinfo) { $0.attribute(NetlinkABI.iflaInfoKind, string: kind) }
        }
        return reply.finished(sequence: requestSequence(request))
    }

    /// The sequence number of a request, so a reply can be matched to it.
    public static func requestSequence(_ request: [UInt8]) -> UInt32 {
        request.count >= NetlinkABI.headerSize ? readUInt32(request, at: 8) : 0
    }
}

public enum RawNetlink {
    /// A raw netlink socket of `protocol` (NETLINK_ROUTE, NETLINK_NETFILTER, ...) with extended
    /// and capped acks and a receive timeout; shared by every netlink user in labnode.
    public static func open(protocol: Int32, name: String, receiveTimeoutSeconds: Int) throws -> Int32 {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), `protocol`)
        guard fd >= 0 else {
            throw NetlinkError(operation: "open \(name) socket", errno: errno)
        }
        // No bind(): the kernel gives an unbound netlink socket a unique port id on the first
        // send. Binding to getpid() by hand, as some libraries do, fails with EADDRINUSE as soon
        // as a process opens a second socket, and the node agent opens one per pod.
        var one: Int32 = 1
        // Best effort: both options only improve error replies (the kernel's reason, and no
        // echo of a whole batch), so an old kernel without them is still usable.
        _ = setsockopt(fd, NetlinkABI.solNetlink, NetlinkABI.extAck, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, NetlinkABI.solNetlink, NetlinkABI.capAck, &one, socklen_t(MemoryLayout<Int32>.size))
        var timeout = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
        if setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) != 0 {
            let code = errno
            close(fd)
            throw NetlinkError(operation: "set receive timeout on \(name) socket", errno: code)
        }
        return fd
    }
}
