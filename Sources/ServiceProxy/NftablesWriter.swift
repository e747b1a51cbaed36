import CNftables
import Glibc
import Networking

/// Applies a delta to the live `ip kube-proxy` table without starting `nft`, and tells
/// whether that table is still the one the proxier last replaced.
public protocol NftablesDeltaWriter: AnyObject, Sendable {
    /// The kernel's handle of the `ip kube-proxy` table, nil when there is none. A new
    /// table (someone deleted and recreated it, or our own full sync) has a new handle.
    func tableHandle() throws -> UInt64?
    func apply(_ delta: NftablesDelta) throws
}

/// One long-lived libnftables context for the chains and one NETLINK_NETFILTER socket for
/// the rest, both in the network namespace of the thread that creates it.
///
/// Why two paths: nft 1.0.6 reads every chain and set of the ruleset back before any
/// `add rule`, `add element` or `delete` (about 200 ms at 10,000 services, again after each
/// commit since the generation changed), but `add chain NAME { rules }` needs only the table
/// list. Elements and deletions are plain messages, so they go to the kernel directly.
/// What remains is the kernel's own cost: a commit that adds a jump, goto or dnat makes
/// nf_tables re-validate every chain reachable from the base chains.
public final class InProcessNftablesWriter: NftablesDeltaWriter, @unchecked Sendable {
    // @unchecked: nft_ctx and the sequence counter are not thread-safe; the one owner (the
    // proxier actor) never calls in concurrently.
    private let context: OpaquePointer
    private let socket: any NetlinkSocket
    private var sequence: UInt32 = 1

    public init() throws {
        guard let context = nft_ctx_new(0) else {
            throw ServiceProxyError(message: "libnftables: nft_ctx_new failed (out of memory?)")
        }
        // Buffered, so nothing is printed and an error's text can go into our error.
        nft_ctx_buffer_output(context)
        nft_ctx_buffer_error(context)
        do { socket = try NetfilterNetlinkSocket() } catch {
            nft_ctx_free(context)
            throw error
        }
        self.context = context
    }

    /// For tests: a socket that records what would be sent.
    init(socket: any NetlinkSocket) throws {
        guard let context = nft_ctx_new(0) else { throw ServiceProxyError(message: "libnftables: nft_ctx_new failed") }
        nft_ctx_buffer_output(context)
        nft_ctx_buffer_error(context)
        self.context = context
        self.socket = socket
    }

    deinit { nft_ctx_free(context) }

    public func tableHandle() throws -> UInt64? {
        let request = sequence
        sequence &+= 1
        try socket.send(NftablesNetlink.getTableRequest(sequence: request))
        var handle: UInt64?
        while true {
            for m in NftablesNetlink.messages(in: try socket.receive()) where m.sequence == request {
                if m.type == NftablesNetlink.errorType {
                    let code = NftablesNetlink.errorCode(m.payload)
                    if code == ENOENT { return nil }
                    guard code == 0 else { throw NetlinkError(operation: "get nf_tables table ip \(NftablesRules.table)", errno: code) }
                    return handle
                }
                if m.type == NftablesNetlink.subsystem << 8 | 0 {  // NFT_MSG_NEWTABLE
                    handle = NftablesNetlink.tableHandle(inReplyPayload: m.payload)
                }
            }
        }
    }

    public func apply(_ delta: NftablesDelta) throws {
        let script = delta.chainScript
        if !script.isEmpty, nft_run_cmd_from_buffer(context, script) != 0 {
            let message = nft_ctx_get_error_buffer(context).map { String(cString: $0) } ?? "no error text"
            throw ServiceProxyError(message: "libnftables refused the delta's chains: \(message)")
        }
        let ops = NftablesNetlink.operations(delta)
        if !ops.isEmpty { try send(ops) }
    }

    func send(_ ops: [NftablesNetlink.Operation]) throws {
        let first = sequence
        let (bytes, last) = try NftablesNetlink.batch(ops, firstSequence: first)
        sequence = last &+ 2
        try socket.send(bytes)
        var failures: [(Int32, String)] = []
        while true {
            for m in NftablesNetlink.messages(in: try socket.receive()) where m.type == NftablesNetlink.errorType {
                // Replies to earlier requests that were abandoned after an error are skipped.
                guard m.sequence > first, m.sequence <= last else { continue }
                let code = NftablesNetlink.errorCode(m.payload)
                if code != 0 { failures.append((code, "\(ops[Int(m.sequence - first - 1)])")) }
                if m.sequence == last {
                    guard let firstFailure = failures.first else { return }
                    throw NetlinkError(operation: "apply nf_tables delta to table ip \(NftablesRules.table) (\(ops.count) operations)",
                                       errno: firstFailure.0,
                                       detail: failures.map { "\($0.1): \(NetlinkError(operation: "", errno: $0.0).errnoName)" }.joined(separator: "; "))
                }
            }
        }
    }
}
