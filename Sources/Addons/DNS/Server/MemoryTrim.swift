#if canImport(Glibc)
import CShims
import Glibc
#endif

/// Gives back the memory only start-up needed, once the server answers.
///
/// Start-up decodes every Service, EndpointSlice and Namespace of the cluster and runs code
/// (Corefile parsing, TLS to the API, informers' first LIST) that the query path never runs
/// again. glibc keeps the freed heap, and the pages of the binary and libraries that start-up
/// read stay mapped: together about two thirds of the add-on's resident memory on a small
/// cluster. `malloc_trim` returns the free heap; `MADV_PAGEOUT` on the file mappings drops the
/// clean pages no one uses any more: code, constants, and data never written (pages shared with
/// another process are left alone by the kernel; a written page of a private mapping is
/// anonymous memory, which stays without swap; a page the query path needs is read back on
/// first use).
public enum MemoryTrim {
    public struct Report: Sendable, Equatable {
        /// Bytes of file mappings the kernel was asked to page out.
        public var advisedBytes: Int
        /// Mappings it refused (an old kernel without MADV_PAGEOUT says EINVAL).
        public var refused: Int
    }

    /// MADV_PAGEOUT (Linux 5.4); not in every libc's headers.
    static let pageOut: Int32 = 21

    /// The private file-backed mappings of `maps` (the text of /proc/self/maps): the binary's
    /// and its libraries' code and data, never the heap, stacks or shared mappings.
    static func fileMappings(_ maps: String) -> [(start: UInt, end: UInt)] {
        var out: [(start: UInt, end: UInt)] = []
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/"), fields[1].hasSuffix("p") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            out.append((start, end))
        }
        return out
    }

    /// Trims now. Cheap (a few milliseconds); call it after start-up and after a reload.
    @discardableResult
    public static func afterStartUp() -> Report {
        var report = Report(advisedBytes: 0, refused: 0)
        #if os(Linux)
        labnode_malloc_trim()
        for m in fileMappings(FileText.contents(of: "/proc/self/maps") ?? "") {
            guard let address = UnsafeMutableRawPointer(bitPattern: m.start) else { continue }
            if madvise(address, Int(m.end - m.start), pageOut) == 0 {
                report.advisedBytes += Int(m.end - m.start)
            } else {
                report.refused += 1
            }
        }
        #endif
        return report
    }
}
