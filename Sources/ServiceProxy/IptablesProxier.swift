import Foundation
import Logging

public struct ServiceProxyError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Runs a command with optional stdin; returns its exit status and stderr. Tests substitute a
/// recorder, so rule rendering and ordering are checked without root.
public typealias CommandRunner = @Sendable (_ arguments: [String], _ stdin: String?) throws -> (status: Int32, output: String)

/// Applies the iptables rule set: one `iptables-restore --noflush` per sync, the jump rules
/// from the built-in chains on the first sync (and whenever the canary chain is gone, which
/// means someone flushed our rules), and a cleanup that removes exactly what it added.
public actor IptablesProxier {
    let rules: IptablesRules
    let run: CommandRunner
    let logger: Logger
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

    public init(settings: ProxySettings, run: @escaping CommandRunner = IptablesProxier.system, logger: Logger) {
        rules = IptablesRules(settings: settings)
        self.run = run
        self.logger = logger
    }

    public static let canary = "KUBE-PROXY-CANARY"

    /// Programs `ports`; throws with iptables' own message when a step fails.
    public func sync(_ ports: [ProxyServicePort]) throws {
        // The canary is looked at every few seconds, not on every sync (it costs a process).
        let now = ContinuousClock.now
        let lookAtCanary = wired && now - lastCanaryCheck > .seconds(10)
        if lookAtCanary { lastCanaryCheck = now }
        if !wired || (lookAtCanary && !canaryPresent()) {
            // First sync, or our rules were flushed: find our leftovers and wire everything again.
            written.formUnion(try existingServiceChains())
            try ensureCanary()
        }
        let full = !wired || partials >= Self.fullSyncEvery
        var current: [String: IptablesRules.ChainGroup] = [:]
        var emitted: [IptablesRules.ChainGroup] = []
        var seen: [String: ProxyServicePort] = [:]
        var pieces: [String: IptablesRules.TopLevelPiece] = [:]
        for sp in ports {
            seen[sp.id] = sp
            pieces[sp.id] = !full && lastPorts[sp.id] == sp ? lastPieces[sp.id] ?? rules.topLevelPiece(sp) : rules.topLevelPiece(sp)
        }
        for sp in ports where sp.hasEndpoints {
            // A service port exactly as last time has exactly the chains written last time.
            if !full, lastPorts[sp.id] == sp, let group = groups[sp.id] {
                current[sp.id] = group
                continue
            }
            let group = rules.chainGroup(sp)
            current[sp.id] = group
            // Chains already in the kernel exactly as they would be written are left out.
            if full || groups[sp.id] != group { emitted.append(group) }
        }
        // The chains wanted are those the groups declare (hashing every name again is costly).
        var wanted = Set<String>()
        for group in current.values {
            for line in group.declarations { wanted.insert(String(line.dropFirst().prefix { $0 != " " })) }
        }
        let top = rules.topLevelChains(ports) { pieces[$0.id] ?? self.rules.topLevelPiece($0) }
        let changedTop = full ? nil : Set(top.keys.filter { topLevel[$0] != top[$0] })
        let text = rules.render(ports, groups: emitted, stale: written.subtracting(wanted), topLevel: changedTop, precomputed: top)
        let (status, output) = try run(["iptables-restore", "-w", "5", "--noflush"], text)
        guard status == 0 else {
            // The next sync rewrites everything.
            wired = false
            groups = [:]
            topLevel = [:]
            lastPorts = [:]
            throw ServiceProxyError(message: "iptables-restore failed: \(output)")
        }
        written = wanted
        groups = current
        flushConntrack(ConntrackCleanup.commands(old: lastPorts, new: seen))
        lastPorts = seen
        lastPieces = pieces
        topLevel = top
        partials = full ? 0 : partials + 1
        if !wired {
            try ensureJumps()
            wired = true
        }
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
        let natChains = IptablesRules.natChains + [Self.canary] + perService.sorted()
        text += natChains.map { ":\($0) - [0:0]" }
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
        let (status, output) = try run(["iptables-save", "-t", "nat"], nil)
        guard status == 0 else { return [] }
        var chains = Set<String>()
        for line in output.split(separator: "\n") where line.hasPrefix(":") {
            let name = String(line.dropFirst().prefix { $0 != " " })
            if ProxyNames.ownedPrefixes.contains(where: { name.hasPrefix($0) }) { chains.insert(name) }
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
