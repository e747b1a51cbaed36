import Foundation

/// Where labs come from: a `labs/` folder (the checkout's, or the installed copy) read at
/// run time, so an instructor can edit a lab without rebuilding; else the copies compiled
/// into the binary.
public struct LabCatalog: Sendable {
    public enum Source: Sendable, Equatable {
        case directory(String)
        case embedded
    }

    public let source: Source

    public init(source: Source) { self.source = source }

    /// `explicit` (--labs-dir), then `$LABNODE_LABS`, then a `labs/` folder next to or above
    /// the executable, then the installed copies, then the embedded ones.
    public static func locate(explicit: String?, executablePath: String) -> LabCatalog {
        if let explicit { return LabCatalog(source: .directory(explicit)) }
        if let env = ProcessInfo.processInfo.environment["LABNODE_LABS"], !env.isEmpty {
            return LabCatalog(source: .directory(env))
        }
        var directory = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("labs")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("services/lab.yaml").path) {
                return LabCatalog(source: .directory(candidate.path))
            }
            directory = directory.deletingLastPathComponent()
        }
        for installed in ["/usr/local/share/labnode/labs", "/usr/share/labnode/labs"]
        where FileManager.default.fileExists(atPath: installed + "/services/lab.yaml") {
            return LabCatalog(source: .directory(installed))
        }
        return LabCatalog(source: .embedded)
    }

    public func names() throws -> [String] {
        switch source {
        case .embedded: return EmbeddedLabs.files.keys.sorted()
        case .directory(let dir):
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return entries.filter { FileManager.default.fileExists(atPath: "\(dir)/\($0)/lab.yaml") }.sorted()
        }
    }

    public func load(_ name: String) throws -> Scenario {
        guard try names().contains(name) else {
            throw LabError("there is no lab named \(name) (\(describe)); `labnode lab list` shows the labs")
        }
        do {
            let read: (String) throws -> String = { file in try self.read(name, file) }
            return try Scenario.parse(yaml: try read("lab.yaml"), file: read)
        } catch let error as LabError {
            throw LabError("lab \(name) (\(describe)): \(error.description)")
        }
    }

    func read(_ lab: String, _ file: String) throws -> String {
        switch source {
        case .embedded:
            guard let text = EmbeddedLabs.files[lab]?[file] else { throw LabError("\(lab)/\(file) is not in the binary") }
            return text
        case .directory(let dir):
            do { return try String(contentsOfFile: "\(dir)/\(lab)/\(file)", encoding: .utf8) } catch {
                throw LabError("cannot read \(dir)/\(lab)/\(file): \(error.localizedDescription)")
            }
        }
    }

    public var describe: String {
        switch source {
        case .embedded: return "built into labnode"
        case .directory(let dir): return "from \(dir)"
        }
    }
}
