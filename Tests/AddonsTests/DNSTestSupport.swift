import APIMachinery
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import NIOCore
import NIOPosix
import XCTest

@testable import Addons

/// Blocking DNS exchanges over loopback for tests (UDP and TCP).
enum DNSClient {
    static func query(_ name: String, _ type: DNSType = .a, id: UInt16 = .random(in: 0...UInt16.max), edns: UInt16? = nil) -> DNSMessage {
        var m = DNSMessage()
        m.id = id
        m.recursionDesired = true
        m.questions = [DNSQuestion(name: DNSName(name) ?? .root, type: type)]
        if let edns { m.edns = EDNS(udpPayloadSize: edns) }
        return m
    }

    static func udp(_ bytes: [UInt8], port: Int, host: String = "127.0.0.1", timeout: Double = 3) -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let sent = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard sent == bytes.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65535)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n > 0 ? Array(buffer.prefix(n)) : nil
    }

    /// Sends every packet from one socket without waiting, then reads answers until `count`
    /// arrived or `timeout` passed with none: a burst the server reads in few wake-ups.
    static func burst(_ packets: [[UInt8]], port: Int, expecting count: Int, timeout: Double = 2) -> [[UInt8]] {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var size: Int32 = 4 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        for bytes in packets {
            _ = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        var answers: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65535)
        while answers.count < count {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            answers.append(Array(buffer.prefix(n)))
        }
        return answers
    }

    static func tcp(_ bytes: [UInt8], port: Int, host: String = "127.0.0.1") -> [UInt8]? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let framed = [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xff)] + bytes
        guard send(fd, framed, framed.count, 0) == framed.count else { return nil }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65535)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return nil }
            out += buffer.prefix(n)
            if out.count >= 2, out.count >= 2 + (Int(out[0]) << 8 | Int(out[1])) {
                return Array(out[2..<(2 + (Int(out[0]) << 8 | Int(out[1])))])
            }
        }
    }

    static func ask(_ name: String, _ type: DNSType = .a, port: Int, tcp useTCP: Bool = false, edns: UInt16? = nil) throws -> DNSMessage {
        let q = query(name, type, edns: edns)
        let bytes = useTCP ? tcp(q.serialized(), port: port) : udp(q.serialized(), port: port)
        let answer = try DNSMessage(parsing: try XCTUnwrap(bytes, "no answer for \(name) \(type) on port \(port)"))
        XCTAssertEqual(answer.id, q.id)
        return answer
    }

    static func httpGet(port: Int, path: String) -> (Int, String)? {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { return nil }
        let done = DispatchSemaphore(value: 0)
        let result = NIOLockedBox<(Int, String)?>(nil)
        URLSession.shared.dataTask(with: url) { data, response, _ in
            if let http = response as? HTTPURLResponse {
                result.value = (http.statusCode, String(decoding: data ?? Data(), as: UTF8.self))
            }
            done.signal()
        }.resume()
        _ = done.wait(timeout: .now() + 5)
        return result.value
    }
}

final class NIOLockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ v: T) { _value = v }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return _value }
        set { lock.lock(); _value = newValue; lock.unlock() }
    }
}

/// A DNS add-on from an inline Corefile on loopback, with its log captured.
final class LiveDNS: @unchecked Sendable {
    let addon: DNSAddon
    let sink = LineSink(capturing: ())
    let path: String

    init(_ corefile: String, apiClient: @escaping @Sendable () throws -> any APIClient = { throw PluginSetupError("test", "no API") }) async throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("Corefile-\(UUID().uuidString)").path
        try corefile.write(toFile: path, atomically: true, encoding: .utf8)
        addon = DNSAddon(path: path, host: "127.0.0.1", sink: sink, logger: Logger(label: "dns-test"), apiClient: apiClient)
        try await addon.start()
    }

    var port: Int { addon.server?.listeners.first?.addresses.first?.port ?? 0 }

    func rewrite(_ corefile: String) throws { try corefile.write(toFile: path, atomically: true, encoding: .utf8) }

    /// Waits up to 5 s for the add-on's settle trims to reach `n`.
    func waitForTrims(_ n: Int) async throws {
        for _ in 0..<100 where addon.settledTrims.value < n { try await Task.sleep(for: .milliseconds(50)) }
    }

    func stop() async {
        await addon.stop()
        try? FileManager.default.removeItem(atPath: path)
    }
}
