import Foundation
import APIMachinery

/// The node's local image store: a content-addressed OCI image layout on disk.
///
/// ```
/// <root>/oci-layout                 {"imageLayoutVersion":"1.0.0"}
/// <root>/index.json                 one manifest descriptor per reference, named by the
///                                   annotation org.opencontainers.image.ref.name
/// <root>/blobs/sha256/<hex>         manifests, configs, layers (gzip tar)
/// <root>/unpacked/<layer hex>/      each layer unpacked once, ready as an overlayfs lowerdir
/// <root>/tmp/                       scratch space on the same file system, for atomic renames
/// <root>/.lock                      flock taken by every change (build, import, remove)
/// ```
///
/// The store is a value holding only its path; every method goes to disk, so the daemon and
/// a `labnode image ...` command can use one store at the same time. Writers serialise on the
/// lock file; readers (`list`, `resolve`) rely on index.json being replaced atomically.
/// Methods block on file I/O: call them off latency-sensitive tasks.
public struct ImageStore: Sendable {
    /// Absolute path of the layout.
    public let root: String

    /// Opens the store at `root`, creating an empty layout if there is none.
    public init(root: String) throws {
        let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
        self.root = (absolute as NSString).standardizingPath
        for directory in [self.root, blobsDirectory, unpackedDirectory, temporaryDirectory] {
            try ImageFileSystem.makeDirectories(directory)
        }
        if !ImageFileSystem.exists(self.root + "/oci-layout") {
            try ImageFileSystem.writeAtomically(Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8), to: self.root + "/oci-layout")
        }
        if !ImageFileSystem.exists(indexPath) {
            try ImageFileSystem.writeAtomically(try Self.encode(OCIIndex()), to: indexPath)
        }
    }

    // MARK: - Public operations

    /// Every named image, sorted by reference.
    public func list() throws -> [ImageSummary] {
        try readIndex().manifests.compactMap { descriptor -> ImageSummary? in
            guard let reference = descriptor.annotations?[OCIAnnotation.refName] else { return nil }
            let manifest = try readManifest(descriptor, for: reference)
            let configData = try readBlob(manifest.config.digest, for: reference)
            let image = try Self.decode(OCIImageFile.self, configData, what: "config of \(reference)")
            let size = descriptor.size + manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size }
            return ImageSummary(
                reference: reference, digest: descriptor.digest.description, imageID: manifest.config.digest.description,
                size: size, created: image.created.flatMap(Timestamp.parse).map { Date(timeIntervalSince1970: $0) })
        }.sorted { $0.reference < $1.reference }
    }

    /// Whether `reference` names an image in the store (false also for an invalid reference).
    public func contains(_ reference: String) -> Bool {
        guard let index = try? readIndex() else { return false }
        return (try? find(reference, in: index)) != nil
    }

    /// Finds `reference` (any spelling Docker accepts, or a `sha256:` manifest digest or
    /// image ID), unpacks its layers if not yet done, and returns what a container needs.
    public func resolve(_ reference: String) throws -> ResolvedImage {
        let match = try find(reference, in: try readIndex())
        let normalized = match.reference
        let descriptor = match.descriptor
        let manifest = try readManifest(descriptor, for: normalized)
        let configData = try readBlob(manifest.config.digest, for: normalized)
        let image = try Self.decode(OCIImageFile.self, configData, what: "config of \(normalized)")
        var directories: [String] = []
        for layer in manifest.layers {
            directories.append(try unpackedLayer(layer, for: normalized))
        }
        return ResolvedImage(
            reference: normalized, digest: descriptor.digest.description, imageID: manifest.config.digest.description,
            config: image.config ?? ImageConfig(), layerDirectories: directories)
    }

    /// Removes the reference, then every blob and unpacked layer no other image uses.
    /// The caller must make sure no container still runs from the image: its unpacked
    /// layers are deleted if nothing else shares them.
    /// - Returns: the normalised reference that was removed.
    @discardableResult
    public func remove(_ reference: String) throws -> String {
        try withLock {
            var index = try readIndex()
            let match = try find(reference, in: index)
            // By name, only that name goes; by digest, every name of that image (crictl rmi).
            index.manifests.removeAll {
                $0.annotations?[OCIAnnotation.refName] == match.reference
                    || (match.byDigest && $0.digest == match.descriptor.digest)
            }
            try writeIndex(index)
            try collectGarbage(index: index, includingUnpacked: true)
            return match.reference
        }
    }

    /// Deletes blobs and unpacked layers that no image references, and leftovers of
    /// interrupted unpacks and imports.
    public func prune() throws {
        try withLock {
            try collectGarbage(index: try readIndex(), includingUnpacked: true)
        }
    }

    /// Removes the scratch files of writers that died half-way (a daemon stopped while it
    /// built an image leaves a 130 MB stripped copy of itself). Each scratch name carries the
    /// pid of its maker, `<kind>-<pid>-<random>`; a file whose maker still runs is kept.
    /// Returns the names removed.
    @discardableResult
    public func sweepAbandonedScratch() -> [String] {
        guard let names = try? ImageFileSystem.entries(of: temporaryDirectory) else { return [] }
        var removed: [String] = []
        for name in names {
            let parts = name.split(separator: "-")
            guard parts.count >= 3, let pid = Int32(parts[1]), pid > 0 else { continue }
            if kill(pid, 0) == 0 || errno == EPERM { continue }
            if (try? ImageFileSystem.removeTree(temporaryDirectory + "/" + name)) != nil { removed.append(name) }
        }
        return removed
    }

    // MARK: - Paths

    var indexPath: String { root + "/index.json" }
    var blobsDirectory: String { root + "/blobs/sha256" }
    var unpackedDirectory: String { root + "/unpacked" }
    var temporaryDirectory: String { root + "/tmp" }
    var lockPath: String { root + "/.lock" }

    func blobPath(_ digest: ContentDigest) -> String { blobsDirectory + "/" + digest.hex }

    // MARK: - Index

    func readIndex() throws -> OCIIndex {
        try Self.decode(OCIIndex.self, try ImageFileSystem.read(indexPath), what: indexPath)
    }

    func writeIndex(_ index: OCIIndex) throws {
        var sorted = index
        sorted.manifests.sort {
            ($0.annotations?[OCIAnnotation.refName] ?? "", $0.digest.hex) < ($1.annotations?[OCIAnnotation.refName] ?? "", $1.digest.hex)
        }
        try ImageFileSystem.writeAtomically(try Self.encode(sorted), to: indexPath)
    }

    /// Points `normalized` at `manifest`, replacing what it pointed at before. Call under the
    /// lock. Blobs the old image alone used are deleted; unpacked layers are kept, because a
    /// running container may still use them (`prune` removes them).
    func tag(_ normalized: String, manifest: OCIDescriptor) throws {
        var index = try readIndex()
        index.manifests.removeAll { $0.annotations?[OCIAnnotation.refName] == normalized }
        var entry = manifest
        entry.annotations = [OCIAnnotation.refName: normalized]
        entry.platform = nil
        index.manifests.append(entry)
        try writeIndex(index)
        try collectGarbage(index: index, includingUnpacked: false)
    }

    /// What a reference found in the index.
    struct Match {
        /// The normalised reference; for a bare digest, the first name carrying it.
        let reference: String
        let descriptor: OCIDescriptor
        /// The text was a bare `sha256:` digest rather than a name.
        let byDigest: Bool
    }

    /// The index entry `text` names.
    func find(_ text: String, in index: OCIIndex) throws -> Match {
        if let digest = try? ContentDigest(parsing: text) {
            // A bare digest: a manifest digest, or an image ID (config digest) as crictl allows.
            let found = index.manifests.first { $0.digest == digest }
                ?? index.manifests.first { (try? readManifest($0, for: text))?.config.digest == digest }
            guard let found else { throw ImageError.notFound(text, available: availableNames(index)) }
            return Match(reference: found.annotations?[OCIAnnotation.refName] ?? text, descriptor: found, byDigest: true)
        }
        let reference = try ImageReference(parsing: text)
        let normalized = reference.normalized
        let match: OCIDescriptor?
        if let digest = reference.digest {
            // name@digest matches any tag of that repository whose manifest has the digest.
            match = index.manifests.first { descriptor in
                guard descriptor.digest.description == digest,
                    let name = descriptor.annotations?[OCIAnnotation.refName],
                    let stored = try? ImageReference(parsing: name)
                else { return false }
                return stored.repository == reference.repository
            }
        } else {
            match = index.manifests.first { $0.annotations?[OCIAnnotation.refName] == normalized }
        }
        guard let match else { throw ImageError.notFound(normalized, available: availableNames(index)) }
        return Match(reference: normalized, descriptor: match, byDigest: false)
    }

    private func availableNames(_ index: OCIIndex) -> [String] {
        var seen = Set<String>()
        return index.manifests.compactMap { descriptor -> String? in
            guard let name = descriptor.annotations?[OCIAnnotation.refName] else { return nil }
            let familiar = (try? ImageReference(parsing: name).familiar) ?? name
            return seen.insert(familiar).inserted ? familiar : nil
        }
    }

    // MARK: - Blobs

    /// Reads a blob and checks it still has its digest.
    func readBlob(_ digest: ContentDigest, for reference: String) throws -> Data {
        let path = blobPath(digest)
        guard ImageFileSystem.exists(path) else {
            throw ImageError(
                .corruptStore, "blob \(digest) of \(reference) is missing from the image store at \(root); build or import the image again")
        }
        let data = try ImageFileSystem.read(path)
        guard ContentDigest.of(data) == digest else {
            throw ImageError(.corruptStore, "blob \(digest) of \(reference) is damaged (its content has another digest)")
        }
        return data
    }

    /// The image manifest for `descriptor`; for an image index, the entry for this machine.
    func readManifest(_ descriptor: OCIDescriptor, for reference: String) throws -> OCIManifest {
        let data = try readBlob(descriptor.digest, for: reference)
        if OCIMediaType.isIndex(descriptor.mediaType) {
            let nested = try Self.decode(OCIIndex.self, data, what: "image index of \(reference)")
            let chosen = try Self.selectPlatform(nested, for: reference)
            return try readManifest(chosen, for: reference)
        }
        return try Self.decode(OCIManifest.self, data, what: "manifest of \(reference)")
    }

    /// Picks this machine's manifest from a multi-platform index.
    static func selectPlatform(_ index: OCIIndex, for reference: String) throws -> OCIDescriptor {
        let host = ImagePlatform.host
        let candidates = index.manifests.filter { OCIMediaType.isManifest($0.mediaType) || $0.mediaType.isEmpty }
        if let exact = candidates.first(where: { $0.platform?.os == host.os && $0.platform?.architecture == host.architecture }) {
            return exact
        }
        if candidates.count == 1, let only = candidates.first, only.platform == nil { return only }
        let offered = candidates.compactMap { $0.platform.map { "\($0.os)/\($0.architecture)" } }
        throw ImageError(
            .notFound,
            "no matching manifest for \(host.os)/\(host.architecture) in the manifest list entries of \(reference) (it has: \(offered.joined(separator: ", ")))")
    }

    /// Stores `data` as a blob (idempotent) and returns its descriptor.
    func writeBlob(_ data: Data, mediaType: String) throws -> OCIDescriptor {
        let digest = ContentDigest.of(data)
        let path = blobPath(digest)
        if !ImageFileSystem.exists(path) { try ImageFileSystem.writeAtomically(data, to: path) }
        return OCIDescriptor(mediaType: mediaType, digest: digest, size: Int64(data.count))
    }

    /// A compressor writing into the store's scratch space; `commit` moves its file into place.
    func makeCompressedBlobWriter() throws -> CompressedBlobWriter {
        try CompressedBlobWriter(
            path: temporaryDirectory + "/blob-\(getpid())-\(UInt64.random(in: 0...UInt64.max))")
    }

    /// Moves a finished compressed blob to its digest's path.
    func commit(_ writer: CompressedBlobWriter, _ result: CompressedBlobWriter.Result) throws -> OCIDescriptor {
        let destination = blobPath(result.digest)
        if ImageFileSystem.exists(destination) {
            unlink(writer.path)
        } else if rename(writer.path, destination) != 0 {
            let code = errno
            unlink(writer.path)
            throw ImageError.io("cannot move a blob to", destination, errno: code)
        }
        return OCIDescriptor(mediaType: OCIMediaType.ociLayerGzip, digest: result.digest, size: result.size)
    }

    /// Copies a file into the blob store, hashing it on the way; refuses a digest mismatch.
    func ingestFile(_ source: String, mediaType: String, expected: ContentDigest?) throws -> OCIDescriptor {
        let temporary = temporaryDirectory + "/ingest-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw ImageError.io("cannot open", source, errno: errno) }
        defer { close(input) }
        let output = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw ImageError.io("cannot create", temporary, errno: errno) }
        var digest = StreamingSHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        do {
            while true {
                let count = read(input, buffer.baseAddress, buffer.count)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.io("cannot read", source, errno: errno)
                }
                if count == 0 { break }
                let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
                digest.update(chunk)
                var offset = 0
                while offset < count, let base = chunk.baseAddress {
                    let written = write(output, base + offset, count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        throw ImageError.io("cannot write", temporary, errno: errno)
                    }
                    offset += written
                }
            }
            guard fsync(output) == 0 else { throw ImageError.io("cannot sync", temporary, errno: errno) }
        } catch {
            close(output)
            unlink(temporary)
            throw error
        }
        close(output)
        let actual = digest.finish()
        if let expected, expected != actual {
            unlink(temporary)
            throw ImageError(.invalidArchive, "\(source) should have digest \(expected) but has \(actual)")
        }
        let destination = blobPath(actual)
        if ImageFileSystem.exists(destination) {
            unlink(temporary)
        } else if rename(temporary, destination) != 0 {
            let code = errno
            unlink(temporary)
            throw ImageError.io("cannot move a blob to", destination, errno: code)
        }
        return OCIDescriptor(mediaType: mediaType, digest: actual, size: digest.count)
    }

    // MARK: - Unpacked layers

    /// The directory holding `layer` unpacked, unpacking it first if needed. A layer is
    /// unpacked into a scratch directory and renamed into place, so a crash never leaves a
    /// half-unpacked layer under its final name, and two racing unpacks both end up valid.
    func unpackedLayer(_ layer: OCIDescriptor, for reference: String) throws -> String {
        let destination = unpackedDirectory + "/" + layer.digest.hex
        if ImageFileSystem.isDirectory(destination) { return destination }
        let blob = blobPath(layer.digest)
        guard ImageFileSystem.exists(blob) else {
            throw ImageError(
                .corruptStore, "layer \(layer.digest) of \(reference) is missing from the image store at \(root); build or import the image again")
        }
        let scratch = try ImageFileSystem.makeTemporaryDirectory(in: unpackedDirectory, prefix: ".partial-\(layer.digest.short)-")
        do {
            try LayerUnpacker.unpack(blob: blob, into: scratch)
        } catch {
            try? ImageFileSystem.removeTree(scratch)
            throw ImageError(.archive, "cannot unpack layer \(layer.digest) of \(reference): \(error)")
        }
        if rename(scratch, destination) != 0 {
            let code = errno
            try? ImageFileSystem.removeTree(scratch)
            // Someone else finished the same layer first: theirs is as good as ours.
            guard code == EEXIST || code == ENOTEMPTY, ImageFileSystem.isDirectory(destination) else {
                throw ImageError.io("cannot move an unpacked layer to", destination, errno: code)
            }
        }
        return destination
    }

    // MARK: - Locking and garbage collection

    /// Runs `body` holding the store's lock. Not re-entrant: internal helpers never lock.
    func withLock<T>(_ body: () throws -> T) throws -> T {
        try ImageFileSystem.withExclusiveLock(lockPath, body)
    }

    /// Deletes unreferenced blobs (and, if asked, unpacked layers and scratch leftovers).
    private func collectGarbage(index: OCIIndex, includingUnpacked: Bool) throws {
        var live = Set<String>()
        var liveLayers = Set<String>()
        for descriptor in index.manifests {
            live.insert(descriptor.digest.hex)
            let name = descriptor.annotations?[OCIAnnotation.refName] ?? descriptor.digest.description
            if OCIMediaType.isIndex(descriptor.mediaType),
                let data = try? readBlob(descriptor.digest, for: name),
                let nested = try? Self.decode(OCIIndex.self, data, what: name)
            {
                // Keep every platform's manifest of an index, not only this machine's.
                live.formUnion(nested.manifests.map(\.digest.hex))
            }
            guard let manifest = try? readManifest(descriptor, for: name) else { continue }
            live.insert(manifest.config.digest.hex)
            for layer in manifest.layers {
                live.insert(layer.digest.hex)
                liveLayers.insert(layer.digest.hex)
            }
        }
        for name in try ImageFileSystem.entries(of: blobsDirectory) where !live.contains(name) {
            try ImageFileSystem.removeTree(blobsDirectory + "/" + name)
        }
        guard includingUnpacked else { return }
        for name in try ImageFileSystem.entries(of: unpackedDirectory) where !liveLayers.contains(name) {
            try ImageFileSystem.removeTree(unpackedDirectory + "/" + name)
        }
        for name in try ImageFileSystem.entries(of: temporaryDirectory) {
            try ImageFileSystem.removeTree(temporaryDirectory + "/" + name)
        }
    }

    // MARK: - JSON

    /// Sorted keys and unescaped slashes: the same value always gives the same bytes, so
    /// manifests and configs of reproducible builds have reproducible digests.
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return try encoder.encode(value)
        } catch {
            throw ImageError(.io, "cannot encode \(T.self) as JSON: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ data: Data, what: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch {
            throw ImageError(.corruptStore, "cannot read \(what): \(error)")
        }
    }
}
