import CArchive
import Foundation

/// Writes a `LayerTree` as a gzip-compressed tar, reproducibly: entries sorted, every mtime 0,
/// numeric owners only (no user names), and no timestamp in the gzip header. The same tree
/// and the same host file contents therefore always give the same layer digest.
enum LayerWriter {
    static func write(_ tree: LayerTree, to output: CompressedBlobWriter) throws {
        guard let archive = archive_write_new() else {
            throw ImageError(.archive, "cannot allocate a libarchive writer")
        }
        var closed = false
        defer {
            // After a failure, free() must not flush a half-written stream into the output.
            if !closed { archive_write_fail(archive) }
            archive_write_free(archive)
        }
        let context = TarContext(output: output)
        // pax_restricted writes plain ustar headers and adds pax records only when needed
        // (long names, large files), the form Docker's own layers use.
        try check(archive_write_set_format_pax_restricted(archive), archive, "select the tar format")
        try check(archive_write_set_bytes_per_block(archive, 0), archive, "disable blocking")
        try check(
            archive_write_open(archive, Unmanaged.passUnretained(context).toOpaque(), nil, tarContextCallback, nil),
            archive, "open the layer stream")

        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        for (path, node) in tree.sortedEntries {
            guard let entry = archive_entry_new() else { throw ImageError(.archive, "cannot allocate an archive entry") }
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname_utf8(entry, path)
            archive_entry_set_mtime(entry, 0, 0)
            var source: Int32 = -1
            defer { if source >= 0 { close(source) } }
            switch node {
            case .directory(let mode, let owner):
                setHeader(entry, type: labnode_ae_ifdir, mode: mode, owner: owner, size: 0)
            case .symlink(let target, let owner):
                setHeader(entry, type: labnode_ae_iflnk, mode: 0o777, owner: owner, size: 0)
                archive_entry_set_symlink_utf8(entry, target)
            case .file(.bytes(let bytes), let mode, let owner):
                setHeader(entry, type: labnode_ae_ifreg, mode: mode, owner: owner, size: Int64(bytes.count))
            case .file(.hostFile(let hostPath), let mode, let owner):
                source = open(hostPath, O_RDONLY | O_CLOEXEC)
                guard source >= 0 else { throw ImageError.io("cannot open", hostPath, errno: errno) }
                var info = stat()
                guard fstat(source, &info) == 0 else { throw ImageError.io("cannot inspect", hostPath, errno: errno) }
                setHeader(entry, type: labnode_ae_ifreg, mode: mode, owner: owner, size: Int64(info.st_size))
            }
            try check(archive_write_header(archive, entry), archive, "write the header of /\(path)", context)
            switch node {
            case .file(.bytes(let bytes), _, _):
                try bytes.withUnsafeBytes { raw in
                    try writeData(archive, raw, path: path, context: context)
                }
            case .file(.hostFile(let hostPath), _, _):
                let expected = archive_entry_size(entry)
                var total: Int64 = 0
                while true {
                    let count = read(source, buffer.baseAddress, buffer.count)
                    if count < 0 {
                        if errno == EINTR { continue }
                        throw ImageError.io("cannot read", hostPath, errno: errno)
                    }
                    if count == 0 { break }
                    total += Int64(count)
                    try writeData(archive, UnsafeRawBufferPointer(rebasing: buffer[0..<count]), path: path, context: context)
                }
                // A file that changed size mid-build would give a corrupt tar entry.
                guard total == expected else {
                    throw ImageError(.recipe, "\(hostPath) changed while it was being copied (\(expected) bytes expected, \(total) read)")
                }
            default:
                break
            }
        }
        try check(archive_write_close(archive), archive, "finish the layer stream", context)
        closed = true
    }

    private static func setHeader(_ entry: OpaquePointer, type: UInt32, mode: UInt32, owner: LayerTree.Owner, size: Int64) {
        archive_entry_set_filetype(entry, type)
        archive_entry_set_perm(entry, mode_t(mode & 0o7777))
        archive_entry_set_uid(entry, Int64(owner.uid))
        archive_entry_set_gid(entry, Int64(owner.gid))
        archive_entry_set_size(entry, size)
    }

    private static func writeData(
        _ archive: OpaquePointer, _ bytes: UnsafeRawBufferPointer, path: String, context: TarContext
    ) throws {
        guard !bytes.isEmpty else { return }
        let written = archive_write_data(archive, bytes.baseAddress, bytes.count)
        if written < 0 || context.failure != nil {
            throw context.failure ?? ImageError(.archive, "cannot write /\(path): \(ArchiveReader.message(archive))")
        }
    }

    private static func check(_ status: Int32, _ archive: OpaquePointer, _ what: String, _ context: TarContext? = nil) throws {
        if let failure = context?.failure { throw failure }
        if status < ARCHIVE_WARN {
            throw ImageError(.archive, "cannot \(what): \(ArchiveReader.message(archive))")
        }
    }
}

/// Carries the compressor into libarchive's C callback and brings its error back out.
private final class TarContext {
    let output: CompressedBlobWriter
    var failure: Error?

    init(output: CompressedBlobWriter) {
        self.output = output
    }
}

private func tarContextCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
    guard let client else { return -1 }
    let context = Unmanaged<TarContext>.fromOpaque(client).takeUnretainedValue()
    do {
        try context.output.write(UnsafeRawBufferPointer(start: buffer, count: length))
        return la_ssize_t(length)
    } catch {
        context.failure = error
        return -1
    }
}
