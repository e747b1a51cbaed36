import Foundation
import Testing
@testable import Networking

// Real kernel, as root. Everything happens inside private namespaces named lnh-net-<random>:
// a "node" namespace that holds the bridge (PodNetwork is given its path, so its sockets and
// sysctl writes are made there) and one namespace per pod. The machine's own network namespace
// is never changed, and the namespaces are deleted at the end even when a check fails.

extension Tag {
    @Tag static var root: Self
}

/// Why the root tests cannot run here, or nil when they can. Printed once, loudly.
enum RootGate {
    static let skipReason: String? = {
        let reason = probe()
        if let reason {
            print("SKIPPED: PodNetwork integration tests: \(reason)")
        }
        return reason
    }()

    static var canRun: Bool { skipReason == nil }

    private static func probe() -> String? {
        guard getuid() == 0 else { return "not running as root (uid \(getuid()))" }
        for tool in ["ip", "nsenter", "bridge"] where Shell.run(["which", tool]).status != 0 {
            return "\(tool) is not installed"
        }
        let name = "lnh-net-probe\(UInt32.random(in: 0...UInt32.max))"
        let created = Shell.run(["ip", "netns", "add", name])
        guard created.status == 0 else { return "cannot create a network namespace: \(created.output)" }
        _ = Shell.run(["ip", "netns", "del", name])
        return nil
    }
}

enum Shell {
    struct Result {
        var status: Int32
        var output: String
    }

    /// Runs a command found on PATH and returns its exit status and combined output.
    static func run(_ arguments: [String]) -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return Result(status: -1, output: "\(error)")
        }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    /// Runs a command inside a named namespace, with nsenter (not `ip netns exec`, which
    /// remounts /sys).
    static func inNamespace(_ name: String, _ arguments: [String]) -> Result {
        run(["nsenter", "--net=/run/netns/\(name)"] + arguments)
    }
}

/// Named namespaces created by one test, deleted in reverse order by `cleanup()`.
final class NamespaceFixture {
    let prefix = "lnh-net-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
    private(set) var created: [String] = []

    /// Creates `lnh-net-<random>` (suffix nil) or `lnh-net-<random>-<suffix>`.
    func create(_ suffix: String? = nil) throws -> String {
        let name = suffix.map { "\(prefix)-\($0)" } ?? prefix
        let result = Shell.run(["ip", "netns", "add", name])
        guard result.status == 0 else {
            throw SystemCallError(call: "ip netns add", errno: EIO, subject: "\(name): \(result.output)")
        }
        created.append(name)
        return name
    }

    static func path(_ name: String) -> String { "/run/netns/\(name)" }

    func cleanup() {
        for name in created.reversed() { _ = Shell.run(["ip", "netns", "del", name]) }
        created = []
    }
}

/// TCP reachability without any tool: a listening socket made inside one namespace and a
/// connecting socket made inside another. The kernel completes the handshake from the listen
/// backlog, so no accept() is needed.
enum TCPProbe {
    static func listen(inNamespace name: String, address: IPv4.Address, port: UInt16) throws -> Int32 {
        try NetworkNamespace.run(inNamespaceAt: NamespaceFixture.path(name)) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { throw SystemCallError(call: "socket", errno: errno, subject: "probe listener") }
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var socketAddress = Self.socketAddress(address, port)
            let bound = withUnsafePointer(to: &socketAddress) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, Glibc.listen(fd, 8) == 0 else {
                let code = errno
                close(fd)
                throw SystemCallError(call: "bind/listen", errno: code, subject: "\(address):\(port) in \(name)")
            }
            return fd
        }
    }

    /// True when a TCP connection from namespace `name` to address:port completes within 1 s.
    static func connects(fromNamespace name: String, to address: IPv4.Address, port: UInt16) throws -> Bool {
        let fd = try NetworkNamespace.run(inNamespaceAt: NamespaceFixture.path(name)) {
            socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw SystemCallError(call: "socket", errno: errno, subject: "probe client") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var socketAddress = socketAddress(address, port)
        let result = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return result == 0
    }

    private static func socketAddress(_ address: IPv4.Address, _ port: UInt16) -> sockaddr_in {
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = port.bigEndian
        socketAddress.sin_addr.s_addr = address.value.bigEndian
        return socketAddress
    }
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

@Suite("PodNetwork on a real kernel (root, private namespaces)", .serialized, .tags(.root))
struct PodNetworkIntegrationTests {
    @Test("two pods on the bridge reach each other and the gateway; detach leaves nothing",
          .enabled(if: RootGate.canRun, "needs root and permission to create network namespaces"))
    func twoPods() throws {
        let namespaces = NamespaceFixture()
        let scratch = try ScratchDirectory()
        defer {
            namespaces.cleanup()
            scratch.cleanup()
        }
        let node = try namespaces.create()
        let podA = try namespaces.create("a")
        let podB = try namespaces.create("b")
        let originalForwarding = Shell.inNamespace(node, ["cat", "/proc/sys/net/ipv4/ip_forward"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)

        let network = try PodNetwork.forNode(clusterCIDR: #require(IPv4.CIDR("10.244.0.0/16")), stateDirectory: scratch.path,
                                             nodeNamespacePath: NamespaceFixture.path(node))
        let gateway = try #require(IPv4.CIDR("10.244.0.1/24"))
        try network.ensureBridge(name: "cni0", gateway: gateway)
        try network.ensureBridge(name: "cni0", gateway: gateway)  // idempotent

        let bridge = Shell.run(["ip", "-n", node, "-d", "addr", "show", "dev", "cni0"]).output
        #expect(bridge.contains("inet 10.244.0.1/24"), "\(bridge)")
        #expect(bridge.contains("link/ether 0a:58:0a:f4:00:01"), "\(bridge)")
        #expect(bridge.contains("state UP") || bridge.contains(",UP"), "\(bridge)")
        var keys = [("net/ipv4/ip_forward", "1"), ("net/ipv4/conf/cni0/route_localnet", "1")]
        if Shell.inNamespace(node, ["test", "-e", "/proc/sys/net/bridge/bridge-nf-call-iptables"]).status == 0 {
            keys.append(("net/bridge/bridge-nf-call-iptables", "1"))
        }
        for (key, expected) in keys {
            let value = Shell.inNamespace(node, ["cat", "/proc/sys/\(key)"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(value == expected, "\(key) in the node namespace")
        }

        var clock = ContinuousClock.now
        let a = try network.attach(podUID: "pod-a-uid", netnsPath: NamespaceFixture.path(podA))
        let attachA = ContinuousClock.now - clock
        clock = ContinuousClock.now
        let b = try network.attach(podUID: "pod-b-uid", netnsPath: NamespaceFixture.path(podB))
        let attachB = ContinuousClock.now - clock
        print("attach pod A: \(String(format: "%.2f", milliseconds(attachA))) ms, pod B: \(String(format: "%.2f", milliseconds(attachB))) ms")
        #expect(a.address == IPv4.Address(10, 244, 0, 2))
        #expect(b.address == IPv4.Address(10, 244, 0, 3))

        let addressA = Shell.run(["ip", "-n", podA, "-4", "addr", "show", "dev", "eth0"]).output
        #expect(addressA.contains("inet 10.244.0.2/24 brd 10.244.0.255"), "\(addressA)")
        let routeA = Shell.run(["ip", "-n", podA, "route", "show", "default"]).output
        #expect(routeA.contains("default via 10.244.0.1 dev eth0"), "\(routeA)")
        let loA = Shell.run(["ip", "-n", podA, "link", "show", "lo"]).output
        #expect(loA.contains(",UP"), "\(loA)")
        let port = Shell.run(["bridge", "-n", node, "-d", "link", "show", "dev", a.hostInterface]).output
        #expect(port.contains("master cni0") && port.contains("hairpin on"), "\(port)")
        #expect(port.contains("state forwarding"), "\(port)")
        // Nothing of ours in the namespace the tests run in.
        #expect(Shell.run(["ip", "link", "show", a.hostInterface]).status != 0)

        // Reachability: TCP always; ping too when installed.
        let listenerB = try TCPProbe.listen(inNamespace: podB, address: b.address, port: 8080)
        defer { close(listenerB) }
        let listenerGateway = try TCPProbe.listen(inNamespace: node, address: gateway.address, port: 8081)
        defer { close(listenerGateway) }
        #expect(try TCPProbe.connects(fromNamespace: podA, to: b.address, port: 8080), "pod A -> pod B over TCP")
        #expect(try TCPProbe.connects(fromNamespace: podA, to: gateway.address, port: 8081), "pod A -> gateway over TCP")
        if Shell.run(["which", "ping"]).status == 0 {
            for (from, to) in [(podA, b.address), (podA, gateway.address), (podB, a.address)] {
                let ping = Shell.inNamespace(from, ["ping", "-c1", "-W1", to.description])
                #expect(ping.status == 0, "ping \(to) from \(from): \(ping.output)")
            }
        } else {
            print("NOTE: ping is not installed; reachability was checked with TCP only")
        }

        clock = ContinuousClock.now
        try network.detach(podUID: "pod-a-uid", netnsPath: NamespaceFixture.path(podA))
        print("detach pod A: \(String(format: "%.2f", milliseconds(ContinuousClock.now - clock))) ms")
        try network.detach(podUID: "pod-b-uid", netnsPath: NamespaceFixture.path(podB))
        try network.detach(podUID: "pod-b-uid", netnsPath: NamespaceFixture.path(podB))  // idempotent
        #expect(Shell.run(["ip", "-n", node, "-o", "link", "show", "type", "veth"]).output.isEmpty)
        #expect(!Shell.run(["ip", "-n", podA, "-o", "link", "show"]).output.contains("eth0"))
        #expect(network.ipam.list().isEmpty)

        try network.removeBridge()
        #expect(Shell.run(["ip", "-n", node, "link", "show", "cni0"]).status != 0)
        let restored = Shell.inNamespace(node, ["cat", "/proc/sys/net/ipv4/ip_forward"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(restored == originalForwarding)
    }

    @Test("the kernel's refusal reaches the caller with errno and its extended-ack text",
          .enabled(if: RootGate.canRun, "needs root and permission to create network namespaces"))
    func kernelRefusal() throws {
        let namespaces = NamespaceFixture()
        defer { namespaces.cleanup() }
        let node = try namespaces.create()
        let session = NetlinkSession(socket: try RouteNetlinkSocket.open(inNetworkNamespaceAt: NamespaceFixture.path(node)))
        try session.createBridge(name: "br0")
        let duplicate = try #require(throws: NetlinkError.self) { try session.createBridge(name: "br0") }
        #expect(duplicate.errnoName == "EEXIST")
        // A gateway that is not on any connected network: the kernel says why.
        let route = try #require(throws: NetlinkError.self) {
            try session.addDefaultRoute(gateway: IPv4.Address(192, 0, 2, 1), outputIndex: 1)
        }
        print("kernel refusal as reported: \(route)")
        #expect(route.detail?.isEmpty == false)
        #expect(try session.link(named: "br0")?.kind == "bridge")
        #expect(try session.link(named: "missing0") == nil)
    }

    @Test("attach/detach timing over 10 pods (printed), then 10 concurrent attaches",
          .enabled(if: RootGate.canRun, "needs root and permission to create network namespaces"))
    func timing() throws {
        let namespaces = NamespaceFixture()
        let scratch = try ScratchDirectory()
        defer {
            namespaces.cleanup()
            scratch.cleanup()
        }
        let node = try namespaces.create()
        let pods = try (0..<10).map { try namespaces.create("p\($0)") }
        let network = try PodNetwork.forNode(clusterCIDR: #require(IPv4.CIDR("10.244.0.0/16")), stateDirectory: scratch.path,
                                             nodeNamespacePath: NamespaceFixture.path(node))
        try network.ensureBridge(name: "cni0", gateway: #require(IPv4.CIDR("10.244.0.1/24")))
        var attach: [Double] = []
        var detach: [Double] = []
        for (i, pod) in pods.enumerated() {
            let start = ContinuousClock.now
            _ = try network.attach(podUID: "timing-\(i)", netnsPath: NamespaceFixture.path(pod))
            attach.append(milliseconds(ContinuousClock.now - start))
        }
        for (i, pod) in pods.enumerated() {
            let start = ContinuousClock.now
            try network.detach(podUID: "timing-\(i)", netnsPath: NamespaceFixture.path(pod))
            detach.append(milliseconds(ContinuousClock.now - start))
        }
        // The same pods attached concurrently: distinct addresses, every pod configured.
        let results = Locked<[Int: Result<PodAddress, any Error>]>([:])
        DispatchQueue.concurrentPerform(iterations: pods.count) { i in
            let result = Result { try network.attach(podUID: "parallel-\(i)", netnsPath: NamespaceFixture.path(pods[i])) }
            results.withLock { $0[i] = result }
        }
        let addresses = try results.withLock { $0 }.values.map { try $0.get().address }
        #expect(Set(addresses).count == pods.count)
        for pod in pods {
            let eth0 = Shell.run(["ip", "-n", pod, "-4", "-o", "addr", "show", "dev", "eth0"]).output
            #expect(eth0.contains("inet 10.244.0."), "\(pod): \(eth0)")
        }
        for i in pods.indices {
            try network.detach(podUID: "parallel-\(i)", netnsPath: NamespaceFixture.path(pods[i]))
        }
        try network.removeBridge()
        func summary(_ values: [Double]) -> String {
            let sorted = values.sorted()
            return String(format: "median %.2f ms, min %.2f, max %.2f", sorted[sorted.count / 2], sorted[0], sorted[sorted.count - 1])
        }
        print("TIMING attach (10 pods): \(summary(attach))")
        print("TIMING detach (10 pods): \(summary(detach))")
        #expect(attach.count == 10 && detach.count == 10)
        #expect(Shell.run(["ip", "-n", node, "-o", "link", "show", "type", "veth"]).output.isEmpty)
    }
}
