import Foundation

/// The files of one layer being built, held in memory until they are written out as a tar.
///
/// Paths are relative to the image root ("bin/sh"). Parents are created as root-owned 0755
/// directories when missing. Adding two different things at one path is an error, because a
/// silent "last one wins" would hide recipe mistakes; adding the same thing twice is fine
/// (two binaries often share a library).
struct LayerTree {
    struct Owner: Hashable {
        var uid: Int = 0
        var gid: Int = 0
    }

    enum Content: Hashable {
        /// Bytes read from this host file when the layer is written.
        case hostFile(String)
        case bytes([UInt8])
    }

    enum Node: Hashable {
        case directory(mode: UInt32, owner: Owner)
        case file(Content, mode: UInt32, owner: Owner)
        case symlink(target: String, owner: Owner)
    }

    private(set) var nodes: [String: Node] = [:]
    /// Directories created implicitly as parents; an explicit entry may still set their mode.
    private var implicitDirectories: Set<String> = []

    /// Turns "/a/./b/" into "a/b"; refuses "..", which has no meaning in an image path.
    static func normalize(_ path: String) throws -> String {
        var parts: [Substring] = []
        for component in path.split(separator: "/") where component != "." {
            if component == ".." { throw ImageError(.recipe, "image path \"\(path)\" may not contain \"..\"") }
            parts.append(component)
        }
        guard !parts.isEmpty else { throw ImageError(.recipe, "image path \"\(path)\" names the root directory") }
        return parts.joined(separator: "/")
    }

    mutating func addDirectory(_ path: String, mode: UInt32 = 0o755, owner: Owner = Owner()) throws {
        let key = try Self.normalize(path)
        try ensureParents(of: key)
        let node = Node.directory(mode: mode, owner: owner)
        if let existing = nodes[key] {
            guard case .directory = existing else { throw conflict(key, existing, node) }
            if !implicitDirectories.contains(key), existing != node { throw conflict(key, existing, node) }
        }
        implicitDirectories.remove(key)
        nodes[key] = node
    }

    mutating func addFile(_ path: String, content: Content, mode: UInt32, owner: Owner = Owner()) throws {
        try add(path, .file(content, mode: mode, owner: owner))
    }

    mutating func addSymlink(_ path: String, target: String, owner: Owner = Owner()) throws {
        try add(path, .symlink(target: target, owner: owner))
    }

    func contains(_ path: String) -> Bool {
        guard let key = try? Self.normalize(path) else { return false }
        return nodes[key] != nil
    }

    /// Entries in tar order: sorted bytewise, which puts every directory before its contents.
    var sortedEntries: [(path: String, node: Node)] {
        nodes.keys
            .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            .compactMap { key in nodes[key].map { (key, $0) } }
    }

    private mutating func add(_ path: String, _ node: Node) throws {
        let key = try Self.normalize(path)
        try ensureParents(of: key)
        if let existing = nodes[key], existing != node { throw conflict(key, existing, node) }
        nodes[key] = node
    }

    private mutating func ensureParents(of key: String) throws {
        var parent = ""
        for component in key.split(separator: "/").dropLast() {
            parent = parent.isEmpty ? String(component) : parent + "/" + component
            switch nodes[parent] {
            case .directory:
                continue
            case .none:
                nodes[parent] = .directory(mode: 0o755, owner: Owner())
                implicitDirectories.insert(parent)
            case .some(let other):
                throw ImageError(
                    .recipe, "/\(key) needs /\(parent) to be a directory, but the recipe already made it \(Self.describe(other))")
            }
        }
    }

    private func conflict(_ key: String, _ existing: Node, _ new: Node) -> ImageError {
        ImageError(.recipe, "/\(key) is defined twice: as \(Self.describe(existing)) and as \(Self.describe(new))")
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .directory(let mode, _): return "a directory (mode \(String(mode, radix: 8)))"
        case .file(.hostFile(let source), _, _): return "a copy of \(source)"
        case .file(.bytes, _, _): return "an inline file"
        case .symlink(let target, _): return "a symlink to \(target)"
        }
    }
}
