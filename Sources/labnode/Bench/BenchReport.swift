import Foundation

/// One figure: labnode's value beside a peer's, measured in the same run (or, for reference
/// rows, published by the peer's project). The scripts in Benchmarks/ write these as JSON lines.
struct BenchRow: Codable, Sendable {
    var id: String
    var figure: String
    var labnode: Double?
    var unit: String
    var peer: String
    var peerValue: Double?
    /// Every sample behind a percentile, for the chart: `labnode` and `peer`.
    var samples: [String: [Double]]?
    var ratio: Double?
    /// A reference row: the peer's figure is the one its project published, not measured here.
    var published: Bool?

    /// Times and memory: lower is better; rates (req/s, qps): higher is better.
    var higherIsBetter: Bool { unit.hasSuffix("/s") || unit == "qps" }
}

/// Figures the peers' projects published (docs/research/peers.md in the design notes), shown
/// beside the row they compare with; they were not measured here.
struct PublishedFigure {
    var id: String
    var after: String
    var peer: String
    var value: Double?

    static let all = [
        PublishedFigure(id: "up-kind", after: "up-first", value: 14_200,
                        peer: "published: kind v0.29.0 create command (time-to-k8s on a GitHub runner; 33.0 s to an app running and DNS answering)"),
        PublishedFigure(id: "up-k3d", after: "up-first", value: 12_600,
                        peer: "published: k3d v5.8.3 (k3s in Docker) create command (time-to-k8s; 19.9 s in all)"),
        PublishedFigure(id: "up-minikube", after: "up-first", value: 21_100,
                        peer: "published: minikube v1.36.0 start command (time-to-k8s; 50.8 s in all)"),
        PublishedFigure(id: "idle-k3s", after: "idle-cluster", value: 500,
                        peer: "published: k3s server idle, as users report it (k3s#2278, #3536)"),
        PublishedFigure(id: "idle-minikube", after: "idle-cluster", value: 1800,
                        peer: "published: the least memory minikube accepts for its node"),
        PublishedFigure(id: "idle-kind", after: "idle-cluster", value: nil,
                        peer: "published: none, kind has no sizing figure (kind#485, open since 2019)"),
    ]

    init(id: String, after: String, value: Double?, peer: String) {
        self.id = id
        self.after = after
        self.value = value
        self.peer = peer
    }
}

/// The run's rows in the issue's order, with ratios and the reference rows added.
struct BenchReport: Codable, Sendable {
    var date: String
    var quick: Bool
    var host: String
    var labnode: String
    var rows: [BenchRow]
    /// Scripts that failed, with the log to read.
    var failed: [String]

    /// The table's order: start-up and memory, pods, proxy, DNS, API.
    static let sections = ["up-", "idle-", "pod-", "proxy-", "dns-", "api-"]

    init(measured: [BenchRow], expected: [String], failed: [String], quick: Bool, labnode: String) {
        var rows: [BenchRow] = []
        for var row in measured {
            if let a = row.labnode, let b = row.peerValue, b > 0 { row.ratio = a / b }
            rows.append(row)
            for ref in PublishedFigure.all where ref.after == row.id {
                rows.append(BenchRow(id: ref.id, figure: row.figure, labnode: row.labnode, unit: row.unit, peer: ref.peer,
                                     peerValue: ref.value, ratio: ref.value.flatMap { v in row.labnode.map { $0 / v } }, published: true))
            }
        }
        // A figure a script should have given but did not still gets its line, saying so.
        for id in expected where !rows.contains(where: { $0.id == id }) {
            rows.append(BenchRow(id: id, figure: "\(id): no result (see the failed script's log)", unit: "", peer: ""))
        }
        let rank = { (row: BenchRow) in Self.sections.firstIndex { row.id.hasPrefix($0) } ?? Self.sections.count }
        self.rows = rows.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(\.element)
        self.failed = failed
        self.quick = quick
        self.labnode = labnode
        date = ISO8601DateFormatter().string(from: Date())
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        host = "\(ProcessInfo.processInfo.activeProcessorCount) cores, Linux \(release)"
    }

    static func value(_ v: Double?, _ unit: String) -> String {
        guard let v else { return "-" }
        switch unit {
        case "ms" where v >= 10_000: return String(format: "%.1f s", v / 1000)
        case "ms": return String(format: v < 100 ? "%.1f ms" : "%.0f ms", v)
        case "MB": return String(format: "%.0f MB", v)
        default: return "\(grouped(Int(v.rounded()))) \(unit)"
        }
    }

    /// 12345 -> "12,345".
    static func grouped(_ n: Int) -> String {
        var digits = String(n.magnitude), out = ""
        while digits.count > 3 {
            out = "," + digits.suffix(3) + out
            digits.removeLast(3)
        }
        return (n < 0 ? "-" : "") + digits + out
    }

    static func ratio(_ r: Double?) -> String { r.map { String(format: "%.2f", $0) } ?? "-" }

    /// The table for a terminal: figure, labnode, peer, ratio, then who the peer is.
    var text: String {
        let header = ["figure", "labnode", "peer", "ratio labnode/peer", "peer in the same run"]
        // A reference row sits under the row it compares with; its figure is not repeated.
        let cells = rows.map { [$0.published == true ? "" : $0.figure, Self.value($0.labnode, $0.unit), Self.value($0.peerValue, $0.unit), Self.ratio($0.ratio), $0.peer] }
        let widths = (0..<4).map { c in ([header] + cells).map { $0[c].count }.max() ?? 0 }
        func line(_ r: [String]) -> String {
            (0..<4).map { c in c == 0 ? r[c].padding(toLength: widths[c], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[c] - r[c].count) + r[c] }.joined(separator: "  ") + "  " + r[4]
        }
        return ([line(header)] + cells.map(line)).joined(separator: "\n") + "\n"
    }

    var markdown: String {
        var md = """
        # labnode beside its peers (\(date)\(quick ? ", --quick: a smoke test, not figures to quote" : ""))

        Every peer ran on the same machine in the same run, inside network namespaces the benchmark
        created, except the rows marked "published" (the peers' own figures, for reference). A ratio
        below 1 is better for times and memory, above 1 for rates.

        Machine: \(host). labnode: \(labnode).

        | figure | labnode | peer | ratio labnode/peer |
        |---|---|---|---|

        """
        for r in rows {
            let peer = r.peer.isEmpty ? "-" : "\(Self.value(r.peerValue, r.unit)): \(r.peer)"
            md += "| \(r.published == true ? "" : r.figure) | \(Self.value(r.labnode, r.unit)) | \(peer) | \(Self.ratio(r.ratio)) |\n"
        }
        md += """

        ![pod create -> Running, labnode and crun](pod-start.png)

        Pod start: labnode's figure runs from the API request to a watch reporting the pod Running
        (scheduling and the status write included); crun's is a new network namespace, a veth on a
        bridge and `crun run` of /bin/true in the same busybox rootfs, the runtime floor a kubelet adds to.
        Each script's own table, with more figures, is in Benchmarks/results/.

        """
        if !failed.isEmpty { md += "\nFailed: \(failed.joined(separator: "; "))\n" }
        return md
    }

    var json: Data {
        get throws {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return try encoder.encode(self)
        }
    }
}
