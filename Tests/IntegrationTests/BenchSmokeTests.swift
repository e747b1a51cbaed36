import Foundation
import Testing

/// `labnode bench --quick` as CI runs it: every row printed, the JSON, markdown and PNG written.
/// Figures are not asserted (a shared CI machine cannot promise them).
@Suite("labnode bench --quick", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct BenchSmokeTests {
    static let rows = ["up-first", "up-kind", "up-k3d", "up-minikube", "up-second", "idle-rss", "idle-rss-api-only", "idle-cluster", "idle-k3s",
                       "idle-minikube", "idle-kind", "pod-start-p50", "pod-start-p99", "proxy-full-100", "proxy-change-100",
                       "proxy-full-1000", "proxy-change-1000", "service-first-connection-iptables",
                       "service-first-connection-nftables", "service-first-connection-userspace", "dns-qps", "dns-p99", "dns-rss", "api-get", "up-second-api"]

    @Test func quickRunPrintsEveryRowAndWritesItsReports() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-bench-\(UUID().uuidString.prefix(8))").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        var env: [String: String] = [:]
        if TestPaths.which("kubectl") == nil, let k = TestPaths.kubectl("1.37") { env["KUBECTL"] = k }
        let scripts = TestPaths.packageRoot.appendingPathComponent("Benchmarks").path
        let r = try Command.run([TestPaths.labnode, "bench", "--quick", "--out", out, "--scripts", scripts], env: env, timeout: 170)
        if r.code == 2 && r.err.contains("missing") {
            Issue.record("SKIPPED LOUDLY: a peer tool is missing; scripts/setup --test installs them: \(r.err)")
            return
        }
        #expect(r.code == 0, "\(r)")
        #expect(r.out.contains("ratio labnode/peer"), "\(r.out)")

        struct Report: Decodable {
            struct Row: Decodable { var id: String, figure: String, labnode: Double?, ratio: Double? }
            var rows: [Row]
        }
        let json = try #require(try? Data(contentsOf: URL(fileURLWithPath: out + "/bench.json")), "no bench.json: \(r)")
        let report = try JSONDecoder().decode(Report.self, from: json)
        for id in Self.rows {
            let row = try #require(report.rows.first { $0.id == id }, "row \(id) is missing from bench.json: \(r.out)")
            #expect(row.labnode != nil, "row \(id) has no labnode figure: \(row)")
            #expect(r.out.contains(row.figure), "row \(id) (\(row.figure)) is not in the printed table")
        }
        #expect(report.rows.first { $0.id == "pod-start-p50" }?.ratio != nil, "the pod row has no ratio labnode/peer")

        let md = (try? String(contentsOfFile: out + "/bench.md", encoding: .utf8)) ?? ""
        #expect(md.contains("ratio labnode/peer") && md.contains("pod-start.png"), "\(md)")
        let png = (try? Data(contentsOf: URL(fileURLWithPath: out + "/pod-start.png"))) ?? Data()
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "pod-start.png is not a PNG (\(png.count) bytes)")
        #expect(png.count > 1000, "pod-start.png is only \(png.count) bytes")
    }
}
