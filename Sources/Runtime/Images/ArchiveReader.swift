import CArchive
import Foundation

/// Reads a tar stream (plain, gzip, zstd, ... whatever libarchive recognises) entry by entry.
/// One reader belongs to one thread at a time; it is not shared.
final class ArchiveReader {
    let handle: OpaquePointer
    let path: String

    /// Opens `path`; `raw` reads a single compressed stream (no tar inside) as one entry.
    init(path: String, raw: Bool = false) throws {
        guard let handle = archive_read_new() else {
            throw ImageError(.archive, "cannot allocate a libarchive reader")
        }
        self.handle = handle
        self.path = path
        archive_read_support_filter_all(handle)
        if raw {
            archive_read_support_format_raw(handle)
        } else {
            archive_read_support_format_tar(handle)
            // An empty file is a valid (if pointless) layer; without this libarchive rejects it.
            archive_read_support_format_empty(handle)
        }
        guard archive_read_open_filename(handle, path, 64 * 1024) == ARCHIVE_OK else {
            throw failure("cannot open")
        }
    }

    deinit {
        archive_read_free(handle)
    }

    /// The next entry, or nil at the end. The entry is only valid until the next call.
    func next() throws -> OpaquePointer? {
        var entry: OpaquePointer?
        while true {
            let status = archive_read_next_header(handle, &entry)
            switch status {
            case ARCHIVE_OK, ARCHIVE_WARN: return entry
            case ARCHIVE_EOF: return nil
            case ARCHIVE_RETRY: continue
            default: throw failure("cannot read an entry of")
            }
        }
    }

    /// Reads the current entry's data into `buffer`; 0 at the end of the entry.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let count = archive_read_data(handle, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            if count == la_ssize_t(ARCHIVE_RETRY) || count == la_ssize_t(ARCHIVE_WARN) { continue }
            throw failure("cannot read data from")
        }
    }

    /// Streams the current entry's data to `sink` in chunks.
    func forEachChunk(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = try read(into: buffer)
            if count == 0 { return }
            try sink(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    func failure(_ what: String) -> ImageError {
        ImageError(.archive, "\(what) \(path): \(Self.message(handle))")
    }

    static func message(_ archive: OpaquePointer) -> String {
        if let text = archive_error_string(archive) { return String(cString: text) }
        return "unknown libarchive error"
    }
}

/// Typed views of a libarchive entry.
enum ArchiveEntry {
    /// The raw path bytes as stored, which may be absent only in a malformed archive.
    static func path(_ entry: OpaquePointer) -> String? {
        archive_entry_pathname(entry).map { String(cString: $0) }
    }

    static func hardlink(_ entry: OpaquePointer) -> String? {
        archive_entry_hardlink(entry).map { String(cString: $0) }
    }

    static func isRegularFile(_ entry: OpaquePointer) -> Bool {
        UInt32(archive_entry_filetype(entry)) == labnode_ae_ifreg
    }

    static func isDirectory(_ entry: OpaquePointer) -> Bool {
        UInt32(archive_entry_filetype(entry)) == labnode_ae_ifdir
    }

    /// Splits an archive member name into safe relative components: leading `/` and `./` go,
    /// `..` is refused so nothing lands outside the destination.
    static func sanitizedPath(_ name: String) throws -> String {
        var parts: [Substring] = []
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            if component == ".." {
                throw ImageError(.archive, "archive member \"\(name)\" escapes its directory with \"..\"")
            }
            parts.append(component)
        }
        return parts.joined(separator: "/")
    }

    /// Resolves `.` and `..` lexically in a link target inside an archive; refuses a target that
    /// climbs above the archive's root.
    static func resolvedLinkTarget(_ name: String) throws -> String {
        var parts: [Substring] = []
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..":
                guard parts.popLast() != nil else {
                    throw ImageError(.archive, "archive link target \"\(name)\" points outside the archive")
                }
            default: parts.append(component)
            }
        }
        return parts.joined(separator: "/")
    }
}
