import Foundation
@testable import Networking

/// A value behind an NSLock, so test doubles can be shared across threads.
/// `@unchecked` because the lock, not the compiler, guards `value`.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

/// Bytes from strace's `-xx` rendering ("\x0a\x00...").
func bytes(fromStrace text: String) -> [UInt8] {
    text.split(separator: "\\", omittingEmptySubsequences: true).compactMap { chunk in
        chunk.hasPrefix("x") ? UInt8(chunk.dropFirst(), radix: 16) : nil
    }
}

/// A whole netlink message: the header strace decoded into fields, and the body it printed
/// as bytes. The sequence number is left 0 so messages compare regardless of numbering.
func capturedMessage(type: UInt16, flags: UInt16, body: String) -> [UInt8] {
    let payload = bytes(fromStrace: body)
    var message: [UInt8] = []
    func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value) { message.append(contentsOf: $0) } }
    put(UInt32(16 + payload.count))
    put(type)
    put(flags)
    put(UInt32(0))
    put(UInt32(0))
    return message + payload
}

/// A sent request with its sequence number zeroed.
func withoutSequence(_ request: [UInt8]) -> [UInt8] {
    var copy = request
    for i in 8..<12 where i < copy.count { copy[i] = 0 }
    return copy
}

func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02x", $0) }.joined(separator: " ")
}

/// A fresh scratch directory, removed by `cleanup()`.
struct ScratchDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "networking-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanup() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A decoded request, for assertions on what was asked rather than on raw bytes.
struct DecodedRequest {
    let type: UInt16
    let flags: UInt16
    let payload: [UInt8]

    init(_ bytes: [UInt8]) {
        let message = (try? NetlinkReply.parse(datagram: bytes))?.first
        type = message?.type ?? 0
        flags = message?.flags ?? 0
        payload = message?.payload ?? []
    }

    /// Attributes after the family header (ifinfomsg 16, ifaddrmsg 8, rtmsg 12).
    var attributes: NetlinkAttributes {
        let header: Int
        switch type {
        case NetlinkABI.newAddress, NetlinkABI.deleteAddress: header = NetlinkABI.ifaddrmsgSize
        case NetlinkABI.newRoute, NetlinkABI.deleteRoute: header = NetlinkABI.rtmsgSize
        default: header = NetlinkABI.ifinfomsgSize
        }
        return NetlinkAttributes(payload, from: header)
    }

    var linkIndex: Int32 { payload.count >= 8 ? Int32(bitPattern: readUInt32(payload, at: 4)) : 0 }
    var linkFlags: UInt32 { payload.count >= 12 ? readUInt32(payload, at: 8) : 0 }
    var name: String? { attributes.string(NetlinkABI.iflaIfname) }
}

/// A pretend kernel for one network namespace: it keeps a table of links and answers link
/// requests the way rtnetlink does (EEXIST, ENODEV, replies to RTM_GETLINK), acknowledging
/// everything else. A veth created with IFLA_NET_NS_FD hands its peer to `peerSink`.
final class FakeRouteKernel: Sendable {
    struct Link: Equatable {
        var index: Int32
        var kind: String?
        var flags: UInt32
        var master: Int32?
    }

    private struct State {
        var links: [String: Link] = [:]
        var nextIndex: Int32 = 1
        var failures: [UInt16: Int32] = [:]
    }

    private let state = Locked(State())
    private let peerSink: @Sendable (_ namespaceFD: Int32, _ name: String, _ up: Bool) -> Void

    init(links: [String] = ["lo"], peerSink: @escaping @Sendable (Int32, String, Bool) -> Void = { _, _, _ in }) {
        self.peerSink = peerSink
        for name in links { addLink(name, kind: nil, up: false) }
    }

    var links: [String: Link] { state.withLock { $0.links } }

    func addLink(_ name: String, kind: String?, up: Bool) {
        state.withLock { state in
            state.links[name] = Link(index: state.nextIndex, kind: kind, flags: up ? 1 : 0, master: nil)
            state.nextIndex += 1
        }
    }

    /// Makes every request of `type` fail with `errno`.
    func fail(_ type: UInt16, errno: Int32) {
        state.withLock { $0.failures[type] = errno }
    }

    func socket() -> RecordingNetlinkSocket {
        RecordingNetlinkSocket { [self] request in self.respond(to: request) }
    }

    func respond(to request: [UInt8]) -> [[UInt8]] {
        let decoded = DecodedRequest(request)
        let ack = { (errno: Int32) in [RecordingNetlinkSocket.acknowledgement(for: request, errno: errno)] }
        var peer: (Int32, String, Bool)?
        let replies: [[UInt8]] = state.withLock { state in
            if let errno = state.failures[decoded.type] { return ack(errno) }
            switch decoded.type {
            case NetlinkABI.getLink:
                guard let name = decoded.name, let link = state.links[name] else { return ack(ENODEV) }
                return [RecordingNetlinkSocket.linkReply(for: request, index: link.index, name: name, flags: link.flags,
                                                         master: link.master, kind: link.kind)] + ack(0)
            case NetlinkABI.newLink:
                guard let name = decoded.name else { return ack(EINVAL) }
                let master = decoded.attributes.uint32(NetlinkABI.iflaMaster).map { Int32(bitPattern: $0) }
                if decoded.flags & NetlinkABI.create != 0 {
                    if state.links[name] != nil { return ack(EEXIST) }
                    let info = decoded.attributes[NetlinkABI.iflaLinkinfo].map { NetlinkAttributes($0, from: 0) }
                    let kind = info?.string(NetlinkABI.iflaInfoKind)
                    if kind == "veth", let data = info?[NetlinkABI.iflaInfoData],
                       let peerInfo = NetlinkAttributes(data, from: 0)[NetlinkABI.vethInfoPeer] {
                        // Like the 6.18 kernel: a peer asked to come up at birth has no partner yet.
                        if readUInt32(peerInfo, at: 8) & 1 != 0 { return ack(ENOTCONN) }
                        let peerAttributes = NetlinkAttributes(peerInfo, from: NetlinkABI.ifinfomsgSize)
                        if let fd = peerAttributes.uint32(NetlinkABI.iflaNetNsFD), let peerName = peerAttributes.string(NetlinkABI.iflaIfname) {
                            peer = (Int32(bitPattern: fd), peerName, false)
                        }
                    }
                    state.links[name] = Link(index: state.nextIndex, kind: kind, flags: decoded.linkFlags, master: master)
                    state.nextIndex += 1
                    return ack(0)
                }
                guard var link = state.links[name] else { return ack(ENODEV) }
                let change = decoded.payload.count >= 16 ? readUInt32(decoded.payload, at: 12) : 0
                link.flags = (decoded.linkFlags & change) | (link.flags & ~change)
                if let master { link.master = master }
                state.links[name] = link
                return ack(0)
            case NetlinkABI.deleteLink:
                guard let name = decoded.name, state.links.removeValue(forKey: name) != nil else { return ack(ENODEV) }
                return ack(0)
            default:
                return ack(0)
            }
        }
        if let peer { peerSink(peer.0, peer.1, peer.2) }
        return replies
    }
}

/// Namespaces made of `FakeRouteKernel`s: "node" plus one per pod path, with descriptors that
/// map back to the path so a veth peer lands in the right pretend namespace.
final class FakeNamespaces: NetlinkSocketProvider {
    /// Shared with the node kernel's peer sink, which cannot capture `self` during init.
    private final class Registry: Sendable {
        struct State {
            var pods: [String: FakeRouteKernel] = [:]
            var sockets: [String: [RecordingNetlinkSocket]] = [:]
            var descriptors: [Int32: String] = [:]
            var nextDescriptor: Int32 = 100
        }

        let state = Locked(State())

        func pod(_ path: String) -> FakeRouteKernel {
            state.withLock { state in
                if let kernel = state.pods[path] { return kernel }
                let kernel = FakeRouteKernel(links: ["lo"])
                state.pods[path] = kernel
                return kernel
            }
        }
    }

    private let registry = Registry()
    let node: FakeRouteKernel

    init() {
        let registry = self.registry
        node = FakeRouteKernel(links: ["lo"]) { fd, name, up in
            guard let path = registry.state.withLock({ $0.descriptors[fd] }) else { return }
            registry.pod(path).addLink(name, kind: "veth", up: up)
        }
    }

    /// The pod's pretend kernel, created on first use with only `lo`.
    func pod(_ path: String) -> FakeRouteKernel { registry.pod(path) }

    /// Requests sent to the namespace ("node" or a pod path), across all its sockets, in order.
    func requests(_ namespace: String) -> [[UInt8]] {
        registry.state.withLock { $0.sockets[namespace] ?? [] }.flatMap(\.sentRequests)
    }

    /// How many sockets were opened in the namespace.
    func socketCount(_ namespace: String) -> Int {
        registry.state.withLock { $0.sockets[namespace]?.count ?? 0 }
    }

    func nodeSocket() throws -> any NetlinkSocket {
        let socket = node.socket()
        registry.state.withLock { $0.sockets["node", default: []].append(socket) }
        return socket
    }

    func socket(inNamespaceAt path: String) throws -> any NetlinkSocket {
        let socket = pod(path).socket()
        registry.state.withLock { $0.sockets[path, default: []].append(socket) }
        return socket
    }

    func withNamespaceDescriptor<T>(at path: String, _ body: (Int32) throws -> T) throws -> T {
        let fd: Int32 = registry.state.withLock { state in
            let fd = state.nextDescriptor
            state.nextDescriptor += 1
            state.descriptors[fd] = path
            return fd
        }
        return try body(fd)
    }
}
