import Glibc
import Foundation
import Synchronization

/// One pod's address.
public struct IPAMAllocation: Hashable, Sendable, CustomStringConvertible {
    public var podUID: String
    public var address: IPv4.Address

    public init(podUID: String, address: IPv4.Address) {
        self.podUID = podUID
        self.address = address
    }

    public var description: String { "\(address) -> \(podUID)" }
}

public enum IPAMError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Every usable address of the subnet is taken.
    case exhausted(subnet: IPv4.CIDR, capacity: Int)
    case invalidPodUID(String)
    /// The subnet has no room for a gateway and a pod (smaller than a /30).
    case subnetTooSmall(IPv4.CIDR)
    case storage(path: String, reason: String)

    public var description: String {
        switch self {
        case let .exhausted(subnet, capacity):
            return "no free pod address in \(subnet): all \(capacity) are allocated; delete pods or widen --cluster-cidr"
        case let .invalidPodUID(uid):
            return "invalid pod UID \"\(uid)\": it must be 1-253 visible characters without '/'"
        case let .subnetTooSmall(subnet):
            return "pod subnet \(subnet) is too small: it needs room for a gateway and at least one pod (a /30 or larger)"
        case let .storage(path, reason):
            return "pod address store \(path): \(reason)"
        }
    }
}

/// Hands out pod addresses from the node's pod subnet and remembers them on disk.
///
/// The layout follows the CNI host-local plugin: one file per allocated address, named by the
/// address and holding the pod UID, plus `last_reserved_ip` so allocation continues round-robin
/// after a restart instead of reusing a just-freed address (connections and ARP caches still
/// pointing at the old pod would then reach the new one). Naming the file by the *address* is
/// what makes a reservation atomic: creating it with O_EXCL fails if anyone already holds it.
/// Lookups by pod UID use an index rebuilt from the files at start.
///
/// The network address, the gateway (the first host address, on the bridge) and the broadcast
/// address are never handed out. All methods are safe to call concurrently.
public final class IPAM: Sendable {
    /// The pod subnet, host bits cleared (e.g. 10.244.0.0/24).
    public let subnet: IPv4.CIDR
    /// The bridge's address: the first host address of the subnet.
    public let gateway: IPv4.Address
    /// Where allocations are kept.
    public let directory: String

    private struct State {
        var byPod: [String: IPv4.Address] = [:]
        var byAddress: [IPv4.Address: String] = [:]
        var lastReserved: IPv4.Address?
    }

    private let state: Mutex<State>
    private static let lastReservedFile = "last_reserved_ip"

    /// Opens (creating if needed) the store in `directory` and loads the allocations found there.
    public init(subnet: IPv4.CIDR, directory: String) throws {
        let network = subnet.networkCIDR
        guard network.prefixLength <= 30 else { throw IPAMError.subnetTooSmall(network) }
        self.subnet = network
        self.gateway = IPv4.Address(network.network.value + 1)
        self.directory = directory
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw IPAMError.storage(path: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        state = Mutex(try Self.load(directory: directory, subnet: network))
    }

    /// How many pod addresses the subnet holds.
    public var capacity: Int { Int(subnet.broadcast.value - subnet.network.value) - 2 }

    /// Returns the pod's address, allocating one if it has none. Calling it again for the same
    /// pod returns the same address, so a retried attach does not leak.
    public func allocate(podUID: String) throws -> IPv4.Address {
        try Self.checkUID(podUID)
        return try state.withLock { state in
            if let existing = state.byPod[podUID] { return existing }
            let first = gateway.value + 1
            let last = subnet.broadcast.value - 1
            let count = last - first + 1
            // Start after the last address handed out, wrapping around.
            var start = first
            if let previous = state.lastReserved, previous.value >= first, previous.value < last {
                start = previous.value + 1
            }
            for step in 0..<count {
                let candidate = IPv4.Address(first + (start - first + step) % count)
                if state.byAddress[candidate] != nil { continue }
                switch try reserveFile(candidate, podUID: podUID) {
                case .reserved:
                    state.byPod[podUID] = candidate
                    state.byAddress[candidate] = podUID
                    state.lastReserved = candidate
                    writeLastReserved(candidate)
                    return candidate
                case .takenOnDisk(let owner):
                    // Another process wrote it since we loaded; adopt its view.
                    state.byAddress[candidate] = owner
                    if !owner.isEmpty { state.byPod[owner] = candidate }
                }
            }
            throw IPAMError.exhausted(subnet: subnet, capacity: capacity)
        }
    }

    /// Frees the pod's address. Returns it, or nil when the pod had none (releasing twice is
    /// not an error: the node agent retries teardown freely).
    @discardableResult
    public func release(podUID: String) throws -> IPv4.Address? {
        try state.withLock { state in
            guard let address = state.byPod[podUID] else { return nil }
            try removeFile(address)
            state.byPod[podUID] = nil
            state.byAddress[address] = nil
            return address
        }
    }

    /// The pod's address, if it has one.
    public func address(podUID: String) -> IPv4.Address? {
        state.withLock { $0.byPod[podUID] }
    }

    /// Every allocation, by address.
    public func list() -> [IPAMAllocation] {
        state.withLock { state in
            state.byPod.map { IPAMAllocation(podUID: $0.key, address: $0.value) }
                .sorted { $0.address < $1.address }
        }
    }

    /// Frees every allocation whose pod is not in `keep` (pods that vanished while labnode was
    /// down, or whose teardown failed half-way). Returns what was freed.
    @discardableResult
    public func reconcile(keep: Set<String>) throws -> [IPAMAllocation] {
        try state.withLock { state in
            var freed: [IPAMAllocation] = []
            for (pod, address) in state.byPod where !keep.contains(pod) {
                try removeFile(address)
                state.byPod[pod] = nil
                state.byAddress[address] = nil
                freed.append(IPAMAllocation(podUID: pod, address: address))
            }
            return freed.sorted { $0.address < $1.address }
        }
    }

    // MARK: Files

    private enum Reservation {
        case reserved
        case takenOnDisk(owner: String)
    }

    private func path(_ address: IPv4.Address) -> String { directory + "/" + address.description }

    private func reserveFile(_ address: IPv4.Address, podUID: String) throws -> Reservation {
        let file = path(address)
        let fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let code = errno
            if code == EEXIST {
                let owner = (try? String(contentsOfFile: file, encoding: .utf8))?
                    .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
                return .takenOnDisk(owner: owner)
            }
            throw IPAMError.storage(path: file, reason: "cannot create: \(ErrnoName.name(code)) (\(ErrnoName.text(code)))")
        }
        let content = Array((podUID + "\n").utf8)
        let written = content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let writeError = errno
        close(fd)
        guard written == content.count else {
            unlink(file)
            throw IPAMError.storage(path: file, reason: "cannot write the pod UID: \(ErrnoName.name(writeError))")
        }
        return .reserved
    }

    private func removeFile(_ address: IPv4.Address) throws {
        let file = path(address)
        if unlink(file) != 0 && errno != ENOENT {
            let code = errno
            throw IPAMError.storage(path: file, reason: "cannot remove: \(ErrnoName.name(code)) (\(ErrnoName.text(code)))")
        }
    }

    /// Only a hint for where to continue; losing it just restarts the scan at the bottom.
    private func writeLastReserved(_ address: IPv4.Address) {
        try? address.description.write(toFile: directory + "/" + Self.lastReservedFile, atomically: true, encoding: .utf8)
    }

    private static func load(directory: String, subnet: IPv4.CIDR) throws -> State {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw IPAMError.storage(path: directory, reason: "cannot list: \(error.localizedDescription)")
        }
        var state = State()
        let gateway = IPv4.Address(subnet.network.value + 1)
        for name in names {
            let file = directory + "/" + name
            if name == lastReservedFile {
                let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
                state.lastReserved = IPv4.Address(text.trimmingCharacters(in: .whitespacesAndNewlines))
                continue
            }
            // Files that are not addresses of this subnet (a temp file, a store from an older
            // --cluster-cidr) are not ours to judge; leave them alone.
            guard let address = IPv4.Address(name), subnet.contains(address),
                  address != subnet.network, address != subnet.broadcast, address != gateway
            else { continue }
            let owner = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard !owner.isEmpty else {
                // The process died between creating the file and writing the UID: the pod
                // never got this address.
                unlink(file)
                continue
            }
            if state.byPod[owner] != nil {
                // A pod holds one address; a second file for it cannot be in use.
                unlink(file)
                continue
            }
            state.byPod[owner] = address
            state.byAddress[address] = owner
        }
        return state
    }

    private static func checkUID(_ uid: String) throws {
        guard !uid.isEmpty, uid.utf8.count <= 253, !uid.contains("/"),
              !uid.contains(where: { $0.isWhitespace || $0.isNewline })
        else { throw IPAMError.invalidPodUID(uid) }
    }
}
