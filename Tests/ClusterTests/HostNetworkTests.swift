import Foundation
import Testing
import Cluster

@Suite("Host network checks")
struct HostNetworkTests {
    // MARK: CIDR parsing

    struct CIDRCase: Sendable, CustomTestStringConvertible {
        var text: String
        var network: String?
        var prefix: Int = 0
        var error: String?
        var testDescription: String { text }
    }

    @Test(arguments: [
        CIDRCase(text: "10.96.0.0/12", network: "10.96.0.0", prefix: 12),
        CIDRCase(text: "10.0.0.0/24", network: "10.0.0.0", prefix: 24),
        CIDRCase(text: "0.0.0.0/0", network: "0.0.0.0", prefix: 0),
        CIDRCase(text: "192.168.1.7/32", network: "192.168.1.7", prefix: 32),
        // kube-apiserver's sloppy parser clears host bits instead of refusing them.
        CIDRCase(text: "10.96.0.5/12", network: "10.96.0.0", prefix: 12),
        CIDRCase(text: "10.96.0.0/33", error: #"invalid CIDR "10.96.0.0/33": prefix length must be 0-32"#),
        CIDRCase(text: "10.96.0.0/-1", error: #"invalid CIDR "10.96.0.0/-1": prefix length must be 0-32"#),
        CIDRCase(text: "10.96.0.0/", error: #"invalid CIDR "10.96.0.0/": prefix length must be 0-32"#),
        CIDRCase(text: "10.96.0.0/012", error: #"invalid CIDR "10.96.0.0/012": prefix length must be 0-32"#),
        CIDRCase(text: "10.96.0.0", error: #"invalid CIDR "10.96.0.0": expected an address and a prefix length, like 10.96.0.0/12"#),
        CIDRCase(text: "10.256.0.0/16", error: #"invalid CIDR "10.256.0.0/16": "256" is not a number from 0 to 255"#),
        CIDRCase(text: "10.96.0/16", error: #"invalid CIDR "10.96.0/16": expected four dot-separated numbers"#),
        CIDRCase(text: "010.96.0.0/12", error: #"invalid CIDR "010.96.0.0/12": "010" has a leading zero"#),
        CIDRCase(text: "fd00::/108", error: #"invalid CIDR "fd00::/108": expected four dot-separated numbers"#),
        CIDRCase(text: "", error: #"invalid CIDR "": expected an address and a prefix length, like 10.96.0.0/12"#),
    ])
    func parseCIDR(_ testCase: CIDRCase) {
        do {
            let cidr = try IPv4CIDR(parsing: testCase.text)
            #expect(testCase.error == nil, "parsed as \(cidr)")
            #expect(cidr.network.description == testCase.network)
            #expect(cidr.prefixLength == testCase.prefix)
        } catch {
            #expect("\(error)" == testCase.error)
        }
    }

    @Test func strictParsingRefusesHostBits() {
        #expect(throws: HostNetworkError.invalidCIDR("10.96.0.5/12", reason: "host bits are set; did you mean 10.96.0.0/12?")) {
            try IPv4CIDR(parsing: "10.96.0.5/12", allowHostBits: false)
        }
        #expect((try? IPv4CIDR(parsing: "10.96.0.0/12", allowHostBits: false)) != nil)
    }

    @Test func serviceRangeAddresses() throws {
        let services = try IPv4CIDR(parsing: "10.96.0.0/12")
        #expect(services.size == 1 << 20)
        #expect(services.nth(1)?.description == "10.96.0.1")
        #expect(services.nth(10)?.description == "10.96.0.10")
        #expect(services.lastAddress.description == "10.111.255.255")
        #expect(services.mask.description == "255.240.0.0")

        let chapter = try IPv4CIDR(parsing: "10.0.0.0/24")
        #expect(chapter.nth(1)?.description == "10.0.0.1")
        #expect(chapter.nth(10)?.description == "10.0.0.10")
        #expect(chapter.nth(255)?.description == "10.0.0.255")
        #expect(chapter.nth(256) == nil)
        #expect(try IPv4CIDR(parsing: "0.0.0.0/0").size == 1 << 32)
    }

    @Test(arguments: [
        ("10.96.0.0/12", "10.96.0.1", true),
        ("10.96.0.0/12", "10.111.255.255", true),
        ("10.96.0.0/12", "10.112.0.0", false),
        ("10.96.0.0/12", "10.95.255.255", false),
        ("0.0.0.0/0", "203.0.113.9", true),
        ("192.168.1.7/32", "192.168.1.7", true),
        ("192.168.1.7/32", "192.168.1.8", false),
    ])
    func contains(cidr: String, address: String, expected: Bool) throws {
        #expect(try IPv4CIDR(parsing: cidr).contains(IPv4Address(parsing: address)) == expected)
    }

    @Test(arguments: [
        ("10.96.0.0/12", "10.100.0.0/16", true),
        ("10.100.0.0/16", "10.96.0.0/12", true),
        ("10.96.0.0/12", "10.112.0.0/12", false),
        ("10.244.0.0/16", "10.96.0.0/12", false),
        ("172.17.0.0/16", "172.16.0.0/12", true),
        ("192.168.1.0/24", "192.168.1.128/25", true),
        ("192.168.1.0/25", "192.168.1.128/25", false),
        ("0.0.0.0/0", "10.0.0.0/8", true),
    ])
    func overlaps(first: String, second: String, expected: Bool) throws {
        #expect(try IPv4CIDR(parsing: first).overlaps(IPv4CIDR(parsing: second)) == expected)
    }

    @Test func serviceRangeSizeLimitMatchesKubeAPIServer() throws {
        try IPv4CIDR(parsing: "10.96.0.0/12").checkServiceRangeSize()
        #expect(throws: HostNetworkError.self) { try IPv4CIDR(parsing: "10.0.0.0/11").checkServiceRangeSize() }
        do {
            try IPv4CIDR(parsing: "10.0.0.0/8").checkServiceRangeSize()
            Issue.record("a /8 service range was accepted")
        } catch {
            #expect("\(error)" == "specified --service-cluster-ip-range is too large; for 32-bit addresses, the mask must be >= 12")
        }
    }

    // MARK: Port ranges

    @Test(arguments: [
        ("30000-32767", 30000, 32767, nil),
        ("30000+2767", 30000, 32767, nil),
        ("30080", 30080, 30080, nil),
        (" 30000-30010 ", 30000, 30010, nil),
        ("32767-30000", 0, 0, #"invalid port range "32767-30000": end port cannot be less than start port"#),
        ("30000-70000", 0, 0, #"invalid port range "30000-70000": the port range cannot be greater than 65535"#),
        ("65000+1000", 0, 0, #"invalid port range "65000+1000": the port range cannot be greater than 65535"#),
        ("0-100", 0, 0, #"invalid port range "0-100": ports start at 1"#),
        ("abc", 0, 0, #"invalid port range "abc": "abc" is not a port number"#),
        ("30000-", 0, 0, #"invalid port range "30000-": "" is not a port number"#),
        ("1-2-3", 0, 0, #"invalid port range "1-2-3": expected a range like 30000-32767"#),
        ("1-2+3", 0, 0, #"invalid port range "1-2+3": expected a range like 30000-32767"#),
        ("", 0, 0, #"invalid port range "": expected a range like 30000-32767"#),
    ] as [(String, Int, Int, String?)])
    func parsePortRange(text: String, low: Int, high: Int, error: String?) {
        do {
            let range = try HostNetwork.parsePortRange(text)
            #expect(error == nil, "parsed as \(range)")
            #expect(range.lowerBound == low)
            #expect(range.upperBound == high)
            #expect(range.count == high - low + 1)
            #expect(range.contains(low) && range.contains(high) && !range.contains(high + 1))
        } catch let caught {
            #expect("\(caught)" == error)
        }
    }

    // MARK: Routes

    /// A laptop: wired and Wi-Fi default routes, docker0, a route that is down, a host route.
    static let routeFixture = """
    Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
    wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
    eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0
    eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
    wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
    vpn0\t000064AC\t00000000\t0000\t0\t0\t0\t0000FFFF\t0\t0\t0
    eth0\t0A0A0A0A\t0100000A\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0
    """

    @Test func parsesProcNetRoute() throws {
        let routes = HostNetwork.parseProcNetRoute(Self.routeFixture)
        #expect(routes.map(\.description) == [
            "0.0.0.0/0 dev wlan0",
            "0.0.0.0/0 dev eth0",
            "10.0.0.0/24 dev eth0",
            "192.168.1.0/24 dev wlan0",
            "172.17.0.0/16 dev docker0",
            // vpn0's route is not up (flags 0000) and is skipped
            "10.10.10.10/32 dev eth0",
        ])
        #expect(routes[0].gateway.description == "192.168.1.1")
        #expect(routes[0].metric == 600)
        #expect(routes[1].isDefault && !routes[2].isDefault)
    }

    @Test func parsesThisHostsRouteFile() throws {
        guard FileManager.default.fileExists(atPath: "/proc/net/route") else { return }
        let routes = try HostNetwork.readHostRoutes()
        // Every route the kernel prints is a proper CIDR; the header is never taken for a route.
        #expect(routes.allSatisfy { $0.destination.prefixLength <= 32 && !$0.interface.isEmpty && $0.interface != "Iface" })
    }

    @Test func unreadableRouteFileMeansNoRoutes() {
        #expect(HostNetwork.hostRoutes(path: "/nonexistent/route").isEmpty)
        #expect(throws: HostNetworkError.self) { try HostNetwork.readHostRoutes(path: "/nonexistent/route") }
    }

    @Test(arguments: [
        ("172.16.0.0/12", [String](), "172.17.0.0/16 dev docker0"),
        ("172.16.0.0/12", ["docker0"], nil),
        ("10.96.0.0/12", [], nil),          // only the default route covers it
        ("10.0.0.0/16", [], "10.0.0.0/24 dev eth0"),
        ("10.10.0.0/16", [], "10.10.10.10/32 dev eth0"),
        ("192.168.0.0/16", [], "192.168.1.0/24 dev wlan0"),
        ("172.100.0.0/16", [], nil),        // vpn0's route is down
    ] as [(String, [String], String?)])
    func overlappingRoute(cidr: String, ignoring: [String], expected: String?) throws {
        let routes = HostNetwork.parseProcNetRoute(Self.routeFixture)
        let found = HostNetwork.overlappingRoute(
            for: try IPv4CIDR(parsing: cidr), ignoringInterfaces: Set(ignoring), routes: routes)
        #expect(found?.description == expected)
    }

    @Test func overlapCheckReadsTheRouteFileAndSaysWhatClashes() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/route"
        try Self.routeFixture.write(toFile: path, atomically: true, encoding: .utf8)

        try HostNetwork.checkNoRouteOverlap(
            try IPv4CIDR(parsing: "10.96.0.0/12"), flag: "--service-cluster-ip-range", routesPath: path)
        do {
            try HostNetwork.checkNoRouteOverlap(
                try IPv4CIDR(parsing: "172.17.0.0/16"), flag: "--cluster-cidr", routesPath: path)
            Issue.record("an overlap with docker0 was not reported")
        } catch {
            #expect("\(error)" == "--cluster-cidr 172.17.0.0/16 overlaps the host route 172.17.0.0/16 on docker0; choose a range the host does not use")
        }
        #expect(throws: HostNetworkError.self) {
            try HostNetwork.checkNoRouteOverlap(
                try IPv4CIDR(parsing: "10.0.0.0/8"), flag: "x", routesPath: directory + "/missing")
        }
    }

    // MARK: Node IP

    @Test func nodeIPComesFromTheDefaultRouteWithTheLowestMetric() throws {
        let routes = HostNetwork.parseProcNetRoute(Self.routeFixture)
        let interfaces = [
            InterfaceAddress(interface: "lo", address: try IPv4Address(parsing: "127.0.0.1"), isLoopback: true),
            InterfaceAddress(interface: "docker0", address: try IPv4Address(parsing: "172.17.0.1")),
            InterfaceAddress(interface: "wlan0", address: try IPv4Address(parsing: "192.168.1.23")),
            InterfaceAddress(interface: "eth0", address: try IPv4Address(parsing: "10.0.0.42")),
        ]
        #expect(HostNetwork.chooseNodeIP(routes: routes, interfaces: interfaces)?.description == "10.0.0.42")

        // eth0 unplugged: its address is gone, the Wi-Fi default route wins.
        let unplugged = interfaces.filter { $0.interface != "eth0" }
        #expect(HostNetwork.chooseNodeIP(routes: routes, interfaces: unplugged)?.description == "192.168.1.23")
    }

    @Test func nodeIPPrefersTheAddressInTheGatewaysSubnet() throws {
        let routes = HostNetwork.parseProcNetRoute(Self.routeFixture)
        let interfaces = [
            InterfaceAddress(interface: "eth0", address: try IPv4Address(parsing: "198.51.100.5")),
            InterfaceAddress(interface: "eth0", address: try IPv4Address(parsing: "10.0.0.42")),
        ]
        #expect(HostNetwork.chooseNodeIP(routes: routes, interfaces: interfaces)?.description == "10.0.0.42")
    }

    @Test func nodeIPFallsBackToTheFirstNonLoopbackAddress() throws {
        let interfaces = [
            InterfaceAddress(interface: "lo", address: try IPv4Address(parsing: "127.0.0.1"), isLoopback: true),
            InterfaceAddress(interface: "ens3", address: try IPv4Address(parsing: "192.0.2.9"), isUp: false),
            InterfaceAddress(interface: "ens4", address: try IPv4Address(parsing: "192.0.2.10")),
        ]
        #expect(HostNetwork.chooseNodeIP(routes: [], interfaces: interfaces)?.description == "192.0.2.10")
        #expect(HostNetwork.chooseNodeIP(routes: [], interfaces: Array(interfaces.prefix(2))) == nil)
    }

    @Test func thisHostsNodeIPIsAUsableAddress() throws {
        let found = HostNetwork.defaultNodeIP()
        let addresses = HostNetwork.interfaceAddresses().filter { $0.isUp && !$0.isLoopback }
        if addresses.isEmpty {
            #expect(found == nil)
        } else {
            let address = try IPv4Address(parsing: try #require(found))
            #expect(!address.isLoopback)
            #expect(addresses.contains { $0.address == address })
        }
    }

    // MARK: Ports

    @Test func portInUseIsDetected() throws {
        let (fd, port) = try listenOnLoopback()
        #expect(!HostNetwork.isTCPPortFree(host: "127.0.0.1", port: port))
        do {
            try HostNetwork.checkTCPPortFree(host: "127.0.0.1", port: port, purpose: "--secure-port")
            Issue.record("a listening port was reported free")
        } catch {
            #expect("\(error)" == "port \(port) on 127.0.0.1 (--secure-port) is not available: already in use")
        }
        close(fd)
        #expect(HostNetwork.isTCPPortFree(host: "127.0.0.1", port: port))
    }

    @Test func badHostOrPortIsNotFree() {
        #expect(!HostNetwork.isTCPPortFree(host: "not-an-ip", port: 6443))
        #expect(!HostNetwork.isTCPPortFree(host: "127.0.0.1", port: 0))
        #expect(!HostNetwork.isTCPPortFree(host: "127.0.0.1", port: 70000))
    }
}

// MARK: - Helpers

private struct SocketError: Error {
    var call: String
    var code: Int32
}

/// Listens on 127.0.0.1 at a kernel-chosen port; returns the socket and the port.
private func listenOnLoopback() throws -> (Int32, Int) {
    #if canImport(Glibc)
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    #else
    let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw SocketError(call: "socket", code: errno) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, 1) == 0 else {
        close(fd)
        throw SocketError(call: "bind/listen", code: errno)
    }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}
