import CSeccomp
import CShims
import Foundation
import Glibc
import Synchronization

/// One filter rule: a syscall, the errno it fails with, and optional argument
/// conditions (all of which must hold for the rule to apply).
public struct SeccompRule: Equatable, Sendable {
    /// A masked-equality test on one syscall argument: `(arg[index] & mask) == value`.
    public struct ArgumentTest: Equatable, Sendable {
        public var index: UInt32
        public var mask: UInt64
        public var value: UInt64
    }

    public var syscall: String
    public var errno: Int32
    public var arguments: [ArgumentTest]

    public init(syscall: String, errno: Int32 = EPERM, arguments: [ArgumentTest] = []) {
        self.syscall = syscall
        self.errno = errno
        self.arguments = arguments
    }
}

/// labnode's RuntimeDefault profile: allow everything except a deny-list.
///
/// moby's default profile (profiles/seccomp/default.json) is an allow-list with
/// the default action EPERM. The lists below are what that allow-list leaves
/// out, or only allows when the container holds a given capability, grouped the
/// same way so that a container given e.g. SYS_ADMIN regains mount(2) as it
/// would under Docker. Being a deny-list, a syscall added to the kernel after
/// this table is allowed; moby's profile would refuse it. That trade was chosen
/// for the lab: new harmless syscalls keep working without updating labnode.
public enum SeccompProfile {
    /// A group of syscalls that is denied unless the container has `unlessCapability`.
    struct Group {
        var unlessCapability: Capability?
        var syscalls: [String]
    }

    static let groups: [Group] = [
        // Denied to everyone in moby's profile (absent from its allow-list).
        Group(unlessCapability: nil, syscalls: [
            "add_key", "keyctl", "request_key",
            "kexec_load", "kexec_file_load",
            "pivot_root", "swapon", "swapoff", "userfaultfd",
            "uselib", "ustat", "sysfs", "_sysctl", "nfsservctl",
            "vm86", "vm86old", "create_module", "get_kernel_syms", "query_module",
            "afs_syscall", "getpmsg", "putpmsg", "security", "tuxcall", "vserver",
            "move_pages", "migrate_pages",
        ]),
        Group(unlessCapability: .sysAdmin, syscalls: [
            "bpf", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
            "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl",
            "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
            "unshare",
        ]),
        Group(unlessCapability: .sysBoot, syscalls: ["reboot"]),
        Group(unlessCapability: .sysModule, syscalls: ["delete_module", "init_module", "finit_module"]),
        Group(unlessCapability: .sysPacct, syscalls: ["acct"]),
        Group(unlessCapability: .sysPtrace, syscalls: ["kcmp", "pidfd_getfd", "process_madvise"]),
        Group(unlessCapability: .sysRawio, syscalls: ["iopl", "ioperm"]),
        Group(unlessCapability: .sysTime, syscalls: ["settimeofday", "stime", "clock_settime", "clock_settime64"]),
        Group(unlessCapability: .sysTtyConfig, syscalls: ["vhangup"]),
        Group(unlessCapability: .sysNice, syscalls: ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
        Group(unlessCapability: .dacReadSearch, syscalls: ["open_by_handle_at"]),
    ]

    /// Namespace-creating clone(2) flags; moby allows clone only without them.
    static let namespaceCloneFlags: [UInt64] = [
        0x0002_0000, // CLONE_NEWNS
        0x0200_0000, // CLONE_NEWCGROUP
        0x0400_0000, // CLONE_NEWUTS
        0x0800_0000, // CLONE_NEWIPC
        0x1000_0000, // CLONE_NEWUSER
        0x2000_0000, // CLONE_NEWPID
        0x4000_0000, // CLONE_NEWNET
    ]

    /// The rules for a container holding `capabilities` on a kernel of the given
    /// version (major, minor).
    public static func runtimeDefault(capabilities: Set<Capability>, kernel: (major: Int, minor: Int)) -> [SeccompRule] {
        var rules: [SeccompRule] = []
        for group in groups {
            if let capability = group.unlessCapability, capabilities.contains(capability) { continue }
            rules += group.syscalls.map { SeccompRule(syscall: $0) }
        }
        if !capabilities.contains(.sysAdmin) {
            // clone's flags are a register we can test; one rule per flag, since a
            // rule's tests are ANDed and we want "any of them set".
            rules += namespaceCloneFlags.map {
                SeccompRule(syscall: "clone", arguments: [.init(index: 0, mask: $0, value: $0)])
            }
            // clone3 passes its flags in memory, which seccomp cannot read: fail
            // with ENOSYS so libc falls back to clone(2), which we can check.
            rules.append(SeccompRule(syscall: "clone3", errno: ENOSYS))
        }
        // Before 4.8 a ptrace'd process could bypass seccomp (moby allows ptrace
        // only from 4.8 on).
        if !capabilities.contains(.sysPtrace), kernel.major < 4 || (kernel.major == 4 && kernel.minor < 8) {
            rules += ["ptrace", "process_vm_readv", "process_vm_writev"].map { SeccompRule(syscall: $0) }
        }
        // moby refuses AF_VSOCK sockets: they reach the hypervisor, not the pod network.
        rules.append(SeccompRule(syscall: "socket", arguments: [.init(index: 0, mask: UInt64(UInt32.max), value: 40)]))
        return rules
    }

    /// Whether the installed libseccomp can resolve `syscall` on this architecture.
    static func isKnownToLibseccomp(_ syscall: String) -> Bool {
        seccomp_syscall_resolve_name(syscall) != __NR_SCMP_ERROR
    }

    /// The running kernel's version from uname(2).
    public static func kernelVersion() -> (major: Int, minor: Int) {
        var name = utsname()
        guard uname(&name) == 0 else { return (0, 0) }
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        return (numbers.first ?? 0, numbers.dropFirst().first ?? 0)
    }
}

/// A libseccomp filter built from rules, with the default action "allow".
///
/// The filter covers the native architecture and its 32-bit companions (x86 and
/// x32 on x86_64, arm on aarch64): without them, a 32-bit syscall would either
/// skip the deny-list or, with libseccomp's default for foreign architectures,
/// kill the process.
public final class SeccompFilter {
    private let context: scmp_filter_ctx

    /// Builds the filter. With `setNoNewPrivileges` false the caller must hold
    /// CAP_SYS_ADMIN when loading it (libseccomp otherwise sets no_new_privs
    /// itself, which would break setuid binaries in pods that allow privilege
    /// escalation).
    public init(rules: [SeccompRule], setNoNewPrivileges: Bool) throws(RuntimeSyscallError) {
        guard let context = seccomp_init(labnode_scmp_act_allow()) else {
            throw RuntimeSyscallError(call: "seccomp_init", errno: ENOMEM)
        }
        self.context = context
        try check("seccomp_attr_set", "CTL_NNP", seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, setNoNewPrivileges ? 1 : 0))
        for arch in Self.companionArchitectures() {
            let token = seccomp_arch_resolve_name(arch)
            guard token != 0 else { continue }
            let rc = seccomp_arch_add(context, token)
            if rc != 0 && rc != -EEXIST { throw RuntimeSyscallError(call: "seccomp_arch_add", subject: arch, errno: -rc) }
        }
        for rule in rules {
            let number = seccomp_syscall_resolve_name(rule.syscall)
            // Names this libseccomp does not know cannot be filtered (and are
            // typically absent on this architecture anyway).
            guard number != __NR_SCMP_ERROR else { continue }
            var tests = rule.arguments.map {
                scmp_arg_cmp(arg: $0.index, op: SCMP_CMP_MASKED_EQ, datum_a: $0.mask, datum_b: $0.value)
            }
            let action = labnode_scmp_act_errno(UInt16(truncatingIfNeeded: rule.errno))
            let rc = tests.withUnsafeMutableBufferPointer {
                seccomp_rule_add_array(context, action, number, UInt32($0.count), $0.baseAddress)
            }
            // EEXIST: the same rule twice (e.g. a name aliasing another); harmless.
            if rc != 0 && rc != -EEXIST {
                throw RuntimeSyscallError(call: "seccomp_rule_add", subject: rule.syscall, errno: -rc)
            }
        }
    }

    deinit { seccomp_release(context) }

    /// Installs the filter on the calling thread (and its future children).
    public func load() throws(RuntimeSyscallError) {
        try check("seccomp_load", "", seccomp_load(context))
    }

    /// The compiled classic BPF program (struct sock_filter array), for
    /// `SeccompProgram.install` in another process.
    public func compiledProgram() throws(RuntimeSyscallError) -> Data {
        let fd = try sys("memfd_create", "seccomp") { labnode_memfd("seccomp") }
        defer { close(fd) }
        try check("seccomp_export_bpf", "", seccomp_export_bpf(context, fd))
        try sys("lseek", "seccomp memfd") { lseek(fd, 0, SEEK_SET) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = try sys("read", "seccomp memfd") { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if count == 0 { return Data(bytes) }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    private func check(_ call: String, _ subject: String, _ rc: Int32) throws(RuntimeSyscallError) {
        if rc < 0 { throw RuntimeSyscallError(call: call, subject: subject, errno: -rc) }
    }

    private static func companionArchitectures() -> [String] {
        #if arch(x86_64)
        return ["x86", "x32"]
        #elseif arch(arm64)
        return ["arm"]
        #else
        return []
        #endif
    }
}

/// Precompiled RuntimeDefault programs, and their installation in the init.
public enum SeccompProgram {
    /// Size of one struct sock_filter instruction.
    static let instructionSize = 8

    /// Compiled programs by capability mask (the only input that varies on one
    /// machine); compiling costs 1-2 ms, a lookup nothing.
    static let cache = Mutex<[UInt64: Data]>([:])

    /// The RuntimeDefault program for a container holding `capabilities`.
    public static func runtimeDefault(capabilities: Set<Capability>) throws(RuntimeSyscallError) -> Data {
        let key = Capability.mask(capabilities)
        if let cached = cache.withLock({ $0[key] }) { return cached }
        let rules = SeccompProfile.runtimeDefault(capabilities: capabilities, kernel: SeccompProfile.kernelVersion())
        // The no_new_privs attribute only matters to seccomp_load, not to the program.
        let program = try SeccompFilter(rules: rules, setNoNewPrivileges: false).compiledProgram()
        cache.withLock { $0[key] = program }
        return program
    }

    /// Installs a compiled program on the calling thread.
    public static func install(_ program: Data) throws(RuntimeSyscallError) {
        let count = program.count / instructionSize
        guard program.count % instructionSize == 0, count > 0, count <= Int(UInt16.max) else {
            throw RuntimeSyscallError(call: "seccomp", subject: "program of \(program.count) bytes is not a BPF program", errno: EINVAL)
        }
        // Copied into an aligned buffer: the kernel reads it as struct sock_filter[].
        let instructions = [UInt64](unsafeUninitializedCapacity: count) { buffer, initialized in
            _ = program.copyBytes(to: UnsafeMutableRawBufferPointer(buffer).bindMemory(to: UInt8.self))
            initialized = count
        }
        try sys("seccomp", "SECCOMP_SET_MODE_FILTER") {
            instructions.withUnsafeBytes { labnode_seccomp_install($0.baseAddress, UInt16(count)) }
        }
    }
}
