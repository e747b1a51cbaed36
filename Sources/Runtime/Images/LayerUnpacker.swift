import CArchive
import Foundation

/// Unpacks one layer blob into a directory that overlayfs can use as a `lowerdir`.
///
/// Everything but whiteouts goes through libarchive's disk writer, which restores modes,
/// times, xattrs, hard links and (as root) ownership, and refuses members that climb out
/// through `..` or through a symlink. Whiteouts become what overlayfs understands (see
/// `WhiteoutKind`); creating them needs CAP_MKNOD and CAP_SYS_ADMIN, so a layer that has
/// any can only be unpacked as root, which the node agent is.
enum LayerUnpacker {
    static func unpack(blob: String, into destinationPath: String) throws {
        let destination = try ImageFileSystem.realPath(destinationPath)
        chmod(destination, 0o755)
        let reader = try ArchiveReader(path: blob)
        guard let disk = archive_write_disk_new() else {
            throw ImageError(.archive, "cannot allocate a libarchive disk writer")
        }
        var options = ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
            | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT
        let isRoot = geteuid() == 0
        if isRoot { options |= ARCHIVE_EXTRACT_OWNER }
        archive_write_disk_set_options(disk, options)

        var opaqueDirectories: [String] = []
        do {
            while let entry = try reader.next() {
                guard let rawName = ArchiveEntry.path(entry) else {
                    throw ImageError(.archive, "\(blob) has a member without a readable name")
                }
                let name = try ArchiveEntry.sanitizedPath(rawName)
                switch WhiteoutKind.classify(name) {
                case .reserved:
                    continue
                case .opaque(let directory):
                    let path = directory.isEmpty ? destination : destination + "/" + directory
                    try ImageFileSystem.makeDirectories(path)
                    opaqueDirectories.append(path)
                    continue
                case .remove(let hidden):
                    try makeWhiteout(
                        at: destination + "/" + hidden, uid: archive_entry_uid(entry), gid: archive_entry_gid(entry),
                        chown: isRoot)
                    continue
                case .none:
                    break
                }
                archive_entry_copy_pathname(entry, name.isEmpty ? destination : destination + "/" + name)
                if let link = ArchiveEntry.hardlink(entry) {
                    archive_entry_copy_hardlink(entry, destination + "/" + (try ArchiveEntry.sanitizedPath(link)))
                }
                try check(archive_write_header(disk, entry), disk, "cannot extract \(rawName) from \(blob)")
                if archive_entry_size(entry) > 0 {
                    try copyData(from: reader, to: disk, member: rawName)
                }
                try check(archive_write_finish_entry(disk), disk, "cannot finish \(rawName) from \(blob)")
            }
            // Closing applies the directory modes and times that libarchive defers to the end.
            try check(archive_write_close(disk), disk, "cannot finish unpacking \(blob)")
            archive_write_free(disk)
        } catch {
            archive_write_free(disk)
            throw error
        }
        for directory in opaqueDirectories {
            guard lsetxattr(directory, WhiteoutKind.overlayOpaqueXattr, "y", 1, 0) == 0 else {
                let code = errno
                throw ImageError(
                    .io, "cannot mark \(directory) opaque (\(WhiteoutKind.overlayOpaqueXattr)=y): "
                        + String(cString: strerror(code)) + (code == EPERM ? " (setting trusted.* xattrs needs root)" : ""))
            }
        }
    }

    /// overlayfs's whiteout: a character device with device number 0/0.
    private static func makeWhiteout(at path: String, uid: Int64, gid: Int64, chown: Bool) throws {
        try ImageFileSystem.makeDirectories((path as NSString).deletingLastPathComponent)
        unlink(path)
        guard mknod(path, S_IFCHR | 0o000, 0) == 0 else {
            let code = errno
            throw ImageError(
                .io, "cannot create the overlayfs whiteout \(path): " + String(cString: strerror(code))
                    + (code == EPERM ? " (creating device nodes needs root)" : ""))
        }
        if chown, lchown(path, uid_t(truncatingIfNeeded: uid), gid_t(truncatingIfNeeded: gid)) != 0 {
            throw ImageError.io("cannot chown whiteout", path, errno: errno)
        }
    }

    private static func copyData(from reader: ArchiveReader, to disk: OpaquePointer, member: String) throws {
        var block: UnsafeRawPointer?
        var size = 0
        var offset: la_int64_t = 0
        while true {
            let status = archive_read_data_block(reader.handle, &block, &size, &offset)
            if status == ARCHIVE_EOF { return }
            guard status >= ARCHIVE_WARN else { throw reader.failure("cannot read \(member) in") }
            let written = archive_write_data_block(disk, block, size, offset)
            guard written >= la_ssize_t(ARCHIVE_WARN) else {
                throw ImageError(.archive, "cannot write \(member): \(ArchiveReader.message(disk))")
            }
        }
    }

    /// Warnings (an xattr the file system refuses, say) do not stop an unpack; failures do.
    private static func check(_ status: Int32, _ archive: OpaquePointer, _ what: String) throws {
        if status < ARCHIVE_WARN {
            throw ImageError(.archive, "\(what): \(ArchiveReader.message(archive))")
        }
    }
}
