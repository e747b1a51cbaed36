import CArchive
import Foundation

/// Extracts an archive to import (an OCI layout or a `docker save` tarball) into a scratch
/// directory. Only what such archives contain is written: directories and regular files.
/// Links between members (old `docker save` links duplicate layers to one another) become
/// hard links to the member they name inside the scratch directory; a link that points
/// anywhere else is refused, so an archive can never pull host files into the store.
enum ArchiveExtractor {
    static func extract(_ archive: String, into scratch: String) throws {
        let reader = try ArchiveReader(path: archive)
        // (link path, target path), both relative to the scratch directory.
        var links: [(String, String)] = []
        var sawMember = false
        while let entry = try reader.next() {
            sawMember = true
            guard let rawName = ArchiveEntry.path(entry) else {
                throw ImageError(.invalidArchive, "\(archive) has a member without a readable name")
            }
            let name = try ArchiveEntry.sanitizedPath(rawName)
            if name.isEmpty { continue }
            let destination = scratch + "/" + name
            if let target = ArchiveEntry.hardlink(entry) {
                links.append((name, try ArchiveEntry.sanitizedPath(target)))
            } else if let symlink = archive_entry_symlink(entry).map({ String(cString: $0) }) {
                let base = symlink.hasPrefix("/") ? "" : ImageFileSystem.parent(of: name)
                let joined = base.isEmpty || base == "/" ? symlink : base + "/" + symlink
                links.append((name, try ArchiveEntry.resolvedLinkTarget(joined)))
            } else if ArchiveEntry.isDirectory(entry) {
                try ImageFileSystem.makeDirectories(destination)
            } else if ArchiveEntry.isRegularFile(entry) {
                try ImageFileSystem.makeDirectories(ImageFileSystem.parent(of: destination))
                try writeMember(reader, to: destination)
            }
            // Devices, fifos and the like have no place in an image archive's outer tar.
        }
        guard sawMember else { throw ImageError(.invalidArchive, "\(archive) is empty") }
        // Links may point at links; resolve in rounds until nothing changes.
        var pending = links
        while !pending.isEmpty {
            var unresolved: [(String, String)] = []
            for (name, target) in pending {
                let source = scratch + "/" + target
                var info = stat()
                guard lstat(source, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
                    unresolved.append((name, target))
                    continue
                }
                let destination = scratch + "/" + name
                try ImageFileSystem.makeDirectories(ImageFileSystem.parent(of: destination))
                unlink(destination)
                guard link(source, destination) == 0 else { throw ImageError.io("cannot link", destination, errno: errno) }
            }
            if unresolved.count == pending.count {
                let (name, target) = unresolved[0]
                throw ImageError(.invalidArchive, "\(archive): member \(name) links to \(target), which is not a file in the archive")
            }
            pending = unresolved
        }
    }

    private static func writeMember(_ reader: ArchiveReader, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw ImageError.io("cannot create", path, errno: errno) }
        defer { close(fd) }
        try reader.forEachChunk { chunk in
            var offset = 0
            while offset < chunk.count, let base = chunk.baseAddress {
                let written = write(fd, base + offset, chunk.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.io("cannot write", path, errno: errno)
                }
                offset += written
            }
        }
    }
}
