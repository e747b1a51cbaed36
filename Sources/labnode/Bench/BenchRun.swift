import ArgumentParser
import Foundation

/// `labnode bench [--quick] [--out DIR]`: labnode and a peer doing the same work, side by side
/// in one run, as ratios. The measurements are the scripts in Benchmarks/, each inside network
/// namespaces it creates and removes; this command checks that the peers are installed, runs
/// the scripts one after another and writes what they found: a table, bench.json, bench.md and
/// pod-start.png.
struct BenchRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Measure labnode beside its peers in one run (the default: `labnode bench`).",
        discussion: "Needs root (it creates network namespaces) and the peers `sudo scripts/setup --bench` installs."
    )

    @Flag(help: "Short runs and smaller sizes, under 2 minutes: a smoke test, not figures to quote.")
    var quick = false
    @Option(help: "Where to write bench.json, bench.md, pod-start.png and each script's log (default: Benchmarks/results, beside the scripts' own tables).")
    var out: String?
    @Option(help: "The Benchmarks directory of a labnode checkout (default: found from here or from this binary).")
    var scripts: String?

    /// One measurement script: the tools it runs and the rows it must give.
    struct Script {
        var file: String
        var tools: [String]
        var rows: [String]
    }

    var proxySizes: [Int] { quick ? [100, 1000] : [1000, 10_000] }
    /// The proxy modes service-ready.sh measures a new Service's first connection in.
    static let proxyModes = ["iptables", "nftables", "userspace"]

    var plan: [Script] {
        [
            Script(file: "api.sh", tools: ["wrk", "nginx", "curl", "dig", "python3"] + (quick ? [] : ["etcd"]),
                   rows: ["up-first", "up-second", "idle-rss", "idle-rss-api-only", "idle-cluster", "api-get"] + (quick ? [] : ["api-create"])),
            Script(file: "pods.sh", tools: ["crun", "python3"], rows: ["pod-start-p50", "pod-start-p99"]),
            Script(file: "proxy.sh", tools: ["iptables-restore", "python3"],
                   rows: proxySizes.flatMap { ["proxy-full-\($0)", "proxy-change-\($0)"] }),
            Script(file: "service-ready.sh", tools: ["nft", "python3"],
                   rows: Self.proxyModes.flatMap { ["service-first-connection-\($0)", "service-first-connection-\($0)-p90"] }),
            Script(file: "dns.sh", tools: ["dnsperf", "unbound", "dig", "curl", "python3"],
                   rows: ["dns-qps", "dns-p99"] + (quick ? [] : ["dns-qps-log"])),
        ]
    }

    /// The Debian package `scripts/setup --bench` installs each tool from.
    static let packages = ["wrk": "wrk", "nginx": "nginx-light", "etcd": "etcd-server", "crun": "crun", "dnsperf": "dnsperf",
                           "unbound": "unbound", "dig": "dnsutils", "curl": "curl", "python3": "python3", "iptables-restore": "iptables",
                           "nft": "nftables"]

    func run() async throws {
        try await Labnode.guarded {
            guard getuid() == 0 else {
                throw ValidationError("labnode bench needs root: it creates network namespaces and runs the peers in them (sudo labnode bench)")
            }
            let dir = try scripts ?? Self.findBenchmarks()
            var missing: [String] = []
            for tool in plan.flatMap(\.tools) where Self.which(tool) == nil && !missing.contains(tool) { missing.append(tool) }
            let kubectl = ProcessInfo.processInfo.environment["KUBECTL"] ?? Self.which("kubectl")
                ?? [dir + "/../.build-tools/bin/kubectl.1.37"].first { FileManager.default.isExecutableFile(atPath: $0) }
            if !missing.isEmpty || kubectl == nil {
                let names = missing.map { "\($0) (Debian package \(Self.packages[$0] ?? $0))" }
                    + (kubectl == nil ? ["kubectl (`scripts/setup --test` puts one in .build-tools/bin; or set KUBECTL)"] : [])
                FileHandle.standardError.write(Data("labnode bench: missing \(names.joined(separator: ", ")); `sudo scripts/setup --bench` installs the peers\n".utf8))
                throw ExitCode(2)
            }
            let outDir = URL(fileURLWithPath: out ?? dir + "/results").standardizedFileURL.path
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let rowsFile = outDir + "/rows.jsonl"
            try? FileManager.default.removeItem(atPath: rowsFile)
            let labnode = Self.selfExecutable()
            let env = ["LABNODE": labnode, "BENCH_ROWS": rowsFile, "KUBECTL": kubectl ?? "kubectl",
                       "SIZES": proxySizes.map(String.init).joined(separator: " ")]

            var failed: [String] = []
            let started = ContinuousClock.now
            for script in plan {
                let log = outDir + "/" + script.file.replacingOccurrences(of: ".sh", with: ".log")
                Self.say("bench: \(script.file)\(quick ? " --quick" : "") (log: \(log))")
                let t0 = ContinuousClock.now
                let status = try await Self.runScript(dir + "/" + script.file, quick: quick, env: env, log: log)
                let took = Self.seconds(ContinuousClock.now - t0)
                if status != 0 {
                    failed.append("\(script.file) exited \(status) (see \(log))")
                    Self.say("bench: \(script.file) failed with exit \(status) after \(took) s; its last lines:\n" + Self.tail(log, lines: 15))
                } else {
                    Self.say("bench: \(script.file) done in \(took) s")
                }
            }

            let measured = try Self.readRows(rowsFile)
            let report = BenchReport(measured: measured, expected: plan.flatMap(\.rows), failed: failed, quick: quick, labnode: labnode)
            try report.json.write(to: URL(fileURLWithPath: outDir + "/bench.json"))
            try report.markdown.write(toFile: outDir + "/bench.md", atomically: true, encoding: .utf8)
            let pods = report.rows.first { $0.id == "pod-start-p50" }?.samples
            let chart = PodStartChart.png(labnode: pods?["labnode"] ?? [], peer: pods?["peer"] ?? [], peerName: "crun: netns + veth + crun run")
            try Data(chart).write(to: URL(fileURLWithPath: outDir + "/pod-start.png"))

            Self.say("\n" + report.text)
            Self.say("A ratio below 1 is better for times and memory, above 1 for rates; \"published\" rows are the peers' own figures.")
            Self.say("Wrote \(outDir)/bench.json, bench.md and pod-start.png in \(Self.seconds(ContinuousClock.now - started)) s.")
            if !failed.isEmpty {
                throw ValidationError("some measurements failed: \(failed.joined(separator: "; "))")
            }
        }
    }

    /// Runs `bash SCRIPT [--quick]` with its output in `log`; returns its exit status.
    static func runScript(_ path: String, quick: Bool, env: [String: String], log: String) async throws -> Int32 {
        guard FileManager.default.createFile(atPath: log, contents: nil), let logHandle = FileHandle(forWritingAtPath: log) else {
            throw ValidationError("cannot write the log \(log)")
        }
        defer { try? logHandle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [path] + (quick ? ["--quick"] : [])
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        process.standardOutput = logHandle
        process.standardError = logHandle
        return try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: ValidationError("cannot run \(path): \(error)"))
            }
        }
    }

    static func readRows(_ path: String) throws -> [BenchRow] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try text.split(separator: "\n").map { line in
            do {
                return try decoder.decode(BenchRow.self, from: Data(line.utf8))
            } catch {
                throw ValidationError("a benchmark script wrote a row that is not valid JSON (\(error)): \(line)")
            }
        }
    }

    /// Benchmarks/ in the current directory, or in the checkout this binary was built in
    /// (.build*/release/labnode), or beside the installed image recipes.
    static func findBenchmarks() throws -> String {
        var candidates = [FileManager.default.currentDirectoryPath + "/Benchmarks"]
        var dir = URL(fileURLWithPath: selfExecutable()).deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.path + "/Benchmarks")
            dir = dir.deletingLastPathComponent()
        }
        candidates.append("/usr/local/share/labnode/Benchmarks")
        guard let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/lib.sh") }) else {
            throw ValidationError("no Benchmarks/ directory (with lib.sh) in \(candidates.joined(separator: ", ")); run labnode bench from a labnode checkout or pass --scripts DIR")
        }
        return URL(fileURLWithPath: found).standardizedFileURL.path
    }

    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    static func selfExecutable() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func tail(_ path: String, lines: Int) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    static func seconds(_ d: Duration) -> String {
        String(format: "%.1f", Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18)
    }

    static func say(_ s: String) { FileHandle.standardOutput.write(Data((s + "\n").utf8)) }
}
