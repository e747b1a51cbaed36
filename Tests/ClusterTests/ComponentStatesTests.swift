import Foundation
import Testing
@testable import Cluster

/// `--disable` (add-ons and components) and what `labnode status` prints about each component.
@Suite struct ComponentStatesTests {
    static func config(disabled: [String]?) -> ClusterConfig {
        var c = ClusterConfig(dataDir: "/tmp/x", nodeIP: "192.0.2.5", nodeName: "node")
        c.disabled = disabled
        return c
    }

    struct DependencyCase: Sendable, CustomTestStringConvertible {
        var disabled: [String]
        var running: [String]
        var testDescription: String { "--disable \(disabled.joined(separator: ","))" }
    }

    @Test(arguments: [
        DependencyCase(disabled: [], running: ComponentStates.order),
        DependencyCase(disabled: ["dns"], running: ["store", "pki", "api-server", "controllers", "node-agent", "kube-proxy"]),
        // The proxy routes through the node's bridge, and DNS is a pod: both need the node agent.
        DependencyCase(disabled: ["node-agent"], running: ["store", "pki", "api-server", "controllers"]),
        // Without controllers nothing makes the DNS pod; the proxy still runs.
        DependencyCase(disabled: ["controllers"], running: ["store", "pki", "api-server", "node-agent", "kube-proxy"]),
        DependencyCase(disabled: ["kube-proxy"], running: ["store", "pki", "api-server", "controllers", "node-agent", "dns"]),
        DependencyCase(disabled: ["controllers", "node-agent", "kube-proxy", "dns"], running: ["store", "pki", "api-server"]),
    ])
    func whatRunsFollowsWhatEachComponentNeeds(_ c: DependencyCase) throws {
        let config = Self.config(disabled: c.disabled)
        try config.validate()
        #expect(ComponentStates.order.filter { config.runs($0) } == c.running)
        for name in c.disabled { #expect(config.whyNotRunning(name) == "--disable \(name)") }
    }

    @Test func aComponentLeftOutBecauseOfAnotherSaysWhich() {
        let config = Self.config(disabled: ["node-agent"])
        #expect(config.whyNotRunning("kube-proxy") == "needs node-agent, which is disabled")
        #expect(config.whyNotRunning("dns") == "needs node-agent, which is disabled")
        #expect(config.whyNotRunning("api-server") == nil)
    }

    @Test func anUnknownNameIsRefusedNamingWhatIsKnown() {
        #expect {
            try Self.config(disabled: ["scheduler"]).validate()
        } throws: { error in
            "\(error)".contains("--disable scheduler: no such add-on or component (known: dns, controllers, node-agent, kube-proxy)")
        }
    }

    @Test func theFlagTakesRepeatsAndCommasAndAnEmptyValueRunsEverything() {
        var flags = Lifecycle.Flags()
        flags.disabled = ["controllers,node-agent", " kube-proxy ", "dns"]
        var c = Self.config(disabled: nil)
        flags.apply(to: &c)
        #expect(c.disabled == ["controllers", "node-agent", "kube-proxy", "dns"])
        flags.disabled = [""]
        flags.apply(to: &c)
        #expect(c.disabled == [])
        #expect(ComponentStates.order.allSatisfy { c.runs($0) })
    }

    /// Settings saved before `--disable` took components still load, with their add-ons.
    @Test func savedSettingsKeepTheirKey() throws {
        let json = #"{"dataDir":"/tmp/x","apiPort":6443,"nodeIP":"192.0.2.5","serviceClusterIPRange":"10.96.0.0/12","serviceNodePortRange":"30000-32767","clusterCIDR":"10.244.0.0/16","clusterDomain":"cluster.local","proxyMode":"iptables","nodeName":"node","disabledAddons":["dns"]}"#
        let c = try JSONDecoder().decode(ClusterConfig.self, from: Data(json.utf8))
        #expect(c.disabled == ["dns"])
        let again = try JSONDecoder().decode(ClusterConfig.self, from: JSONEncoder().encode(c))
        #expect(again == c)
    }

    @Test func theDaemonsRecordIsWhatStatusPrints() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-states-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var config = Self.config(disabled: ["kube-proxy"])
        config.dataDir = dir
        let states = ComponentStates(path: config.statusPath, config: config)
        // The progress lines go nowhere: only the recorded states matter here.
        let devNull = open("/dev/null", O_WRONLY)
        defer { close(devNull) }
        let progress = ProgressReporter(fd: devNull, states: states)
        progress.ready("store", "state.db, revision 7")
        progress.ready("kubeconfig", "/root/.kube/config")   // a progress line, not a component
        progress.fail("node-agent", "node agent: overlayfs is not available")

        let recorded = try #require(ComponentStates.load(path: config.statusPath))
        #expect(recorded.map(\.name) == ComponentStates.order)
        #expect(recorded.first { $0.name == "store" } == .init(name: "store", state: "ready", detail: "state.db, revision 7"))
        #expect(recorded.first { $0.name == "controllers" }?.state == "starting")

        let lines = Lifecycle.componentLines(config: config, running: true,
                                             live: ["api-server": "ready", "dns": "not answering (kube-dns 10.96.0.10:53)"])
        #expect(lines.count == ComponentStates.order.count)
        #expect(lines[0] == "store        ready      state.db, revision 7")
        #expect(lines[2] == "api-server   ready")
        #expect(lines[4] == "node-agent   failed     node agent: overlayfs is not available")
        #expect(lines[5] == "kube-proxy   disabled   --disable kube-proxy")
        #expect(lines[6] == "dns          not answering (kube-dns 10.96.0.10:53)")
        // A stopped daemon's file says nothing: every component that would run is stopped.
        let stopped = Lifecycle.componentLines(config: config, running: false, live: [:])
        #expect(stopped[0] == "store        stopped")
        #expect(stopped[5] == "kube-proxy   disabled   --disable kube-proxy")

        states.remove()
        #expect(ComponentStates.load(path: config.statusPath) == nil)
        // Running, but no record (a daemon of an older labnode): said, not guessed.
        let unrecorded = Lifecycle.componentLines(config: config, running: true, live: ["api-server": "ready"])
        #expect(unrecorded[0] == "store        unknown    no \(config.statusPath)")
        #expect(unrecorded[2] == "api-server   ready")
    }
}
