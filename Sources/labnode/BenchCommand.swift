import ArgumentParser
import Foundation
import Logging
import ServiceProxy
import Synchronization

/// `labnode bench`: labnode beside its peers in one run (`BenchRun`), and the measurements
/// that need labnode's own code paths, which the scripts in Benchmarks/ call.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks against peers in the same run (see Benchmarks/).",
        subcommands: [BenchRun.self, ProxySyncBench.self],
        defaultSubcommand: BenchRun.self
    )
}

/// The iptables proxy at scale: a full sync of N services x M endpoints, then one endpoint
/// change (a partial sync, the median of five). Programs the netfilter tables of the current
/// network namespace, so it refuses to run in the machine's own.
struct ProxySyncBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy-sync",
        abstract: "Time full and partial iptables syncs (run inside a network namespace: Benchmarks/proxy.sh)."
    )

    @Option(help: "Services to program.") var services = 10_000
    @Option(help: "Endpoints per service.") var endpoints = 3
    @Option(help: "iptables, or nftables (then the files get `nft -f` input: the full table, and the first change as a delta).") var mode = "iptables"
    @Option(help: "Where to write the full sync's rules as one iptables-restore input (the proxier may apply them in batches), for timing the peer on the same rules.") var rulesFile: String?
    @Option(help: "Where to write the last one-change sync's iptables-restore input.") var changeFile: String?
    @Option(help: "Rules per iptables-restore batch of a large sync.") var rulesPerBatch = IptablesBatches.defaultRulesPerBatch

    func run() async throws {
        try await Labnode.guarded {
            guard Self.inNamedNetworkNamespace() else {
                throw ValidationError("labnode bench proxy-sync programs netfilter: run it in a network namespace made with `ip netns add` (Benchmarks/proxy.sh makes one)")
            }
            let settings = ProxySettings(nodeName: "bench", clusterCIDR: "10.244.0.0/16", serviceCIDR: "10.96.0.0/12")
            var ports = (0..<services).map { i in
                ProxyServicePort(namespace: "bench", name: "svc-\(i)", portName: "http", clusterIP: "10.96.\(i / 250).\(i % 250 + 1)", port: 80,
                                 endpoints: (0..<endpoints).map { e in
                                     let n = i * endpoints + e
                                     return ProxyEndpoint(ip: "10.244.\(n / 250 % 250).\(n % 250 + 1)", port: 8080)
                                 })
            }
            if mode == "nftables" { return try await nftables(settings: settings, ports: ports) }
            // The texts the proxier hands to iptables-restore, so the peer loads exactly them.
            let restored = RestoreInputs()
            let proxier = IptablesProxier(settings: settings, run: { arguments, stdin in
                if arguments.first == "iptables-restore", let stdin { restored.texts.withLock { $0.append(stdin) } }
                return try IptablesProxier.system(arguments, stdin)
            }, logger: Logger(label: "bench"), rulesPerBatch: rulesPerBatch)
            let clock = ContinuousClock()
            let full = try await clock.measure { try await proxier.sync(ports) }
            let fullTexts = restored.texts.withLock { texts in defer { texts = [] }; return texts }
            // One endpoint of one service moves, five times (different services).
            var changes: [Duration] = []
            var changeText: String?
            for k in 0..<5 {
                ports[(services / 2 + k * 7) % services].endpoints[0].ip = "10.245.0.\(k + 1)"
                changes.append(try await clock.measure { try await proxier.sync(ports) })
                changeText = restored.texts.withLock { texts in defer { texts = [] }; return texts.joined() }
            }
            try await proxier.cleanup()
            for (path, text) in [(rulesFile, fullTexts.isEmpty ? nil : Self.merged(fullTexts)), (changeFile, changeText)] {
                guard let path else { continue }
                guard let text else { throw ValidationError("the proxier ran no iptables-restore, so there is nothing to write to \(path)") }
                try text.write(toFile: path, atomically: true, encoding: .utf8)
            }
            func ms(_ d: Duration) -> String { String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
            let median = changes.sorted()[changes.count / 2]
            print("{\"services\": \(services), \"endpoints\": \(endpoints), \"full_sync_ms\": \(ms(full)), \"full_sync_batches\": \(fullTexts.count), \"one_change_ms\": \(ms(median)), \"one_change_samples_ms\": [\(changes.map(ms).joined(separator: ", "))]}")
        }
    }

    /// The batches as one input: each table's lines in the batches' order (a chain is always
    /// declared before anything jumps to it), under one header and one COMMIT per table.
    static func merged(_ texts: [String]) -> String {
        var tables: [(name: String, lines: [Substring])] = []
        var index: [Substring: Int] = [:]
        for text in texts {
            var table: Int?
            for line in text.split(separator: "\n") {
                if line.hasPrefix("*") {
                    if index[line] == nil {
                        index[line] = tables.count
                        tables.append((String(line), []))
                    }
                    table = index[line]
                } else if line == "COMMIT" {
                    table = nil
                } else if let table {
                    tables[table].lines.append(line)
                }
            }
        }
        return tables.map { ([$0.name] + $0.lines.map(String.init) + ["COMMIT"]).joined(separator: "\n") + "\n" }.joined()
    }

    final class RestoreInputs: Sendable {
        let texts = Mutex<[String]>([])
    }

    /// Whether this process's network namespace is one of /run/netns (same nsfs inode).
    static func inNamedNetworkNamespace() -> Bool {
        var mine = stat()
        guard stat("/proc/self/ns/net", &mine) == 0,
              let names = try? FileManager.default.contentsOfDirectory(atPath: "/run/netns") else { return false }
        return names.contains { name in
            var other = stat()
            return stat("/run/netns/" + name, &other) == 0 && other.st_ino == mine.st_ino && other.st_dev == mine.st_dev
        }
    }
}

extension ProxySyncBench {
    /// `--mode nftables`: the full sync (one `nft -f` of the whole table), then one endpoint
    /// change five times (different services) through the proxier's delta path.
    func nftables(settings: ProxySettings, ports initial: [ProxyServicePort]) async throws {
        var ports = initial
        let proxier = NftablesProxier(settings: settings, logger: Logger(label: "bench"))
        let rules = NftablesRules(settings: settings)
        let clock = ContinuousClock()
        let full = try await clock.measure { try await proxier.sync(ports) }
        let deltas = await proxier.appliesDeltas
        var changes: [Duration] = []
        var changeText = ""
        for k in 0..<5 {
            let before = Dictionary(ports.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            ports[(services / 2 + k * 7) % services].endpoints[0].ip = "10.245.0.\(k + 1)"
            changes.append(try await clock.measure { try await proxier.sync(ports) })
            // The first change applies to the full text: the peer replays exactly that.
            if k == 0 { changeText = rules.delta(old: before, new: ports).text }
        }
        try await proxier.cleanup()
        if let rulesFile { try rules.render(initial).write(toFile: rulesFile, atomically: true, encoding: .utf8) }
        if let changeFile { try changeText.write(toFile: changeFile, atomically: true, encoding: .utf8) }
        func ms(_ d: Duration) -> String { String(format: "%.1f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15) }
        let median = changes.sorted()[changes.count / 2]
        print("{\"services\": \(services), \"endpoints\": \(endpoints), \"mode\": \"nftables\", \"deltas\": \(deltas), \"full_sync_ms\": \(ms(full)), \"one_change_ms\": \(ms(median)), \"one_change_samples_ms\": [\(changes.map(ms).joined(separator: ", "))]}")
    }
}
