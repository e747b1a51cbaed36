import Foundation
import Testing
@testable import Runtime

/// Why the root-only container tests cannot run here, or nil when they can.
enum RootGate {
    static let busybox = ["/usr/bin/busybox", "/bin/busybox"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// The labnode binary to re-execute: $LABNODE_BINARY, or the `labnode`
    /// product next to the test bundle.
    static let labnode: String? = {
        if let path = ProcessInfo.processInfo.environment["LABNODE_BINARY"] { return path }
        guard let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // Inside an .xctest bundle on some toolchains the binary sits one level deeper.
        if directory.lastPathComponent.hasSuffix(".xctest") { directory.deleteLastPathComponent() }
        let candidate = directory.appendingPathComponent("labnode").path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }()

    static let skipReason: String? = {
        if getuid() != 0 { return "not running as root" }
        if busybox == nil { return "no static busybox (apt-get install busybox-static)" }
        if labnode == nil { return "no labnode binary next to the tests (set LABNODE_BINARY)" }
        if !((try? String(contentsOfFile: "/proc/filesystems", encoding: .utf8))?.contains("overlay") ?? false) {
            return "the kernel has no overlayfs"
        }
        return nil
    }()

    static var enabled: Bool { skipReason == nil ? true : announcedSkip }

    /// Evaluated once, so the notice appears once however many tests are skipped.
    static let announcedSkip: Bool = {
        let reason = skipReason ?? ""
        print("SKIPPED: container integration tests (\(reason)).")
        FileHandle.standardError.write(Data("*** SKIPPED container integration tests: \(reason) ***\n".utf8))
        return false
    }()
}

/// A pod for one test: a busybox image, a sandbox whose namespaces it created
/// itself (never the host's), cgroups nested under the test process's own, and
/// LIFO cleanup that kills what is left, unmounts, removes, and then checks that
/// nothing remains.
final class PodFixture: @unchecked Sendable {
    let base: String
    let lower: String
    let hostname: String
    let pod: String
    let sandbox: SandboxNamespaces
    let cgroups: CgroupManager
    let launcher: ContainerLauncher
    private var shims: [Int32] = []
    private var containerNames: [String] = []

    static let applets = [
        "sh", "cat", "hostname", "ps", "mount", "true", "false", "sleep", "head", "tail", "id", "ls",
        "echo", "tr", "readlink", "wc", "touch", "kill", "grep",
    ]

    private init(base: String, lower: String, hostname: String, pod: String, sandbox: SandboxNamespaces,
                 cgroups: CgroupManager, launcher: ContainerLauncher) {
        self.base = base
        self.lower = lower
        self.hostname = hostname
        self.pod = pod
        self.sandbox = sandbox
        self.cgroups = cgroups
        self.launcher = launcher
    }

    static func with<T>(hostname: String = "pod-\(UInt16.random(in: 1000...9999))",
                        strategy: ((String) -> SandboxSetup.Strategy)? = nil,
                        _ body: (PodFixture) async throws -> T) async throws -> T {
        guard let busybox = RootGate.busybox, let labnode = RootGate.labnode else {
            throw ContainerStartError(step: "fixture", errno: ENOENT, message: "gate not satisfied")
        }
        let base = try makeScratchDirectory("labnode-it")
        let lower = base + "/image"
        let fm = FileManager.default
        for dir in ["bin", "proc", "sys", "dev", "etc", "tmp", "mnt"] {
            try fm.createDirectory(atPath: lower + "/" + dir, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: busybox, toPath: lower + "/bin/busybox")
        for applet in applets {
            try fm.createSymbolicLink(atPath: lower + "/bin/" + applet, withDestinationPath: "busybox")
        }
        let sandboxDirectory = base + "/ns"
        let sandbox: SandboxNamespaces
        do {
            sandbox = try await SandboxSetup.create(directory: sandboxDirectory, hostname: hostname,
                                                    strategy: strategy?(labnode) ?? .thread)
        } catch {
            try? fm.removeItem(atPath: base)
            throw error
        }
        let fixture: PodFixture
        do {
            let cgroups = try CgroupManager(parent: "labnode-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))",
                                            nestUnder: CgroupManager.currentCgroups())
            fixture = PodFixture(base: base, lower: lower, hostname: hostname, pod: "pod",
                                 sandbox: sandbox, cgroups: cgroups, launcher: ContainerLauncher(executable: labnode))
        } catch {
            try? SandboxSetup.destroy(directory: sandboxDirectory)
            try? fm.removeItem(atPath: base)
            throw error
        }
        do {
            let result = try await body(fixture)
            try await fixture.cleanUp()
            return result
        } catch {
            try? await fixture.cleanUp()
            throw error
        }
    }

    /// A spec for a container of this pod, with its own overlay and log file.
    func spec(_ name: String, _ args: [String]) throws -> ContainerSpec {
        let dir = base + "/containers/" + name
        for sub in ["upper", "work", "rootfs"] {
            try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        return ContainerSpec(
            id: "test/\(pod)/\(name)",
            rootfs: .overlay(lower: [lower], upper: dir + "/upper", work: dir + "/work", target: dir + "/rootfs"),
            namespaces: .sandbox(sandbox),
            process: .init(args: args),
            output: .file(dir + "/output.log"),
            exitStatusPath: dir + "/exit"
        )
    }

    func logPath(_ name: String) -> String { base + "/containers/" + name + "/output.log" }

    /// Starts a container in its own cgroup; returns the shim pid and PID 1's host pid.
    func start(_ spec: ContainerSpec, name: String, resources: CgroupResources = .init()) async throws -> (pid: Int32, hostPID1: Int32) {
        var spec = spec
        containerNames.append(name)
        spec.cgroupPaths = try cgroups.create(pod: pod, container: name, resources: resources)
        let state = try await launcher.start(spec, specPath: base + "/containers/" + name + "/spec.json")
        guard case .running(let pid, let hostPID1) = state else {
            throw ContainerStartError(step: "test", errno: 0, message: "unexpected state \(state)")
        }
        shims.append(pid)
        return (pid, hostPID1)
    }

    func wait(_ pid: Int32) async -> Int32 {
        let state = await launcher.wait(pid: pid)
        shims.removeAll { $0 == pid }
        if case .exited(let code) = state { return code }
        return -1
    }

    /// Runs a container to completion; returns its exit code and output.
    func run(_ name: String, _ args: [String], resources: CgroupResources = .init(),
             configure: (inout ContainerSpec) -> Void = { _ in }) async throws -> (code: Int32, output: String) {
        var spec = try spec(name, args)
        configure(&spec)
        let started = try await start(spec, name: name, resources: resources)
        let code = await wait(started.pid)
        return (code, (try? readTestFile(logPath(name))) ?? "")
    }

    /// Undoes everything in reverse order, then checks that nothing remains.
    func cleanUp() async throws {
        for pid in shims {
            kill(pid, SIGKILL)
            _ = await launcher.wait(pid: pid)
        }
        shims.removeAll()
        var problems: [String] = []
        for name in containerNames.reversed() {
            do { try cgroups.remove(pod: pod, container: name) } catch { problems.append("\(error)") }
        }
        do {
            try cgroups.removePod(pod)
            try cgroups.removeParent()
        } catch { problems.append("\(error)") }
        do { try SandboxSetup.destroy(directory: base + "/ns") } catch { problems.append("\(error)") }
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        if mounts.contains(base) { problems.append("mounts remain under \(base)") }
        for path in cgroups.paths(pod: pod, container: "x") {
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent().path
            if FileManager.default.fileExists(atPath: parent) { problems.append("cgroup \(parent) remains") }
        }
        do { try FileManager.default.removeItem(atPath: base) } catch { problems.append("remove \(base): \(error)") }
        if !problems.isEmpty {
            throw ContainerStartError(step: "cleanup", errno: 0, message: problems.joined(separator: "; "))
        }
    }
}

func hostNamespaceInode(_ kind: String) -> UInt64 {
    var info = stat()
    return stat("/proc/self/ns/\(kind)", &info) == 0 ? UInt64(info.st_ino) : 0
}

func fileInode(_ path: String) -> UInt64 {
    var info = stat()
    return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
}

extension Tag {
    /// Needs root and changes the host (namespaces, mounts, cgroups), cleaning up after itself.
    @Tag static var root: Self
}

@Suite(.serialized, .tags(.root), .enabled(if: RootGate.enabled, "needs root, busybox-static, overlayfs and the labnode binary"))
struct ContainerIntegrationTests {
    @Test func insideViewOfADefaultContainer() async throws {
        try await PodFixture.with(hostname: "web-7d4f") { pod in
            let script = """
            cat /proc/self/status; echo HOST=$(hostname); echo CMD=$(tr '\\0' ' ' < /proc/1/cmdline); \
            echo PS_BEGIN; ps; echo PS_END; mount -t tmpfs x /mnt; echo MOUNT=$?; \
            echo NET=$(readlink /proc/self/ns/net); echo LO=$(cat /sys/class/net/lo/flags); \
            echo CG=$(grep memory /proc/self/cgroup)
            """
            let (code, output) = try await pod.run("probe", ["sh", "-c", script])
            #expect(code == 0, "\(output)")
            #expect(output.contains("CapEff:\t00000000a80425fb"))
            #expect(output.contains("CapBnd:\t00000000a80425fb"))
            #expect(output.contains("CapInh:\t0000000000000000"))
            #expect(output.contains("Seccomp:\t2"))
            #expect(output.contains("NoNewPrivs:\t0"))
            #expect(output.contains("HOST=web-7d4f"))
            #expect(output.contains("CMD=sh -c cat /proc/self/status"))
            // PID 1 is the command itself, and host processes are invisible.
            let ps = output.components(separatedBy: "PS_BEGIN\n").last?.components(separatedBy: "PS_END").first ?? ""
            let processLines = ps.split(separator: "\n").dropFirst()
            #expect(processLines.first?.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") == true, "\(ps)")
            #expect(processLines.count <= 3, "\(ps)")
            // mount(2) is refused (no CAP_SYS_ADMIN, and seccomp denies it).
            #expect(output.contains("MOUNT=1") || output.contains("MOUNT=255"))
            #expect(!output.contains("MOUNT=0"))
            // The pod's own network namespace, with loopback up (IFF_UP|IFF_LOOPBACK).
            #expect(output.contains("NET=net:[\(fileInode(pod.sandbox.network))]"))
            #expect(!output.contains("NET=net:[\(hostNamespaceInode("net"))]"))
            #expect(output.contains("LO=0x9"))
            // The cgroup namespace is rooted at the container's cgroup.
            #expect(output.contains("memory:/\n"))
        }
    }

    @Test func hostDevicesCannotBeOpenedEvenAfterMknod() async throws {
        try await PodFixture.with { pod in
            // c 10:259 is /dev/cpu_dma_latency: holding it open changes the host's
            // CPU power management. mknod is allowed (CAP_MKNOD), opening is not.
            let script = "mknod /tmp/latency c 10 259 && echo MKNOD=ok; (exec 3</tmp/latency) 2>&1; echo OPEN=$?; (exec 3</dev/null); echo NULL=$?"
            let (code, output) = try await pod.run("devices", ["sh", "-c", script])
            #expect(code == 0, "\(output)")
            #expect(output.contains("MKNOD=ok"))
            #expect(output.contains("Operation not permitted"))
            #expect(!output.contains("OPEN=0"))
            #expect(output.contains("NULL=0"))
        }
    }

    @Test func nonRootUserWithoutPrivilegeEscalation() async throws {
        try await PodFixture.with { pod in
            let (code, output) = try await pod.run("user", ["sh", "-c", "id; grep -E 'Cap|NoNewPrivs|Seccomp:' /proc/self/status; echo HOME=$HOME; pwd"]) { spec in
                spec.process.user = .init(uid: 1000, gid: 1001, additionalGids: [2000, 2001])
                spec.process.noNewPrivileges = true
                spec.process.cwd = "/tmp"
            }
            #expect(code == 0, "\(output)")
            #expect(output.contains("uid=1000 gid=1001 groups=2000,2001"))
            #expect(output.contains("CapEff:\t0000000000000000"))
            #expect(output.contains("CapPrm:\t0000000000000000"))
            #expect(output.contains("CapBnd:\t00000000a80425fb"))
            #expect(output.contains("NoNewPrivs:\t1"))
            #expect(output.contains("Seccomp:\t2"))
            #expect(output.contains("HOME=/\n"))
            #expect(output.contains("/tmp\n"))
        }
    }

    @Test func capabilitiesAddDropAndUnconfined() async throws {
        try await PodFixture.with { pod in
            let (_, output) = try await pod.run("caps", ["grep", "-E", "CapEff|Seccomp:", "/proc/self/status"]) { spec in
                spec.process.capabilities = .init(add: ["NET_ADMIN"], drop: ["ALL"])
                spec.process.seccomp = .unconfined
            }
            #expect(output.contains("CapEff:\t0000000000001000"))
            #expect(output.contains("Seccomp:\t0"))
        }
    }

    @Test func missingCommandIsReportedThroughThePipe() async throws {
        try await PodFixture.with { pod in
            await #expect(throws: ContainerStartError(step: "exec", errno: ENOENT,
                                                      message: "executable file not found in $PATH: \"no-such-command\"")) {
                _ = try await pod.run("missing", ["no-such-command"])
            }
            let absolute = await #expect(throws: ContainerStartError.self) {
                _ = try await pod.run("missing2", ["/bin/nope"])
            }
            #expect(absolute?.step == "exec")
            #expect(absolute?.errno == ENOENT)
        }
    }

    @Test func failingStepNamesItself() async throws {
        try await PodFixture.with { pod in
            let error = await #expect(throws: ContainerStartError.self) {
                _ = try await pod.run("badvolume", ["true"]) { spec in
                    spec.mounts = [.init(source: "/nonexistent-volume-source", destination: "/data")]
                }
            }
            #expect(error?.step == "mount-/data")
            #expect(error?.errno == ENOENT)
        }
    }

    static let exitCases: [([String], Int32)] = [(["sh", "-c", "exit 7"], 7), (["false"], 1), (["true"], 0)]

    @Test(arguments: exitCases)
    func exitCodesPassThrough(_ args: [String], _ expected: Int32) async throws {
        try await PodFixture.with { pod in
            let (code, _) = try await pod.run("exit", args)
            #expect(code == expected)
            #expect(try readTestFile(pod.base + "/containers/exit/exit") == "\(expected)\n")
        }
    }

    @Test func sigtermIsForwardedToPID1() async throws {
        try await PodFixture.with { pod in
            let spec = try pod.spec("term", ["sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"])
            let started = try await pod.start(spec, name: "term")
            try await waitUntil { ((try? readTestFile(pod.logPath("term"))) ?? "").contains("ready") }
            kill(started.pid, SIGTERM)
            #expect(await pod.wait(started.pid) == 42)
        }
    }

    /// `init exec` joins a running container: same hostname, PID namespace, capabilities,
    /// seccomp filter and cgroup; the exit status comes back; a stopped target is an error.
    @Test func execJoinsARunningContainer() async throws {
        try await PodFixture.with(hostname: "exec-host") { pod in
            let spec = try pod.spec("app", ["sleep", "1000"])
            let started = try await pod.start(spec, name: "app")
            var fds: [Int32] = [-1, -1]
            #expect(pipe(&fds) == 0)
            let script = "hostname; grep -E '^(CapEff|Seccomp):' /proc/self/status; echo pid1=$(tr '\\0' ' ' < /proc/1/cmdline); "
                + "grep -c memory /proc/self/cgroup; exit 7"
            var process = spec.process
            process.args = ["sh", "-c", script]
            let exec = ExecSpec(target: started.hostPID1, process: process,
                                cgroupPaths: pod.cgroups.paths(pod: pod.pod, container: "app"))
            let execd = try await pod.launcher.exec(exec, specPath: pod.base + "/exec.json", stdio: .init(stdout: fds[1], stderr: fds[1]))
            close(fds[1])
            // The command is the init's child, a process of its own.
            #expect(execd.command != execd.pid && execd.command > 0)
            #expect(await pod.launcher.wait(pid: execd.pid) == .exited(code: 7))
            var output: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                output += buffer[0..<n]
            }
            close(fds[0])
            let text = String(decoding: output, as: UTF8.self)
            #expect(text.contains("exec-host"), "\(text)")
            #expect(text.contains("CapEff:\t00000000a80425fb"), "\(text)")
            #expect(text.contains("Seccomp:\t2"), "\(text)")
            #expect(text.contains("pid1=sleep 1000"), "\(text)")
            kill(started.pid, SIGKILL)
            _ = await pod.wait(started.pid)
            try await waitUntil {
                let stat = (try? String(contentsOfFile: "/proc/\(started.hostPID1)/stat", encoding: .utf8)) ?? ""
                return stat.isEmpty || stat.contains(") Z ")
            }
            await #expect(throws: ContainerStartError.self) {
                _ = try await pod.launcher.exec(exec, specPath: pod.base + "/exec2.json", stdio: .init())
            }
        }
    }

    @Test func killingTheShimKillsTheContainer() async throws {
        try await PodFixture.with { pod in
            let started = try await pod.start(try pod.spec("sleeper", ["sleep", "1000"]), name: "sleeper")
            kill(started.pid, SIGKILL)
            #expect(await pod.wait(started.pid) == 137)
            try await waitUntil {
                // Gone, or a zombie waiting for the host's init to reap it.
                let stat = (try? String(contentsOfFile: "/proc/\(started.hostPID1)/stat", encoding: .utf8)) ?? ""
                return stat.isEmpty || stat.contains(") Z ")
            }
        }
    }

    @Test func memoryLimitedContainerIsOOMKilled() async throws {
        try await PodFixture.with { pod in
            let limit = Int64(20 << 20)
            let (code, output) = try await pod.run("hog", ["sh", "-c", "head -c 100m /dev/zero | tail"],
                                                   resources: .init(cpuRequestMillis: 100, memoryLimitBytes: limit))
            #expect(code == 137, "\(output)")
            let stats = try pod.cgroups.stats(pod: pod.pod, container: "hog")
            #expect(stats.oomKills >= 1)
            #expect(stats.memoryLimitBytes == limit)
        }
    }

    @Test func volumesReadOnlyRootAndMaskedPaths() async throws {
        try await PodFixture.with { pod in
            let volume = pod.base + "/volume"
            try writeTestFile(volume + "/hello", "from the volume\n")
            let hosts = pod.base + "/etc-hosts"
            try writeTestFile(hosts, "10.244.0.5 probe\n")
            // An image whose /etc/resolv.conf points outside its root must not
            // make the init mount onto a host path.
            let victim = pod.base + "/victim"
            try writeTestFile(victim, "untouched\n")
            try FileManager.default.createSymbolicLink(atPath: pod.lower + "/etc/resolv.conf",
                                                       withDestinationPath: "/../../../../../.." + victim)
            let script = """
            cat /data/hello; cat /etc/hosts; cat /etc/resolv.conf; touch /data/x; echo RO_VOL=$?; \
            touch /newfile; echo RO_ROOT=$?; touch /cache/x; echo TMPFS=$?; \
            echo x > /proc/sys/kernel/hostname; echo PROCSYS=$?; echo FIRMWARE=$(ls /sys/firmware | wc -l); \
            echo TIMERS=$(cat /proc/timer_list | wc -c); touch /sys/x; echo SYS=$?
            """
            let (code, output) = try await pod.run("volumes", ["sh", "-c", script]) { spec in
                spec.readonlyRootfs = true
                spec.mounts = [
                    .init(source: volume, destination: "/data", readOnly: true),
                    .init(source: hosts, destination: "/etc/hosts", readOnly: true),
                    .init(source: hosts, destination: "/etc/resolv.conf", readOnly: true),
                    .init(kind: .tmpfs, source: "", destination: "/cache", data: "size=1m"),
                ]
            }
            #expect(code == 0, "\(output)")
            #expect(output.contains("from the volume"))
            #expect(output.contains("10.244.0.5 probe\n10.244.0.5 probe"))
            #expect(!output.contains("RO_VOL=0"))
            #expect(!output.contains("RO_ROOT=0"))
            #expect(output.contains("TMPFS=0"))
            #expect(!output.contains("PROCSYS=0"))
            #expect(output.contains("FIRMWARE=0"))
            #expect(output.contains("TIMERS=0"))
            #expect(!output.contains("SYS=0"))
            #expect(try readTestFile(victim) == "untouched\n")
        }
    }

    @Test func sandboxByReexecSharesHostnameAcrossContainers() async throws {
        try await PodFixture.with(hostname: "reexec-pod", strategy: { .reexec(executable: $0) }) { pod in
            let first = try await pod.run("a", ["sh", "-c", "hostname; readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts"])
            let second = try await pod.run("b", ["sh", "-c", "hostname; readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts"])
            #expect(first.output.hasPrefix("reexec-pod\n"))
            #expect(first.output == second.output)
            #expect(!first.output.contains("net:[\(hostNamespaceInode("net"))]"))
            #expect(!first.output.contains("uts:[\(hostNamespaceInode("uts"))]"))
        }
    }

    @Test func sandboxDestroyIsIdempotentAndCreateRefusesDuplicates() async throws {
        let directory = try makeScratchDirectory("labnode-sandbox") + "/ns"
        _ = try await SandboxSetup.create(directory: directory, hostname: "dup")
        await #expect(throws: RuntimeSyscallError.self) {
            _ = try await SandboxSetup.create(directory: directory, hostname: "dup")
        }
        try SandboxSetup.destroy(directory: directory)
        try SandboxSetup.destroy(directory: directory)
        #expect(!FileManager.default.fileExists(atPath: directory))
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        #expect(!mounts.contains(directory))
        try FileManager.default.removeItem(atPath: URL(fileURLWithPath: directory).deletingLastPathComponent().path)
    }
}

/// Polls `condition` every 10 ms for up to 20 s (only for observing a child
/// process from outside, where no event exists to wait on). The bound only catches a hang.
func waitUntil(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(20)
    while ContinuousClock.now < deadline {
        if condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    if condition() { return }
    Issue.record("condition not met within 20 s")
}
