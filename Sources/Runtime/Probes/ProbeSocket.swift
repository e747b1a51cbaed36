#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// Blocking TCP client primitives with deadlines, for the probers. Every call takes an absolute
/// deadline on the monotonic clock and fails with Go's wording (`dial tcp 10.244.0.5:8080:
/// connect: connection refused`, `i/o timeout`), because those texts end up in the events that
/// trainees read. Only ever called off the Swift concurrency pool (see ``SocketProbeRunner``).
enum ProbeSocket {
    /// A peer that hangs up must fail the write, not raise SIGPIPE in the whole daemon.
    #if canImport(Darwin)
    static let sendFlags: Int32 = 0
    #else
    static let sendFlags = Int32(MSG_NOSIGNAL)
    #endif

    /// Monotonic seconds.
    static func monotonicNow() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    enum Failure: Error, Equatable {
        /// The deadline passed.
        case timeout
        /// A system call failed; `operation` is Go's op word (`connect`, `read`, `write`).
        case system(operation: String, errno: Int32)
        /// The name did not resolve.
        case lookup(host: String, message: String)
        /// The peer closed the connection.
        case endOfStream
    }

    /// A connected stream socket.
    final class Connection {
        let fd: Int32
        /// `10.244.0.5:8080` as Go prints the remote address.
        let remote: String
        let local: String

        init(fd: Int32, remote: String, local: String) {
            self.fd = fd
            self.remote = remote
            self.local = local
        }

        deinit { close(fd) }

        /// Writes everything or fails.
        func writeAll(_ bytes: [UInt8], deadline: Double) throws(Failure) {
            var offset = 0
            while offset < bytes.count {
                try ProbeSocket.wait(fd, for: Int16(POLLOUT), deadline: deadline)
                let n = bytes[offset...].withUnsafeBytes { buffer in
                    send(fd, buffer.baseAddress, buffer.count, ProbeSocket.sendFlags)
                }
                if n < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                    throw .system(operation: "write", errno: errno)
                }
                offset += n
            }
        }

        /// Reads what is available (at most `max` bytes), waiting until the deadline; an empty
        /// result means the peer closed the connection.
        func read(max: Int, deadline: Double) throws(Failure) -> [UInt8] {
            while true {
                try ProbeSocket.wait(fd, for: Int16(POLLIN), deadline: deadline)
                var buffer = [UInt8](repeating: 0, count: max)
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { continue }
                    throw .system(operation: "read", errno: errno)
                }
                return Array(buffer.prefix(n))
            }
        }
    }

    /// Connects to the first address of `host` that accepts within the deadline.
    /// On failure, the error text names the address as Go's dialer does.
    static func dial(host: String, port: Int, deadline: Double) -> Result<Connection, DialError> {
        let addresses: [Address]
        switch resolve(host: host, port: port) {
        case .success(let list): addresses = list
        case .failure(let error): return .failure(error)
        }
        var firstError: DialError?
        for address in addresses {
            switch connect(to: address, deadline: deadline) {
            case .success(let connection): return .success(connection)
            case .failure(let error):
                if firstError == nil { firstError = error }
                if case .timeout = error.failure { return .failure(error) }
            }
        }
        return .failure(firstError ?? DialError(address: "\(host):\(port)", failure: .lookup(host: host, message: "no such host")))
    }

    /// A dial failure and the address it concerned.
    struct DialError: Error, Equatable {
        var address: String
        var failure: Failure

        /// Go's `*net.OpError` text for a TCP dial.
        var goText: String {
            switch failure {
            case .timeout: return "dial tcp \(address): i/o timeout"
            case .system(let op, let code): return "dial tcp \(address): \(op): \(ProbeSocket.errnoText(code))"
            case .lookup(let host, let message): return "dial tcp: lookup \(host): \(message)"
            case .endOfStream: return "dial tcp \(address): EOF"
            }
        }
    }

    struct Address {
        var storage: sockaddr_storage
        var length: socklen_t
        var family: Int32
        var text: String
    }

    static func resolve(host: String, port: Int) -> Result<[Address], DialError> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            let message = rc == EAI_NONAME ? "no such host" : String(cString: gai_strerror(rc))
            return .failure(DialError(address: HTTPProbeRequest.joinHostPort(host, port),
                                      failure: .lookup(host: host, message: message)))
        }
        defer { freeaddrinfo(list) }
        var out: [Address] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let addr = info.pointee.ai_addr {
                var storage = sockaddr_storage()
                let length = info.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &storage) { dst in
                    dst.copyMemory(from: UnsafeRawBufferPointer(start: addr, count: Int(length)))
                }
                out.append(Address(storage: storage, length: length, family: info.pointee.ai_family,
                                   text: describe(storage)))
            }
            cursor = info.pointee.ai_next
        }
        return .success(out)
    }

    static func connect(to address: Address, deadline: Double) -> Result<Connection, DialError> {
        #if canImport(Darwin)
        let fd = socket(address.family, SOCK_STREAM, 0)
        if fd >= 0 {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        #else
        // Close-on-exec from the start: containers are spawned from this process and must not
        // inherit a probe's socket.
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
                        | Int32(SOCK_NONBLOCK.rawValue), 0)
        #endif
        guard fd >= 0 else {
            return .failure(DialError(address: address.text, failure: .system(operation: "socket", errno: errno)))
        }
        var storage = address.storage
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { systemConnect(fd, $0, address.length) }
        }
        if rc != 0 && errno != EINPROGRESS {
            let code = errno
            close(fd)
            return .failure(DialError(address: address.text, failure: .system(operation: "connect", errno: code)))
        }
        if rc != 0 {
            do {
                try wait(fd, for: Int16(POLLOUT), deadline: deadline)
            } catch {
                close(fd)
                return .failure(DialError(address: address.text, failure: error))
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length)
            if soError != 0 {
                close(fd)
                return .failure(DialError(address: address.text, failure: .system(operation: "connect", errno: soError)))
            }
        }
        var local = sockaddr_storage()
        var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
        }
        return .success(Connection(fd: fd, remote: address.text, local: describe(local)))
    }

    /// Waits until `fd` is ready for `events` or the deadline passes.
    static func wait(_ fd: Int32, for events: Int16, deadline: Double) throws(Failure) {
        while true {
            let remaining = deadline - monotonicNow()
            if remaining <= 0 { throw .timeout }
            var pfd = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min(remaining * 1000, Double(Int32.max)).rounded(.up))
            let rc = poll(&pfd, 1, ms)
            if rc < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "poll", errno: errno)
            }
            if rc > 0 { return }
        }
    }

    /// `ip:port` (IPv6 in brackets) of a socket address.
    static func describe(_ storage: sockaddr_storage) -> String {
        var copy = storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var addr = sin.pointee.sin_addr
                    inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
                    return "\(cText(text)):\(UInt16(bigEndian: sin.pointee.sin_port))"
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &copy) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var addr = sin6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
                    return "[\(cText(text))]:\(UInt16(bigEndian: sin6.pointee.sin6_port))"
                }
            }
        default:
            return "?"
        }
    }

    /// A NUL-terminated C buffer as a String.
    static func cText(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Go's text for an errno (its syscall table is strerror's wording in lower case).
    static func errnoText(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        guard let first = text.first else { return "errno \(code)" }
        return first.lowercased() + text.dropFirst()
    }
}

/// `connect` under another name, so the static method `ProbeSocket.connect` does not shadow it.
private func systemConnect(_ fd: Int32, _ addr: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, addr, length)
}
