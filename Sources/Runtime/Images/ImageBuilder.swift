import Foundation
import APIMachinery

/// Builds images offline from recipes (`images/<name>/recipe.json`) out of files that
/// installed Debian packages put on this machine, into an `ImageStore`.
///
/// Builds are reproducible: the layer's tar is sorted, every mtime is 0, owners are numeric
/// (root unless the recipe says otherwise) and the gzip header has no timestamp, so the same
/// recipe over the same host files gives the same layer digest. The config's `created` is the
/// newest mtime of the copied host files: stable until a package is upgraded, and a useful
/// "CREATED" column for `labnode image ls`.
public struct ImageBuilder: Sendable {
    /// The folder holding one sub-folder per recipe.
    public let recipesDirectory: String
    /// Values for `${name}` in recipe `from` paths, e.g. `["labnode": "/usr/local/bin/labnode"]`.
    public let variables: [String: String]

    public static let recipeFileName = "recipe.json"

    public init(recipesDirectory: String, variables: [String: String] = [:]) {
        self.recipesDirectory = recipesDirectory
        self.variables = variables
    }

    /// What a build produced.
    public struct BuiltImage: Hashable, Sendable {
        public let reference: String
        /// Manifest digest.
        public let digest: String
        public let imageID: String
        /// Digest of the single (compressed) layer.
        public let layerDigest: String
        /// Compressed layer size in bytes.
        public let layerSize: Int64
    }

    /// Names of the recipes in `recipesDirectory`, sorted.
    public func recipeNames() throws -> [String] {
        guard ImageFileSystem.isDirectory(recipesDirectory) else {
            throw ImageError(.recipe, "recipe folder \(recipesDirectory) does not exist")
        }
        return try ImageFileSystem.entries(of: recipesDirectory).filter {
            ImageFileSystem.exists(recipesDirectory + "/" + $0 + "/" + Self.recipeFileName)
        }
    }

    /// Reads `images/<name>/recipe.json`.
    public func recipe(named name: String) throws -> ImageRecipe {
        let file = recipesDirectory + "/" + name + "/" + Self.recipeFileName
        guard ImageFileSystem.exists(file) else {
            let known = (try? recipeNames())?.joined(separator: ", ") ?? ""
            throw ImageError(.recipe, "no recipe \"\(name)\" in \(recipesDirectory) (recipes: \(known.isEmpty ? "none" : known))")
        }
        return try ImageRecipe.decode(try ImageFileSystem.read(file), file: file)
    }

    /// Builds the named recipe into `store` and tags it.
    @discardableResult
    public func build(_ name: String, into store: ImageStore) throws -> BuiltImage {
        try build(recipe: try recipe(named: name), name: name, directory: recipesDirectory + "/" + name, into: store)
    }

    /// Builds `recipe` (whose `source` files are relative to `directory`) into `store`.
    @discardableResult
    public func build(recipe: ImageRecipe, name: String, directory: String, into store: ImageStore) throws -> BuiltImage {
        let reference = try ImageReference.normalize(recipe.reference ?? "\(name):latest")
        var assembly = Assembly(resolver: SharedLibraryResolver.host(), scratchDirectory: store.temporaryDirectory)
        defer { for file in assembly.temporaryFiles { unlink(file) } }
        do {
            try assemble(recipe, directory: directory, into: &assembly)
        } catch let error as ImageError {
            throw ImageError(error.code, "recipe \(name): \(error.message)")
        }
        let created = Timestamp.rfc3339(assembly.newestSource ?? Date(timeIntervalSince1970: 0))
        return try store.withLock {
            let writer = try store.makeCompressedBlobWriter()
            try LayerWriter.write(assembly.tree, to: writer)
            let written = try writer.finish()
            let layer = try store.commit(writer, written)
            let platform = ImagePlatform.host
            let image = OCIImageFile(
                created: created, architecture: platform.architecture, os: platform.os,
                config: recipe.config ?? ImageConfig(),
                rootfs: .init(diffIDs: [written.diffID]),
                history: [.init(created: created, createdBy: "labnode image build \(name)", emptyLayer: nil)])
            let config = try store.writeBlob(try ImageStore.encode(image), mediaType: OCIMediaType.ociConfig)
            let manifest = try store.writeBlob(
                try ImageStore.encode(OCIManifest(config: config, layers: [layer])), mediaType: OCIMediaType.ociManifest)
            try store.tag(reference, manifest: manifest)
            return BuiltImage(
                reference: reference, digest: manifest.digest.description, imageID: config.digest.description,
                layerDigest: layer.digest.description, layerSize: layer.size)
        }
    }

    /// What the recipe's copied files are now (path, size, mtime of each `copy` source): when
    /// it differs from the fingerprint saved at the last build, the image is stale. This is how
    /// the `labnode` image follows an upgraded binary instead of running the old one.
    public func sourceFingerprint(_ name: String) -> String {
        guard let recipe = try? recipe(named: name) else { return "" }
        return (recipe.copy ?? []).enumerated().map { index, copy in
            let path = (try? substitute(copy.from, field: "copy[\(index)]")) ?? copy.from
            var info = stat()
            guard stat(path, &info) == 0 else { return "\(path) missing" }
            return "\(path) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
        }.joined(separator: "\n")
    }

    /// The folder of recipes to use when none is given: an `images/` folder next to or above
    /// the executable (a checkout running its own build), else the installed copies.
    public static func defaultRecipesDirectory(executablePath: String) -> String? {
        var directory = ImageFileSystem.parent(of: (try? ImageFileSystem.realPath(executablePath)) ?? executablePath)
        while true {
            let candidate = directory + "/images"
            if ImageFileSystem.exists(candidate + "/busybox/" + recipeFileName) { return candidate }
            if directory == "/" { break }
            directory = ImageFileSystem.parent(of: directory)
        }
        for installed in ["/usr/local/share/labnode/images", "/usr/share/labnode/images"]
        where ImageFileSystem.exists(installed + "/busybox/" + recipeFileName) {
            return installed
        }
        return nil
    }

    // MARK: - Assembly

    /// The layer being put together and what it was made from.
    private struct Assembly {
        let resolver: SharedLibraryResolver
        /// Where stripped copies go: the store's scratch folder, which its garbage collection
        /// empties, so a build killed half-way (a `down` during `up`) leaves nothing in /tmp.
        let scratchDirectory: String
        var tree = LayerTree()
        var newestSource: Date?
        /// Stripped copies made for this build, removed once the layer is written.
        var temporaryFiles: [String] = []

        mutating func noteSource(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return }
            let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec))
            if newestSource.map({ modified > $0 }) ?? true { newestSource = modified }
        }
    }

    private func assemble(_ recipe: ImageRecipe, directory: String, into assembly: inout Assembly) throws {
        for (index, copy) in (recipe.copy ?? []).enumerated() {
            try addCopy(copy, field: "copy[\(index)]", into: &assembly)
        }
        for (index, links) in (recipe.linksFromCommand ?? []).enumerated() {
            try addLinks(links, field: "linksFromCommand[\(index)]", into: &assembly)
        }
        for (index, entry) in (recipe.directories ?? []).enumerated() {
            let field = "directories[\(index)]"
            try assembly.tree.addDirectory(
                entry.path, mode: try ImageRecipe.mode(entry.mode, default: 0o755, field: field),
                owner: .init(uid: entry.uid ?? 0, gid: entry.gid ?? 0))
        }
        for entry in recipe.symlinks ?? [] {
            try assembly.tree.addSymlink(entry.path, target: entry.target)
        }
        for (index, file) in (recipe.files ?? []).enumerated() {
            let field = "files[\(index)]"
            let bytes: [UInt8]
            switch (file.content, file.source) {
            case (let content?, nil):
                bytes = Array(content.utf8)
            case (nil, let source?):
                let path = source.hasPrefix("/") ? source : directory + "/" + source
                bytes = [UInt8](try ImageFileSystem.read(path))
            default:
                throw ImageError(.recipe, "\(field) (\(file.path)) needs exactly one of \"content\" and \"source\"")
            }
            try assembly.tree.addFile(
                file.path, content: .bytes(bytes), mode: try ImageRecipe.mode(file.mode, default: 0o644, field: field),
                owner: .init(uid: file.uid ?? 0, gid: file.gid ?? 0))
        }
    }

    private func addCopy(_ copy: ImageRecipe.Copy, field: String, into assembly: inout Assembly) throws {
        let source = try substitute(copy.from, field: field)
        guard let imagePath = copy.to ?? (copy.from.contains("${") ? nil : copy.from) else {
            throw ImageError(.recipe, "\(field) copies \(copy.from), which uses a variable, so it needs \"to\"")
        }
        var info = stat()
        guard stat(source, &info) == 0 else {
            throw ImageError(.recipe, "\(field) copies \(source), which is not on this machine (is its package installed?)")
        }
        let owner = LayerTree.Owner(uid: copy.uid ?? 0, gid: copy.gid ?? 0)
        let explicitMode = try copy.mode.map { try ImageRecipe.mode($0, default: 0, field: field) }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            try addDirectoryTree(source, at: imagePath, owner: owner, libraries: copy.libraries ?? false, into: &assembly)
        } else {
            // A top-level copy follows symlinks: the recipe names the file it wants.
            var content = source
            if copy.stripDebug ?? false, let stripped = Self.stripDebug(source, into: assembly.scratchDirectory) {
                assembly.temporaryFiles.append(stripped)
                content = stripped
            }
            try assembly.tree.addFile(
                imagePath, content: .hostFile(content), mode: explicitMode ?? UInt32(info.st_mode & 0o7777), owner: owner)
            assembly.noteSource(source)
            if copy.libraries ?? false { try addLibraries(of: source, at: imagePath, into: &assembly) }
        }
    }

    /// Copies a directory recursively in sorted order, keeping symlinks inside it as symlinks.
    private func addDirectoryTree(
        _ source: String, at imagePath: String, owner: LayerTree.Owner, libraries: Bool, into assembly: inout Assembly
    ) throws {
        var info = stat()
        guard stat(source, &info) == 0 else { throw ImageError.io("cannot inspect", source, errno: errno) }
        try assembly.tree.addDirectory(imagePath, mode: UInt32(info.st_mode & 0o7777), owner: owner)
        for name in try ImageFileSystem.entries(of: source) {
            let hostChild = source + "/" + name
            let imageChild = imagePath + "/" + name
            guard lstat(hostChild, &info) == 0 else { throw ImageError.io("cannot inspect", hostChild, errno: errno) }
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                try addDirectoryTree(hostChild, at: imageChild, owner: owner, libraries: libraries, into: &assembly)
            case S_IFLNK:
                try assembly.tree.addSymlink(imageChild, target: try ImageFileSystem.readLink(hostChild), owner: owner)
            case S_IFREG:
                try assembly.tree.addFile(
                    imageChild, content: .hostFile(hostChild), mode: UInt32(info.st_mode & 0o7777), owner: owner)
                assembly.noteSource(hostChild)
                if libraries { try addLibraries(of: hostChild, at: imageChild, into: &assembly) }
            default:
                // Sockets, fifos and devices are run-time things, never image content.
                continue
            }
        }
    }

    private func addLibraries(of hostPath: String, at imagePath: String, into assembly: inout Assembly) throws {
        for placement in try assembly.resolver.closure(of: hostPath, imagePath: "/" + (try LayerTree.normalize(imagePath))) {
            if assembly.tree.contains(placement.imagePath) { continue }
            var info = stat()
            guard stat(placement.hostPath, &info) == 0 else {
                throw ImageError.io("cannot inspect", placement.hostPath, errno: errno)
            }
            try assembly.tree.addFile(
                placement.imagePath, content: .hostFile(placement.hostPath), mode: UInt32(info.st_mode & 0o7777))
            assembly.noteSource(placement.hostPath)
        }
    }

    private func addLinks(_ links: ImageRecipe.LinksFromCommand, field: String, into assembly: inout Assembly) throws {
        let command = try links.command.map { try substitute($0, field: field) }
        let output = try Self.run(command, field: field)
        let target = try LayerTree.normalize(links.target)
        for line in output.split(whereSeparator: \.isNewline) {
            let path = line.trimmingCharacters(in: .whitespaces)
            if path.isEmpty { continue }
            let normalized = try LayerTree.normalize(path)
            if normalized == target { continue }
            try assembly.tree.addSymlink(normalized, target: "/" + target)
        }
    }

    private func substitute(_ text: String, field: String) throws -> String {
        var result = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ImageError(.recipe, "\(field): unclosed \"${\" in \(text)")
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = variables[name] else {
                throw ImageError(.recipe, "\(field) uses ${\(name)}, which this build was not given")
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        return result + rest
    }

    /// A copy of `path` without debug sections, or nil (no `strip` here, or it failed): the
    /// image then gets the file as it is, which only costs size.
    static func stripDebug(_ path: String, into directory: String) -> String? {
        guard let strip = ["/usr/bin/strip", "/bin/strip"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            return nil
        }
        let out = directory + "/strip-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        guard (try? run([strip, "--strip-debug", "-o", out, path], field: "stripDebug")) != nil else {
            unlink(out)
            return nil
        }
        return out
    }

    private static func run(_ command: [String], field: String) throws -> String {
        guard let executable = command.first else { throw ImageError(.recipe, "\(field): the command is empty") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(command.dropFirst())
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw ImageError(.recipe, "\(field): cannot run \(command.joined(separator: " ")): \(error.localizedDescription)")
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw ImageError(.recipe, "\(field): \(command.joined(separator: " ")) exited with status \(process.terminationStatus)")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
