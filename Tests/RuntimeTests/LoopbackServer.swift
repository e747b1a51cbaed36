#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Synchronization

/// A tiny TCP server on 127.0.0.1 and a kernel-chosen port, for testing the real probers.
/// Each connection's request head is handed to `respond`; its answer is written back and the
/// connection closed. A nil answer holds the connection open, silent, until the server stops.
final class LoopbackServer: Sendable {
    let port: Int
    let fd: Int32
    let requests = Mutex<[String]>([])
    let held = Mutex<[Int32]>([])
    let respond: @Sendable (String) -> [UInt8]?

    /// - Parameter backlog: the listen backlog; `accepting: false` never accepts (to fill the queue).
    init(backlog: Int32 = 16, accepting: Bool = true, respond: @escaping @Sendable (String) -> [UInt8]?) throws {
        #if canImport(Darwin)
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #else
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else { throw LoopbackError(message: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            close(fd)
            throw LoopbackError(message: "bind/listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.respond = respond
        if accepting {
            Thread.detachNewThread { [self] in acceptLoop() }
        }
    }

    /// A port that nothing listens on (bound, then closed), for "connection refused".
    static func closedPort() throws -> Int {
        let server = try LoopbackServer(accepting: false) { _ in nil }
        let port = server.port
        server.stop()
        return port
    }

    var receivedRequests: [String] { requests.withLock { $0 } }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        for held in held.withLock({ $0 }) { close(held) }
    }

    func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                if errno == EINTR { continue }
                return
            }
            let head = readHead(client)
            requests.withLock { $0.append(head) }
            guard let answer = respond(head) else {
                held.withLock { $0.append(client) }
                continue
            }
            _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            shutdown(client, Int32(SHUT_WR))
            close(client)
        }
    }

    func readHead(_ client: Int32) -> String {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !String(decoding: data, as: UTF8.self).contains("\r\n\r\n") {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            data += buffer.prefix(n)
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// A complete HTTP/1.1 response.
    static func response(_ status: Int, _ reason: String, headers: [String] = [], body: String = "") -> [UInt8] {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        for h in headers { text += h + "\r\n" }
        if !headers.contains(where: { $0.lowercased().hasPrefix("transfer-encoding") }) {
            text += "Content-Length: \(body.utf8.count)\r\n"
        }
        return Array((text + "\r\n" + body).utf8)
    }
}

struct LoopbackError: Error { var message: String }
