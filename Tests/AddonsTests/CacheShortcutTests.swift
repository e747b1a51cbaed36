import NIOCore
import NIOPosix
import Synchronization
import XCTest

@testable import Addons

/// Cache hits answered straight from the packet must be what the whole path answers: the same
/// bytes, the same metrics, and the whole path whenever a plugin could change the answer.
final class CacheShortcutTests: XCTestCase {
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    typealias Fixed = PluginTests.Fixed

    /// A default-Corefile-like chain over a backend that knows a few names, with its clock.
    struct Setup {
        let dispatcher: DNSDispatcher
        let chain: ServerBlockChain
        let metrics = DNSMetrics()
        let single = Fixed(answers: [DNSRecord(name: "x.", ttl: 60, data: .a(IPv4(0x0a00_0001)))])

        init(now: @escaping @Sendable () -> ContinuousClock.Instant, shortcut: Bool, log: LineSink? = nil) {
            var plugins: [any DNSPlugin] = [
                ErrorsPlugin(sink: LineSink(capturing: ())),
                PrometheusPlugin(address: "127.0.0.1:0", metrics: metrics, shared: SharedPlugins(group: MultiThreadedEventLoopGroup.singleton),
                                 zones: [.root], serverLabel: "dns://:53"),
                LoadBalancePlugin(),
                CachePlugin(config: CachePlugin.Config(), metrics: metrics, serverLabel: "dns://:53", now: now),
                Router(single: single),
            ]
            if let log { plugins.insert(LogPlugin(sink: log), at: 1) }
            chain = ServerBlockChain(zones: [.root], plugins: plugins, serverLabel: "dns://:53", packetShortcut: shortcut)
            dispatcher = DNSDispatcher(chains: [chain])
        }
    }

    /// One address for most names, four for `multi.`, NXDOMAIN for `gone.`.
    final class Router: DNSPlugin {
        let name = "router"
        let single: Fixed
        let multi = Fixed(answers: (1...4).map { DNSRecord(name: "x.", ttl: 60, data: .a(IPv4(0x0a00_0010 + UInt32($0)))) })
        let gone = Fixed(rcode: .nameError)
        init(single: Fixed) { self.single = single }
        func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
            switch request.question.name.lowercased {
            case "multi.example.": multi.serve(request, next: next)
            case "gone.example.": gone.serve(request, next: next)
            default: single.serve(request, next: next)
            }
        }
    }

    func send(_ d: DNSDispatcher, _ bytes: [UInt8], transport: DNSTransport = .udp) -> [UInt8]? {
        let remote = try? SocketAddress(ipAddress: "10.244.0.7", port: 41234)
        guard case .reply(let answer) = d.handle(bytes, remote: remote, transport: transport, eventLoop: loop) else { return nil }
        return Array(answer.readableBytesView)
    }

    func query(_ name: String, _ type: DNSType = .a, id: UInt16, rd: Bool = true, cd: Bool = false, edns: EDNS? = nil) -> [UInt8] {
        var m = DNSMessage()
        m.id = id
        m.recursionDesired = rd
        m.checkingDisabled = cd
        m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
        m.edns = edns
        return m.serialized()
    }

    /// The same queries, in the same order and at the same instants, through a chain with the
    /// shortcut and one without: byte-identical answers and the same counters.
    func testShortcutAnswersAndCountsAsTheWholePath() throws {
        let clock = Mutex(ContinuousClock.now)
        let fast = Setup(now: { clock.withLock { $0 } }, shortcut: true)
        let whole = Setup(now: { clock.withLock { $0 } }, shortcut: false)
        var cookie = EDNS(udpPayloadSize: 4096)
        cookie.options = [(code: 10, data: [1, 2, 3, 4, 5, 6, 7, 8])]
        // Three rounds 7 s apart: misses, then hits with their TTLs counted down.
        for round in 0..<3 {
            let id = UInt16(100 * round)
            let queries: [(String, [UInt8])] = [
                ("plain", query("www.example.", id: id + 1)),
                ("other case, no RD", query("WwW.ExAmPlE.", id: id + 2, rd: false)),
                ("AAAA", query("www.example.", .aaaa, id: id + 3)),
                ("EDNS", query("www.example.", id: id + 4, edns: EDNS(udpPayloadSize: 1232))),
                ("EDNS with DO", query("www.example.", id: id + 5, edns: EDNS(udpPayloadSize: 1232, dnssecOK: true))),
                ("EDNS with a cookie option", query("www.example.", id: id + 6, edns: cookie)),
                ("CD", query("www.example.", id: id + 7, cd: true)),
                ("NXDOMAIN", query("gone.example.", id: id + 8)),
                ("small EDNS size", query("api.example.", id: id + 9, edns: EDNS(udpPayloadSize: 100))),
            ]
            for (what, bytes) in queries {
                let a = try XCTUnwrap(send(fast.dispatcher, bytes), what)
                let b = try XCTUnwrap(send(whole.dispatcher, bytes), what)
                XCTAssertEqual(a, b, "\(what), round \(round): the shortcut's answer differs from the whole path's")
                XCTAssertEqual(send(fast.dispatcher, bytes, transport: .tcp), send(whole.dispatcher, bytes, transport: .tcp),
                               "\(what), round \(round), over TCP")
            }
            clock.withLock { $0 = $0 + .seconds(7) }
        }
        XCTAssertEqual(fast.single.calls.withLock { $0 }, whole.single.calls.withLock { $0 })
        // Everything but the durations, which are timing; series in the order first used.
        func counters(_ s: Setup) -> [String] {
            String(decoding: s.metrics.exposition(), as: UTF8.self).split(separator: "\n")
                .filter { $0.hasPrefix("coredns_") && !$0.hasPrefix("coredns_dns_request_duration_seconds") }.map(String.init).sorted()
        }
        XCTAssertEqual(counters(fast), counters(whole))
        XCTAssertTrue(counters(fast).contains(#"coredns_cache_hits_total{server="dns://:53",type="success",zones=".",view=""} 42"#),
                      counters(fast).joined(separator: "\n"))
    }

    /// Mutated packets through both chains, the caches primed with the originals: the same
    /// silence or the same bytes for every one, and no crash in the wire reader.
    func testFuzzedPacketsGetTheWholePathsAnswer() throws {
        let clock = Mutex(ContinuousClock.now)
        let fast = Setup(now: { clock.withLock { $0 } }, shortcut: true)
        let whole = Setup(now: { clock.withLock { $0 } }, shortcut: false)
        let seeds = [query("www.example.", id: 1), query("a.b.example.", .aaaa, id: 2, edns: EDNS(udpPayloadSize: 1232)),
                     query("gone.example.", id: 3, edns: EDNS(udpPayloadSize: 4096, dnssecOK: true))]
        for seed in seeds {
            _ = send(fast.dispatcher, seed)
            _ = send(whole.dispatcher, seed)
        }
        var rng = SystemRandomNumberGenerator()
        var same = 0
        for i in 0..<20000 {
            var p = seeds[i % seeds.count]
            switch i % 3 {
            case 0:
                // Mostly flags, ids and the name's case: the bytes the shortcut reads.
                for _ in 0..<(1 + Int.random(in: 0..<3, using: &rng)) {
                    p[Int.random(in: 0..<p.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 1:
                p = Array(p.prefix(Int.random(in: 0..<p.count, using: &rng)))
            default:
                p += (0..<Int.random(in: 1..<12, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            let a = send(fast.dispatcher, p), b = send(whole.dispatcher, p)
            XCTAssertEqual(a, b, "packet \(p)")
            if a == b { same += 1 }
        }
        XCTAssertEqual(same, 20000)
    }

    /// Which hits the shortcut takes: a stored single answer, yes; four addresses loadbalance
    /// would shuffle, a miss, an answer too big for the asker, or a chain with log, no.
    func testShortcutServesOnlyWhatNothingWouldChange() throws {
        let clock = Mutex(ContinuousClock.now)
        let s = Setup(now: { clock.withLock { $0 } }, shortcut: true)
        let shortcut = try XCTUnwrap(s.chain.shortcut, "the default chain's shape allows the shortcut")
        // As the UDP listener batches them: each answer appended after the ones before it.
        let earlier: [UInt8] = [0xaa, 0xbb, 0xcc]
        func direct(_ bytes: [UInt8]) throws -> ByteBuffer? {
            let query = try XCTUnwrap(PlainQuery(ByteBuffer(bytes: bytes)))
            var batch = ByteBuffer(bytes: earlier)
            let answered = shortcut.answer(query, zone: DNSName.root, requestSize: bytes.count, remote: nil,
                                           transport: DNSTransport.udp, received: ContinuousClock.now, appendingTo: &batch)
            XCTAssertEqual(batch.getBytes(at: 0, length: earlier.count), earlier, "what the batch held stays as it was")
            guard answered else {
                XCTAssertEqual(batch.readableBytes, earlier.count, "a query the shortcut leaves writes nothing")
                return nil
            }
            return batch.getSlice(at: earlier.count, length: batch.readableBytes - earlier.count)
        }
        XCTAssertNil(try direct(query("www.example.", id: 1)), "a miss goes the whole way")
        _ = send(s.dispatcher, query("www.example.", id: 1))
        _ = send(s.dispatcher, query("multi.example.", id: 2))
        XCTAssertNotNil(try direct(query("WWW.example.", id: 3)))
        // Appended at an offset, the id, the name's spelling and the TTL are still patched in place.
        clock.withLock { $0 = $0 + .seconds(7) }
        let aged = try DNSMessage(parsing: try XCTUnwrap(try direct(query("wWw.Example.", id: 0x4242))))
        XCTAssertEqual(aged.id, 0x4242)
        XCTAssertEqual(aged.question?.name.description, "wWw.Example.")
        XCTAssertEqual(aged.answers.map(\.ttl), [53])
        clock.withLock { $0 = $0 - .seconds(7) }
        XCTAssertNil(try direct(query("multi.example.", id: 4)), "loadbalance shuffles several addresses")
        let shuffled = try DNSMessage(parsing: try XCTUnwrap(send(s.dispatcher, query("multi.example.", id: 5))))
        XCTAssertEqual(shuffled.answers.count, 4)
        clock.withLock { $0 = $0 + .seconds(61) }
        XCTAssertNil(try direct(query("www.example.", id: 6)), "an expired entry goes the whole way")

        let logged = Setup(now: { clock.withLock { $0 } }, shortcut: true, log: LineSink(capturing: ()))
        XCTAssertNil(logged.chain.shortcut, "log prints every query from the request")
        let withoutCache = ServerBlockChain(zones: [.root], plugins: [LoadBalancePlugin(), Fixed()], serverLabel: "dns://:53")
        XCTAssertNil(withoutCache.shortcut)
    }

    /// The wire reader takes only the plain query shape; everything else is the full parser's.
    func testPlainQueryReadsOnlyThePlainShape() throws {
        let plain = query("a.example.", .srv, id: 0x1234, rd: true, cd: true)
        let q = try XCTUnwrap(PlainQuery(ByteBuffer(bytes: plain)))
        XCTAssertEqual(q.id, 0x1234)
        XCTAssertTrue(q.recursionDesired)
        XCTAssertTrue(q.checkingDisabled)
        XCTAssertEqual(q.name.description, "a.example.")
        XCTAssertEqual(q.type, .srv)
        XCTAssertFalse(q.edns)
        XCTAssertEqual(q.maxUDPSize, 512)
        let edns = try XCTUnwrap(PlainQuery(ByteBuffer(bytes: query("a.example.", id: 1, edns: EDNS(udpPayloadSize: 4096, dnssecOK: true)))))
        XCTAssertTrue(edns.edns)
        XCTAssertTrue(edns.dnssecOK)
        XCTAssertEqual(edns.maxUDPSize, 4096)

        func patched(_ bytes: [UInt8], _ change: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = bytes
            change(&b)
            return b
        }
        let withOPT = query("a.example.", id: 1, edns: EDNS(udpPayloadSize: 1232))
        let optAt = withOPT.count - 11
        let cases: [(String, [UInt8])] = [
            ("a response", patched(plain) { $0[2] |= 0x80 }),
            ("opcode NOTIFY", patched(plain) { $0[2] |= 4 << 3 }),
            ("two questions", patched(plain) { $0[5] = 2 }),
            ("an answer record", patched(plain) { $0[7] = 1 }),
            ("two additionals", patched(withOPT) { $0[11] = 2 }),
            ("class CH", patched(plain) { $0[$0.count - 1] = 3 }),
            ("trailing bytes", plain + [0]),
            ("cut short", Array(plain.dropLast(2))),
            ("a compression pointer", Array(plain[0..<12]) + [0xc0, 0x0c, 0, 1, 0, 1]),
            ("EDNS version 1", patched(withOPT) { $0[optAt + 6] = 1 }),
            ("OPT not at the root", patched(withOPT) { $0[optAt] = 1 }),
            ("an option running past the end", withOPT.dropLast(2) + [0, 5, 0, 10, 0, 9, 1]),
            ("a header only", Array(plain[0..<12])),
        ]
        for (what, bytes) in cases {
            XCTAssertNil(PlainQuery(ByteBuffer(bytes: bytes)), what)
        }
    }
}
