import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import ServiceProxy

/// The userspace mode's choices (round-robin, affinity, which sockets a sync opens), and its
/// TCP splice and UDP relay over real loopback sockets (no root, no netfilter).
@Suite("userspace proxy")
struct UserspaceProxierTests {
    static func endpoints(_ n: Int, port: Int = 8080) -> [ProxyEndpoint] {
        (1...n).map { ProxyEndpoint(ip: "10.244.0.\($0)", port: port) }
    }

    @Test func roundRobinGivesEachEndpointItsTurn() {
        let b = Balancer(Self.endpoints(3), affinitySeconds: nil)
        let picks = (0..<300).map { _ in b.candidates(client: "10.244.0.9").first?.ip ?? "" }
        let counts = Dictionary(grouping: picks, by: { $0 }).mapValues(\.count)
        #expect(counts == ["10.244.0.1": 100, "10.244.0.2": 100, "10.244.0.3": 100])
        // The others follow the chosen one, for a retry when it refuses.
        #expect(b.candidates(client: nil).map(\.ip) == ["10.244.0.1", "10.244.0.2", "10.244.0.3"])
        #expect(b.candidates(client: nil).map(\.ip) == ["10.244.0.2", "10.244.0.3", "10.244.0.1"])
    }

    @Test func affinityKeepsAClientOnItsEndpointUntilItGoes() {
        let b = Balancer(Self.endpoints(3), affinitySeconds: 60)
        let first = b.candidates(client: "192.0.2.1").first
        #expect((0..<20).allSatisfy { _ in b.candidates(client: "192.0.2.1").first == first })
        // Another client takes the next turn.
        #expect(b.candidates(client: "192.0.2.2").first != first)
        // Its endpoint gone, the client is placed again.
        b.update(Self.endpoints(3).filter { $0 != first }, affinitySeconds: 60)
        let again = b.candidates(client: "192.0.2.1").first
        #expect(again != nil && again != first)
        // A retry that got through elsewhere becomes the client's endpoint.
        let other = Self.endpoints(3).first { $0 != first && $0 != again }
        if let other { b.connected(client: "192.0.2.1", to: other) }
        #expect(b.candidates(client: "192.0.2.1").first == other)
    }

    @Test func affinityExpires() async throws {
        let b = Balancer(Self.endpoints(3), affinitySeconds: 1)
        let first = b.candidates(client: "192.0.2.1").first
        try await Task.sleep(for: .milliseconds(1100))
        _ = b.candidates(client: "192.0.2.7")  // takes the second endpoint's turn
        #expect(b.candidates(client: "192.0.2.1").first != first)
    }

    @Test func noEndpointsNoCandidates() {
        #expect(Balancer([], affinitySeconds: nil).candidates(client: "192.0.2.1").isEmpty)
    }

    @Test func planListensWhereTrafficArrives() {
        var web = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80, nodePort: 30080,
                                   endpoints: Self.endpoints(2))
        web.externalIPs = ["192.0.2.10"]
        web.loadBalancerIPs = ["192.0.2.11"]
        let empty = ProxyServicePort(namespace: "default", name: "empty", clusterIP: "10.96.0.21", port: 80, nodePort: 30081)
        var dns = ProxyServicePort(namespace: "kube-system", name: "kube-dns", portName: "dns", proto: "udp", clusterIP: "10.96.0.10",
                                   port: 53, endpoints: Self.endpoints(1, port: 53))
        dns.affinitySeconds = 30
        let plan = UserspaceProxier.plan([web, empty, dns], nodeName: "node")
        let keys = Set(plan.listeners.keys.map(\.description))
        #expect(keys == ["tcp 10.96.0.20:80", "tcp 192.0.2.10:80", "tcp 192.0.2.11:80", "tcp 0.0.0.0:30080", "udp 10.96.0.10:53"])
        // The service without endpoints has its address (so the kernel refuses) but no socket.
        #expect(plan.clusterIPs == ["10.96.0.20", "10.96.0.21", "10.96.0.10"])
        #expect(plan.balancers["kube-system/kube-dns:dns/udp/internal"]?.affinitySeconds == 30)
    }

    @Test func localPoliciesUseOnlyThisNodesEndpoints() {
        var sp = ProxyServicePort(namespace: "default", name: "web", clusterIP: "10.96.0.20", port: 80, nodePort: 30080,
                                  endpoints: [ProxyEndpoint(ip: "10.244.0.1", port: 80, nodeName: "node"),
                                              ProxyEndpoint(ip: "10.244.1.1", port: 80, nodeName: "other")])
        sp.externalPolicyLocal = true
        let plan = UserspaceProxier.plan([sp], nodeName: "node")
        #expect(plan.balancers["default/web/tcp/external"]?.endpoints.map(\.ip) == ["10.244.0.1"])
        #expect(plan.balancers["default/web/tcp/internal"]?.endpoints.count == 2)
        sp.internalPolicyLocal = true
        sp.endpoints = [ProxyEndpoint(ip: "10.244.1.1", port: 80, nodeName: "other")]
        #expect(UserspaceProxier.plan([sp], nodeName: "node").listeners.isEmpty)
    }

    // MARK: Real sockets on loopback

    final class RecordingLink: ServiceAddressLink {
        let held = Mutex<Set<String>>([])
        func add(_ address: String) throws { held.withLock { _ = $0.insert(address) } }
        func remove(_ address: String) throws { held.withLock { _ = $0.remove(address) } }
        func removeAll() throws { held.withLock { $0 = [] } }
    }

    /// A TCP server on 127.0.0.1 that says `name` and echoes what it reads.
    final class Greeter: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let name: String
        init(name: String) { self.name = name }
        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: name + "\n")), promise: nil)
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    static func tcpBackend(_ name: String) async throws -> (any Channel, Int) {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.pipeline.addHandler(Greeter(name: name)) }
            .bind(host: "127.0.0.1", port: 0).get()
        return (channel, channel.localAddress?.port ?? 0)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Connects, sends `line`, reads until the server closes or `want` lines arrived.
    static func exchange(port: Int, line: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "connect: errno \(errno)" }
        _ = line.withCString { send(fd, $0, strlen($0), 0) }
        // Half-close: the backend still answers, and the splice carries the FIN through.
        shutdown(fd, Int32(SHUT_WR))
        var out = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            out += buffer[0..<n]
            if out.filter({ $0 == 10 }).count >= 2 { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func splicesTCPRoundRobinAndRefusesWithoutEndpoints() async throws {
        let (a, portA) = try await Self.tcpBackend("a")
        let (b, portB) = try await Self.tcpBackend("b")
        defer { a.close(promise: nil); b.close(promise: nil) }
        let link = RecordingLink()
        let proxier = UserspaceProxier(nodeName: "node", logger: Logger(label: "test"), addresses: link)
        let servicePort = try Self.freePort()
        var sp = ProxyServicePort(namespace: "default", name: "web", clusterIP: "127.0.0.1", port: servicePort,
                                  endpoints: [ProxyEndpoint(ip: "127.0.0.1", port: portA), ProxyEndpoint(ip: "127.0.0.1", port: portB)])
        link.held.withLock { $0 = ["10.96.9.9"] }  // left by a run that crashed
        try await proxier.sync([sp])
        #expect(link.held.withLock { $0 } == ["127.0.0.1"])
        let answers = try (0..<6).map { _ in try Self.exchange(port: servicePort, line: "ping\n") }
        #expect(answers.filter { $0 == "a\nping\n" }.count == 3, "\(answers)")
        #expect(answers.filter { $0 == "b\nping\n" }.count == 3, "\(answers)")

        // A refused endpoint is skipped: the connection goes to the next one.
        let dead = try Self.freePort()
        sp.endpoints = [ProxyEndpoint(ip: "127.0.0.1", port: dead), ProxyEndpoint(ip: "127.0.0.1", port: portB)]
        try await proxier.sync([sp])
        let retried = try (0..<4).map { _ in try Self.exchange(port: servicePort, line: "x\n") }
        #expect(retried.allSatisfy { $0 == "b\nx\n" }, "\(retried)")

        // No endpoints: no socket, so the kernel refuses at once.
        sp.endpoints = []
        try await proxier.sync([sp])
        let refused = try Self.exchange(port: servicePort, line: "x\n")
        #expect(refused == "connect: errno \(ECONNREFUSED)", "\(refused)")
        try await proxier.cleanup()
        #expect(link.held.withLock { $0 }.isEmpty)
    }

    /// A UDP server on 127.0.0.1 that answers each datagram with `name:` and the datagram.
    final class UDPEcho: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        let name: String
        init(name: String) { self.name = name }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let datagram = unwrapInboundIn(data)
            var reply = ByteBuffer(string: name + ":")
            var body = datagram.data
            reply.writeBuffer(&body)
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: datagram.remoteAddress, data: reply)), promise: nil)
        }
    }

    static func udpAsk(port: Int, _ text: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = text.withCString { p in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, p, strlen(p), 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var from = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = withUnsafeMutablePointer(to: &from) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, &buffer, buffer.count, 0, $0, &length) }
        }
        // The answer must come from the service's port, or a resolver would drop it.
        guard n > 0, Int(UInt16(bigEndian: from.sin_port)) == port else { return "no answer from port \(port)" }
        return String(decoding: buffer[0..<n], as: UTF8.self)
    }

    @Test func relaysUDPFromTheServicePort() async throws {
        let backend = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.pipeline.addHandler(UDPEcho(name: "dns")) }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { backend.close(promise: nil) }
        let proxier = UserspaceProxier(nodeName: "node", logger: Logger(label: "test"), addresses: RecordingLink())
        let servicePort = try Self.freePort()
        let sp = ProxyServicePort(namespace: "kube-system", name: "kube-dns", portName: "dns", proto: "udp", clusterIP: "127.0.0.1",
                                  port: servicePort, endpoints: [ProxyEndpoint(ip: "127.0.0.1", port: backend.localAddress?.port ?? 0)])
        try await proxier.sync([sp])
        #expect(Self.udpAsk(port: servicePort, "q1") == "dns:q1")
        #expect(Self.udpAsk(port: servicePort, "q2") == "dns:q2")
        try await proxier.cleanup()
    }
}
