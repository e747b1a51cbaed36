import CArchive
import Foundation

/// Gzip-compresses a byte stream into a file while hashing both sides: the uncompressed
/// stream's sha256 is the layer's `diff_id`, the compressed file's sha256 is its blob digest.
///
/// The gzip header carries no timestamp and no file name, so equal input gives equal bytes.
final class CompressedBlobWriter {
    struct Result {
        let digest: ContentDigest
        let size: Int64
        let diffID: ContentDigest
    }

    let path: String
    private let archive: OpaquePointer
    private let fd: Int32
    private var uncompressed = StreamingSHA256()
    fileprivate var compressed = StreamingSHA256()
    fileprivate var writeErrno: Int32 = 0
    private var finished = false

    /// Creates `path` (which must not exist) and gets ready to compress into it.
    init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ImageError.io("cannot create", path, errno: errno) }
        guard let archive = archive_write_new() else {
            close(fd)
            unlink(path)
            throw ImageError(.archive, "cannot allocate a libarchive writer")
        }
        self.path = path
        self.fd = fd
        self.archive = archive
        do {
            try setUp()
        } catch {
            archive_write_fail(archive)
            archive_write_free(archive)
            close(fd)
            unlink(path)
            finished = true
            throw error
        }
    }

    private func setUp() throws {
        // "raw" writes the single entry's bytes as they are; the gzip filter does the work.
        try check(archive_write_set_format_raw(archive), "select the raw format")
        try check(archive_write_add_filter_gzip(archive), "add the gzip filter")
        // Level 1: layers never leave this machine, so speed matters more than size (the
        // labnode image, ~180 MB of binary and Swift runtime, compresses 3x faster than at 6).
        try check(archive_write_set_filter_option(archive, "gzip", "compression-level", "1"), "set the gzip level")
        // A NULL value switches an option off: no mtime in the gzip header.
        try check(archive_write_set_filter_option(archive, "gzip", "timestamp", nil), "drop the gzip timestamp")
        // No blocking: libarchive would otherwise pad the last block with zeros.
        try check(archive_write_set_bytes_per_block(archive, 0), "disable blocking")
        try check(archive_write_set_bytes_in_last_block(archive, 1), "disable last-block padding")
        let context = Unmanaged.passUnretained(self).toOpaque()
        try check(archive_write_open(archive, context, nil, compressedBlobWriterCallback, nil), "open")
        guard let entry = archive_entry_new() else { throw ImageError(.archive, "cannot allocate an archive entry") }
        defer { archive_entry_free(entry) }
        archive_entry_set_filetype(entry, labnode_ae_ifreg)
        archive_entry_set_pathname(entry, "layer.tar")
        try check(archive_write_header(archive, entry), "start the stream")
    }

    deinit {
        if !finished {
            // Marking the archive failed stops free() from flushing buffered output through
            // the write callback, which would reach back into this half-destroyed object.
            archive_write_fail(archive)
            archive_write_free(archive)
            close(fd)
            unlink(path)
        }
    }

    /// Adds uncompressed bytes.
    func write(_ buffer: UnsafeRawBufferPointer) throws {
        guard !buffer.isEmpty else { return }
        uncompressed.update(buffer)
        let written = archive_write_data(archive, buffer.baseAddress, buffer.count)
        if written < 0 || writeErrno != 0 { throw failure("cannot compress into") }
    }

    /// Flushes the stream and closes the file; the caller renames it to its digest.
    func finish() throws -> Result {
        defer { finished = true }
        let status = archive_write_close(archive)
        archive_write_free(archive)
        let syncFailed = fsync(fd) != 0
        close(fd)
        if status != ARCHIVE_OK || writeErrno != 0 || syncFailed {
            unlink(path)
            throw failure("cannot finish")
        }
        return Result(digest: compressed.finish(), size: compressed.count, diffID: uncompressed.finish())
    }

    private func check(_ status: Int32, _ what: String) throws {
        if status != ARCHIVE_OK {
            throw ImageError(.archive, "cannot \(what) for \(path): \(ArchiveReader.message(archive))")
        }
    }

    private func failure(_ what: String) -> ImageError {
        if writeErrno != 0 { return ImageError.io(what, path, errno: writeErrno) }
        return ImageError(.archive, "\(what) \(path): \(ArchiveReader.message(archive))")
    }

    fileprivate func writeOut(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count, let base = bytes.baseAddress {
            let count = Foundation.write(fd, base + offset, bytes.count - offset)
            if count < 0 {
                if errno == EINTR { continue }
                writeErrno = errno
                return false
            }
            offset += count
        }
        compressed.update(bytes)
        return true
    }
}

/// libarchive's write callback: a C function, so the writer travels in `client`.
private func compressedBlobWriterCallback(
    _ archive: OpaquePointer?, _ client: UnsafeMutableRawPointer?, _ buffer: UnsafeRawPointer?, _ length: Int
) -> la_ssize_t {
    guard let client else { return -1 }
    let writer = Unmanaged<CompressedBlobWriter>.fromOpaque(client).takeUnretainedValue()
    guard writer.writeOut(UnsafeRawBufferPointer(start: buffer, count: length)) else { return -1 }
    return la_ssize_t(length)
}
