import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `services/NAME/proxy/PATH` and `pods/NAME/proxy/PATH` (what `kubectl proxy` users open in a
/// browser): the request goes to a ready endpoint of the Service, or to the pod, and the reply
/// comes back unchanged except for redirects, which are rewritten under the proxy prefix.
enum ResourceProxy {
    /// `[scheme:]name[:port]`.
    struct Target: Equatable {
        var scheme: String
        var name: String
        var port: String
    }

    static func parse(_ id: String) throws(APIError) -> Target {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        let target: Target
        switch parts.count {
        case 1: target = Target(scheme: "", name: parts[0], port: "")
        case 2 where parts[0] == "http" || parts[0] == "https": target = Target(scheme: parts[0], name: parts[1], port: "")
        case 2: target = Target(scheme: "", name: parts[0], port: parts[1])
        case 3: target = Target(scheme: parts[0], name: parts[1], port: parts[2])
        default: throw APIError.badRequest("invalid service request \(GoQuote.quote(id))")
        }
        guard !target.name.isEmpty, ["", "http", "https"].contains(target.scheme) else {
            throw APIError.badRequest("invalid service request \(GoQuote.quote(id))")
        }
        return target
    }

    /// The address a Service's proxy reaches, by kube-apiserver's rules (see kubectl-contract.md §10).
    static func serviceEndpoint(_ api: APIService, namespace: String, target: Target) async throws(APIError) -> (host: String, port: Int) {
        var portName = target.port
        if let number = Int(target.port) {
            let service = try await api.get(Resources.services, namespace: namespace, name: target.name)
            guard let port = (service[path: "spec", "ports"]?.arrayValue ?? []).first(where: { $0["port"]?.intValue == Int64(number) }) else {
                throw APIError(code: 503, reason: .serviceUnavailable,
                               message: "no service port \(number) found for service \(GoQuote.quote(target.name))")
            }
            portName = port["name"]?.stringValue ?? ""
        }
        let endpoints = try await api.get(Resources.endpoints, namespace: namespace, name: target.name)
        for subset in endpoints["subsets"]?.arrayValue ?? [] {
            guard let port = (subset["ports"]?.arrayValue ?? []).first(where: { ($0["name"]?.stringValue ?? "") == portName }),
                  let number = port["port"]?.intValue,
                  let ip = subset["addresses"]?.arrayValue?.randomElement()?["ip"]?.stringValue else { continue }
            return (ip, Int(number))
        }
        throw APIError(code: 503, reason: .serviceUnavailable,
                       message: "no endpoints available for service \(GoQuote.quote(target.name))")
    }

    static func podEndpoint(_ api: APIService, namespace: String, target: Target) async throws(APIError) -> (host: String, port: Int) {
        let pod = try await api.get(Resources.pods, namespace: namespace, name: target.name)
        guard let ip = pod[path: "status", "podIP"]?.stringValue, !ip.isEmpty else {
            throw APIError(code: 503, reason: .serviceUnavailable, message: "address not allowed")
        }
        if target.port.isEmpty { return (ip, 80) }
        if let number = Int(target.port) { return (ip, number) }
        for container in pod[path: "spec", "containers"]?.arrayValue ?? [] {
            for port in container["ports"]?.arrayValue ?? [] where port["name"]?.stringValue == target.port {
                if let number = port["containerPort"]?.intValue { return (ip, Int(number)) }
            }
        }
        throw APIError(code: 503, reason: .serviceUnavailable, message: "no port \(GoQuote.quote(target.port)) on pod \(GoQuote.quote(target.name))")
    }

    /// Headers not passed on: hop-by-hop ones, and the caller's credentials for the API server.
    static let dropped: Set<String> = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
                                       "trailer", "host", "authorization", "content-length", "accept-encoding"]

    /// Sends the request to `host:port` over HTTP/1.0 with `Connection: close` (so the reply is
    /// delimited by the connection's end) on a thread of its own, and returns the reply.
    static func forward(method: String, host: String, port: Int, path: String, headers: [(String, String)],
                        body: [UInt8], timeout: Double = 30) async throws(APIError) -> (status: Int, headers: [(String, String)], body: [UInt8]) {
        var head = "\(method) \(path) HTTP/1.0\r\nHost: \(host):\(port)\r\nConnection: close\r\n"
        for (name, value) in headers where !dropped.contains(name.lowercased()) { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        let result: Result<[UInt8], APIError> = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: exchange(request, host: host, port: port, timeout: timeout)) }.start()
        }
        let raw = try result.get()
        guard let split = raw.firstRange(of: Array("\r\n\r\n".utf8)) else {
            throw APIError(code: 502, reason: .internalError, message: "error trying to reach service: malformed reply from \(host):\(port)")
        }
        let lines = String(decoding: raw[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else {
            throw APIError(code: 502, reason: .internalError, message: "error trying to reach service: malformed status line from \(host):\(port)")
        }
        var replyHeaders: [(String, String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            replyHeaders.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        return (status, replyHeaders, Array(raw[split.upperBound...]))
    }

    /// One blocking request/response exchange over TCP.
    static func exchange(_ request: [UInt8], host: String, port: Int, timeout: Double) -> Result<[UInt8], APIError> {
        func unreachable(_ why: String) -> Result<[UInt8], APIError> {
            .failure(APIError(code: 503, reason: .serviceUnavailable, message: "error trying to reach service: dial tcp \(host):\(port): \(why)"))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return unreachable("not an IPv4 address") }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return unreachable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return unreachable("connect: \(String(cString: strerror(errno)))") }
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return unreachable("write: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while reply.count < 64 << 20 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { reply += buffer[0..<n] } else { break }
        }
        return .success(reply)
    }
}

extension APIHandler {
    /// A `proxy` subresource request of any method.
    func proxy(_ info: RequestInfo, _ request: Request, rawQuery: String?) async throws -> Response {
        if info.group.isEmpty, info.resource == "nodes", let node = info.name {
            return try await nodeProxy(node: node, path: info.rest, method: request.method.rawValue)
        }
        guard info.group.isEmpty, info.resource == "services" || info.resource == "pods",
              let namespace = info.namespace, let id = info.name else {
            throw APIError(code: 503, reason: .serviceUnavailable, message: "\(info.resource)/proxy is not available on this node yet")
        }
        let target = try ResourceProxy.parse(id)
        let prefix = "/api/v1/namespaces/\(namespace)/\(info.resource)/\(id)/proxy"
        let method = request.method.rawValue
        // `.../proxy` without a slash: send the browser to `.../proxy/` so relative links work.
        if info.rest.isEmpty && !(request.uri.path.hasSuffix("/")) && (method == "GET" || method == "HEAD") {
            let location = prefix + "/" + (rawQuery.map { "?" + $0 } ?? "")
            return Response(status: .movedPermanently, headers: [.location: location])
        }
        let (host, port) = info.resource == "services"
            ? try await ResourceProxy.serviceEndpoint(api, namespace: namespace, target: target)
            : try await ResourceProxy.podEndpoint(api, namespace: namespace, target: target)
        let body = Array(buffer: try await request.body.collect(upTo: Self.maxBodyBytes))
        let path = "/" + info.rest + (rawQuery.map { "?" + $0 } ?? "")
        let headers = request.headers.map { ($0.name.rawName, $0.value) }
        let reply = try await ResourceProxy.forward(method: method, host: host, port: port, path: path, headers: headers, body: body)
        var fields = HTTPFields()
        for (name, value) in reply.headers {
            guard !ResourceProxy.dropped.contains(name.lowercased()), let field = HTTPField.Name(name) else { continue }
            var value = value
            // Redirects to the backend's own paths stay inside the proxy.
            if name.lowercased() == "location", value.hasPrefix("/") { value = prefix + value }
            fields.append(HTTPField(name: field, value: value))
        }
        fields[.contentLength] = String(reply.body.count)
        return Response(status: .init(code: reply.status), headers: fields,
                        body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
    }

    /// `nodes/NAME/proxy/PATH`: the parts of the kubelet's own HTTP API that make sense on a
    /// one-node lab cluster, answered by the API server since the agent runs in-process:
    /// `healthz`, and `pods` (the pods bound to the node, as the kubelet lists them).
    /// Anything else is a 404, as from the kubelet's mux.
    func nodeProxy(node: String, path: String, method: String) async throws -> Response {
        _ = try await api.get(Resources.nodes, namespace: nil, name: node)
        func text(_ status: HTTPResponse.Status, _ body: String) -> Response {
            Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        guard method == "GET" || method == "HEAD" else { return text(.methodNotAllowed, "405 method not allowed\n") }
        switch path.split(separator: "/").joined(separator: "/") {
        case "healthz":
            return text(.ok, "ok")
        case "pods":
            let pods = try await api.list(Resources.pods, namespace: nil).items
                .filter { $0[path: "spec", "nodeName"]?.stringValue == node }
            return Self.json(["kind": "PodList", "apiVersion": "v1", "metadata": [:], "items": .array(pods)])
        default:
            return text(.notFound, "404 page not found\n")
        }
    }
}
