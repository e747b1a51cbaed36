import Foundation
import Logging
import Synchronization

public struct ServiceProxyError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Runs a command with optional stdin; returns its exit status and stderr. Tests substitute a
/// recorder, so rule rendering and ordering are checked without root.
public typealias CommandRunner = @Sendable (_ arguments: [String], _ stdin: String?) throws -> (status: Int32, output: String)

/// Applies the iptables rule set: `iptables-restore --noflush` per sync (one, or for a large
/// sync a few batches in dependency order: IptablesBatches), the jump rules from the built-in
/// chains on the first sync (and whenever the canary chain is gone, which means someone
/// flushed our rules), and a cleanup that removes exactly what it added.
public actor IptablesProxier {
    let rules: IptablesRules
    let run: CommandRunner
    let logger: Logger
    let rulesPerBatch: Int
    /// Per-service chains in the kernel after the last sync (stale ones are deleted next time).
    var written: Set<String> = []
    /// What each service port's chains, and each top-level chain, were last written as, for
    /// partial syncs: a chain already in the kernel as it would be written is left out.
    var groups: [String: IptablesRules.ChainGroup] = [:]
    var topLevel: [String: [String]] = [:]
    var lastPorts: [String: ProxyServicePort] = [:]
    var lastPieces: [String: IptablesRules.TopLevelPiece] = [:]
    var wired = false
    /// Partial syncs since the last full one; every so often everything is rewritten anyway.
    var partials = 0
    static let fullSyncEvery = 60
    var lastCanaryCheck = ContinuousClock.now
    var conntrackMissingSaid = false

    public init(settings: ProxySettings, run: @escaping CommandRunner = IptablesProxier.system, logger: Logger,
                rulesPerBatch: Int = IptablesBatches.defaultRulesPerBatch) {
        rules = IptablesRules(settings: settings)
        self.run = run
        self.logger = logger
        self.rulesPerBatch = rulesPerBatch
    }

    public static let canary = "KUBE-PROXY-CANARY"

    /// Programs `ports`; throws with iptables' own message when a step fails.
    public func sync(_ ports: [ProxyServicePort]) throws {
        // The canary is looked at every few seconds, not on every sync (it costs a process).
        let now = ContinuousClock.now
        let lookAtCanary = wired && now - lastCanaryCheck > .seconds(10)
        if lookAtCanary { lastCanaryCheck = now }
        if !wired || (lookAtCanary && !canaryPresent()) {
            // First sync, or our rules were flushed: find our leftovers and wire everything again,
            // before the rules are written: each later `iptables -I` would make the kernel check
            // every rule reachable from the table's base chains, 100 ms a time at 10,000
            // services, while the jumps into empty top-level chains cost nothing to check.
            let nat = try existingChains(table: "nat")
            written.formUnion(nat.filter { name in ProxyNames.ownedPrefixes.contains { name.hasPrefix($0) } })
            try ensureCanary()
            try ensureTopLevelChains(nat: nat)
            try ensureJumps()
            // Whatever was flushed is written again: a full sync.
            wired = false
        }
        let full = !wired || partials >= Self.fullSyncEvery
        var current: [String: IptablesRules.ChainGroup] = [:]
        var emitted: [IptablesRules.ChainGroup] = []
        var seen: [String: ProxyServicePort] = [:]
        var pieces: [String: IptablesRules.TopLevelPiece] = [:]
        // Service ports added, removed or changed since the last sync: only they can need
        // conntrack deletions, new top-level rules or stale chains.
        var changed: [String] = []
        var piecesChanged = full || ports.count != lastPorts.count
        current.reserveCapacity(ports.count)
        seen.reserveCapacity(ports.count)
        pieces.reserveCapacity(ports.count)
        // A full sync renders every port: on two cores, half a second less at 10,000 services.
        let rendered = full ? Self.render(ports, rules: rules) : nil
        for (index, sp) in ports.enumerated() {
            let id = sp.id
            seen[id] = sp
            // A service port exactly as last time has exactly the chains and top-level rules
            // written last time.
            if !full, let last = lastPorts[id], last == sp, let piece = lastPieces[id] {
                pieces[id] = piece
                if let group = groups[id] { current[id] = group }
                continue
            }
            changed.append(id)
            let piece = rendered?[index].piece ?? rules.topLevelPiece(sp)
            pieces[id] = piece
            if !piecesChanged && lastPieces[id] != piece { piecesChanged = true }
            guard sp.hasEndpoints else { continue }
            let group = rendered?[index].group ?? rules.chainGroup(sp)
            current[id] = group
            // Chains already in the kernel exactly as they would be written are left out.
            if full || groups[id] != group { emitted.append(group) }
        }
        for id in lastPorts.keys where seen[id] == nil { changed.append(id) }
        var added = Set<String>()
        var stale = Set<String>()
        if full {
            // The chains wanted are those the groups declare (hashing every name again is costly).
            for group in current.values { added.formUnion(Self.chainNames(group)) }
            stale = written.subtracting(added)
        } else {
            // A chain name belongs to one service port (its key is hashed into it), so only the
            // ports that changed or went away can leave chains behind.
            for id in changed {
                guard let old = groups[id], current[id] != old else { continue }
                stale.formUnion(Set(Self.chainNames(old)).subtracting(current[id].map(Self.chainNames) ?? []))
            }
            for group in emitted { added.formUnion(Self.chainNames(group)) }
        }
        // The top-level chains are rebuilt only when some port's share of them changed (or a
        // port came or went): at 10,000 services that is most of a one-change sync's time.
        let top = piecesChanged ? rules.topLevelChains(ports) { pieces[$0.id] ?? self.rules.topLevelPiece($0) } : topLevel
        let changedTop = full ? nil : Set(top.keys.filter { topLevel[$0] != top[$0] })
        if full || !emitted.isEmpty || !stale.isEmpty || !(changedTop?.isEmpty ?? true) {
            let batches = rules.renderBatches(ports, groups: emitted, stale: stale, topLevel: changedTop, precomputed: top,
                                              rulesPerBatch: rulesPerBatch)
            for text in batches {
                let (status, output) = try run(["iptables-restore", "-w", "5", "--noflush"], text)
                guard status == 0 else {
                    // The next sync finds what the batches before this one wrote, and rewrites everything.
                    wired = false
                    groups = [:]
                    topLevel = [:]
                    lastPorts = [:]
                    written.formUnion(added)
                    throw ServiceProxyError(message: "iptables-restore failed: \(output)")
                }
            }
        }
        if full {
            written = added
        } else {
            written.subtract(stale)
            written.formUnion(added)
        }
        groups = current
        var oldChanged: [String: ProxyServicePort] = [:]
        var newChanged: [String: ProxyServicePort] = [:]
        for id in changed {
            oldChanged[id] = lastPorts[id]
            newChanged[id] = seen[id]
        }
        flushConntrack(ConntrackCleanup.commands(old: full ? lastPorts : oldChanged, new: full ? seen : newChanged))
        lastPorts = seen
        lastPieces = pieces
        topLevel = top
        partials = full ? 0 : partials + 1
        wired = true
    }

    /// Creates the top-level chains that do not exist yet (empty: the sync fills them), so
    /// the jumps to them can be put in place first. Existing ones are not declared, which
    /// would flush them.
    func ensureTopLevelChains(nat: Set<String>) throws {
        let filter = try existingChains(table: "filter")
        var text: [String] = []
        for (table, chains, present) in [("filter", IptablesRules.filterChains, filter), ("nat", IptablesRules.natChains, nat)] {
            let missing = chains.filter { !present.contains($0) }
            if !missing.isEmpty { text += ["*\(table)"] + missing.map { ":\($0) - [0:0]" } + ["COMMIT"] }
        }
        guard !text.isEmpty else { return }
        let (status, output) = try run(["iptables-restore", "-w", "5", "--noflush"], text.joined(separator: "\n") + "\n")
        guard status == 0 else { throw ServiceProxyError(message: "iptables-restore (top-level chains) failed: \(output)") }
    }

    /// Each port's top-level piece and (with endpoints) chain group, computed on every core.
    static func render(_ ports: [ProxyServicePort], rules: IptablesRules) -> [(piece: IptablesRules.TopLevelPiece, group: IptablesRules.ChainGroup?)] {
        let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 8)
        guard ports.count >= 1_000, workers > 1 else {
            return ports.map { (rules.topLevelPiece($0), $0.hasEndpoints ? rules.chainGroup($0) : nil) }
        }
        let parts = Mutex<[Int: [(piece: IptablesRules.TopLevelPiece, group: IptablesRules.ChainGroup?)]]>([:])
        let size = (ports.count + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            let slice = ports[min(w * size, ports.count)..<min((w + 1) * size, ports.count)]
            let part = slice.map { (piece: rules.topLevelPiece($0), group: $0.hasEndpoints ? rules.chainGroup($0) : nil) }
            parts.withLock { $0[w] = part }
        }
        return parts.withLock { parts in (0..<workers).flatMap { parts[$0] ?? [] } }
    }

    static func chainNames(_ group: IptablesRules.ChainGroup) -> [String] {
        group.declarations.map { String($0.dropFirst().prefix { $0 != " " }) }
    }

    /// Runs the UDP conntrack deletions a sync calls for. A missing conntrack tool is said
    /// once; "0 flow entries" (exit 1) is the common, harmless answer.
    func flushConntrack(_ commands: [[String]]) {
        for command in commands {
            do {
                _ = try run(command, nil)
            } catch {
                if !conntrackMissingSaid {
                    conntrackMissingSaid = true
                    logger.warning("UDP conntrack entries cannot be flushed: \(error) (apt-get install conntrack); a client may stay pinned to a gone endpoint until its entry expires")
                }
                return
            }
        }
    }

    /// Removes every jump, chain and rule this proxy added; other rules stay.
    public func cleanup() throws {
        for jump in IptablesRules.jumps {
            while (try? run(["iptables", "-w", "5", "-t", jump.table, "-D", jump.chain] + jump.rule, nil))?.status == 0 {}
        }
        let perService = written.union((try? existingServiceChains()) ?? [])
        var text = ["*filter"]
        text += (IptablesRules.filterChains + [Self.canary]).map { ":\($0) - [0:0]" }
        text += (IptablesRules.filterChains + [Self.canary]).map { "-X \($0)" }
        text += ["COMMIT", "*nat"]
        let natChains = IptablesRules.natChains + [Self.canary]
        text += natChains.map { ":\($0) - [0:0]" }
        // Per-service chains one at a time, in the order that keeps iptables' name list short
        // (tens of seconds at 10,000 services otherwise: IptablesBatches).
        text += IptablesBatches.staleLines(perService)
        text += natChains.map { "-X \($0)" }
        text += ["COMMIT", "*mangle", ":\(Self.canary) - [0:0]", "-X \(Self.canary)", "COMMIT"]
        let (status, output) = try run(["iptables-restore", "-w", "5", "--noflush"], text.joined(separator: "\n") + "\n")
        written = []
        groups = [:]
        topLevel = [:]
        lastPorts = [:]
        wired = false
        guard status == 0 else { throw ServiceProxyError(message: "iptables-restore (cleanup) failed: \(output)") }
    }

    func ensureJumps() throws {
        // Inserted in reverse so that, each at position 1, they end in the listed order.
        for jump in IptablesRules.jumps.reversed() {
            let check = try run(["iptables", "-w", "5", "-t", jump.table, "-C", jump.chain] + jump.rule, nil)
            if check.status == 0 { continue }
            let insert = try run(["iptables", "-w", "5", "-t", jump.table, "-I", jump.chain, "1"] + jump.rule, nil)
            guard insert.status == 0 else {
                throw ServiceProxyError(message: "iptables -t \(jump.table) -I \(jump.chain) failed: \(insert.output)")
            }
        }
    }

    /// Empty chains whose disappearance tells that the tables were flushed under us.
    func ensureCanary() throws {
        for table in ["mangle", "nat", "filter"] {
            if (try run(["iptables", "-w", "5", "-t", table, "-S", Self.canary], nil)).status != 0 {
                _ = try run(["iptables", "-w", "5", "-t", table, "-N", Self.canary], nil)
            }
        }
    }

    func canaryPresent() -> Bool {
        (try? run(["iptables", "-w", "5", "-t", "nat", "-S", Self.canary], nil))?.status == 0
    }

    /// Our per-service chains present in the nat table (from an earlier run, say).
    func existingServiceChains() throws -> Set<String> {
        try existingChains(table: "nat").filter { name in ProxyNames.ownedPrefixes.contains { name.hasPrefix($0) } }
    }

    /// The chains of `table` in the kernel, built-in ones included.
    func existingChains(table: String) throws -> Set<String> {
        let (status, output) = try run(["iptables-save", "-t", table], nil)
        guard status == 0 else { return [] }
        var chains = Set<String>()
        for line in output.split(separator: "\n") where line.hasPrefix(":") {
            chains.insert(String(line.dropFirst().prefix { $0 != " " }))
        }
        return chains
    }

    static let searchPath = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    /// The real runner: the binary from the system path, started with posix_spawn, stdin and
    /// output through temporary files (no pipe can fill up and deadlock, whatever the sizes)
    /// and waited for with waitpid. Foundation's Process was not used: its child monitoring
    /// can fail (seen: "Could not create wakeup socket pair") and then never returns.
    /// Returns stdout for iptables-save, stderr otherwise.
    public static let system: CommandRunner = { arguments, stdin in
        guard let name = arguments.first,
              let path = searchPath.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServiceProxyError(message: "\(arguments.first ?? "") is not installed (apt-get install \(arguments.first == "conntrack" ? "conntrack" : arguments.first == "nft" ? "nftables" : "iptables"))")
        }
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-proxy-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        let inPath = base + ".in", outPath = base + ".out", errPath = base + ".err"
        defer { for p in [inPath, outPath, errPath] { unlink(p) } }
        if let stdin {
            guard FileManager.default.createFile(atPath: inPath, contents: Data(stdin.utf8)) else {
                throw ServiceProxyError(message: "writing \(inPath) for \(name) failed")
            }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin == nil ? "/dev/null" : inPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        guard spawned == 0 else { throw ServiceProxyError(message: "posix_spawn \(path): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exitCode: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let text = (try? String(contentsOfFile: name == "iptables-save" ? outPath : errPath, encoding: .utf8)) ?? ""
        return (exitCode, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
