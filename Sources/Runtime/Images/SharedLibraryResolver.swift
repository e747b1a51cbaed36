import Foundation

/// Finds the shared libraries a dynamically linked program needs, the way the dynamic loader
/// would, and decides where each goes in an image so the loader finds it there too.
///
/// Search order per object, as ld.so: DT_RPATH (only when there is no DT_RUNPATH, and also
/// the executable's), DT_RUNPATH, the directories of /etc/ld.so.conf (what ld.so.cache is
/// built from), then the loader's built-in directories. An image has no ld.so.cache, so a
/// library found only through ld.so.conf (say /usr/local/lib) is placed in the first built-in
/// directory instead; everything else keeps its host path.
struct SharedLibraryResolver {
    /// One file to copy: read from `hostPath`, written at `imagePath`.
    struct Placement: Hashable {
        let hostPath: String
        let imagePath: String
    }

    /// Directories listed by /etc/ld.so.conf, in order.
    let configuredDirectories: [String]

    init(configuredDirectories: [String]) {
        self.configuredDirectories = configuredDirectories
    }

    /// A resolver that reads this machine's /etc/ld.so.conf.
    static func host() -> SharedLibraryResolver {
        var seen = Set<String>()
        let directories = readConfiguration("/etc/ld.so.conf", depth: 0).filter { seen.insert($0).inserted }
        return SharedLibraryResolver(configuredDirectories: directories)
    }

    /// The loader's built-in directories for an architecture (glibc, Debian multiarch first,
    /// then the lib64 layout other distributions use).
    static func systemDirectories(machine: UInt16, is64Bit: Bool) -> [String] {
        let triple: String?
        switch machine {
        case 62: triple = "x86_64-linux-gnu"
        case 183: triple = "aarch64-linux-gnu"
        case 3: triple = "i386-linux-gnu"
        case 40: triple = "arm-linux-gnueabihf"
        default: triple = nil
        }
        var directories: [String] = []
        if let triple { directories += ["/lib/\(triple)", "/usr/lib/\(triple)"] }
        if is64Bit { directories += ["/lib64", "/usr/lib64"] }
        return directories + ["/lib", "/usr/lib"]
    }

    /// Every file the loader needs to start `hostPath` placed at `imagePath`: its interpreter
    /// and its libraries, transitively, in a stable order. The program itself is not included.
    func closure(of hostPath: String, imagePath: String) throws -> [Placement] {
        guard let root = try ELFFile.read(path: hostPath) else { return [] }
        let system = Self.systemDirectories(machine: root.machine, is64Bit: root.is64Bit)
        var placements: [Placement] = []
        var placedImagePaths = Set<String>()
        var queue: [(host: String, image: String, elf: ELFFile)] = [(hostPath, imagePath, root)]
        var visitedHostFiles = Set<String>([(try? ImageFileSystem.realPath(hostPath)) ?? hostPath])

        func place(_ host: String, _ image: String) throws {
            guard placedImagePaths.insert(image).inserted else { return }
            placements.append(Placement(hostPath: host, imagePath: image))
            let real = (try? ImageFileSystem.realPath(host)) ?? host
            guard visitedHostFiles.insert(real).inserted, let elf = try ELFFile.read(path: host) else { return }
            queue.append((host, image, elf))
        }

        if let interpreter = root.interpreter {
            guard ImageFileSystem.exists(interpreter) else {
                throw ImageError(.recipe, "\(hostPath) needs the dynamic loader \(interpreter), which is not on this machine")
            }
            try place(interpreter, interpreter)
        }
        // ld.so reuses a library already loaded under the same name before searching, so a
        // library without a RUNPATH (libXCTest.so, say) still finds what the program loaded.
        var loaded: [String: (host: String, image: String)] = [:]
        var next = 0
        while next < queue.count {
            let object = queue[next]
            next += 1
            for name in object.elf.needed {
                let found = try loaded[name] ?? locate(name, for: object, root: root, rootPath: hostPath, system: system)
                loaded[name] = found
                try place(found.host, found.image)
            }
        }
        return placements
    }

    private func locate(
        _ name: String, for object: (host: String, image: String, elf: ELFFile), root: ELFFile, rootPath: String,
        system: [String]
    ) throws -> (host: String, image: String) {
        if name.contains("/") { return (name, name) }
        let hostOrigin = ImageFileSystem.parent(of: (try? ImageFileSystem.realPath(object.host)) ?? object.host)
        let imageOrigin = ImageFileSystem.parent(of: object.image)
        // (directory on the host, directory in the image)
        var candidates: [(String, String)] = []
        func expand(_ entries: [String]) {
            for entry in entries {
                if entry.contains("$ORIGIN") || entry.contains("${ORIGIN}") {
                    let host = entry.replacingOccurrences(of: "${ORIGIN}", with: hostOrigin)
                        .replacingOccurrences(of: "$ORIGIN", with: hostOrigin)
                    let image = entry.replacingOccurrences(of: "${ORIGIN}", with: imageOrigin)
                        .replacingOccurrences(of: "$ORIGIN", with: imageOrigin)
                    candidates.append(((host as NSString).standardizingPath, (image as NSString).standardizingPath))
                } else if entry.hasPrefix("/") {
                    candidates.append((entry, entry))
                }
                // Other tokens ($LIB, $PLATFORM) and relative entries are rare and skipped.
            }
        }
        if object.elf.runpath.isEmpty {
            expand(object.elf.rpath)
            if object.host != rootPath, root.runpath.isEmpty { expand(root.rpath) }
        }
        expand(object.elf.runpath)
        let fallback = system.first ?? "/lib"
        for directory in configuredDirectories {
            candidates.append((directory, system.contains(directory) ? directory : fallback))
        }
        for directory in system { candidates.append((directory, directory)) }

        for (hostDirectory, imageDirectory) in candidates {
            let path = hostDirectory + "/" + name
            guard ImageFileSystem.exists(path), !ImageFileSystem.isDirectory(path),
                let library = try? ELFFile.read(path: path),
                library.is64Bit == object.elf.is64Bit, library.machine == object.elf.machine
            else { continue }
            return (path, imageDirectory + "/" + name)
        }
        let searched = candidates.map(\.0).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        throw ImageError(
            .recipe, "\(object.host) needs \(name), which is not installed (searched \(searched.joined(separator: ", ")))")
    }

    /// Directories named by an ld.so.conf file, following `include` lines.
    private static func readConfiguration(_ path: String, depth: Int) -> [String] {
        guard depth < 8, let data = try? ImageFileSystem.read(path) else { return [] }
        var directories: [String] = []
        for rawLine in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            if line.isEmpty || line.hasPrefix("hwcap ") { continue }
            if line.hasPrefix("include ") || line.hasPrefix("include\t") {
                var pattern = String(line.dropFirst("include".count)).trimmingCharacters(in: .whitespaces)
                if !pattern.hasPrefix("/") { pattern = ImageFileSystem.parent(of: path) + "/" + pattern }
                for file in globbed(pattern) { directories += readConfiguration(file, depth: depth + 1) }
            } else {
                directories += line.split(whereSeparator: { $0 == ":" || $0 == "," || $0 == " " || $0 == "\t" })
                    .map(String.init).filter { $0.hasPrefix("/") }
            }
        }
        return directories
    }

    private static func globbed(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard glob(pattern, 0, nil, &result) == 0 else { return [] }
        var paths: [String] = []
        for index in 0..<Int(result.gl_pathc) {
            if let path = result.gl_pathv[index] { paths.append(String(cString: path)) }
        }
        return paths.sorted()
    }
}
