import Testing
@testable import Cluster

/// Which proxy settings `labnode up` accepts: localhost NodePorts only where kube-proxy has
/// them (iptables mode), and the userspace mode as a mode of its own.
@Suite struct ProxyModeConfigTests {
    static func config(mode: String, localhost: Bool?) -> ClusterConfig {
        var c = ClusterConfig(dataDir: "/tmp/x", nodeIP: "192.0.2.5", proxyMode: mode, nodeName: "node")
        c.localhostNodePorts = localhost
        return c
    }

    @Test func localhostNodePortsOnlyInIptablesMode() throws {
        try Self.config(mode: "iptables", localhost: true).validate()
        try Self.config(mode: "userspace", localhost: nil).validate()
        #expect(throws: ClusterError.self) { try Self.config(mode: "nftables", localhost: true).validate() }
        #expect(throws: ClusterError.self) { try Self.config(mode: "userspace", localhost: true).validate() }
    }
}
