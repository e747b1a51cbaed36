import APIMachinery
import Foundation
import Testing
@testable import Runtime

@Suite struct NodeObjectTests {
    static let facts = HostFacts(cpus: 2, memoryBytes: 4 * 1_073_741_824, ephemeralStorageBytes: 100 * 1_073_741_824,
                                 kernelVersion: "6.1.0-18-amd64", osImage: "Debian GNU/Linux 12 (bookworm)",
                                 machineID: "abc", bootID: "def")

    @Test func nodeCarriesWhatKubectlShows() {
        let node = NodeObject.make(name: "labnode", nodeIP: "192.168.77.10", podCIDR: "10.244.0.0/24", facts: Self.facts,
                                   ready: true, readyMessage: "kubelet is posting ready status")
        #expect(node.labels["kubernetes.io/hostname"] == "labnode")
        #expect(node.labels["node-role.kubernetes.io/control-plane"] == "")
        #expect(node[path: "status", "capacity", "cpu"] == "2")
        #expect(node[path: "status", "capacity", "memory"] == "4194304Ki")
        #expect(node[path: "status", "allocatable", "memory"] == "4091904Ki")
        #expect(node[path: "status", "addresses"]?.arrayValue?.first?["address"] == "192.168.77.10")
        #expect(node[path: "status", "nodeInfo", "kubeletVersion"] == "v1.33.0")
        let ready = node[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Ready" }
        #expect(ready?["status"] == "True")
        #expect(ready?["reason"] == "KubeletReady")
    }

    @Test func transitionTimeMovesOnlyWhenTheStatusChanges() {
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        let first = NodeObject.make(name: "n", nodeIP: "1.2.3.4", podCIDR: "10.244.0.0/24", facts: Self.facts, ready: true,
                                    readyMessage: "", now: t0)
        let later = NodeObject.make(name: "n", nodeIP: "1.2.3.4", podCIDR: "10.244.0.0/24", facts: Self.facts, ready: true,
                                    readyMessage: "", now: t0.addingTimeInterval(30), previous: first)
        func ready(_ n: JSON) -> JSON? { n[path: "status", "conditions"]?.arrayValue?.first { $0["type"] == "Ready" } }
        #expect(ready(later)?["lastTransitionTime"] == ready(first)?["lastTransitionTime"])
        #expect(ready(later)?["lastHeartbeatTime"] != ready(first)?["lastHeartbeatTime"])
        let notReady = NodeObject.make(name: "n", nodeIP: "1.2.3.4", podCIDR: "10.244.0.0/24", facts: Self.facts, ready: false,
                                       readyMessage: "x", now: t0.addingTimeInterval(60), previous: later)
        #expect(ready(notReady)?["lastTransitionTime"] != ready(later)?["lastTransitionTime"])
    }

    @Test func readsHostFactsFromAFixtureTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("facts-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        for (path, text) in [("/proc/meminfo", "MemTotal:        2048000 kB\nMemFree: 1 kB\n"),
                             ("/etc/os-release", "NAME=x\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
                             ("/proc/sys/kernel/osrelease", "6.1.0\n"), ("/etc/machine-id", "m1\n"),
                             ("/proc/sys/kernel/random/boot_id", "b1\n")] {
            let full = root + path
            try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        let facts = HostFacts.read(root: root, dataDir: root)
        #expect(facts.memoryBytes == 2_048_000 * 1024)
        #expect(facts.osImage == "Debian GNU/Linux 12 (bookworm)")
        #expect(facts.kernelVersion == "6.1.0")
        #expect(facts.machineID == "m1")
        #expect(facts.bootID == "b1")
        #expect(facts.ephemeralStorageBytes > 0)
    }
}
