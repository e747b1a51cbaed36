import Foundation

extension ImageStore {
    /// Loads every image of an archive into the store, keeping its names, and returns the
    /// normalised references, sorted.
    ///
    /// Accepted: an OCI image layout as a tar (`skopeo copy ... oci-archive:`, `ctr export`,
    /// `docker save` of Docker 25+), and a `docker save` tarball of any Docker version
    /// (`manifest.json` + per-layer tars), plain or gzip-compressed. Names come from
    /// `RepoTags`, `io.containerd.image.name` or `org.opencontainers.image.ref.name`; a name
    /// that is only a tag ("latest") is joined to `baseName` (as `ctr import --base-name`).
    /// A multi-platform index is reduced to this machine's manifest.
    public func importArchive(path: String, baseName: String? = nil) throws -> [String] {
        guard ImageFileSystem.exists(path) else {
            throw ImageError(.invalidArchive, "cannot import \(path): no such file")
        }
        return try withLock {
            let scratch = try ImageFileSystem.makeTemporaryDirectory(in: temporaryDirectory, prefix: "import-\(getpid())-")
            defer { try? ImageFileSystem.removeTree(scratch) }
            try ArchiveExtractor.extract(path, into: scratch)
            let imported: [String]
            if ImageFileSystem.exists(scratch + "/manifest.json") {
                imported = try importDockerSave(scratch, archive: path, baseName: baseName)
            } else if ImageFileSystem.exists(scratch + "/index.json") {
                imported = try importOCILayout(scratch, archive: path, baseName: baseName)
            } else {
                throw ImageError(
                    .invalidArchive,
                    "\(path) is neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)")
            }
            return Array(Set(imported)).sorted()
        }
    }

    // MARK: - OCI layout

    private func importOCILayout(_ scratch: String, archive: String, baseName: String?) throws -> [String] {
        let index = try Self.decode(OCIIndex.self, try ImageFileSystem.read(scratch + "/index.json"), what: "index.json of \(archive)")
        var imported: [String] = []
        for entry in index.manifests {
            guard let name = try Self.importName(entry.annotations, baseName: baseName, archive: archive) else { continue }
            var manifestDescriptor = entry
            if OCIMediaType.isIndex(entry.mediaType) {
                let data = try readArchiveBlob(scratch, entry.digest, archive: archive)
                let nested = try Self.decode(OCIIndex.self, data, what: "image index \(entry.digest) in \(archive)")
                manifestDescriptor = try Self.selectPlatform(nested, for: name)
            }
            guard OCIMediaType.isManifest(manifestDescriptor.mediaType) else {
                throw ImageError(.invalidArchive, "\(archive): \(name) points at a \(manifestDescriptor.mediaType), not an image manifest")
            }
            let manifestData = try readArchiveBlob(scratch, manifestDescriptor.digest, archive: archive)
            let manifest = try Self.decode(OCIManifest.self, manifestData, what: "manifest \(manifestDescriptor.digest) in \(archive)")
            for blob in [manifest.config] + manifest.layers {
                let source = scratch + "/blobs/sha256/" + blob.digest.hex
                guard ImageFileSystem.exists(source) else {
                    throw ImageError(.invalidArchive, "\(archive) lacks blob \(blob.digest) that \(name) needs")
                }
                _ = try ingestFile(source, mediaType: blob.mediaType, expected: blob.digest)
            }
            let stored = try writeBlob(manifestData, mediaType: manifestDescriptor.mediaType)
            try tag(name, manifest: stored)
            imported.append(name)
        }
        guard !imported.isEmpty else {
            throw ImageError(
                .invalidArchive, "\(archive) has no named image; give one with --base-name (e.g. --base-name myimage:latest)")
        }
        return imported
    }

    /// Reads a small JSON blob of the archive and checks its digest.
    private func readArchiveBlob(_ scratch: String, _ digest: ContentDigest, archive: String) throws -> Data {
        let path = scratch + "/blobs/sha256/" + digest.hex
        guard ImageFileSystem.exists(path) else { throw ImageError(.invalidArchive, "\(archive) lacks blob \(digest)") }
        let data = try ImageFileSystem.read(path)
        guard ContentDigest.of(data) == digest else {
            throw ImageError(.invalidArchive, "blob \(digest) in \(archive) does not match its digest")
        }
        return data
    }

    /// The normalised name an index entry is imported under, or nil for an unnamed entry
    /// when no base name was given (such entries are skipped; none at all is an error).
    static func importName(_ annotations: [String: String]?, baseName: String?, archive: String) throws -> String? {
        if let full = annotations?[OCIAnnotation.containerdName] { return try ImageReference.normalize(full) }
        guard let refName = annotations?[OCIAnnotation.refName] else {
            return try baseName.map { try ImageReference.normalize($0) }
        }
        // The OCI spec lets ref.name be a bare tag; only a base name can say whose tag it is.
        if let baseName {
            let base = try ImageReference(parsing: baseName)
            if !refName.contains("/"), !refName.contains(":"), !refName.contains("@") {
                return try ImageReference.normalize(base.repository + ":" + refName)
            }
        }
        if refName.contains("/") || refName.contains(":") || refName.contains("@") {
            return try ImageReference.normalize(refName)
        }
        throw ImageError(
            .invalidArchive,
            "\(archive) names its image only by the tag \"\(refName)\"; give the repository with --base-name (e.g. --base-name myimage)")
    }

    // MARK: - docker save

    private func importDockerSave(_ scratch: String, archive: String, baseName: String?) throws -> [String] {
        let entries = try Self.decode(
            [DockerSaveEntry].self, try ImageFileSystem.read(scratch + "/manifest.json"), what: "manifest.json of \(archive)")
        var imported: [String] = []
        for entry in entries {
            var names = try (entry.repoTags ?? []).map { try ImageReference.normalize($0) }
            if names.isEmpty, let baseName { names = [try ImageReference.normalize(baseName)] }
            guard !names.isEmpty else {
                throw ImageError(
                    .invalidArchive, "image \(entry.config) in \(archive) has no tag; give one with --base-name (e.g. --base-name myimage:latest)")
            }
            let configPath = scratch + "/" + (try ArchiveEntry.sanitizedPath(entry.config))
            guard ImageFileSystem.exists(configPath) else {
                throw ImageError(.invalidArchive, "\(archive) lacks \(entry.config), the config of \(names[0])")
            }
            let configData = try ImageFileSystem.read(configPath)
            let image = try Self.decode(OCIImageFile.self, configData, what: "\(entry.config) in \(archive)")
            let diffIDs = image.rootfs?.diffIDs ?? []
            guard diffIDs.isEmpty || diffIDs.count == entry.layers.count else {
                throw ImageError(
                    .invalidArchive, "\(names[0]) in \(archive) lists \(entry.layers.count) layers but its config has \(diffIDs.count)")
            }
            var layers: [OCIDescriptor] = []
            for (position, member) in entry.layers.enumerated() {
                let layerPath = scratch + "/" + (try ArchiveEntry.sanitizedPath(member))
                guard ImageFileSystem.exists(layerPath) else {
                    throw ImageError(.invalidArchive, "\(archive) lacks \(member), a layer of \(names[0])")
                }
                if try Self.isGzip(layerPath) {
                    layers.append(try ingestFile(layerPath, mediaType: OCIMediaType.ociLayerGzip, expected: nil))
                    continue
                }
                // Docker saves layers uncompressed; the store keeps gzip layers, as a push would.
                let writer = try makeCompressedBlobWriter()
                try Self.stream(layerPath) { try writer.write($0) }
                let result = try writer.finish()
                if !diffIDs.isEmpty, result.diffID != diffIDs[position] {
                    unlink(writer.path)
                    throw ImageError(
                        .invalidArchive, "layer \(member) of \(names[0]) in \(archive) has digest \(result.diffID), but its config expects \(diffIDs[position])")
                }
                layers.append(try commit(writer, result))
            }
            let config = try writeBlob(configData, mediaType: OCIMediaType.ociConfig)
            let manifest = try writeBlob(
                try Self.encode(OCIManifest(config: config, layers: layers)), mediaType: OCIMediaType.ociManifest)
            for name in names {
                try tag(name, manifest: manifest)
                imported.append(name)
            }
        }
        return imported
    }

    private static func isGzip(_ path: String) throws -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError.io("cannot open", path, errno: errno) }
        defer { close(fd) }
        var magic: [UInt8] = [0, 0]
        return read(fd, &magic, 2) == 2 && magic == [0x1f, 0x8b]
    }

    private static func stream(_ path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError.io("cannot open", path, errno: errno) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw ImageError.io("cannot read", path, errno: errno)
            }
            if count == 0 { return }
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }
}
