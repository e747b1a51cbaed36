#if canImport(Glibc)
import CShims
import Glibc
#endif

/// Gives back the memory only start-up needed, once a process is serving.
///
/// Start-up decodes every object it is told about and runs code (configuration parsing, TLS,
/// informers' first LIST, the API's bootstrap) that serving never runs again. glibc keeps the
/// freed heap, and the pages of the binary and libraries that start-up read stay mapped:
/// together about two thirds of the resident memory of the DNS add-on, and half of the
/// daemon's. Three steps:
/// - `malloc_trim` returns the free heap;
/// - `MADV_PAGEOUT` on the private file mappings drops the clean pages no other process maps
///   (code, constants, data never written); a written page of a private mapping is anonymous
///   memory and stays, as there is no swap;
/// - `MADV_DONTNEED` on the read-only file mappings that hold no written page unmaps the rest
///   (pages another process maps too, such as the Swift runtime's): they stay in the page
///   cache, shared, and the kernel can drop them under pressure without touching this process.
/// A page still needed is mapped again on first use.
public enum MemoryTrim {
    public struct Report: Sendable, Equatable {
        /// Bytes of file mappings the kernel was asked to page out.
        public var advisedBytes: Int
        /// Mappings it refused (an old kernel without MADV_PAGEOUT says EINVAL).
        public var refused: Int
        /// Bytes of read-only file mappings unmapped.
        public var unmappedBytes = 0
    }

    /// One line of /proc/self/smaps and the fields read from its block.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: String
        var path: String
        /// Pages of the mapping that were written (copied on write), in kB.
        var anonymousKB: Int

        /// The binary's and its libraries' code and data: never the heap, stacks or shared mappings.
        var isPrivateFile: Bool { path.hasPrefix("/") && permissions.hasSuffix("p") }

        /// Safe to unmap: nothing can be written there, and nothing was (a relocated read-only
        /// page, say, is anonymous and would go back to the file's bytes).
        var isCleanReadOnly: Bool {
            isPrivateFile && permissions.hasPrefix("r") && !permissions.contains("w") && anonymousKB == 0
        }
    }

    /// When to trim while running: once a counter of activity (API requests for the daemon,
    /// Kubernetes index rebuilds for the DNS add-on) has stood still for `quiet`, and once only
    /// until it moves again. Fed instants, so tests do not depend on the machine's speed.
    public struct QuietSpell: Sendable {
        let quiet: Duration
        var seen: Int
        var lastChange: ContinuousClock.Instant
        var trimmed = false

        public init(quiet: Duration, count: Int, at now: ContinuousClock.Instant) {
            self.quiet = quiet
            seen = count
            lastChange = now
        }

        /// True when this look should trim: no change for `quiet`, and no trim since the last.
        public mutating func look(count: Int, at now: ContinuousClock.Instant) -> Bool {
            if count != seen {
                (seen, lastChange, trimmed) = (count, now, false)
                return false
            }
            guard !trimmed, now - lastChange >= quiet else { return false }
            trimmed = true
            return true
        }
    }

    /// When to trim again while serving, whatever the work was: once the file-backed resident
    /// memory has grown by `growth` over the level it settled at after the last trim, and page
    /// faults have stopped for `quiet`. Work done for the first time after a trim (the first
    /// liveness probe, a generic type's first use, which makes the Swift runtime read every
    /// conformance descriptor) maps code and constants that steady serving does not touch again;
    /// the busy path they share pages with comes back on the next use, and is the new level.
    /// Fed instants and readings, so tests do not depend on the machine.
    public struct GrowthWatch: Sendable {
        let quiet: Duration
        let growth: Int
        var faults: Int
        var lastFault: ContinuousClock.Instant
        /// The level to grow from; nil until faults first settle after a trim.
        var floor: Int?
        /// Whether the current quiet spell is still to be looked at.
        var armed = true

        public init(quiet: Duration, growth: Int, faults: Int, at now: ContinuousClock.Instant) {
            self.quiet = quiet
            self.growth = growth
            self.faults = faults
            lastFault = now
        }

        /// True when this look should trim; call `trimmed(at:)` after trimming.
        public mutating func look(_ reading: Reading, at now: ContinuousClock.Instant) -> Bool {
            if reading.faults != faults {
                (faults, lastFault, armed) = (reading.faults, now, true)
                return false
            }
            guard armed, now - lastFault >= quiet else { return false }
            armed = false
            guard let floor else {
                floor = reading.fileResident
                return false
            }
            return reading.fileResident >= floor + growth
        }

        /// After any trim: the level is measured again once the faults it brings settle.
        public mutating func trimmed(at now: ContinuousClock.Instant) {
            (floor, armed, lastFault) = (nil, true, now)
        }
    }

    /// What `GrowthWatch` reads.
    public struct Reading: Sendable, Equatable {
        /// Page faults this process has taken, minor and major.
        public var faults: Int
        /// The file-backed part of its resident memory, in bytes.
        public var fileResident: Int

        public init(faults: Int, fileResident: Int) {
            self.faults = faults
            self.fileResident = fileResident
        }
    }

    /// This process's reading, or nil where there is no /proc.
    public static func reading() -> Reading? {
        #if os(Linux)
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return nil }
        // /proc/self/statm, in pages: size, resident, shared (file-backed and shared memory), ...
        guard let statm = FileText.contents(of: "/proc/self/statm") else { return nil }
        let fields = statm.split(separator: " ")
        guard fields.count >= 3, let shared = Int(fields[2]) else { return nil }
        return Reading(faults: usage.ru_minflt + usage.ru_majflt, fileResident: shared * Int(sysconf(Int32(_SC_PAGESIZE))))
        #else
        return nil
        #endif
    }

    /// MADV_PAGEOUT (Linux 5.4); not in every libc's headers.
    static let pageOut: Int32 = 21

    /// The mappings in `smaps` (the text of /proc/self/smaps; /proc/self/maps gives them without
    /// the `Anonymous:` field, which then reads as 0 and `isCleanReadOnly` cannot be trusted).
    static func mappings(_ smaps: String) -> [Mapping] {
        var out: [Mapping] = []
        for line in smaps.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first == "Anonymous:", fields.count >= 2, let kb = Int(fields[1]), !out.isEmpty {
                out[out.count - 1].anonymousKB = kb
                continue
            }
            guard !first.hasSuffix(":"), fields.count >= 5 else { continue }
            let range = first.split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            // The path may hold spaces; it starts at the sixth field.
            let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
            out.append(Mapping(start: start, end: end, permissions: String(fields[1]), path: path, anonymousKB: 0))
        }
        return out
    }

    /// Trims now. Cheap (a few milliseconds); call it after start-up and after a reload.
    @discardableResult
    public static func afterStartUp() -> Report { trim(pageOut: true) }

    /// Trims without evicting anything from the page cache: the free heap, and the mappings of
    /// clean read-only file pages, which come back on first use as minor faults. For an idle
    /// process whose next request should not wait for the disk (paged-out code is read back
    /// from the file, which cost the first write after an idle spell 160 ms).
    @discardableResult
    public static func whileIdle() -> Report { trim(pageOut: false) }

    static func trim(pageOut advisePageOut: Bool) -> Report {
        var report = Report(advisedBytes: 0, refused: 0)
        #if os(Linux)
        labnode_malloc_trim()
        let all = mappings(FileText.contents(of: "/proc/self/smaps") ?? "")
        for m in all where advisePageOut && m.isPrivateFile {
            guard let address = UnsafeMutableRawPointer(bitPattern: m.start) else { continue }
            if madvise(address, Int(m.end - m.start), pageOut) == 0 {
                report.advisedBytes += Int(m.end - m.start)
            } else {
                report.refused += 1
            }
        }
        for m in all where m.isCleanReadOnly {
            guard let address = UnsafeMutableRawPointer(bitPattern: m.start) else { continue }
            if madvise(address, Int(m.end - m.start), MADV_DONTNEED) == 0 { report.unmappedBytes += Int(m.end - m.start) }
        }
        #endif
        return report
    }
}
