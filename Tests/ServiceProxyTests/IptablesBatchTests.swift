import Synchronization
import Testing
@testable import ServiceProxy

/// A large sync is applied as several `iptables-restore --noflush` batches (IptablesBatches):
/// each must leave a consistent rule set behind.
@Suite struct IptablesBatchTests {
    /// Records every restore input; every other command succeeds with nothing to say.
    final class Restores: Sendable {
        let texts = Mutex<[String]>([])
        let calls = Mutex<[[String]]>([])

        func run(_ args: [String], _ stdin: String?) -> (status: Int32, output: String) {
            calls.withLock { $0.append(args) }
            if args.first == "iptables-restore", let stdin { texts.withLock { $0.append(stdin) } }
            return (0, "")
        }

        /// The restores since the last call, without the first sync's creation of the empty
        /// top-level chains (which only declares).
        func take() -> [String] {
            texts.withLock { t in defer { t = [] }; return t }.filter { $0.contains("\n-A ") || $0.contains("\n-X ") }
        }
    }

    static let settings = ProxySettings(nodeName: "vm", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")

    static func ports(_ n: Int, endpoints: Int = 3, nodePortEvery: Int = 5) -> [ProxyServicePort] {
        (0..<n).map { i in
            ProxyServicePort(namespace: "ns", name: "svc-\(i)", portName: "http", clusterIP: "10.96.\(i / 250).\(i % 250 + 1)", port: 80,
                             nodePort: i % nodePortEvery == 0 ? 30000 + i : nil,
                             endpoints: (0..<endpoints).map { ProxyEndpoint(ip: "10.244.\(i / 250).\($0 * 80 + i % 80 + 1)", port: 8080) })
        }
    }

    /// A batch as the kernel sees it: per table, the chains it declares (flushes), the chains
    /// it appends to, what they jump to, and the chains it deletes, in line order.
    struct Batch {
        var declared: [String] = []
        var appended: [String] = []
        var deleted: [String] = []
        /// (line number, chain, target) for jumps to chains of ours.
        var jumps: [(line: Int, chain: String, target: String)] = []
        var declaredAt: [String: Int] = [:]

        init(_ text: String) {
            for (n, line) in text.split(separator: "\n").enumerated() {
                let words = line.split(separator: " ").map(String.init)
                if line.hasPrefix(":") {
                    let name = String(words[0].dropFirst())
                    declared.append(name)
                    declaredAt[name] = declaredAt[name] ?? n
                } else if line.hasPrefix("-A ") {
                    appended.append(words[1])
                    if let j = words.lastIndex(of: "-j"), words[j + 1].hasPrefix("KUBE-") {
                        jumps.append((n, words[1], words[j + 1]))
                    }
                } else if line.hasPrefix("-X ") {
                    deleted.append(words[1])
                }
            }
        }
    }

    @Test func aLargeSyncIsSplitAndEveryJumpTargetIsWrittenFirst() async throws {
        let r = Restores()
        let proxier = IptablesProxier(settings: Self.settings, run: { r.run($0, $1) }, logger: .init(label: "test"), rulesPerBatch: 300)
        try await proxier.sync(Self.ports(200))
        let texts = r.take()
        #expect(texts.count > 3, "200 services x 3 endpoints with 300 rules per batch")
        let batches = texts.map(Batch.init)
        var complete = Set<String>()
        for (i, batch) in batches.enumerated() {
            for jump in batch.jumps {
                // Jumped to: written in an earlier batch, or declared earlier in this one.
                let earlier = complete.contains(jump.target) || (batch.declaredAt[jump.target].map { $0 < jump.line } ?? false)
                #expect(earlier, "batch \(i): \(jump.chain) jumps to \(jump.target) before it is written")
            }
            complete.formUnion(batch.declared)
        }
        // Every chain written in the sync is flushed and filled in one batch, once.
        var declaredIn: [String: Int] = [:]
        for (i, batch) in batches.enumerated() {
            for name in batch.declared {
                #expect(declaredIn[name] == nil || name.hasPrefix("KUBE-SERVICES") || name.hasPrefix("KUBE-NODEPORTS"),
                        "\(name) declared in batches \(declaredIn[name] ?? -1) and \(i)")
                declaredIn[name] = declaredIn[name] ?? i
            }
            for name in batch.appended where !IptablesRules.filterChains.contains(name) {
                #expect(batch.declared.contains(name), "batch \(i) appends to \(name) without flushing it first")
            }
        }
        // The entries into our chains and the filter table come last, in one batch.
        let last = try #require(texts.last)
        #expect(last.hasPrefix("*filter\n") && last.contains(":KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES"))
        #expect(texts.dropLast().allSatisfy { $0.hasPrefix("*nat\n") && !$0.contains("*filter") })
        // Endpoint chains (and KUBE-MARK-MASQ, which they jump to) come before service chains.
        #expect(batches[0].declared.contains("KUBE-MARK-MASQ") && batches[0].declared.allSatisfy { !$0.hasPrefix("KUBE-SVC-") })
        // Service-chain batches stay near the limit: each chain whole, so one may run over a little.
        for batch in batches.dropFirst().dropLast() {
            #expect(batch.appended.count <= 300 + 8)
        }
    }

    @Test func theBatchesTogetherAreTheSameRulesAsOneRestore() {
        let rules = IptablesRules(settings: Self.settings)
        let ports = Self.ports(150)
        let groups = ports.filter(\.hasEndpoints).map(rules.chainGroup)
        let single = rules.renderBatches(ports, groups: groups, stale: [], rulesPerBatch: 1_000_000)
        let split = rules.renderBatches(ports, groups: groups, stale: [], rulesPerBatch: 200)
        #expect(single.count == 1 && split.count > 3)
        func lines(_ texts: [String]) -> [Substring] {
            texts.flatMap { $0.split(separator: "\n") }.filter { !$0.hasPrefix("*") && $0 != "COMMIT" }.sorted()
        }
        #expect(lines(single) == lines(split))
    }

    @Test func staleChainsAreDeletedOnlyInTheLastBatchAfterWhatJumpedToThem() async throws {
        let r = Restores()
        let proxier = IptablesProxier(settings: Self.settings, run: { r.run($0, $1) }, logger: .init(label: "test"), rulesPerBatch: 300)
        let before = Self.ports(200)
        try await proxier.sync(before)
        _ = r.take()
        // Half the services go, and most of the rest get new endpoints: still a large sync.
        var after = Array(before.prefix(100))
        for i in after.indices where i % 3 != 0 { after[i].endpoints[0].ip = "10.245.0.\(i + 1)" }
        try await proxier.sync(after)
        let texts = r.take()
        #expect(texts.count > 1)
        let batches = texts.map(Batch.init)
        #expect(batches.dropLast().allSatisfy { $0.deleted.isEmpty }, "only the last batch deletes")
        let last = try #require(batches.last)
        #expect(last.deleted.contains(before[150].serviceChain) && last.deleted.contains(before[150].endpointChain(before[150].endpoints[0])))
        #expect(last.deleted.contains(before[1].endpointChain(before[1].endpoints[0])), "the endpoint that moved")
        #expect(!last.deleted.contains(before[0].serviceChain))
        // Each stale chain is flushed right before it is deleted, and chains that jump (EXT,
        // SVC) go before the chains they jump to (SEP).
        let lines = try #require(texts.last).split(separator: "\n")
        for (n, line) in lines.enumerated() where line.hasPrefix("-X ") {
            #expect(lines[n - 1] == ":\(line.dropFirst(3)) - [0:0]")
        }
        let order = last.deleted.map { $0.hasPrefix("KUBE-EXT-") ? 0 : $0.hasPrefix("KUBE-SVC-") ? 1 : 2 }
        #expect(order == order.sorted())
    }

    @Test func oneEndpointChangeIsOneSmallRestore() async throws {
        let r = Restores()
        let proxier = IptablesProxier(settings: Self.settings, run: { r.run($0, $1) }, logger: .init(label: "test"), rulesPerBatch: 300)
        var ports = Self.ports(300)
        try await proxier.sync(ports)
        _ = r.take()
        let commands = r.calls.withLock { $0.count }
        let moved = ports[151].endpointChain(ports[151].endpoints[0])
        ports[151].endpoints[0].ip = "10.245.0.1"
        try await proxier.sync(ports)
        let texts = r.take()
        #expect(texts.count == 1)
        let text = try #require(texts.first)
        // The service chain, its three endpoint chains (one new), the old one flushed and
        // deleted; nothing top-level.
        let batch = Batch(text)
        #expect(batch.declared.count == 5 && batch.deleted == [moved], "\(text)")
        #expect(!text.contains("KUBE-SERVICES") && !text.contains("*filter"))
        #expect(r.calls.withLock { $0.count } == commands + 1, "no other command: TCP has no conntrack deletions")
        // Nothing changed: nothing to run.
        try await proxier.sync(ports)
        #expect(r.take().isEmpty)
    }

    @Test func aSmallSyncIsOneRestoreAsBefore() {
        let rules = IptablesRules(settings: Self.settings)
        let ports = Self.ports(20)
        let texts = rules.renderBatches(ports, groups: ports.map(rules.chainGroup), stale: ["KUBE-SVC-OLDOLDOLDOLDOLDO"])
        #expect(texts.count == 1)
        let text = texts[0]
        #expect(text.hasPrefix("*filter\n") && text.contains("COMMIT\n*nat\n") && text.hasSuffix("-X KUBE-SVC-OLDOLDOLDOLDOLDO\nCOMMIT\n"))
    }

    @Test func entryChainsListJumpsByTargetAndKeepTheNodePortJumpLast() {
        let chain = IptablesBatches.Chain(name: "KUBE-SERVICES", rules: [
            "-A KUBE-SERVICES -d 10.96.0.1 -j KUBE-SVC-AAAAAAAAAAAAAAAA",
            "-A KUBE-SERVICES -d 10.96.0.2 -j KUBE-SVC-ZZZZZZZZZZZZZZZZ",
            "-A KUBE-SERVICES -d 1.2.3.4 -j KUBE-EXT-ZZZZZZZZZZZZZZZZ",
            "-A KUBE-SERVICES -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS",
        ])
        #expect(IptablesBatches.sortedJumps(chain).rules.map { IptablesBatches.target(of: $0) } == [
            "KUBE-SVC-ZZZZZZZZZZZZZZZZ", "KUBE-SVC-AAAAAAAAAAAAAAAA", "KUBE-EXT-ZZZZZZZZZZZZZZZZ", "KUBE-NODEPORTS",
        ])
    }

    @Test(arguments: [
        ("-A X -m comment --comment \"a b\" -j KUBE-SEP-ABC", "KUBE-SEP-ABC"),
        ("-A X -m tcp -p tcp -j DNAT --to-destination 10.0.0.1:80", "DNAT"),
        ("-A X -g KUBE-SVC-Q", "KUBE-SVC-Q"),
        ("-A X -m mark --mark 0x4000/0x4000", nil),
    ])
    func jumpTargets(rule: String, target: String?) {
        #expect(IptablesBatches.target(of: rule) == target)
    }
}
