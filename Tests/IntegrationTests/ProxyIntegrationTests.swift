import Foundation
import Testing

/// `services/NAME/proxy` and `pods/NAME/proxy`, which `kubectl proxy` forwards verbatim (the
/// chapter's `http://localhost:8001/api/v1/namespaces/default/services/ghost/proxy/`).
@Suite("proxy subresources", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ProxyIntegrationTests {
    @Test func serviceAndPodProxy() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        _ = try c.kubectl(nil, ["create", "deployment", "ghost", "--image=nginx"])
        _ = try c.kubectl(nil, ["expose", "deployment", "ghost", "--port=80", "--type=NodePort"])
        _ = try c.kubectl(nil, ["create", "service", "clusterip", "empty", "--tcp=80"])
        func raw(_ path: String) -> Command.Result {
            (try? c.kubectl(nil, ["get", "--raw", "/api/v1/namespaces/default/" + path]))
                ?? Command.Result(code: -1, out: "", err: "kubectl did not run")
        }
        #expect(NodeAgentIntegrationTests.eventually(30) { raw("services/ghost/proxy/").out.contains("Welcome to nginx!") },
                "\(raw("services/ghost/proxy/"))")
        #expect(raw("services/http:ghost:80/proxy/").out.contains("Welcome to nginx!"))
        #expect(raw("services/ghost:80/proxy/index.html").out.contains("Welcome to nginx!"))
        let missingPage = raw("services/ghost/proxy/no-such-page")
        #expect(missingPage.code != 0 && missingPage.err.contains("NotFound"), "\(missingPage)")
        let noEndpoints = raw("services/empty/proxy/")
        #expect(noEndpoints.err.contains("no endpoints available for service \"empty\""), "\(noEndpoints)")
        let badPort = raw("services/ghost:81/proxy/")
        #expect(badPort.err.contains("no service port 81 found"), "\(badPort)")
        let pod = try c.kubectl(nil, ["get", "pods", "-l", "app=ghost", "-o", "jsonpath={.items[0].metadata.name}"]).out
        #expect(raw("pods/\(pod):80/proxy/").out.contains("Welcome to nginx!"), "\(raw("pods/\(pod):80/proxy/"))")
    }

    /// The chapter's `kubectl proxy` step, unchanged: the Service object, its page through
    /// the proxy subresource in both id forms, the redirect to `proxy/`, and the node's proxy.
    @Test func kubectlProxy() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        _ = try c.kubectl(nil, ["create", "deployment", "ghost", "--image=nginx"])
        _ = try c.kubectl(nil, ["expose", "deployment", "ghost", "--port=80", "--type=NodePort"])
        let proxy = try c.background(nil, ["proxy", "--port=0"])
        defer { proxy.finish() }
        // "Starting to serve on 127.0.0.1:PORT"
        func port() -> String? {
            proxy.out.range(of: "127.0.0.1:").map { String(proxy.out[$0.upperBound...].prefix { $0.isNumber }) }
        }
        #expect(NodeAgentIntegrationTests.eventually(20) { port() != nil }, "\(proxy.out)\n\(proxy.err)")
        let base = "http://127.0.0.1:\(try #require(port()))"
        func curl(_ path: String, _ extra: [String] = []) -> String {
            (try? c.inNetns(["curl", "-s", "-m", "10"] + extra + [base + path]).out) ?? ""
        }
        #expect(NodeAgentIntegrationTests.eventually(30) {
            curl("/api/v1/namespaces/default/services/ghost/proxy/").contains("Welcome to nginx!")
        }, "\(curl("/api/v1/namespaces/default/services/ghost/proxy/"))")
        let service = curl("/api/v1/namespaces/default/services/ghost")
        #expect(service.contains("\"kind\": \"Service\"") || service.contains("\"kind\":\"Service\""), "\(service)")
        #expect(curl("/api/v1/namespaces/default/services/http:ghost:80/proxy/").contains("Welcome to nginx!"))
        let redirect = curl("/api/v1/namespaces/default/services/ghost/proxy", ["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"])
        #expect(redirect.hasPrefix("301") && redirect.hasSuffix("/services/ghost/proxy/"), "\(redirect)")
        let missing = curl("/api/v1/namespaces/default/services/nothere")
        #expect(missing.contains("\"code\": 404") || missing.contains("\"code\":404"), "\(missing)")
        let node = try c.kubectl(nil, ["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]).out
        #expect(curl("/api/v1/nodes/\(node)/proxy/healthz") == "ok")
        #expect(curl("/api/v1/nodes/\(node)/proxy/pods").contains("ghost-"), "\(curl("/api/v1/nodes/\(node)/proxy/pods"))")
    }
}
