import Foundation
import Testing
@testable import Runtime

@Suite struct ContainerSpecTests {
    static func fullSpec() -> ContainerSpec {
        ContainerSpec(
            id: "default/web/nginx",
            rootfs: .overlay(lower: ["/l/2", "/l/1"], upper: "/c/upper", work: "/c/work", target: "/c/rootfs"),
            readonlyRootfs: true,
            hostname: "web",
            namespaces: .init(network: .join("/run/p/ns/net"), uts: .new, ipc: .host, newCgroup: false),
            mounts: [
                .init(source: "/v/data", destination: "/data"),
                .init(source: "/p/hosts", destination: "/etc/hosts", readOnly: true),
                .init(kind: .tmpfs, source: "", destination: "/cache", data: "size=64m"),
            ],
            process: .init(
                args: ["nginx", "-g", "daemon off;"],
                env: ["PATH=/bin", "A=b=c"],
                cwd: "/srv",
                user: .init(uid: 101, gid: 102, additionalGids: [5, 6]),
                capabilities: .init(add: ["NET_ADMIN"], drop: ["MKNOD"]),
                noNewPrivileges: true,
                seccomp: .unconfined,
                seccompProgram: Data([1, 2, 3, 4, 5, 6, 7, 8])
            ),
            output: .file("/var/log/pods/x/0.log"),
            cgroupPaths: ["/sys/fs/cgroup/memory/labnode/p/c"],
            exitStatusPath: "/run/p/c/exit"
        )
    }

    @Test func jsonRoundTripKeepsEveryField() throws {
        let spec = Self.fullSpec()
        let data = try JSONEncoder().encode(spec)
        let decoded = try JSONDecoder().decode(ContainerSpec.self, from: data)
        #expect(decoded == spec)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"RuntimeDefault\"") == false)
        #expect(text.contains("\"Unconfined\""))
    }

    @Test func defaultsFollowUpstream() throws {
        let spec = ContainerSpec(id: "x", rootfs: .directory("/r"), process: .init(args: ["sh"]))
        #expect(spec.maskedPaths.contains("/proc/kcore"))
        #expect(spec.maskedPaths.contains("/sys/firmware"))
        #expect(spec.readonlyPaths == ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"])
        #expect(spec.process.seccomp == .runtimeDefault)
        #expect(spec.process.noNewPrivileges == false)
        #expect(spec.namespaces == .init(network: .new, uts: .new, ipc: .new, newCgroup: true))
        let decoded = try JSONDecoder().decode(ContainerSpec.self, from: JSONEncoder().encode(spec))
        #expect(decoded.rootfs.path == "/r")
    }

    @Test func sandboxNamespacesAreJoinedByPath() {
        let ns = ContainerSpec.Namespaces.sandbox(SandboxNamespaces(directory: "/run/labnode/pods/u/ns"))
        #expect(ns.network == .join("/run/labnode/pods/u/ns/net"))
        #expect(ns.uts == .join("/run/labnode/pods/u/ns/uts"))
        #expect(ns.ipc == .join("/run/labnode/pods/u/ns/ipc"))
    }
}

@Suite struct CapabilityTests {
    @Test func defaultSetMatchesContainerdMask() throws {
        let set = try CapabilityConfig().resolve(lastCap: 40)
        #expect(set == Capability.runtimeDefault)
        #expect(Capability.mask(set) == 0x0000_0000_a804_25fb)
    }

    struct Case: Sendable, CustomStringConvertible {
        var add: [String]
        var drop: [String]
        var privileged = false
        var expected: Set<String>?
        var expectedMask: UInt64?
        var description: String { "add \(add) drop \(drop) privileged \(privileged)" }
    }

    static let allNames = Set(Capability.names)

    @Test(arguments: [
        Case(add: [], drop: ["ALL"], expected: []),
        Case(add: ["NET_ADMIN"], drop: ["ALL"], expected: ["NET_ADMIN"]),
        Case(add: ["cap_sys_admin"], drop: [], expectedMask: 0xa80425fb | (1 << 21)),
        Case(add: ["ALL"], drop: ["CHOWN"], expected: allNames.subtracting(["CHOWN"])),
        Case(add: ["NET_ADMIN"], drop: ["NET_ADMIN"], expectedMask: 0xa80425fb),
        Case(add: [], drop: ["NET_RAW", "MKNOD"], expectedMask: 0xa80425fb & ~UInt64((1 << 13) | (1 << 27))),
        Case(add: [], drop: ["ALL"], privileged: true, expectedMask: (UInt64(1) << 41) - 1),
    ])
    func addDropPrivileged(_ c: Case) throws {
        let set = try CapabilityConfig(add: c.add, drop: c.drop, privileged: c.privileged).resolve(lastCap: 40)
        if let expected = c.expected { #expect(Set(set.map(\.name)) == expected) }
        if let mask = c.expectedMask { #expect(Capability.mask(set) == mask) }
    }

    @Test func unknownNameIsRefused() {
        #expect(throws: CapabilityError.unknown("NET_FLY")) {
            try CapabilityConfig(add: ["NET_FLY"]).resolve(lastCap: 40)
        }
    }

    @Test func capabilitiesNewerThanTheKernelAreLeftOut() throws {
        let set = try CapabilityConfig(add: ["BPF", "CHECKPOINT_RESTORE"]).resolve(lastCap: 38)
        #expect(!set.contains(.bpf))
        #expect(Capability.all(lastCap: 38).count == 39)
    }

    @Test func namesRoundTrip() {
        for (index, name) in Capability.names.enumerated() {
            #expect(Capability(name: name)?.rawValue == Int32(index))
            #expect(Capability(name: "CAP_" + name)?.name == name)
        }
        #expect(Capability(rawValue: 41).name == "CAP_41")
    }
}

@Suite struct InitReportTests {
    @Test func failureLineParsesBack() {
        let line = InitReport.failureLine(step: "mount-/proc", errno: EPERM, message: "mount proc on /proc: Operation not permitted")
        #expect(line == "mount-/proc: EPERM (mount proc on /proc: Operation not permitted)\n")
        let outcome = InitReport.parse(line)
        #expect(outcome.pid == nil)
        #expect(outcome.failure == ContainerStartError(step: "mount-/proc", errno: EPERM, message: "mount proc on /proc: Operation not permitted"))
    }

    @Test func pidAndFailureInAnyOrder() {
        let outcome = InitReport.parse("exec: ENOENT (executable file not found in $PATH: \"x\")\npid 4242\n")
        #expect(outcome.pid == 4242)
        #expect(outcome.failure?.step == "exec")
        #expect(outcome.failure?.errno == ENOENT)
        #expect(outcome.failure?.description == "exec: ENOENT (executable file not found in $PATH: \"x\")")
    }

    @Test func successIsAPidAlone() {
        #expect(InitReport.parse("pid 17\n") == .init(pid: 17, failure: nil))
        #expect(InitReport.parse("") == .init(pid: nil, failure: nil))
    }

    @Test func unknownErrnoStaysOneWord() {
        #expect(Errno.name(9999) == "ERRNO9999")
        #expect(InitReport.parse("x: ERRNO9999 (odd)\n").failure?.errno == 9999)
        #expect(Errno.value(named: "EACCES") == EACCES)
        #expect(InitReport.failureLine(step: "a", errno: EIO, message: "two\nlines") == "a: EIO (two lines)\n")
    }

    @Test(arguments: [(Int32(0), Int32(0)), (0x0100, 1), (0x7f00, 127), (9, 137), (15, 143)])
    func waitStatusToExitCode(_ status: Int32, _ code: Int32) {
        #expect(ContainerInit.exitCode(fromWaitStatus: status) == code)
    }
}

@Suite struct RootfsPlanTests {
    @Test func standardMountsFlags() {
        let mounts = RootfsPlan.standardMounts(privileged: false)
        #expect(mounts.map(\.target) == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"])
        let proc = mounts[0]
        #expect(proc.flags == UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC))
        let sys = mounts[5]
        #expect(sys.flags & UInt(MS_RDONLY) != 0)
        #expect(RootfsPlan.standardMounts(privileged: true)[5].flags & UInt(MS_RDONLY) == 0)
        #expect(mounts[2].data.contains("newinstance"))
        #expect(mounts[2].data.contains("ptmxmode=0666"))
    }

    @Test func devicesAreTheOCIDefaults() {
        #expect(RootfsPlan.devices.map(\.name) == ["null", "zero", "full", "random", "urandom", "tty"])
        #expect(RootfsPlan.devices.contains(.init(name: "tty", major: 5, minor: 0)))
        #expect(RootfsPlan.devices.contains(.init(name: "null", major: 1, minor: 3)))
    }

    @Test func overlayOptions() throws {
        #expect(try RootfsPlan.overlayOptions(lower: ["/a", "/b"], upper: "/u", work: "/w") == "lowerdir=/a:/b,upperdir=/u,workdir=/w")
        #expect(throws: RuntimeSyscallError.self) { try RootfsPlan.overlayOptions(lower: ["/a,b"], upper: "/u", work: "/w") }
        #expect(throws: RuntimeSyscallError.self) { try RootfsPlan.overlayOptions(lower: [], upper: "/u", work: "/w") }
        let many = (0..<400).map { "/var/lib/labnode/layers/\($0)" }
        #expect(throws: RuntimeSyscallError.self) { try RootfsPlan.overlayOptions(lower: many, upper: "/u", work: "/w") }
    }
}

@Suite struct PathResolutionTests {
    @Test func symlinksCannotEscapeTheRoot() async throws {
        try await withScratchDirectory { root in
            try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: root + "/etc/hosts", withDestinationPath: "/../../../../etc/passwd")
            try FileManager.default.createSymbolicLink(atPath: root + "/etc/up", withDestinationPath: "../../../..")
            try FileManager.default.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "loop")
            try FileManager.default.createSymbolicLink(atPath: root + "/var", withDestinationPath: "etc")
            #expect(try SecureJoin.resolve(root: root, path: "/etc/hosts") == root + "/etc/passwd")
            #expect(try SecureJoin.resolve(root: root, path: "/etc/up/shadow") == root + "/shadow")
            #expect(try SecureJoin.resolve(root: root, path: "/../../x/./y") == root + "/x/y")
            #expect(try SecureJoin.resolve(root: root, path: "/var/new/file") == root + "/etc/new/file")
            #expect(throws: RuntimeSyscallError(call: "resolve", subject: "/loop/x", errno: ELOOP)) {
                try SecureJoin.resolve(root: root, path: "/loop/x")
            }
        }
    }

    @Test func pathLookupFindsExecutablesOnly() async throws {
        try await withScratchDirectory { root in
            try writeTestFile(root + "/bin/tool", "#!/bin/sh\n")
            try writeTestFile(root + "/usr/bin/tool", "#!/bin/sh\n")
            try writeTestFile(root + "/usr/bin/data", "x")
            chmod(root + "/usr/bin/tool", 0o755)
            chmod(root + "/bin/tool", 0o644)
            #expect(ExecutableLookup.find("tool", path: "/bin:/usr/bin", root: root) == "/usr/bin/tool")
            #expect(ExecutableLookup.find("data", path: "/usr/bin", root: root) == nil)
            #expect(ExecutableLookup.find("./x/y", path: "/usr/bin", root: root) == "./x/y")
            #expect(ExecutableLookup.find("tool", path: nil, root: root) == "/usr/bin/tool")
            #expect(ExecutableLookup.value(of: "PATH", in: ["PATHX=1", "PATH=/a", "PATH=/b"]) == "/b")
        }
    }

    @Test func homeComesFromPasswd() async throws {
        try await withScratchDirectory { root in
            try writeTestFile(root + "/passwd", "root:x:0:0:root:/root:/bin/sh\nnginx:x:101:101::/var/cache/nginx:/sbin/nologin\n")
            #expect(ContainerSetup.homeDirectory(uid: 101, passwd: root + "/passwd") == "/var/cache/nginx")
            #expect(ContainerSetup.homeDirectory(uid: 5, passwd: root + "/passwd") == "/")
            #expect(ContainerSetup.homeDirectory(uid: 0, passwd: root + "/none") == "/")
        }
    }
}
