import APIMachinery
import Testing
@testable import Runtime

/// The real httpGet and tcpSocket probers against servers on 127.0.0.1 (loopback only).
@Suite struct SocketProbeRunnerTests {
    let runner = SocketProbeRunner()

    func request(_ port: Int, _ path: String = "/healthz", headers: [(String, String)] = []) throws -> HTTPProbeRequest {
        try HTTPProbeRequest.make(action: HTTPGetAction(port: .number(port), path: path, headers: headers),
                                  container: ["name": "web"], podIP: "127.0.0.1", kubeVersion: "1.33")
    }

    @Test func successSendsTheKubeletsRequest() async throws {
        let server = try LoopbackServer { _ in LoopbackServer.response(200, "OK", body: "ok") }
        defer { server.stop() }
        let outcome = await runner.httpGet(try request(server.port, headers: [("x-probe", "yes")]), timeout: 2)
        #expect(outcome == .success(output: "ok"))
        let head = try #require(server.receivedRequests.first)
        #expect(head.hasPrefix("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:\(server.port)\r\n"))
        #expect(head.contains("User-Agent: kube-probe/1.33\r\n"))
        #expect(head.contains("Accept: */*\r\n"))
        #expect(head.contains("X-Probe: yes\r\n"))
        #expect(head.contains("Connection: close\r\n"))
    }

    static let statusCases: [(Int, String, String, ProbeOutcome)] = [
        (204, "No Content", "", .success(output: "")),
        (399, "Odd", "", .warning(output: "Probe terminated redirects, Response body: ")),
        (404, "Not Found", "missing", .failure(output: "HTTP probe failed with statuscode: 404")),
        (500, "Internal Server Error", "boom", .failure(output: "HTTP probe failed with statuscode: 500")),
    ]

    @Test(arguments: statusCases)
    func statusCodes(status: Int, reason: String, body: String, expected: ProbeOutcome) async throws {
        let server = try LoopbackServer { _ in LoopbackServer.response(status, reason, body: body) }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 2) == expected)
    }

    @Test func chunkedBodyAndInterimResponse() async throws {
        let server = try LoopbackServer { _ in
            Array(("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n").utf8)
        }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 2) == .success(output: "hello world"))
    }

    @Test func sameHostRedirectsAreFollowed() async throws {
        let closed = try LoopbackServer.closedPort()
        let server = try LoopbackServer { head in
            if head.hasPrefix("GET /healthz ") {
                return LoopbackServer.response(302, "Found", headers: ["Location: live?x=1"])
            }
            if head.hasPrefix("GET /live?x=1 ") {
                return LoopbackServer.response(200, "OK", body: "here")
            }
            return LoopbackServer.response(404, "Not Found")
        }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 2) == .success(output: "here"))
        #expect(server.receivedRequests.count == 2)

        // Same host name on another port is still "local": followed, and here refused.
        let hop = try LoopbackServer { _ in
            LoopbackServer.response(307, "Temporary Redirect", headers: ["Location: http://127.0.0.1:\(closed)/x"])
        }
        defer { hop.stop() }
        #expect(await runner.httpGet(try request(hop.port), timeout: 2)
                == .failure(output: "Get \"http://127.0.0.1:\(closed)/x\": dial tcp 127.0.0.1:\(closed): connect: connection refused"))
    }

    @Test func redirectToAnotherHostIsAWarning() async throws {
        let server = try LoopbackServer { _ in
            LoopbackServer.response(302, "Found", headers: ["Location: http://example.invalid/"], body: "<a>moved</a>")
        }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 2)
                == .warning(output: "Probe terminated redirects, Response body: <a>moved</a>"))
        #expect(server.receivedRequests.count == 1)
    }

    @Test func silentServerTimesOut() async throws {
        let server = try LoopbackServer { _ in nil }
        defer { server.stop() }
        let started = ProbeSocket.monotonicNow()
        let outcome = await runner.httpGet(try request(server.port, "/slow"), timeout: 0.3)
        #expect(outcome == .failure(output: "Get \"http://127.0.0.1:\(server.port)/slow\": "
                                    + "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"))
        let elapsed = ProbeSocket.monotonicNow() - started
        // It waited for the timeout. No upper bound: under a full parallel test run the blocking
        // probe can wait many seconds for a Dispatch worker (the node agent must give probes
        // their own threads; see Runtime/Probes).
        #expect(elapsed >= 0.29, "took \(elapsed)s")
    }

    @Test func refusedConnections() async throws {
        let port = try LoopbackServer.closedPort()
        #expect(await runner.httpGet(try request(port), timeout: 1)
                == .failure(output: "Get \"http://127.0.0.1:\(port)/healthz\": dial tcp 127.0.0.1:\(port): connect: connection refused"))
        #expect(await runner.tcpSocket(host: "127.0.0.1", port: port, timeout: 1)
                == .failure(output: "dial tcp 127.0.0.1:\(port): connect: connection refused"))
    }

    @Test func tcpSocketConnects() async throws {
        let server = try LoopbackServer { _ in [] }
        defer { server.stop() }
        #expect(await runner.tcpSocket(host: "127.0.0.1", port: server.port, timeout: 1) == .success(output: ""))
    }

    @Test func emptyReplyIsEOF() async throws {
        let server = try LoopbackServer { _ in [] }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 1)
                == .failure(output: "Get \"http://127.0.0.1:\(server.port)/healthz\": EOF"))
    }

    @Test func bodyIsCappedAtTenKiB() async throws {
        let big = String(repeating: "x", count: 20_000)
        let server = try LoopbackServer { _ in LoopbackServer.response(200, "OK", body: big) }
        defer { server.stop() }
        #expect(await runner.httpGet(try request(server.port), timeout: 2) == .success(output: String(repeating: "x", count: 10_240)))
    }

    @Test func httpsIsReportedAsUnsupported() async throws {
        var https = try request(443)
        https.scheme = "https"
        guard case .error(let message, _) = await runner.httpGet(https, timeout: 1) else {
            Issue.record("https must error")
            return
        }
        #expect(message.contains("HTTPS"))
    }
}

@Suite struct SocketTimeoutTests {
    /// A listener that never accepts, with its queue filled, leaves further connects unanswered.
    @Test func tcpConnectTimesOut() async throws {
        let server = try LoopbackServer(backlog: 0, accepting: false) { _ in nil }
        defer { server.stop() }
        let runner = SocketProbeRunner()
        // The first connections fill the accept queue; the last one can only time out.
        var outcomes: [ProbeOutcome] = []
        for _ in 0..<3 { outcomes.append(await runner.tcpSocket(host: "127.0.0.1", port: server.port, timeout: 0.3)) }
        #expect(outcomes.last == .failure(output: "dial tcp 127.0.0.1:\(server.port): i/o timeout"))
    }
}

@Suite struct HTTPProbeTimeoutTests {
    /// With the accept queue full the connect itself cannot finish: Go words that as a dial timeout.
    @Test func dialTimeoutInsideHTTP() async throws {
        let server = try LoopbackServer(backlog: 0, accepting: false) { _ in nil }
        defer { server.stop() }
        let runner = SocketProbeRunner()
        for _ in 0..<2 { _ = await runner.tcpSocket(host: "127.0.0.1", port: server.port, timeout: 0.2) }
        let request = try HTTPProbeRequest.make(action: HTTPGetAction(port: .number(server.port)), container: ["name": "c"],
                                                podIP: "127.0.0.1", kubeVersion: "1.33")
        #expect(await runner.httpGet(request, timeout: 0.3) == .failure(
            output: "Get \"http://127.0.0.1:\(server.port)\": dial tcp 127.0.0.1:\(server.port): i/o timeout "
                + "(Client.Timeout exceeded while awaiting headers)"))
    }

    @Test func truncatedBodyErrors() async throws {
        let server = try LoopbackServer { _ in Array("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".utf8) }
        defer { server.stop() }
        let request = try HTTPProbeRequest.make(action: HTTPGetAction(port: .number(server.port)), container: ["name": "c"],
                                                podIP: "127.0.0.1", kubeVersion: "1.33")
        #expect(await SocketProbeRunner().httpGet(request, timeout: 1) == .error(message: "unexpected EOF", resultedIn: "failure"))
    }
}
