import ArgumentParser
import Foundation
import Runtime

/// `labnode image ...`: the node's local image store. There is no registry (labnode works
/// offline), so images come from recipes built out of installed packages, or from archives.
struct ImageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image",
        abstract: "Build, list, import and remove images in the node's local image store.",
        subcommands: [Build.self, List.self, Import.self, Remove.self]
    )

    /// The store lives in `<data-dir>/images`.
    static func store(_ dir: DataDirOption) throws -> ImageStore {
        try ImageStore(root: dir.dataDir + "/images")
    }

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build images from recipes (all of them when no NAME is given).")

        @OptionGroup var dir: DataDirOption
        @Option(name: .customLong("recipes"), help: "Folder of recipes (default: images/ of this checkout, else /usr/local/share/labnode/images).")
        var recipes: String?
        @Argument(help: "Recipe names, e.g. busybox nginx.")
        var names: [String] = []

        func run() async throws {
            try await Labnode.guarded {
                let executable = ImageCommand.executablePath()
                guard let folder = recipes ?? ImageBuilder.defaultRecipesDirectory(executablePath: executable) else {
                    throw ValidationError("no recipe folder found next to \(executable) or in /usr/local/share/labnode/images; pass --recipes DIR")
                }
                let store = try ImageCommand.store(dir)
                let builder = ImageBuilder(recipesDirectory: folder, variables: ["labnode": executable])
                let wanted = names.isEmpty ? try builder.recipeNames() : names
                for name in wanted {
                    let started = Date()
                    let built = try builder.build(name, into: store)
                    let seconds = Date().timeIntervalSince(started)
                    print("\(built.reference)  \(ImageCommand.shortDigest(built.digest))  layer \(ImageCommand.humanSize(built.layerSize))  "
                        + "built in \(String(format: "%.2f", seconds))s")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the images in the store.")

        @OptionGroup var dir: DataDirOption
        @Flag(name: .customLong("no-trunc"), help: "Show full digests.")
        var noTrunc = false
        @Flag(name: .shortAndLong, help: "Only show references.")
        var quiet = false

        func run() async throws {
            try await Labnode.guarded {
                let images = try ImageCommand.store(dir).list()
                if quiet {
                    images.forEach { print($0.reference) }
                    return
                }
                let now = Date()
                var rows = [["REFERENCE", "DIGEST", "SIZE", "CREATED"]]
                for image in images {
                    rows.append([
                        image.reference,
                        noTrunc ? image.digest : ImageCommand.shortDigest(image.digest),
                        ImageCommand.humanSize(image.size),
                        image.created.map { ImageCommand.humanDuration(now.timeIntervalSince($0)) + " ago" } ?? "N/A",
                    ])
                }
                print(ImageCommand.table(rows), terminator: "")
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load an OCI image layout tar or a docker save tarball into the store, keeping its tags.")

        @OptionGroup var dir: DataDirOption
        @Option(name: .customLong("base-name"), help: "Repository for images the archive names only by tag, or not at all.")
        var baseName: String?
        @Argument(help: "The archive (plain or gzip-compressed).")
        var file: String

        func run() async throws {
            try await Labnode.guarded {
                for reference in try ImageCommand.store(dir).importArchive(path: file, baseName: baseName) {
                    print("imported \(reference)")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove images from the store.")

        @OptionGroup var dir: DataDirOption
        @Argument(help: "References, e.g. nginx or docker.io/library/nginx:latest.")
        var references: [String]

        func validate() throws {
            if references.isEmpty { throw ValidationError("name at least one image to remove") }
        }

        func run() async throws {
            try await Labnode.guarded {
                let store = try ImageCommand.store(dir)
                for reference in references {
                    print("deleted \(try store.remove(reference))")
                }
            }
        }
    }

    // MARK: - Formatting, as docker images / crictl images print

    /// The running binary, which the `labnode` recipe copies into its image.
    static func executablePath() -> String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    static func shortDigest(_ digest: String) -> String {
        let hex = digest.hasPrefix("sha256:") ? digest.dropFirst("sha256:".count) : Substring(digest)
        return String(hex.prefix(12))
    }

    /// Decimal units with three significant digits ("1.06MB"), like Docker's HumanSize.
    static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000, unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return String(format: "%.3g", value) + units[unit]
    }

    /// Docker's rough "how long ago" wording ("About an hour", "3 weeks").
    static func humanDuration(_ interval: TimeInterval) -> String {
        let seconds = Int(interval)
        let minutes = seconds / 60
        let hours = seconds / 3600
        switch true {
        case seconds < 1: return "Less than a second"
        case seconds == 1: return "1 second"
        case seconds < 60: return "\(seconds) seconds"
        case minutes == 1: return "About a minute"
        case minutes < 60: return "\(minutes) minutes"
        case hours == 1: return "About an hour"
        case hours < 48: return "\(hours) hours"
        case hours < 24 * 7 * 2: return "\(hours / 24) days"
        case hours < 24 * 30 * 3: return "\(hours / 24 / 7) weeks"
        case hours < 24 * 365 * 2: return "\(hours / 24 / 30) months"
        default: return "\(hours / 24 / 365) years"
        }
    }

    /// Left-aligned columns separated by three spaces.
    static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column] + 3, withPad: " ", startingAt: 0)
            }.joined()
        }.joined(separator: "\n") + "\n"
    }
}
