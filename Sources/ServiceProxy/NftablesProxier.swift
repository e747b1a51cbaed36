import Logging

/// What the runner needs from a proxy mode: program the node for these service ports, and
/// take everything back out.
public protocol ProxyBackend: Sendable {
    func sync(_ ports: [ProxyServicePort]) async throws
    func cleanup() async throws
}

extension IptablesProxier: ProxyBackend {}

/// Applies the nftables rule set: the whole `ip kube-proxy` table replaced in one `nft -f`
/// transaction per sync (atomic: a packet sees the old table or the new one). Nothing
/// outside that table is touched, so cleanup is deleting it.
public actor NftablesProxier: ProxyBackend {
    let rules: NftablesRules
    let run: CommandRunner
    let logger: Logger
    var lastPorts: [String: ProxyServicePort] = [:]
    var lastText = ""
    var conntrackMissingSaid = false

    public init(settings: ProxySettings, run: @escaping CommandRunner = IptablesProxier.system, logger: Logger) {
        rules = NftablesRules(settings: settings)
        self.run = run
        self.logger = logger
    }

    public func sync(_ ports: [ProxyServicePort]) throws {
        let text = rules.render(ports)
        // The periodic resync re-applies only when something changed or the table is gone.
        if text == lastText, tablePresent() { return }
        let (status, output) = try run(["nft", "-f", "-"], text)
        guard status == 0 else {
            lastText = ""
            throw ServiceProxyError(message: "nft -f failed: \(output)")
        }
        lastText = text
        var seen: [String: ProxyServicePort] = [:]
        for sp in ports { seen[sp.id] = sp }
        for command in ConntrackCleanup.commands(old: lastPorts, new: seen) {
            do { _ = try run(command, nil) } catch {
                if !conntrackMissingSaid {
                    conntrackMissingSaid = true
                    logger.warning("UDP conntrack entries cannot be flushed: \(error) (apt-get install conntrack)")
                }
                break
            }
        }
        lastPorts = seen
    }

    /// Asks for one small chain, not the table: listing a 10,000-service table on every idle
    /// resync would print all of it.
    func tablePresent() -> Bool {
        (try? run(["nft", "list", "chain", "ip", NftablesRules.table, "mark-for-masquerade"], nil))?.status == 0
    }

    public func cleanup() throws {
        lastText = ""
        lastPorts = [:]
        guard tablePresent() else { return }
        let (status, output) = try run(["nft", "delete", "table", "ip", NftablesRules.table], nil)
        guard status == 0 else { throw ServiceProxyError(message: "nft delete table ip \(NftablesRules.table) failed: \(output)") }
    }
}
