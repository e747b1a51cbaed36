#if canImport(Glibc)
import Glibc
#endif

/// A whole file as text, read with plain POSIX calls.
///
/// For the files the add-on reads over and over (the Corefile every reload interval, its own
/// /proc files): Foundation's readers would bring Foundation's code back into memory each
/// time, after `MemoryTrim` gave it back. /proc files report a size of 0, so it reads in chunks.
enum FileText {
    /// Nil when the file cannot be opened.
    static func contents(of path: String) -> String? {
        #if os(Linux)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
        #else
        return nil
        #endif
    }
}
