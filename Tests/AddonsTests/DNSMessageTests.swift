import NIOCore
import NIOPosix
import XCTest

@testable import Addons

final class DNSMessageTests: XCTestCase {
    func query(_ name: String, _ type: DNSType = .a, id: UInt16 = 0x1234, edns: UInt16? = nil) -> DNSMessage {
        var m = DNSMessage()
        m.id = id
        m.recursionDesired = true
        m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
        if let edns { m.edns = EDNS(udpPayloadSize: edns) }
        return m
    }

    /// Parses at run time (a literal would use the non-failing literal initialiser).
    func name(_ text: String) -> DNSName? { DNSName(text) }

    func testNamesParsePrintAndCompareIgnoringCase() throws {
        let n = try XCTUnwrap(name("Nginx.Default.svc.cluster.local"))
        XCTAssertEqual(n.description, "Nginx.Default.svc.cluster.local.")
        XCTAssertEqual(n, name("nginx.default.SVC.cluster.local."))
        XCTAssertEqual(n.hashValue, name("NGINX.default.svc.cluster.local")?.hashValue)
        XCTAssertTrue(n.isSubdomain(of: "cluster.local."))
        XCTAssertFalse(n.isSubdomain(of: "ster.local."), "a suffix must start on a label boundary")
        XCTAssertEqual(n.labels(above: "cluster.local.").map { String(decoding: $0, as: UTF8.self) }, ["Nginx", "Default", "svc"])
        XCTAssertNil(name(String(repeating: "a", count: 64) + ".com"), "labels are at most 63 bytes")
        XCTAssertNil(name("a..b"))
        XCTAssertNil(name(Array(repeating: "abcdefghi", count: 26).joined(separator: ".")), "names are at most 255 bytes")
        XCTAssertEqual(name("a\\.b.c")?.labelCount, 2)
        XCTAssertEqual(name("a\\.b.c")?.description, "a\\.b.c.")
    }

    func testRoundTripWithCompressionAndEDNS() throws {
        var m = DNSMessage.reply(to: query("web.default.svc.cluster.local", .srv, edns: 4096))
        m.authoritative = true
        let target = try XCTUnwrap(name("web.default.svc.cluster.local"))
        m.answers = [
            DNSRecord(name: m.questions[0].name, ttl: 30, data: .srv(priority: 0, weight: 100, port: 80, target: target)),
            DNSRecord(name: target, ttl: 30, data: .a(IPv4(0x0a60_0001))),
            DNSRecord(name: target, ttl: 30, data: .aaaa(Array(repeating: 1, count: 16))),
            DNSRecord(name: target, ttl: 30, data: .txt("hello", "world")),
            DNSRecord(name: target, ttl: 30, data: .cname("other.example.")),
        ]
        m.authorities = [DNSRecord(name: "cluster.local.", ttl: 30, data: .soa(SOA(
            mname: "ns.dns.cluster.local.", rname: "hostmaster.cluster.local.", serial: 7, refresh: 7200, retry: 1800,
            expire: 86400, minimum: 30)))]
        let bytes = m.serialized()
        let back = try DNSMessage(parsing: bytes)
        XCTAssertEqual(back, m)
        XCTAssertEqual(back.edns?.udpPayloadSize, 4096)
        // The owner names repeat: compression keeps the message far smaller than the names' sum.
        let uncompressed = 12 + m.answers.count * (target.wire.count + 10) + 50
        XCTAssertLessThan(bytes.count, uncompressed)
    }

    /// A received datagram is read in place: a buffer whose readable bytes start past other
    /// data (a slice of the socket's read buffer) reads the same, and its tail is not read.
    func testParsingFromAByteBufferReadsOnlyItsReadableBytes() throws {
        var m = DNSMessage.reply(to: query("web.default.svc.cluster.local", .a, edns: 1232))
        m.answers = [DNSRecord(name: m.questions[0].name, ttl: 30, data: .a(IPv4(0x0a60_0001)))]
        let bytes = m.serialized()
        var buffer = ByteBuffer(bytes: [0xde, 0xad] + bytes + [0xbe, 0xef])
        buffer.moveReaderIndex(forwardBy: 2)
        let slice = try XCTUnwrap(buffer.readSlice(length: bytes.count))
        XCTAssertEqual(try DNSMessage(parsing: slice), m)
        XCTAssertThrowsError(try DNSMessage(parsing: ByteBuffer(bytes: bytes.dropLast(3))), "a short buffer is an error, not a read past it")
    }

    /// The cache keeps a wire answer per name: it must hold its bytes, not the writer's buffer.
    func testAWireAnswerIsTheMessageAndKeepsNoSpareCapacity() throws {
        var m = DNSMessage.reply(to: query("web.default.svc.cluster.local", .a))
        m.answers = [DNSRecord(name: m.questions[0].name, ttl: 30, data: .a(IPv4(0x0a60_0001)))]
        let wire = m.wireAnswer()
        XCTAssertEqual(wire.bytes, m.serialized())
        XCTAssertEqual(wire.ttlOffsets.count, 1)
        XCTAssertLessThan(wire.bytes.capacity, 2 * wire.bytes.count, "\(wire.bytes.count) bytes held in \(wire.bytes.capacity)")
    }

    func testTruncationKeepsQuestionAndSetsTC() throws {
        var m = DNSMessage.reply(to: query("many.default.svc.cluster.local"))
        for i in 0..<100 {
            m.answers.append(DNSRecord(name: m.questions[0].name, ttl: 5, data: .a(IPv4(0x0a00_0000 + UInt32(i)))))
        }
        let small = m.serialized(maxSize: 512)
        XCTAssertLessThanOrEqual(small.count, 512)
        let parsed = try DNSMessage(parsing: small)
        XCTAssertTrue(parsed.truncated)
        XCTAssertEqual(parsed.questions, m.questions)
        XCTAssertLessThan(parsed.answers.count, 100)
        XCTAssertFalse(try DNSMessage(parsing: m.serialized()).truncated)
    }

    func testMalformedPacketsAreErrorsWithTheID() {
        let good = query("a.example").serialized()
        // Truncated in the question.
        XCTAssertEqual((try? DNSMessage(parsing: Array(good.prefix(good.count - 3)))) == nil, true)
        do {
            _ = try DNSMessage(parsing: Array(good.prefix(good.count - 3)))
        } catch {
            XCTAssertEqual(error.id, 0x1234)
        }
        // A compression pointer to itself (a loop).
        var loop = Array(good.prefix(12))
        loop[5] = 1
        loop += [0xc0, 12, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage(parsing: loop)) { XCTAssertTrue("\($0)".contains("backwards")) }
        // Counts that cannot fit.
        var counts = good
        counts[6] = 0xff
        counts[7] = 0xff
        XCTAssertThrowsError(try DNSMessage(parsing: counts)) { XCTAssertTrue("\($0)".contains("exceed")) }
        // Shorter than a header: no id.
        XCTAssertThrowsError(try DNSMessage(parsing: [1, 2, 3])) { XCTAssertNil(($0 as? DNSParseError)?.id) }
        // A label type that does not exist (0x40).
        var label = Array(good.prefix(12))
        label += [0x41, 0, 0, 1, 0, 1]
        XCTAssertThrowsError(try DNSMessage(parsing: label))
    }
}

/// The checks the server makes before any plugin, and a fuzz run through them.
final class DispatcherTests: XCTestCase {
    let loop = MultiThreadedEventLoopGroup.singleton.next()

    final class Echo: DNSPlugin {
        let name = "echo"
        func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
            var m = request.reply()
            m.answers = [DNSRecord(name: request.question.name, ttl: 5, data: .a(IPv4(0x7f00_0001)))]
            return .done(DNSResponse(message: m, plugin: name))
        }
    }

    func dispatcher(zones: [DNSName] = ["example."]) -> DNSDispatcher {
        DNSDispatcher(chains: [ServerBlockChain(zones: zones, plugins: [Echo()], serverLabel: "dns://:53")])
    }

    func answer(_ bytes: [UInt8], _ d: DNSDispatcher? = nil) -> DNSMessage? {
        switch (d ?? dispatcher()).handle(bytes, remote: try? SocketAddress(ipAddress: "127.0.0.1", port: 1), transport: .udp, eventLoop: loop) {
        case .silent: return nil
        case .reply(let b): return try? DNSMessage(parsing: Array(b.readableBytesView))
        case .later(let f): return (try? f.wait()).flatMap { $0 }.flatMap { try? DNSMessage(parsing: Array($0.readableBytesView)) }
        }
    }

    func q(_ name: String, _ type: DNSType = .a) -> DNSMessage {
        var m = DNSMessage()
        m.id = 77
        m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
        return m
    }

    func testRoutingAndRefusal() throws {
        let hit = try XCTUnwrap(answer(q("www.Example.").serialized()))
        XCTAssertEqual(hit.rcode, .noError)
        XCTAssertEqual(hit.id, 77)
        XCTAssertEqual(hit.questions.first?.name.description, "www.Example.", "the asker's case is kept")
        XCTAssertEqual(answer(q("www.other.").serialized())?.rcode, .refused, "no block serves that zone")
    }

    func testHeaderChecks() throws {
        var notQuery = q("www.example.")
        notQuery.opcode = 2
        XCTAssertEqual(answer(notQuery.serialized())?.rcode, .notImplemented)
        var two = q("www.example.")
        two.questions.append(two.questions[0])
        XCTAssertEqual(answer(two.serialized())?.rcode, .formatError)
        var response = q("www.example.")
        response.isResponse = true
        XCTAssertNil(answer(response.serialized()), "responses are never answered (reflection)")
        var edns1 = q("www.example.")
        edns1.edns = EDNS(udpPayloadSize: 1232, version: 1)
        XCTAssertEqual(answer(edns1.serialized())?.rcode, .badVersion)
        XCTAssertNil(answer([0, 1, 2]), "no header, no answer")
        let truncated = Array(q("www.example.").serialized().dropLast(2))
        let formerr = try XCTUnwrap(answer(truncated))
        XCTAssertEqual(formerr.rcode, .formatError)
        XCTAssertEqual(formerr.id, 77)
    }

    /// Tens of thousands of mutated packets: every one gets silence or a well-formed answer
    /// with the query's id, and nothing crashes.
    func testFuzzedPacketsNeverCrash() throws {
        let d = dispatcher(zones: [.root])
        var seeds: [[UInt8]] = []
        for (name, type) in [("nginx.default.svc.cluster.local.", DNSType.a), ("_http._tcp.web.ns.svc.cluster.local.", .srv),
                             ("10.0.96.10.in-addr.arpa.", .ptr)] {
            var m = q(name, type)
            m.edns = EDNS(udpPayloadSize: 4096)
            seeds.append(m.serialized())
        }
        var rng = SystemRandomNumberGenerator()
        var answered = 0
        for i in 0..<30000 {
            var p = seeds[i % seeds.count]
            switch i % 4 {
            case 0:
                for _ in 0..<(1 + Int.random(in: 0..<4, using: &rng)) {
                    p[Int.random(in: 0..<p.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            case 1:
                p = Array(p.prefix(Int.random(in: 0..<p.count, using: &rng)))
            case 2:
                p += (0..<Int.random(in: 1..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            default:
                p = (0..<Int.random(in: 0..<80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            }
            switch d.handle(p, remote: try? SocketAddress(ipAddress: "127.0.0.1", port: 1), transport: .udp, eventLoop: loop) {
            case .silent:
                continue
            case .reply(let bytes):
                let m = try DNSMessage(parsing: Array(bytes.readableBytesView))
                XCTAssertTrue(m.isResponse)
                if p.count >= 2 { XCTAssertEqual(m.id, UInt16(p[0]) << 8 | UInt16(p[1])) }
                answered += 1
            case .later:
                XCTFail("the echo chain answers at once")
            }
        }
        XCTAssertGreaterThan(answered, 1000)
    }
}
