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
    var wired = false

    public init(settings: ProxySettings, run: @escaping CommandRunner = IptablesProxier.system, logger: Logger) {
        rules = IptablesRules(settings: settings)
        self.run = run
        self.logger = logger
    }

    public static let canary = "KUBE-PROXY-CANARY"

    /// Programs `ports`; throws with iptables' own message when a step fails.
    public func sync(_ ports: [ProxyServicePort]) throws {
        if !wired || !canaryPresent() {
            // First sync, or our rules were flushed: find our leftovers and wire everything again.
            written.formUnion(try existingServiceChains())
            try ensureCanary()
        }
        let wanted = rules.serviceChains(ports)
        let text = rules.render(ports, stale: written.subtracting(wanted))
        let (status, output) = try run(["iptables-restore", "-w", "5", "--noflush"], text)
        guard status == 0 else {
            wired = false
            throw ServiceProxyError(message: "iptables-restore failed: \(output)")
        }
        written = wanted
        if !wired {
            try ensureJumps()
            wired = true
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

    /// The real runner: the binary from the system path; stdout is returned for iptables-save,
    /// stderr otherwise.
    public static let system: CommandRunner = { arguments, stdin in
        guard let name = arguments.first,
              let path = searchPath.map({ "\($0)/\(name)" }).first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw ServiceProxyError(message: "\(arguments.first ?? "") is not installed (apt-get install iptables)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = Array(arguments.dropFirst())
        let output = Pipe(), errors = Pipe(), input = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = name == "iptables-save" ? out : err
        return (process.terminationStatus, String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
