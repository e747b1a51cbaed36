import Foundation
import TestSupport
import XCTest

@testable import Addons

/// Servers started from inline Corefiles on loopback, asked over real sockets.
final class LiveServerTests: XCTestCase {
    /// A port the kernel just handed out for UDP (then released): free for the test's servers,
    /// which need a number before they start (a Corefile that forwards to itself).
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p in
                bind(fd, p, length) == 0 ? getsockname(fd, p, &length) : -1
            }
        }
        let port = Int(UInt16(bigEndian: addr.sin_port))
        return port == 0 ? Int.random(in: 20000...40000) : port
    }

    func testUDPTCPTruncationHealthReadyAndMetrics() async throws {
        let many = (1...60).map { "10.1.0.\($0) many.lab" }.joined(separator: "\n")
        let dns = try await LiveDNS("""
        .:0 {
            errors
            log
            health 127.0.0.1:0
            ready 127.0.0.1:0
            prometheus 127.0.0.1:0
            hosts {
                10.0.0.5 registry.lab
                \(many)
            }
            cache 30
        }
        """)
        let port = dns.port
        let a = try DNSClient.ask("registry.lab", port: port)
        XCTAssertEqual(a.answers.map(\.data), [.a(IPv4("10.0.0.5")!)])
        XCTAssertTrue(a.authoritative)
        XCTAssertEqual(try DNSClient.ask("registry.lab", port: port, tcp: true).answers.count, 1)
        let udp = try DNSClient.ask("many.lab", port: port)
        XCTAssertTrue(udp.truncated, "60 addresses do not fit 512 bytes")
        let tcp = try DNSClient.ask("many.lab", port: port, tcp: true)
        XCTAssertFalse(tcp.truncated)
        XCTAssertEqual(tcp.answers.count, 60)
        XCTAssertEqual(try DNSClient.ask("many.lab", port: port, edns: 4096).answers.count, 60, "EDNS0 makes room")

        let shared = dns.addon.sharedListeners
        let health = try XCTUnwrap(shared.boundPort("127.0.0.1:0"))
        XCTAssertEqual(DNSClient.httpGet(port: health, path: "/health")?.0, 200)
        XCTAssertEqual(DNSClient.httpGet(port: health, path: "/ready")?.1, "OK")
        let metrics = try XCTUnwrap(DNSClient.httpGet(port: health, path: "/metrics")?.1)
        XCTAssertTrue(metrics.contains(#"coredns_dns_requests_total{server="dns://:0",zone=".",view="",proto="udp",family="1",type="A"} 3"#), metrics)
        XCTAssertTrue(metrics.contains(#"coredns_dns_responses_total{server="dns://:0",zone=".",view="",rcode="NOERROR",plugin="hosts"}"#), metrics)
        XCTAssertTrue(metrics.contains("coredns_dns_request_duration_seconds_bucket"), metrics)
        XCTAssertTrue(metrics.contains("coredns_build_info"), metrics)
        XCTAssertTrue(dns.sink.captured.contains { $0.contains(#""A IN registry.lab. tcp"#) }, "\(dns.sink.captured)")
        XCTAssertEqual(dns.sink.captured.first, ".:0", "the start-up lines name the server")
        await dns.stop()
    }

    /// Cache hits read in one burst are written into one buffer and sent as slices of it:
    /// every asker must still get its own answer (id, name as spelled, address), also with
    /// misses and NXDOMAINs, which take the whole path, in the same burst.
    func testABurstOfMixedQueriesGetsEachItsOwnAnswer() async throws {
        let hosts = (0..<40).map { "10.2.0.\($0) host\($0).lab" }.joined(separator: "\n")
        let dns = try await LiveDNS("""
        .:0 {
            errors
            prometheus 127.0.0.1:0
            hosts {
                \(hosts)
            }
            cache 30
        }
        """)
        let port = dns.port
        for i in 0..<20 { _ = try DNSClient.ask("host\(i).lab", port: port) }  // hits from now on
        var asked: [UInt16: (name: String, address: String?)] = [:]
        var packets: [[UInt8]] = []
        for n in 0..<300 {
            let id = UInt16(n + 1)
            let i = n % 45
            // Hits (0-19); misses (20-39, cached after their first); names hosts does not know
            // (40-44: SERVFAIL, as CoreDNS answers them). The spelling varies; answers keep it.
            let name = (n % 3 == 0 ? "HOST\(i).lab" : "host\(i).Lab")
            asked[id] = (name + ".", i < 40 ? "10.2.0.\(i)" : nil)
            packets.append(DNSClient.query(name, id: id).serialized())
        }
        // Bursts of 40: a burst the socket's receive buffer cannot hold is dropped by the kernel.
        var answers: [[UInt8]] = []
        for at in stride(from: 0, to: packets.count, by: 40) {
            let burst = Array(packets[at..<min(at + 40, packets.count)])
            answers += DNSClient.burst(burst, port: port, expecting: burst.count)
        }
        XCTAssertEqual(answers.count, packets.count, "one answer per query")
        var seen = Set<UInt16>()
        for bytes in answers {
            let m = try DNSMessage(parsing: bytes)
            let want = try XCTUnwrap(asked[m.id], "an answer to a query not asked: id \(m.id)")
            XCTAssertTrue(seen.insert(m.id).inserted, "id \(m.id) answered twice")
            XCTAssertEqual(m.question?.name.description, want.name)
            if let address = want.address {
                XCTAssertEqual(m.rcode, .noError, want.name)
                XCTAssertEqual(m.answers.map(\.data), [.a(try XCTUnwrap(IPv4(address)))], want.name)
            } else {
                XCTAssertEqual(m.rcode, .serverFailure, want.name)  // as CoreDNS's hosts: no SOA to deny with
            }
        }
        await dns.stop()
    }

    /// The UDP burst buffer goes back to its kept size only when it grew past it: a fresh
    /// buffer must not already read as larger, or every burst would allocate a new one.
    func testTheBurstBufferKeepsItsSizeWhenItHasNotGrown() {
        let fresh = DNSDispatcher.allocator.buffer(capacity: UDPDNSHandler.keptCapacity)
        XCTAssertEqual(fresh.capacity, UDPDNSHandler.keptCapacity)
    }

    func testForwardToUpstreamFailsOverAndNeverToItself() async throws {
        let upstream = try await LiveDNS(".:0 {\n hosts {\n 192.0.2.10 www.example.org\n }\n}")
        let dead = Self.freePort()
        let own = Self.freePort()
        let dns = try await LiveDNS("""
        .:\(own) {
            errors
            forward . 127.0.0.1:\(own) 127.0.0.1:\(dead) 127.0.0.1:\(upstream.port) {
                policy sequential
            }
        }
        """)
        let started = ContinuousClock.now
        let a = try DNSClient.ask("www.example.org", port: dns.port)
        XCTAssertEqual(a.answers.map(\.data), [.a(IPv4("192.0.2.10")!)])
        XCTAssertGreaterThan(ContinuousClock.now - started, .seconds(1), "the dead upstream was tried first")
        let forward = try XCTUnwrap(dns.addon.server?.plugins.compactMap { $0 as? ForwardPlugin }.first)
        XCTAssertFalse(forward.order().contains { $0.port == own }, "its own address was dropped")
        await dns.stop()
        await upstream.stop()
    }

    func testLoopIsDetectedAndLoggedWithoutDying() async throws {
        let pa = Self.freePort(), pb = Self.freePort()
        let b = try await LiveDNS(".:\(pb) {\n forward . 127.0.0.1:\(pa)\n}")
        let a = try await LiveDNS("""
        .:\(pa) {
            errors
            hosts {
                10.0.0.5 registry.lab
                fallthrough
            }
            loop
            forward . 127.0.0.1:\(pb)
        }
        """)
        let loop = try XCTUnwrap(a.addon.server?.plugins.compactMap { $0 as? LoopPlugin }.first)
        for _ in 0..<50 where !loop.loopDetected { try await Task.sleep(for: .milliseconds(100)) }
        XCTAssertTrue(loop.loopDetected)
        XCTAssertEqual(try DNSClient.ask("registry.lab", port: pa).answers.count, 1, "still serving its own names")
        XCTAssertEqual(try DNSClient.ask("www.example.org", port: pa).rcode, .serverFailure, "forwarding is off")
        await a.stop()
        await b.stop()
    }

    func testReloadSwapsTheServerAndKeepsTheOldOneOnABrokenFile() async throws {
        let dns = try await LiveDNS(".:0 {\n reload 2s\n hosts {\n 10.0.0.1 a.lab\n }\n}")
        let port = dns.port
        XCTAssertEqual(try DNSClient.ask("a.lab", port: port).answers.count, 1)
        try dns.rewrite(".:\(port) {\n reload 2s\n hosts {\n 10.0.0.2 b.lab\n }\n}")
        let swapped = await dns.addon.reloadIfChanged()
        XCTAssertTrue(swapped)
        XCTAssertEqual(try DNSClient.ask("b.lab", port: port).answers.map(\.data), [.a(IPv4("10.0.0.2")!)])
        try dns.rewrite(".:\(port) {\n reload 2s\n nonsense\n}")
        let broken = await dns.addon.reloadIfChanged()
        XCTAssertFalse(broken)
        XCTAssertEqual(try DNSClient.ask("b.lab", port: port).answers.count, 1, "the old server still answers")
        XCTAssertTrue(dns.sink.captured.contains { $0.contains("unknown directive 'nonsense'") }, "\(dns.sink.captured)")
        // The same broken file is not tried again on the next check, as CoreDNS does.
        let again = await dns.addon.reloadIfChanged()
        XCTAssertFalse(again)
        XCTAssertEqual(dns.sink.captured.filter { $0.contains("Restart failed") }.count, 1, "\(dns.sink.captured)")
        await dns.stop()
    }

    /// The add-on trims once things settle after start-up, and again after a reload, not in
    /// between; the activity it waits on counts reloads that took.
    func testTrimsOnceSettledAfterStartAndAfterAReload() async throws {
        let dns = try await LiveDNS(".:0 {\n hosts {\n 10.0.0.1 a.lab\n }\n}")
        let port = dns.port
        let trimmer = Task { await dns.addon.trimWhenSettled(settle: .milliseconds(300), look: .milliseconds(50), growth: nil) }
        try await dns.waitForTrims(1)
        XCTAssertEqual(dns.addon.settledTrims.value, 1, "one trim once start-up settled")
        try await Task.sleep(for: .milliseconds(700))
        XCTAssertEqual(dns.addon.settledTrims.value, 1, "not again while nothing changes")
        XCTAssertEqual(try DNSClient.ask("a.lab", port: port).answers.count, 1, "still answering after the trim")

        let before = dns.addon.activity
        try dns.rewrite(".:\(port) {\n hosts {\n 10.0.0.2 b.lab\n }\n}")
        let swapped = await dns.addon.reloadIfChanged()
        XCTAssertTrue(swapped)
        XCTAssertEqual(dns.addon.activity, before + 1)
        try await dns.waitForTrims(2)
        XCTAssertEqual(dns.addon.settledTrims.value, 2, "one more once the reload settled")
        XCTAssertEqual(try DNSClient.ask("b.lab", port: port).answers.count, 1)
        trimmer.cancel()
        await dns.stop()
    }

    /// Work that is not activity (a probe, a first burst of queries) trims too, once it has mapped
    /// more than the threshold over the settled level and page faults have stopped. The readings
    /// are scripted: this test process's own memory moves with every other test.
    func testGrowthOverTheSettledLevelBringsATrim() async throws {
        let dns = try await LiveDNS(".:0 {\n hosts {\n 10.0.0.1 a.lab\n }\n}")
        let mb = 1 << 20
        let reading = LockedBox(MemoryTrim.Reading(faults: 0, fileResident: 10 * mb))
        let trimmer = Task {
            await dns.addon.trimWhenSettled(settle: .milliseconds(300), look: .milliseconds(50), growth: mb, reading: { reading.value })
        }
        defer { trimmer.cancel() }
        try await dns.waitForTrims(1)
        XCTAssertEqual(dns.addon.settledTrims.value, 1, "the start-up trim")
        try await Task.sleep(for: .milliseconds(800))
        XCTAssertEqual(dns.addon.settledTrims.value, 1, "no growth, no trim")

        reading.value = .init(faults: 500, fileResident: 12 * mb)
        try await dns.waitForTrims(2)
        XCTAssertEqual(dns.addon.settledTrims.value, 2, "2 MB over the level once faults stopped")
        XCTAssertEqual(try DNSClient.ask("a.lab", port: dns.port).answers.count, 1, "still answering after the trim")

        // The level is measured again after that trim (12 MB here): half a megabyte more is not enough.
        try await Task.sleep(for: .milliseconds(800))
        reading.value = .init(faults: 600, fileResident: 12 * mb + mb / 2)
        try await Task.sleep(for: .milliseconds(800))
        XCTAssertEqual(dns.addon.settledTrims.value, 2)
        await dns.stop()
    }

    /// A watch the API server ends is started again (no relist), and that counts as activity:
    /// the new watch's TLS handshake maps code the settle trim then gives back.
    func testANewWatchBringsOneMoreTrim() async throws {
        // The first watch of each informer (services, slices, namespaces) ends after 1.1 s.
        let client = ScriptedAPIClient(streams: [[], [], []])
        let dns = try await LiveDNS(".:0 {\n kubernetes cluster.local\n}", apiClient: { client })
        let trimmer = Task { await dns.addon.trimWhenSettled(settle: .milliseconds(300), look: .milliseconds(50), growth: nil) }
        defer { trimmer.cancel() }
        try await dns.waitForTrims(2)
        let calls = client.calls.withLock { $0 }
        XCTAssertEqual(dns.addon.settledTrims.value, 2, "one trim after start-up, one after the new watches: \(calls)")
        XCTAssertEqual(calls.lists, 3, "each informer listed once")
        XCTAssertEqual(calls.watchedFrom.count, 6, "and watched twice")
        trimmer.cancel()
        await dns.stop()
    }

    /// The hash the reload plugin logs, as `sha512sum` prints it.
    func testCorefileHashIsLowerCaseHexSHA512() {
        XCTAssertEqual(DNSAddon.sha512(""), "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                       + "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e")
        XCTAssertEqual(DNSAddon.sha512("abc").prefix(16), "ddaf35a193617aba")
    }

    /// DNS over TLS with a certificate from the Corefile, asked with kdig (knot-dnsutils).
    func testDNSOverTLS() async throws {
        guard let kdig = ["/usr/bin/kdig"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }),
              FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") else {
            throw XCTSkip("SKIPPED LOUDLY: kdig (knot-dnsutils) or openssl is missing; scripts/setup --test installs them")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dot-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let gen = Process()
        gen.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        gen.arguments = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                         "-subj", "/CN=dns.test", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"]
        gen.standardError = FileHandle.nullDevice
        try gen.run()
        gen.waitUntilExit()
        let port = Self.freePort()
        let dns = try await LiveDNS("tls://.:\(port) {\n tls \(dir)/cert.pem \(dir)/key.pem\n hosts {\n 10.0.0.9 secure.lab\n }\n}")
        let out = Pipe()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: kdig)
        p.arguments = ["+tls", "+short", "-p", String(port), "@127.0.0.1", "secure.lab"]
        p.standardOutput = out
        try p.run()
        p.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertEqual(text.trimmingCharacters(in: .whitespacesAndNewlines), "10.0.0.9")
        XCTAssertNil(DNSClient.udp(DNSClient.query("secure.lab").serialized(), port: port, timeout: 0.5), "no plain UDP on a tls:// server")
        await dns.stop()
    }
}
