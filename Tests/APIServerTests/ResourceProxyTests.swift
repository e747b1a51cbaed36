import APIMachinery
import Testing
@testable import APIServer

@Suite struct ResourceProxyTests {
    @Test("[scheme:]name[:port]", arguments: [
        ("ghost", ResourceProxy.Target(scheme: "", name: "ghost", port: "")),
        ("ghost:80", ResourceProxy.Target(scheme: "", name: "ghost", port: "80")),
        ("ghost:http", ResourceProxy.Target(scheme: "", name: "ghost", port: "http")),
        ("http:ghost", ResourceProxy.Target(scheme: "http", name: "ghost", port: "")),
        ("https:ghost:443", ResourceProxy.Target(scheme: "https", name: "ghost", port: "443")),
    ])
    func parses(id: String, expected: ResourceProxy.Target) throws {
        #expect(try ResourceProxy.parse(id) == expected)
    }

    @Test("malformed ids are a 400", arguments: ["a:b:c:d", ":80", "ftp:ghost:80", "http::80"])
    func rejects(id: String) {
        #expect(throws: APIError.self) { try ResourceProxy.parse(id) }
        #expect((try? ResourceProxy.parse(id)) == nil)
    }

    @Test func execStatusCarriesTheExitCode() {
        let failed = ExecStatus.status(exitCode: 3, command: ["sh", "-c", "exit 3"])
        #expect(failed["reason"]?.stringValue == "NonZeroExitCode")
        #expect(failed[path: "details", "causes"]?.arrayValue?.first?["message"]?.stringValue == "3")
        #expect(ExecStatus.status(exitCode: 0, command: ["true"])["status"]?.stringValue == "Success")
        #expect(ExecWebSocket.negotiate(["v4.channel.k8s.io", "v5.channel.k8s.io"]) == "v5.channel.k8s.io")
        #expect(ExecWebSocket.negotiate(["channel.k8s.io"]) == nil)
    }
}
