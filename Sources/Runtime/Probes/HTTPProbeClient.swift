import APIMachinery

/// The HTTP/1.1 GET the kubelet's httpGet probe performs, over ``ProbeSocket``: one connection
/// per request (`Connection: close`, as the kubelet disables keep-alive), the whole exchange
/// within the probe's timeout, redirects followed only while they stay on the same host name,
/// and at most 10 KiB of body read.
enum HTTPProbeClient {
    struct Response: Equatable {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: [UInt8]

        static func == (a: Response, b: Response) -> Bool {
            a.status == b.status && a.body == b.body && a.headers.map(\.name) == b.headers.map(\.name)
                && a.headers.map(\.value) == b.headers.map(\.value)
        }

        func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// How an exchange went wrong, worded as Go's http.Client error after `Get "<url>": `.
    enum ExchangeError: Error, Equatable {
        /// Failed before a response arrived: counts as a probe failure.
        case beforeResponse(String)
        /// Failed while reading the body of a response already received: the kubelet treats this
        /// as the probe erroring (not counted), with result "failure".
        case duringBody(String)
    }

    static let timeoutText = "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    static let bodyTimeoutText = "context deadline exceeded (Client.Timeout or context cancellation while reading body)"
    static let maxHeaderBytes = 1 << 20
    static let maxRedirects = 10

    /// Runs the probe; blocking, so call it off the concurrency pool.
    static func probe(_ request: HTTPProbeRequest, timeout: Double) -> ProbeOutcome {
        let deadline = ProbeSocket.monotonicNow() + timeout
        var current = request
        var hops = 0
        while true {
            switch current.scheme {
            case "http":
                break
            case "https":
                return .error(message: "HTTPS probes are not supported by labnode (its prober has no TLS client)")
            default:
                return .failure(output: "Get \(GoQuote.quote(current.url)): "
                                + "unsupported protocol scheme \(GoQuote.quote(current.scheme))")
            }
            let response: Response
            do {
                response = try exchange(current, deadline: deadline)
            } catch {
                switch error {
                case .beforeResponse(let text):
                    return .failure(output: "Get \(GoQuote.quote(current.url)): \(text)")
                case .duringBody(let text):
                    // A body read error is not wrapped with the URL: it comes from the body, not the client.
                    return .error(message: text, resultedIn: "failure")
                }
            }
            if [301, 302, 303, 307, 308].contains(response.status), let location = response.header("Location"),
               let next = redirect(from: current, to: location) {
                // Redirects to another host are not followed: the kubelet reports the redirect
                // itself, as a warning, so a probe cannot be bounced to an arbitrary address.
                if next.host == request.host {
                    hops += 1
                    if hops >= maxRedirects {
                        return .failure(output: "Get \(GoQuote.quote(next.url)): stopped after \(maxRedirects) redirects")
                    }
                    current = next
                    continue
                }
            }
            let body = String(decoding: response.body, as: UTF8.self)
            switch response.status {
            case 200..<300:
                return .success(output: body)
            case 300..<400:
                return .warning(output: "Probe terminated redirects, Response body: \(body)")
            default:
                // Upstream deliberately leaves the body out of this user-facing text.
                return .failure(output: "HTTP probe failed with statuscode: \(response.status)")
            }
        }
    }

    /// The request for a redirect target, or nil when the Location cannot be understood (the
    /// 3xx is then reported as is).
    static func redirect(from request: HTTPProbeRequest, to location: String) -> HTTPProbeRequest? {
        var next = request
        var rest = Substring(location)
        if let schemeEnd = rest.range(of: "://") {
            next.scheme = rest[..<schemeEnd.lowerBound].lowercased()
            rest = rest[schemeEnd.upperBound...]
        } else if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
        } else {
            // Same host: an absolute path, or a path relative to the current directory.
            if rest.hasPrefix("/") {
                next.path = String(rest)
            } else {
                let base = request.target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
                let directory = base.hasSuffix("/") ? base : String(base[...(base.lastIndex(of: "/") ?? base.startIndex)])
                next.path = directory + rest
            }
            return next
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let path = String(rest[authorityEnd...])
        var host = String(authority)
        var port = next.scheme == "https" ? 443 : 80
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        }
        guard !host.isEmpty else { return nil }
        next.host = host
        next.port = port
        next.path = path
        next.hostHeader = HTTPProbeRequest.joinHostPort(host, port)
        return next
    }

    /// The request as bytes on the wire.
    static func requestBytes(_ request: HTTPProbeRequest) -> [UInt8] {
        var text = "GET \(request.target) HTTP/1.1\r\nHost: \(request.hostHeader)\r\n"
        for header in request.headers { text += "\(header.name): \(header.value)\r\n" }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8)
    }

    /// One request and its response (head, then up to 10 KiB of body).
    static func exchange(_ request: HTTPProbeRequest, deadline: Double) throws(ExchangeError) -> Response {
        let connection: ProbeSocket.Connection
        switch ProbeSocket.dial(host: request.host, port: request.port, deadline: deadline) {
        case .success(let c): connection = c
        case .failure(let error):
            // Go's client decorates a dial cut short by its timeout with the reason it gave up.
            if case .timeout = error.failure {
                throw .beforeResponse(error.goText + " (Client.Timeout exceeded while awaiting headers)")
            }
            throw .beforeResponse(error.goText)
        }
        do {
            try connection.writeAll(requestBytes(request), deadline: deadline)
        } catch {
            throw .beforeResponse(socketText(error, connection: connection, operation: "write", inBody: false))
        }

        var buffer: [UInt8] = []
        var head: Head
        while true {
            if let parsed = try parseHead(buffer) {
                head = parsed
                // Interim 1xx responses (other than 101) precede the real one; skip them.
                if (100..<200).contains(head.status) && head.status != 101 {
                    buffer.removeFirst(head.bodyStart)
                    continue
                }
                break
            }
            if buffer.count > maxHeaderBytes {
                throw .beforeResponse("net/http: server response headers exceeded \(maxHeaderBytes) bytes; aborted")
            }
            let chunk: [UInt8]
            do {
                chunk = try connection.read(max: 16 * 1024, deadline: deadline)
            } catch {
                throw .beforeResponse(socketText(error, connection: connection, operation: "read", inBody: false))
            }
            if chunk.isEmpty { throw .beforeResponse(buffer.isEmpty ? "EOF" : "unexpected EOF") }
            buffer += chunk
        }

        var response = Response(status: head.status, headers: head.headers, body: [])
        if head.status == 204 || head.status == 304 { return response }
        var pending = Array(buffer[head.bodyStart...])
        let limit = ProbeExecution.maxOutputBytes
        let chunked = response.header("Transfer-Encoding")?.lowercased().contains("chunked") ?? false
        let contentLength = response.header("Content-Length").flatMap { Int($0.httpTrimmed) }

        func more() throws(ExchangeError) -> Bool {
            do {
                let chunk = try connection.read(max: 16 * 1024, deadline: deadline)
                pending += chunk
                return !chunk.isEmpty
            } catch {
                throw .duringBody(socketText(error, connection: connection, operation: "read", inBody: true))
            }
        }

        if chunked {
            var decoder = ChunkedDecoder()
            while response.body.count < limit {
                let (data, done) = decoder.feed(&pending)
                response.body += data
                if done || decoder.malformed { break }
                if try !more() { break }
            }
        } else if let contentLength {
            let wanted = min(contentLength, limit)
            while pending.count < wanted {
                if try !more() { throw .duringBody("unexpected EOF") }
            }
            response.body = Array(pending.prefix(wanted))
        } else {
            while pending.count < limit {
                if try !more() { break }
            }
            response.body = pending
        }
        if response.body.count > limit { response.body = Array(response.body.prefix(limit)) }
        return response
    }

    /// Parses the status line and headers once the blank line has arrived; nil before that.
    /// A parsed response head and where the body starts in the buffer.
    typealias Head = (status: Int, headers: [(name: String, value: String)], bodyStart: Int)

    static func parseHead(_ buffer: [UInt8]) throws(ExchangeError) -> Head? {
        guard buffer.count >= 4 else { return nil }
        var end: Int?
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            end = i
            break
        }
        guard let end else { return nil }
        let text = String(decoding: buffer[..<end], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].count == 3, let status = Int(parts[1]) else {
            throw .beforeResponse("net/http: HTTP/1.x transport connection broken: "
                                  + "malformed HTTP response \(GoQuote.quote(statusLine))")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((name: String(line[..<colon]), value: String(line[line.index(after: colon)...]).httpTrimmed))
        }
        return (status, headers, end + 4)
    }

    /// Go's text for a socket error on an established connection.
    static func socketText(_ error: ProbeSocket.Failure, connection: ProbeSocket.Connection, operation: String,
                           inBody: Bool) -> String {
        switch error {
        case .timeout: return inBody ? bodyTimeoutText : timeoutText
        case .system(_, let code):
            return "\(operation) tcp \(connection.local)->\(connection.remote): \(operation): \(ProbeSocket.errnoText(code))"
        case .endOfStream: return "EOF"
        case .lookup(let host, let message): return "lookup \(host): \(message)"
        }
    }
}

/// Incremental decoder of `Transfer-Encoding: chunked` bodies.
struct ChunkedDecoder {
    enum Phase { case size, data(remaining: Int), dataEnd, trailer, done }
    var phase = Phase.size
    var malformed = false

    /// Consumes what it can of `input`; returns decoded bytes and whether the body ended.
    mutating func feed(_ input: inout [UInt8]) -> ([UInt8], Bool) {
        var out: [UInt8] = []
        var i = 0
        loop: while true {
            switch phase {
            case .done:
                break loop
            case .size, .trailer, .dataEnd:
                guard let lineEnd = findCRLF(input, from: i) else { break loop }
                let line = String(decoding: input[i..<lineEnd], as: UTF8.self)
                i = lineEnd + 2
                switch phase {
                case .size:
                    let sizeText = line.split(separator: ";").first.map(String.init)?.httpTrimmed ?? ""
                    guard let size = Int(sizeText, radix: 16) else {
                        malformed = true
                        break loop
                    }
                    phase = size == 0 ? .trailer : .data(remaining: size)
                case .dataEnd:
                    phase = .size
                default:
                    if line.isEmpty { phase = .done }
                }
            case .data(let remaining):
                let available = min(remaining, input.count - i)
                if available == 0 { break loop }
                out += input[i..<(i + available)]
                i += available
                phase = remaining - available == 0 ? .dataEnd : .data(remaining: remaining - available)
            }
        }
        input.removeFirst(i)
        if case .done = phase { return (out, true) }
        return (out, false)
    }

    func findCRLF(_ bytes: [UInt8], from start: Int) -> Int? {
        var i = start
        while i + 1 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
            i += 1
        }
        return nil
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    var httpTrimmed: String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { $0 != " " && $0 != "\t" }),
              let last = scalars.lastIndex(where: { $0 != " " && $0 != "\t" }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
