import Foundation
import Testing

/// Runs a program and captures its output, with a deadline.
struct Command {
    struct Result: CustomStringConvertible {
        var code: Int32
        var out: String
        var err: String
        var description: String { "exit \(code)\nstdout:\n\(out)\nstderr:\n\(err)" }
    }

    static func run(_ args: [String], env: [String: String] = [:], stdin: String? = nil, timeout: Double = 60) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        p.environment = environment
        let outFile = FileManager.default.temporaryDirectory.appendingPathComponent("lnt-out-\(UUID().uuidString)")
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("lnt-err-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        defer {
            try? FileManager.default.removeItem(at: outFile)
            try? FileManager.default.removeItem(at: errFile)
        }
        // Files, not pipes: a daemon that inherits a pipe would keep it open and hang the reader.
        p.standardOutput = try FileHandle(forWritingTo: outFile)
        p.standardError = try FileHandle(forWritingTo: errFile)
        if let stdin {
            let inPipe = Pipe()
            p.standardInput = inPipe
            try p.run()
            inPipe.fileHandleForWriting.write(Data(stdin.utf8))
            try inPipe.fileHandleForWriting.close()
        } else {
            p.standardInput = FileHandle.nullDevice
            try p.run()
        }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            p.terminate()
            p.waitUntilExit()
            let out = (try? String(contentsOf: outFile, encoding: .utf8)) ?? ""
            return Result(code: -1, out: out, err: "timed out after \(timeout) s")
        }
        p.waitUntilExit()
        return Result(code: p.terminationStatus,
                      out: (try? String(contentsOf: outFile, encoding: .utf8)) ?? "",
                      err: (try? String(contentsOf: errFile, encoding: .utf8)) ?? "")
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
        try Self.must(["ip", "-n", netns, "link", "set", "lo", "up"])
        // A stand-in for the machine's network card; no default route, so nothing leaves.
        try Self.must(["ip", "-n", netns, "link", "add", "eth0", "type", "dummy"])
        try Self.must(["ip", "-n", netns, "addr", "add", "\(nodeIP)/24", "dev", "eth0"])
        try Self.must(["ip", "-n", netns, "link", "set", "eth0", "up"])
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

    @discardableResult
    func up(_ extra: [String] = []) throws -> Command.Result {
        let r = try labnode(["up", "--kubeconfig", kubeconfig] + extra)
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
