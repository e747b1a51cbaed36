import Logging

/// What the runner needs from a proxy mode: program the node for these service ports, and
/// take everything back out.
public protocol ProxyBackend: Sendable {
    func sync(_ ports: [ProxyServicePort]) async throws
    func cleanup() async throws
}

extension IptablesProxier: ProxyBackend {}

/// Applies the nftables rule set. The first sync, a sync after an error and a sync that finds
/// the table replaced or gone swap in the whole `ip kube-proxy` table in one `nft -f`
/// transaction (atomic: a packet sees the old table or the new one). Later syncs send only
/// the delta (`NftablesDelta`) through the in-process writer, as upstream's proxier does.
/// Nothing outside that table is touched, so cleanup is deleting it.
public actor NftablesProxier: ProxyBackend {
    let rules: NftablesRules
    let run: CommandRunner
    let logger: Logger
    var lastPorts: [String: ProxyServicePort] = [:]
    /// What the kernel holds, as far as this proxier knows.
    enum TableState {
        case unknown
        /// Replaced by our last full sync; `handle` is the kernel's handle of that table, nil
        /// when the writer cannot see it (then every change is a full sync).
        case synced(handle: UInt64?)
    }
    var state = TableState.unknown
    var writer: (any NftablesDeltaWriter)?
    var writerUnavailableSaid = false
    var conntrackMissingSaid = false

    /// - Parameter writer: the fast path for later syncs; by default a libnftables context
    ///   and a netlink socket in this process's network namespace, opened on first use.
    public init(settings: ProxySettings, run: @escaping CommandRunner = IptablesProxier.system,
                writer: (any NftablesDeltaWriter)? = nil, logger: Logger) {
        rules = NftablesRules(settings: settings)
        self.run = run
        self.writer = writer
        self.logger = logger
    }

    /// Whether later syncs go through the delta path (the kernel's table is the one we wrote).
    public var appliesDeltas: Bool {
        if case .synced(let handle) = state { return handle != nil }
        return false
    }

    func deltaWriter() -> (any NftablesDeltaWriter)? {
        if let writer { return writer }
        do {
            writer = try InProcessNftablesWriter()
        } catch {
            if !writerUnavailableSaid {
                writerUnavailableSaid = true
                logger.warning("nftables changes go through full syncs: \(error)")
            }
        }
        return writer
    }

    public func sync(_ ports: [ProxyServicePort]) throws {
        var seen: [String: ProxyServicePort] = [:]
        for sp in ports { seen[sp.id] = sp }
        if case .synced(let handle) = state {
            if let handle, let writer = deltaWriter() {
                if try incremental(ports, writer: writer, handle: handle) {
                    finish(seen)
                    return
                }
            } else if seen == lastPorts, tablePresent() {
                // The periodic resync re-applies only when something changed or the table is gone.
                return
            }
        }
        try full(ports)
        finish(seen)
    }

    /// Sends the delta; false when only a full sync will do (the table is not the one we
    /// wrote, or the delta failed: the kernel applied none of a failed transaction).
    func incremental(_ ports: [ProxyServicePort], writer: any NftablesDeltaWriter, handle: UInt64) throws -> Bool {
        guard (try? writer.tableHandle()) == handle else {
            logger.info("the ip \(NftablesRules.table) table was replaced or removed by someone else; rewriting it whole")
            return false
        }
        let delta = rules.delta(old: lastPorts, new: ports)
        if delta.isEmpty { return true }
        do {
            try writer.apply(delta)
            return true
        } catch {
            logger.warning("nftables delta failed, rewriting the whole table: \(error)")
            return false
        }
    }

    func full(_ ports: [ProxyServicePort]) throws {
        state = .unknown
        let writer = deltaWriter()
        let before = try? writer?.tableHandle()
        let (status, output) = try run(["nft", "-f", "-"], rules.render(ports))
        guard status == 0 else { throw ServiceProxyError(message: "nft -f failed: \(output)") }
        // Our text deletes and recreates the table, so a table with the same handle as before
        // is not ours (an nft that is not the kernel's, as in tests): no fast path then.
        let after = try? writer?.tableHandle()
        state = .synced(handle: after != nil && after != before ? after : nil)
    }

    func finish(_ seen: [String: ProxyServicePort]) {
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
        state = .unknown
        lastPorts = [:]
        guard tablePresent() else { return }
        let (status, output) = try run(["nft", "delete", "table", "ip", NftablesRules.table], nil)
        guard status == 0 else { throw ServiceProxyError(message: "nft delete table ip \(NftablesRules.table) failed: \(output)") }
    }
}
