import XCTest
#if canImport(Glibc)
import Glibc
#endif

@testable import Addons

final class MemoryTrimTests: XCTestCase {
    func testOnlyPrivateFileMappingsArePagedOutAndOnlyCleanReadOnlyOnesUnmapped() {
        func block(_ header: String, anonymous: Int) -> String {
            header + "\nSize:               2048 kB\nRss:                1024 kB\nAnonymous:          \(anonymous) kB\nVmFlags: rd mr mw me\n"
        }
        let smaps = [
            block("55ac9b9c0000-55ac9db79000 r-xp 00000000 fe:00 5522076                    /usr/bin/labnode", anonymous: 0),
            block("55ac9db79000-55ac9dc5f000 r--p 021b8000 fe:00 5522076                    /usr/bin/labnode", anonymous: 12),
            block("55ac9dc5f000-55ac9de87000 rw-p 0229e000 fe:00 5522076                    /usr/bin/labnode", anonymous: 0),
            block("55ac9e000000-55ac9e100000 rw-p 00000000 00:00 0                          [heap]", anonymous: 1024),
            block("7f417fe00000-7f4180000000 r-xp 00000000 fe:00 77                         /usr/lib/libswiftCore.so", anonymous: 0),
            block("7f4180000000-7f4180001000 r--p 00000000 00:00 0", anonymous: 4),
            block("7f4180001000-7f4180002000 rw-s 00000000 00:05 12                         /dev/shm/segment", anonymous: 0),
            block("7f4180002000-7f4180003000 r--p 00000000 fe:00 78                         /opt/my libs/with space.so", anonymous: 0),
            block("7fff0000000-7fff0001000 r-xp 00000000 00:00 0                            [vdso]", anonymous: 0),
        ].joined()
        let found = MemoryTrim.mappings(smaps)
        XCTAssertEqual(found.count, 9)
        XCTAssertEqual(found[1].anonymousKB, 12)
        XCTAssertEqual(found[7].path, "/opt/my libs/with space.so")
        XCTAssertEqual(found.filter(\.isPrivateFile).map(\.start),
                       [0x55ac9b9c0000, 0x55ac9db79000, 0x55ac9dc5f000, 0x7f417fe00000, 0x7f4180002000])
        // The relocated read-only page (anonymous) and the writable data stay mapped.
        XCTAssertEqual(found.filter(\.isCleanReadOnly).map(\.start), [0x55ac9b9c0000, 0x7f417fe00000, 0x7f4180002000])
    }

    /// The real thing on this process: the kernel accepts the advice, the file-backed resident
    /// memory goes down, and code that was paged out still runs (it is read back).
    func testTrimGivesBackFilePagesAndTheProcessGoesOn() throws {
        func rssFileKB() -> Int? {
            (FileText.contents(of: "/proc/self/status") ?? "").split(separator: "\n")
                .first { $0.hasPrefix("RssFile:") }?.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        guard let before = rssFileKB() else { throw XCTSkip("no /proc/self/status RssFile on this system") }
        let report = MemoryTrim.afterStartUp()
        XCTAssertEqual(report.refused, 0, "this kernel (5.4+) knows MADV_PAGEOUT")
        XCTAssertGreaterThan(report.advisedBytes, 1 << 20)
        XCTAssertGreaterThan(report.unmappedBytes, 1 << 20, "the Swift runtime's code, mapped by other processes too, is unmapped")
        let after = try XCTUnwrap(rssFileKB())
        XCTAssertLessThan(after, before, "file-backed RSS \(before) kB -> \(after) kB")
        XCTAssertEqual(try DNSMessage(parsing: DNSMessage.reply(to: DNSMessage()).serialized()).isResponse, true)
    }

    /// The growth watch's reading: this process's page faults (64 new pages touched are 64 more)
    /// and its file-backed resident memory.
    func testReadingCountsThisProcesssFaultsAndFilePages() throws {
        #if os(Linux)
        let before = try XCTUnwrap(MemoryTrim.reading())
        XCTAssertGreaterThan(before.fileResident, 1 << 20, "the test binary's own code is mapped")
        let size = 64 * 4096
        let region = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        let pages = try XCTUnwrap(region == MAP_FAILED ? nil : region)
        for page in 0..<64 { pages.storeBytes(of: 1, toByteOffset: page * 4096, as: UInt8.self) }
        munmap(pages, size)
        let after = try XCTUnwrap(MemoryTrim.reading())
        XCTAssertGreaterThanOrEqual(after.faults - before.faults, 64)
        #endif
    }

    /// The idle trim unmaps but asks for no page-out: the page cache keeps the code, so the
    /// next request finds it without reading the disk.
    func testIdleTrimUnmapsWithoutPagingOut() throws {
        let report = MemoryTrim.whileIdle()
        XCTAssertEqual(report.advisedBytes, 0)
        XCTAssertEqual(report.refused, 0)
        XCTAssertGreaterThan(report.unmappedBytes, 1 << 20)
        XCTAssertEqual(try DNSMessage(parsing: DNSMessage.reply(to: DNSMessage()).serialized()).isResponse, true)
    }
}
