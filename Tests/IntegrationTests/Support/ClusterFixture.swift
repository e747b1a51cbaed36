import Foundation
import TestSupport
import Testing

/// Runs a program and captures its output, with a deadline.
struct Command {
    struct Result: CustomStringConvertible {
        var code: Int32
        var out: String
        var err: String
        var description: String { "exit \(code)\nstdout:\n\(out)\nstderr:\n\(err)" }
    }

    /// Runs to completion (or the deadline), waiting on this thread; see `ChildProcess`.
    static func run(_ args: [String], env: [String: String] = [:], stdin: String? = nil, timeout: Double = 60) throws -> Result {
        let tmp = FileManager.default.temporaryDirectory
        let id = UUID().uuidString
        let outPath = tmp.appendingPathComponent("lnt-out-\(id)").path
        let errPath = tmp.appendingPathComponent("lnt-err-\(id)").path
        let inPath = tmp.appendingPathComponent("lnt-in-\(id)").path
        try Data((stdin ?? "").utf8).write(to: URL(fileURLWithPath: inPath))
        defer {
            for p in [outPath, errPath, inPath] { try? FileManager.default.removeItem(atPath: p) }
        }
        let pid = try ChildProcess.spawn(["/usr/bin/env"] + args, env: env, stdinPath: stdin == nil ? nil : inPath,
                                         outPath: outPath, errPath: errPath)
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        var timedOut = false
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                timedOut = true
                break
            }
            usleep(5_000)
        }
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        if timedOut { return Result(code: -1, out: out, err: err + "\ntimed out after \(timeout) s") }
        return Result(code: ChildProcess.exitCode(status), out: out, err: err)
    }
}

/// Where things are: the built labnode binary, the package root, the kubectl builds.
enum TestPaths {
    static let buildDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()

    static var packageRoot: URL {
        var dir = buildDir
        for _ in 0..<6 {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) { return dir }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    }

    static var labnode: String { buildDir.appendingPathComponent("labnode").path }

    /// "kubectl" (the machine's), "kubectl.1.27" ... from PATH, or the 1.37 the setup script installs.
    static func kubectl(_ version: String?) -> String? {
        guard let version else { return which("kubectl") }
        if let p = which("kubectl.\(version)") { return p }
        // The versioned builds sit beside the machine's kubectl (a dispatcher), not on PATH.
        if let k = which("kubectl") {
            let dir = URL(fileURLWithPath: k).resolvingSymlinksInPath().deletingLastPathComponent()
            let p = dir.appendingPathComponent("kubectl.\(version)").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        let local = packageRoot.appendingPathComponent(".build-tools/bin/kubectl.\(version)").path
        return FileManager.default.isExecutableFile(atPath: local) ? local : nil
    }

    static func which(_ name: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}

/// Whether this machine lets us make network namespaces (root and a kernel with netns).
enum Capability {
    static let canCreateNetns: Bool = {
        guard getuid() == 0 else {
            print("SKIPPED: integration tests need root to create network namespaces")
            return false
        }
        let name = "lnprobe-\(getpid())"
        let ok = (try? Command.run(["ip", "netns", "add", name]).code) == 0
        _ = try? Command.run(["ip", "netns", "del", name])
        if !ok { print("SKIPPED: `ip netns add` failed; integration tests need network namespaces") }
        return ok
    }()

    static let hasBinary: Bool = {
        let ok = FileManager.default.isExecutableFile(atPath: TestPaths.labnode)
        if !ok { print("FAILED PRECONDITION: \(TestPaths.labnode) is missing; run `swift build` before `swift test`") }
        return ok
    }()
}

/// A labnode cluster in a network namespace this test made, with no route out (the safety rule),
/// a temporary data dir and its own kubeconfig. Everything is undone in `stop()`.
final class ClusterFixture: @unchecked Sendable {
    let netns: String
    let dataDir: String
    let kubeconfig: String
    let nodeIP = "172.31.250.2"
    var upOutput = ""

    init() throws {
        let id = String(UUID().uuidString.prefix(8)).lowercased()
        netns = "lnt-\(id)"
        dataDir = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-test-\(id)").path
        kubeconfig = dataDir + "-kubeconfig"
        try Self.must(["ip", "netns", "add", netns])
        do {
            try Self.must(["ip", "-n", netns, "link", "set", "lo", "up"])
            // A stand-in for the machine's network card: a veth pair whose both ends stay in the
            // namespace (the kernel here has no dummy driver). No default route, so nothing leaves.
            try Self.must(["ip", "-n", netns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer"])
            try Self.must(["ip", "-n", netns, "addr", "add", "\(nodeIP)/24", "dev", "eth0"])
            try Self.must(["ip", "-n", netns, "link", "set", "eth0peer", "up"])
            try Self.must(["ip", "-n", netns, "link", "set", "eth0", "up"])
            // A LAN route, for the overlap checks of `labnode up`.
            try Self.must(["ip", "-n", netns, "route", "add", "192.168.77.0/24", "dev", "eth0"])
        } catch {
            _ = try? Command.run(["ip", "netns", "del", netns])
            throw error
        }
    }

    static func must(_ args: [String]) throws {
        let r = try Command.run(args)
        if r.code != 0 { throw FixtureError.failed("\(args.joined(separator: " ")): \(r.err)") }
    }

    enum FixtureError: Error { case failed(String) }

    /// Runs a command inside the namespace (nsenter keeps the cgroup mounts visible).
    func inNetns(_ args: [String], env: [String: String] = [:], stdin: String? = nil, timeout: Double = 60) throws -> Command.Result {
        try Command.run(["nsenter", "--net=/run/netns/\(netns)"] + args, env: env, stdin: stdin, timeout: timeout)
    }

    func labnode(_ args: [String], timeout: Double = 60) throws -> Command.Result {
        try inNetns([TestPaths.labnode] + args + ["--data-dir", dataDir], timeout: timeout)
    }

    /// Starts the cluster. The DNS add-on is left out unless a test asks for it
    /// (`up(dns: true)`): building the labnode image and starting the pod costs seconds that
    /// tests of other parts should not pay.
    @discardableResult
    func up(_ extra: [String] = [], dns: Bool = false) throws -> Command.Result {
        let r = try labnode(["up", "--kubeconfig", kubeconfig] + extra + (dns ? [] : ["--disable", "dns"]), timeout: dns ? 120 : 60)
        upOutput = r.out + r.err
        return r
    }

    func kubectl(_ version: String?, _ args: [String], stdin: String? = nil, env: [String: String] = [:],
                 timeout: Double = 60) throws -> Command.Result {
        guard let bin = TestPaths.kubectl(version) else { throw FixtureError.failed("kubectl \(version ?? "") not found") }
        var e = env
        e["KUBECONFIG"] = kubeconfig
        // A private discovery cache per cluster, so no run sees another's documents.
        e["HOME"] = dataDir + "-home"
        return try inNetns([bin] + args, env: e, stdin: stdin, timeout: timeout)
    }

    /// A kubectl left running in the namespace (port-forward, proxy, a session to break off).
    /// nsenter execs kubectl, so the pid is kubectl's; stop it with `finish`.
    final class Background {
        let pid: pid_t
        let outPath: String
        let errPath: String
        init(pid: pid_t, outPath: String, errPath: String) {
            self.pid = pid
            self.outPath = outPath
            self.errPath = errPath
        }
        var out: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
        var err: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
        func finish(_ signal: Int32 = SIGTERM) {
            kill(pid, signal)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
    }

    func background(_ version: String?, _ args: [String], env: [String: String] = [:]) throws -> Background {
        guard let bin = TestPaths.kubectl(version) else { throw FixtureError.failed("kubectl \(version ?? "") not found") }
        let id = UUID().uuidString
        let out = dataDir + "-bg-out-" + id, err = dataDir + "-bg-err-" + id
        var e = env
        e["KUBECONFIG"] = kubeconfig
        e["HOME"] = dataDir + "-home"
        let pid = try ChildProcess.spawn(["/usr/bin/nsenter", "--net=/run/netns/\(netns)", bin] + args, env: e,
                                         outPath: out, errPath: err)
        return Background(pid: pid, outPath: out, errPath: err)
    }

    func pid() -> Int32? {
        guard let s = try? String(contentsOfFile: dataDir + "/labnode.pid", encoding: .utf8) else { return nil }
        return Int32(s.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func stop() {
        _ = try? labnode(["down"], timeout: 40)
        if let pid = pid(), kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        _ = try? Command.run(["ip", "netns", "del", netns])
        try? FileManager.default.removeItem(atPath: dataDir)
        try? FileManager.default.removeItem(atPath: kubeconfig)
        try? FileManager.default.removeItem(atPath: dataDir + "-home")
    }
}
