import Logging
import XCTest

@testable import Addons

final class CorefileTests: XCTestCase {
    func testTheAddonsCorefileParses() throws {
        let c = try Corefile(parsing: DNSManifests.corefile(clusterDomain: "cluster.local"))
        XCTAssertEqual(c.blocks.count, 1)
        let block = c.blocks[0]
        XCTAssertEqual(block.keys, [.init(scheme: .dns, zone: .root, port: 53)])
        XCTAssertEqual(block.directives.map(\.name),
                       ["errors", "log", "health", "ready", "kubernetes", "prometheus", "forward", "cache", "loop", "reload", "loadbalance"])
        let k8s = try XCTUnwrap(block.directives.first { $0.name == "kubernetes" })
        XCTAssertEqual(k8s.args, ["cluster.local", "in-addr.arpa", "ip6.arpa"])
        XCTAssertEqual(k8s.sub("pods"), ["insecure"])
        XCTAssertEqual(k8s.sub("fallthrough"), ["in-addr.arpa", "ip6.arpa"])
        XCTAssertEqual(block.directives.first { $0.name == "health" }?.sub("lameduck"), ["5s"])
    }

    func testKeysCommentsQuotesAndEnvironment() throws {
        let text = """
        # a comment
        cluster.local:1053 example.org, tls://.:8853 {
            hosts "/etc/my hosts" {$ZONE} # trailing comment
            log
        }
        .:53 { forward . 10.0.0.1 }
        """
        let c = try Corefile(parsing: text, environment: ["ZONE": "lab."])
        XCTAssertEqual(c.blocks.count, 2)
        XCTAssertEqual(c.blocks[0].keys, [
            .init(scheme: .dns, zone: "cluster.local.", port: 1053),
            .init(scheme: .dns, zone: "example.org.", port: 53),
            .init(scheme: .tls, zone: .root, port: 8853),
        ])
        XCTAssertEqual(c.blocks[0].directives[0].args, ["/etc/my hosts", "lab."])
        XCTAssertEqual(c.blocks[1].directives.map(\.name), ["forward"])
        XCTAssertEqual(c.blocks[1].directives[0].args, [".", "10.0.0.1"])
    }

    func testErrorsNameTheLine() {
        XCTAssertThrowsError(try Corefile(parsing: ".:53 {\n  log\n")) {
            XCTAssertTrue("\($0)".hasPrefix("Corefile:"), "\($0)")
            XCTAssertTrue("\($0)".contains("missing '}'"))
        }
        XCTAssertThrowsError(try Corefile(parsing: ".:99999 {\n}\n")) { XCTAssertTrue("\($0)".contains("invalid port")) }
        XCTAssertThrowsError(try Corefile(parsing: "https://.:53 {\n}\n")) { XCTAssertTrue("\($0)".contains("scheme")) }
    }

    func testRegistryOrdersByPluginCfgAndRejectsUnknownDirectives() throws {
        let sink = LineSink(capturing: ())
        let setup = PluginSetup(logger: Logger(label: "t"), metrics: DNSMetrics(), apiClient: { throw PluginSetupError("t", "no api") },
                                readFile: { _ in "" }, shared: SharedPlugins())
        let block = try Corefile(parsing: ".:53 {\n cache 30\n forward . 10.0.0.1\n log\n errors\n}").blocks[0]
        let chain = try PluginRegistry.standard(sink: sink).chain(for: block, setup: setup)
        XCTAssertEqual(chain.map(\.name), ["errors", "log", "cache", "forward"], "plugin.cfg order, not Corefile order")
        let bad = try Corefile(parsing: ".:53 {\n whoami\n}").blocks[0]
        XCTAssertThrowsError(try PluginRegistry.standard(sink: sink).chain(for: bad, setup: setup)) {
            XCTAssertTrue("\($0)".contains("unknown directive 'whoami'"), "\($0)")
        }
        let twice = try Corefile(parsing: ".:53 {\n log\n log\n}").blocks[0]
        XCTAssertThrowsError(try PluginRegistry.standard(sink: sink).chain(for: twice, setup: setup))
        let badTTL = try Corefile(parsing: ".:53 {\n kubernetes cluster.local {\n ttl 99999\n }\n}").blocks[0]
        XCTAssertThrowsError(try PluginRegistry.standard(sink: sink).chain(for: badTTL, setup: setup)) {
            XCTAssertTrue("\($0)".contains("ttl"), "\($0)")
        }
    }
}
