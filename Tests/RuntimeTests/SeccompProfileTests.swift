import Foundation
import Testing
@testable import Runtime

@Suite struct SeccompProfileTests {
    static let modern = (major: 6, minor: 1)

    func denied(_ rules: [SeccompRule]) -> Set<String> {
        Set(rules.filter { $0.arguments.isEmpty }.map(\.syscall))
    }

    @Test func runtimeDefaultDeniesTheDangerousSyscalls() {
        let rules = SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: Self.modern)
        let names = denied(rules)
        for name in [
            "mount", "umount2", "pivot_root", "kexec_load", "init_module", "finit_module", "delete_module",
            "reboot", "swapon", "swapoff", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
            "unshare", "setns", "open_by_handle_at", "acct", "quotactl", "lookup_dcookie", "userfaultfd",
            "settimeofday", "clock_settime", "sethostname", "fsopen", "move_mount", "open_tree", "iopl",
        ] {
            #expect(names.contains(name), "\(name) should be denied")
        }
        for allowed in ["read", "clone", "chroot", "ptrace", "socket", "name_to_handle_at", "personality"] {
            #expect(!names.contains(allowed), "\(allowed) should not be denied outright")
        }
        #expect(rules.allSatisfy { $0.errno == EPERM || ($0.syscall == "clone3" && $0.errno == ENOSYS) })
    }

    @Test func cloneIsDeniedOnlyWithNamespaceFlags() {
        let rules = SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: Self.modern)
        let clone = rules.filter { $0.syscall == "clone" }
        #expect(clone.count == 7)
        #expect(clone.allSatisfy { $0.arguments.count == 1 && $0.arguments[0].index == 0 && $0.arguments[0].mask == $0.arguments[0].value })
        #expect(clone.reduce(UInt64(0)) { $0 | $1.arguments[0].mask } == 0x7E02_0000)
        #expect(rules.contains(SeccompRule(syscall: "clone3", errno: ENOSYS)))
        #expect(rules.contains(SeccompRule(syscall: "socket", arguments: [.init(index: 0, mask: 0xffff_ffff, value: 40)])))
    }

    @Test func grantedCapabilitiesReopenTheirSyscalls() {
        var caps = Capability.runtimeDefault
        caps.insert(.sysAdmin)
        caps.insert(.sysTime)
        let names = denied(SeccompProfile.runtimeDefault(capabilities: caps, kernel: Self.modern))
        #expect(!names.contains("mount"))
        #expect(!names.contains("unshare"))
        #expect(!names.contains("clock_settime"))
        #expect(names.contains("reboot"))
        #expect(!SeccompProfile.runtimeDefault(capabilities: caps, kernel: Self.modern).contains { $0.syscall == "clone3" })
    }

    @Test func ptraceIsDeniedOnlyOnOldKernels() {
        let old = denied(SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: (4, 4)))
        #expect(old.contains("ptrace"))
        let new = denied(SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: (4, 8)))
        #expect(!new.contains("ptrace"))
    }

    @Test func libseccompKnowsTheImportantNames() {
        #expect(!SeccompProfile.isKnownToLibseccomp("not_a_syscall"))
        let rules = SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: (4, 4))
        // Names that do not exist on x86_64 (32-bit only or never implemented).
        let notOnThisArchitecture: Set<String> = ["umount", "stime", "clock_settime64", "vm86", "vm86old"]
        for rule in rules where !notOnThisArchitecture.contains(rule.syscall) {
            #expect(SeccompProfile.isKnownToLibseccomp(rule.syscall), "libseccomp does not know \(rule.syscall)")
        }
    }

    @Test func filterCompilesToBPFAndIsCached() throws {
        let rules = SeccompProfile.runtimeDefault(capabilities: Capability.runtimeDefault, kernel: Self.modern)
        let program = try SeccompFilter(rules: rules, setNoNewPrivileges: true).compiledProgram()
        #expect(program.count > 100 * 8)
        #expect(program.count % 8 == 0)
        let cached = try SeccompProgram.runtimeDefault(capabilities: Capability.runtimeDefault)
        #expect(try SeccompProgram.runtimeDefault(capabilities: Capability.runtimeDefault) == cached)
        var withAdmin = Capability.runtimeDefault
        withAdmin.insert(.sysAdmin)
        #expect(try SeccompProgram.runtimeDefault(capabilities: withAdmin).count < cached.count)
    }

    @Test func installRejectsGarbage() {
        #expect(throws: RuntimeSyscallError.self) { try SeccompProgram.install(Data([1, 2, 3])) }
        #expect(throws: RuntimeSyscallError.self) { try SeccompProgram.install(Data()) }
    }

    @Test func kernelVersionIsParsed() {
        let version = SeccompProfile.kernelVersion()
        #expect(version.major >= 3)
    }
}
