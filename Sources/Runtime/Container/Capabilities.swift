/// One Linux capability, by its kernel number (CAP_CHOWN = 0 ...).
///
/// A struct rather than an enum so that a privileged container can be given
/// capabilities newer than this table (everything up to the kernel's
/// /proc/sys/kernel/cap_last_cap).
public struct Capability: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Kubernetes spells capabilities without the prefix ("NET_ADMIN") and
    /// accepts the prefixed form too; case does not matter (as in containerd).
    public init?(name: String) {
        var upper = name.uppercased()
        if upper.hasPrefix("CAP_") { upper.removeFirst(4) }
        guard let index = Capability.names.firstIndex(of: upper) else { return nil }
        rawValue = Int32(index)
    }

    /// "CHOWN", or "CAP_41" for a number newer than the table.
    public var name: String {
        Int(rawValue) < Capability.names.count ? Capability.names[Int(rawValue)] : "CAP_\(rawValue)"
    }

    public var description: String { name }

    public static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Names indexed by number, from include/uapi/linux/capability.h.
    static let names = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
    ]

    static func named(_ name: String) -> Capability {
        guard let index = names.firstIndex(of: name) else { preconditionFailure("unknown capability \(name)") }
        return Capability(rawValue: Int32(index))
    }

    public static let chown = named("CHOWN")
    public static let dacOverride = named("DAC_OVERRIDE")
    public static let dacReadSearch = named("DAC_READ_SEARCH")
    public static let fowner = named("FOWNER")
    public static let fsetid = named("FSETID")
    public static let kill = named("KILL")
    public static let setgid = named("SETGID")
    public static let setuid = named("SETUID")
    public static let setpcap = named("SETPCAP")
    public static let netBindService = named("NET_BIND_SERVICE")
    public static let netAdmin = named("NET_ADMIN")
    public static let netRaw = named("NET_RAW")
    public static let sysModule = named("SYS_MODULE")
    public static let sysRawio = named("SYS_RAWIO")
    public static let sysChroot = named("SYS_CHROOT")
    public static let sysPtrace = named("SYS_PTRACE")
    public static let sysPacct = named("SYS_PACCT")
    public static let sysAdmin = named("SYS_ADMIN")
    public static let sysBoot = named("SYS_BOOT")
    public static let sysNice = named("SYS_NICE")
    public static let sysTime = named("SYS_TIME")
    public static let sysTtyConfig = named("SYS_TTY_CONFIG")
    public static let mknod = named("MKNOD")
    public static let auditWrite = named("AUDIT_WRITE")
    public static let setfcap = named("SETFCAP")
    public static let syslog = named("SYSLOG")
    public static let perfmon = named("PERFMON")
    public static let bpf = named("BPF")

    /// The set containerd and CRI-O give a non-privileged container
    /// (containerd's `oci.defaultUnixCaps`); as a mask 0xa80425fb.
    public static let runtimeDefault: Set<Capability> = [
        .chown, .dacOverride, .fsetid, .fowner, .mknod, .netRaw, .setgid, .setuid,
        .setfcap, .setpcap, .netBindService, .sysChroot, .kill, .auditWrite,
    ]

    /// Every capability from 0 through `lastCap`.
    public static func all(lastCap: Int32) -> Set<Capability> {
        Set((0...max(lastCap, 0)).map(Capability.init(rawValue:)))
    }

    /// The bit mask /proc/<pid>/status prints as CapEff/CapPrm/CapBnd.
    public static func mask(_ set: Set<Capability>) -> UInt64 {
        set.reduce(UInt64(0)) { $0 | (UInt64(1) << UInt64($1.rawValue)) }
    }
}

/// The capability part of a container spec, as Kubernetes expresses it.
public struct CapabilityConfig: Codable, Equatable, Sendable {
    /// Names to add ("NET_ADMIN", or "ALL").
    public var add: [String]
    /// Names to drop ("MKNOD", or "ALL").
    public var drop: [String]
    /// A privileged container gets every capability the kernel knows.
    public var privileged: Bool

    public init(add: [String] = [], drop: [String] = [], privileged: Bool = false) {
        self.add = add
        self.drop = drop
        self.privileged = privileged
    }

    /// The final set, applied the way containerd's CRI plugin does: start from
    /// the default set; "ALL" in add means every capability, "ALL" in drop means
    /// none; then the named additions, then the named drops (so a capability
    /// both added and dropped ends up dropped).
    public func resolve(lastCap: Int32) throws(CapabilityError) -> Set<Capability> {
        if privileged { return Capability.all(lastCap: lastCap) }
        func isAll(_ name: String) -> Bool { name.uppercased() == "ALL" }
        func parse(_ names: [String]) throws(CapabilityError) -> [Capability] {
            var parsed: [Capability] = []
            for name in names where !isAll(name) {
                guard let capability = Capability(name: name) else { throw CapabilityError.unknown(name) }
                parsed.append(capability)
            }
            return parsed
        }
        let added = try parse(add)
        let dropped = try parse(drop)
        var result = Capability.runtimeDefault
        if add.contains(where: isAll) { result = Capability.all(lastCap: lastCap) }
        if drop.contains(where: isAll) { result = [] }
        result.formUnion(added)
        result.subtract(dropped)
        // A name from the table may be newer than the running kernel.
        return result.filter { $0.rawValue <= lastCap }
    }
}

/// A capability name that is not a Linux capability.
public enum CapabilityError: Error, Equatable, CustomStringConvertible, Sendable {
    case unknown(String)

    public var description: String {
        switch self {
        case .unknown(let name): return "unknown capability \"\(name)\""
        }
    }
}
