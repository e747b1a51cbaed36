import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import XCTest

@testable import Addons

/// Each plugin called directly, over tables of cases.
final class PluginTests: XCTestCase {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    final class Fixed: DNSPlugin {
        let name = "fixed"
        let calls = Mutex(0)
        let rcode: DNSRcode
        let answers: [DNSRecord]
        init(rcode: DNSRcode = .noError, answers: [DNSRecord] = []) {
            self.rcode = rcode
            self.answers = answers
        }
        func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
            calls.withLock { $0 += 1 }
            var m = request.reply(rcode)
            m.answers = answers.map { var r = $0; r.name = request.question.name; return r }
            if rcode == .nameError {
                m.authorities = [DNSRecord(name: "example.", ttl: 60, data: .soa(SOA(mname: "ns.example.", rname: "h.example.", serial: 1,
                                                                                      refresh: 1, retry: 1, expire: 1, minimum: 60)))]
            }
            return .done(DNSResponse(message: m, plugin: name, error: rcode == .serverFailure ? "upstream broke" : nil))
        }
    }

    func request(_ name: String, _ type: DNSType = .a) -> DNSRequest {
        var m = DNSMessage()
        m.id = 9
        m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
        return DNSRequest(message: m, question: m.questions[0], remote: try? SocketAddress(ipAddress: "10.244.0.7", port: 41234), size: 40, eventLoop: loop)
    }

    func run(_ plugin: any DNSPlugin, _ r: DNSRequest, then rest: [any DNSPlugin]) throws -> DNSResponse {
        switch plugin.serve(r, next: DNSNext(chain: rest)) {
        case .done(let d): return d
        case .later(let f): return try f.wait()
        }
    }

    /// An A question for `name` through the whole dispatcher, as the asker reads the answer.
    func ask(_ d: DNSDispatcher, _ name: String, id: UInt16, rd: Bool = true) throws -> DNSMessage {
        var q = DNSMessage()
        q.id = id
        q.recursionDesired = rd
        q.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: .a)]
        guard case .reply(let bytes) = d.handle(q.serialized(), remote: nil, transport: .udp, eventLoop: loop) else {
            XCTFail("no immediate answer")
            return DNSMessage()
        }
        return try DNSMessage(parsing: Array(bytes.readableBytesView))
    }

    func testCacheKeepsAnswersCountsTTLDownAndKeepsDenialsApart() throws {
        let clock = Mutex(ContinuousClock.now)
        let metrics = DNSMetrics()
        var config = CachePlugin.Config()
        config.maxTTL = 30
        let cache = CachePlugin(config: config, metrics: metrics, serverLabel: "dns://:53", now: { clock.withLock { $0 } })
        let backend = Fixed(answers: [DNSRecord(name: "x.", ttl: 300, data: .a(IPv4(1)))])
        _ = try run(cache, request("a.example."), then: [backend])
        let hit = try run(cache, request("A.EXAMPLE."), then: [backend])
        XCTAssertEqual(backend.calls.withLock { $0 }, 1, "the second question came from the cache")
        // TTLs as written on the wire: capped at the cache's TTL, counted down by age.
        // A hit hands on the stored message and its age; the dispatcher writes it for the asker.
        func ttl(_ r: DNSResponse) throws -> UInt32? { try DNSMessage(parsing: r.agedMessage.serialized()).answers.first?.ttl }
        XCTAssertEqual(try ttl(hit), 30, "capped at the cache's TTL")
        XCTAssertEqual(hit.plugin, "cache")
        XCTAssertNotNil(hit.wire, "a hit carries its wire form")
        clock.withLock { $0 = $0 + .seconds(12) }
        XCTAssertEqual(try ttl(try run(cache, request("a.example."), then: [backend])), 18, "counted down")
        clock.withLock { $0 = $0 + .seconds(20) }
        _ = try run(cache, request("a.example."), then: [backend])
        XCTAssertEqual(backend.calls.withLock { $0 }, 2, "expired")
        let nx = Fixed(rcode: .nameError)
        _ = try run(cache, request("gone.example."), then: [nx])
        _ = try run(cache, request("gone.example."), then: [nx])
        XCTAssertEqual(nx.calls.withLock { $0 }, 1)
        XCTAssertEqual(cache.entryCount.success, 1)
        XCTAssertEqual(cache.entryCount.denial, 1)
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        XCTAssertTrue(text.contains(#"coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""} 2"#), text)
        XCTAssertTrue(text.contains(#"coredns_cache_entries{server="dns://:53",type="denial",zones=".",view=""} 1"#), text)
    }

    /// A name that existed and is gone: once its answer has expired, the denial is cached and
    /// served from the cache, whatever is left of the old entry.
    func testCacheServesADenialAfterTheSameNamesAnswerExpired() throws {
        let clock = Mutex(ContinuousClock.now)
        var config = CachePlugin.Config()
        config.maxTTL = 30
        let cache = CachePlugin(config: config, metrics: nil, serverLabel: "dns://:53", now: { clock.withLock { $0 } })
        let existing = Fixed(answers: [DNSRecord(name: "x.", ttl: 300, data: .a(IPv4(1)))])
        let gone = Fixed(rcode: .nameError)
        _ = try run(cache, request("a.example."), then: [existing])
        clock.withLock { $0 = $0 + .seconds(31) }
        XCTAssertEqual(try run(cache, request("a.example."), then: [gone]).message.rcode, .nameError)
        let again = try run(cache, request("a.example."), then: [gone])
        XCTAssertEqual(again.message.rcode, .nameError)
        XCTAssertEqual(again.plugin, "cache")
        XCTAssertEqual(gone.calls.withLock { $0 }, 1, "the denial came from the cache")
        XCTAssertEqual(cache.entryCount.success, 0)
        XCTAssertEqual(cache.entryCount.denial, 1)
    }

    /// A cache hit goes out as the stored wire answer, patched for the new asker: its id, RD,
    /// its spelling of the name and the TTLs counted down; the same bytes a fresh write gives.
    func testCacheHitsAreSentFromTheirWireFormPatched() throws {
        let clock = Mutex(ContinuousClock.now)
        let cache = CachePlugin(config: CachePlugin.Config(), metrics: nil, serverLabel: "dns://:53", now: { clock.withLock { $0 } })
        let backend = Fixed(answers: [DNSRecord(name: "x.", ttl: 60, data: .a(IPv4(0x0a00_0001)))])
        let d = DNSDispatcher(chains: [ServerBlockChain(zones: [.root], plugins: [cache, backend], serverLabel: "dns://:53")])
        let first = try ask(d, "www.example.", id: 1)
        XCTAssertTrue(first.recursionDesired)
        clock.withLock { $0 = $0 + .seconds(7) }
        let second = try ask(d, "WwW.ExAmPlE.", id: 2, rd: false)
        XCTAssertEqual(backend.calls.withLock { $0 }, 1, "the second came from the cache")
        XCTAssertEqual(second.id, 2)
        XCTAssertFalse(second.recursionDesired)
        XCTAssertEqual(second.questions.first?.name.description, "WwW.ExAmPlE.")
        XCTAssertEqual(second.answers.first?.ttl, 53)
        XCTAssertEqual(first.answers.first?.ttl, 60)
        XCTAssertEqual(second.answers.first?.data, first.answers.first?.data)
        XCTAssertEqual(second.answers.first?.name.description, "WwW.ExAmPlE.", "the answer's name points at the asker's spelling")
    }

    /// A cached answer with several addresses is shuffled by loadbalance, which drops its wire
    /// form: the dispatcher then writes the message, still with this asker's id and spelling
    /// and the TTLs counted down by the entry's age.
    func testShuffledCacheHitsAreWrittenForTheAskerWithAgedTTLs() throws {
        let clock = Mutex(ContinuousClock.now)
        let cache = CachePlugin(config: CachePlugin.Config(), metrics: nil, serverLabel: "dns://:53", now: { clock.withLock { $0 } })
        let backend = Fixed(answers: (1...4).map { DNSRecord(name: "x.", ttl: 60, data: .a(IPv4(0x0a00_0000 + UInt32($0)))) })
        let d = DNSDispatcher(chains: [ServerBlockChain(zones: [.root], plugins: [LoadBalancePlugin(), cache, backend], serverLabel: "dns://:53")])
        _ = try ask(d, "www.example.", id: 1)
        clock.withLock { $0 = $0 + .seconds(12) }
        let second = try ask(d, "WWW.example.", id: 2, rd: false)
        XCTAssertEqual(backend.calls.withLock { $0 }, 1, "the second came from the cache")
        XCTAssertEqual(second.id, 2)
        XCTAssertFalse(second.recursionDesired, "the asker's RD, not the stored answer's")
        XCTAssertEqual(second.questions.first?.name.description, "WWW.example.")
        XCTAssertEqual(second.answers.count, 4)
        XCTAssertEqual(Set(second.answers.map(\.ttl)), [48], "counted down by the entry's age")
    }

    /// The log line of a cache hit shows the flags this asker got: the stored answer's RD is
    /// the first asker's, the bytes sent carry this one's. Hits are authoritative, as in
    /// CoreDNS (cache/item.go's toMsg); the first answer keeps the backend's flags.
    func testLogLinesOfCacheHitsShowTheAskersRecursionDesired() throws {
        let sink = LineSink(capturing: ())
        let cache = CachePlugin(config: CachePlugin.Config(), metrics: nil, serverLabel: "dns://:53")
        let backend = Fixed(answers: [DNSRecord(name: "x.", ttl: 60, data: .a(IPv4(0x0a00_0001)))])
        let d = DNSDispatcher(chains: [ServerBlockChain(zones: [.root], plugins: [LogPlugin(sink: sink), cache, backend],
                                                        serverLabel: "dns://:53")])
        _ = try ask(d, "www.example.", id: 1, rd: true)
        let hit = try ask(d, "www.example.", id: 2, rd: false)
        _ = try ask(d, "www.example.", id: 3, rd: true)
        XCTAssertEqual(backend.calls.withLock { $0 }, 1, "the later two came from the cache")
        XCTAssertFalse(hit.recursionDesired)
        let flags = sink.captured.map { $0.split(separator: " ")[12] }
        XCTAssertEqual(flags, ["qr,rd", "qr,aa", "qr,aa,rd"], sink.captured.joined(separator: "\n"))
    }

    func testLoadbalanceShufflesAddressesButKeepsCNAMEFirst() throws {
        let records = [DNSRecord(name: "x.", ttl: 1, data: .cname("y."))] + (1...8).map { DNSRecord(name: "y.", ttl: 1, data: .a(IPv4(UInt32($0)))) }
        var orders: Set<[String]> = []
        for _ in 0..<20 {
            let r = try run(LoadBalancePlugin(), request("x.example."), then: [Fixed(answers: records)])
            XCTAssertEqual(r.message.answers.first?.type, .cname)
            XCTAssertEqual(r.message.answers.count, 9)
            orders.insert(r.message.answers.map { "\($0.data)" })
        }
        XCTAssertGreaterThan(orders.count, 1, "the order changes")
    }

    func testLogAndErrorsLines() throws {
        var r = request("nginx.default.svc.cluster.local.")
        r.transport = .udp
        var m = r.reply()
        m.authoritative = true
        m.recursionDesired = true
        let line = LogPlugin.line(r, m, size: 106, duration: .microseconds(171))
        XCTAssertEqual(line, #"[INFO] 10.244.0.7:41234 - 9 "A IN nginx.default.svc.cluster.local. udp 40 false 512" NOERROR qr,aa,rd 106 0.000171s"#)
        r.remote = try? SocketAddress(ipAddress: "::1", port: 41234)
        XCTAssertTrue(LogPlugin.line(r, m, size: 1, duration: .seconds(1)).hasPrefix("[INFO] [::1]:41234 - 9"))
        let sink = LineSink(capturing: ())
        let errors = ErrorsPlugin(sink: sink)
        let failed = try run(errors, request("x.example."), then: [Fixed(rcode: .serverFailure)])
        errors.written(request("x.example."), failed, size: 1, duration: .zero)
        errors.written(request("y.example."), try run(errors, request("y.example."), then: [Fixed()]), size: 1, duration: .zero)
        XCTAssertEqual(sink.captured, ["[ERROR] plugin/errors: 2 x.example. A: upstream broke"])
        let denials = LogPlugin(sink: sink, classes: [.denial])
        denials.written(r, DNSResponse(message: m, plugin: "k"), size: 1, duration: .zero)
        XCTAssertEqual(sink.captured.count, 2, "NOERROR without answers is a denial")
        m.answers = [DNSRecord(name: "x.", ttl: 1, data: .a(IPv4(1)))]
        denials.written(r, DNSResponse(message: m, plugin: "k"), size: 1, duration: .zero)
        XCTAssertEqual(sink.captured.count, 2, "a success is not logged with class denial")
    }

    func testQueriesPassOnlyThroughHandlersWhileObserversStillSeeEveryAnswer() throws {
        let sink = LineSink(capturing: ())
        let errors = ErrorsPlugin(sink: sink)
        let log = LogPlugin(sink: sink, classes: [.all])
        let backend = Fixed(rcode: .serverFailure)
        let chain = ServerBlockChain(zones: [.root], plugins: [errors, log, LoadBalancePlugin(), backend], serverLabel: "dns://:53")
        XCTAssertEqual(chain.handlers.map(\.name), ["loadbalance", "fixed"], "errors and log only observe")
        XCTAssertEqual(chain.observers.count, 2)
        var q = DNSMessage()
        q.id = 77
        q.questions = [DNSQuestion(name: "x.example.", type: .a)]
        guard case .reply(let bytes) = DNSDispatcher(chains: [chain]).handle(q.serialized(), remote: nil, transport: .udp, eventLoop: loop) else {
            return XCTFail("no immediate answer")
        }
        XCTAssertEqual(try DNSMessage(parsing: Array(bytes.readableBytesView)).rcode, .serverFailure)
        XCTAssertEqual(backend.calls.withLock { $0 }, 1)
        XCTAssertEqual(sink.captured.filter { $0.hasPrefix("[ERROR] plugin/errors: 2 x.example. A") }.count, 1, "\(sink.captured)")
        XCTAssertEqual(sink.captured.filter { $0.contains("SERVFAIL") }.count, 1, "the log line: \(sink.captured)")
    }

    func testHostsInlineFileReverseAndFallthrough() throws {
        var c = HostsPlugin.Config()
        c.path = "/hosts"
        c.inline = "10.0.0.5 registry.lab\n"
        let plugin = HostsPlugin(config: c, readFile: { _ in "# comment\n127.0.0.1 localhost\nfd00::5 registry.lab\n" }, logger: Logger(label: "t"))
        let a = try run(plugin, request("registry.lab."), then: [])
        XCTAssertEqual(a.message.answers.map(\.data), [.a(IPv4("10.0.0.5")!)])
        let aaaa = try run(plugin, request("registry.lab.", .aaaa), then: [])
        XCTAssertEqual(aaaa.message.answers.count, 1)
        XCTAssertEqual(try run(plugin, request("localhost."), then: []).message.answers.count, 1)
        XCTAssertEqual(try run(plugin, request("5.0.0.10.in-addr.arpa.", .ptr), then: []).message.answers.map(\.data), [.ptr("registry.lab.")])
        XCTAssertEqual(try run(plugin, request("registry.lab.", .mx), then: []).message.rcode, .noError, "NODATA")
        XCTAssertEqual(try run(plugin, request("other.lab."), then: [Fixed()]).message.rcode, .serverFailure, "as CoreDNS, without fallthrough")
        c.fallthroughZones = []
        let falls = HostsPlugin(config: c, readFile: { _ in "" }, logger: Logger(label: "t"))
        XCTAssertEqual(try run(falls, request("other.lab."), then: [Fixed()]).plugin, "fixed")
    }

    func testForwardReadsResolvConfAndAvoidsTheSystemdStub() throws {
        let files: [String: String] = [
            "/etc/resolv.conf": "nameserver 127.0.0.53\noptions edns0\n",
            "/run/systemd/resolve/resolv.conf": "nameserver 192.0.2.1\nnameserver fe80::1%eth0\nnameserver 192.0.2.2\n",
        ]
        let read: (String) throws -> String = { path in
            guard let f = files[path] else { throw PluginSetupError("t", "no \(path)") }
            return f
        }
        let ups = try ForwardPlugin.resolvConfUpstreams(path: "/etc/resolv.conf", readFile: read, logger: Logger(label: "t"))
        XCTAssertEqual(ups.compactMap(\.ipAddress), ["192.0.2.1", "192.0.2.2"])
        XCTAssertEqual(try ForwardPlugin.parseUpstream("10.0.0.1:5353", line: 1).port, 5353)
        XCTAssertEqual(try ForwardPlugin.parseUpstream("dns://[::1]:53", line: 1).ipAddress, "::1")
        XCTAssertThrowsError(try ForwardPlugin.parseUpstream("tls://1.1.1.1", line: 1))
        XCTAssertThrowsError(try ForwardPlugin.parseUpstream("not-an-ip", line: 1))
    }

    func testParseDuration() {
        XCTAssertEqual(parseDuration("5s"), .seconds(5))
        XCTAssertEqual(parseDuration("300ms"), .milliseconds(300))
        XCTAssertEqual(parseDuration("2m"), .seconds(120))
        XCTAssertNil(parseDuration("soon"))
    }
}
