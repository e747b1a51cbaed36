import XCTest

@testable import Addons

final class MemoryTrimTests: XCTestCase {
    func testOnlyPrivateFileMappingsArePagedOut() {
        let maps = """
            55ac9b9c0000-55ac9db79000 r-xp 00000000 fe:00 5522076                    /usr/bin/labnode
            55ac9db79000-55ac9dc5f000 r--p 021b8000 fe:00 5522076                    /usr/bin/labnode
            55ac9dc5f000-55ac9de87000 rw-p 0229e000 fe:00 5522076                    /usr/bin/labnode
            55ac9e000000-55ac9e100000 rw-p 00000000 00:00 0                          [heap]
            7f417fe00000-7f4180000000 r-xp 00000000 fe:00 77                         /usr/lib/libswiftCore.so
            7f4180000000-7f4180001000 r--p 00000000 00:00 0
            7f4180001000-7f4180002000 rw-s 00000000 00:05 12                         /dev/shm/segment
            7fff0000000-7fff0001000 r-xp 00000000 00:00 0                            [vdso]
            """
        let found = MemoryTrim.fileMappings(maps)
        XCTAssertEqual(found.map(\.start), [0x55ac9b9c0000, 0x55ac9db79000, 0x55ac9dc5f000, 0x7f417fe00000])
        XCTAssertEqual(found.map(\.end), [0x55ac9db79000, 0x55ac9dc5f000, 0x55ac9de87000, 0x7f4180000000])
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
        let after = try XCTUnwrap(rssFileKB())
        XCTAssertLessThan(after, before, "file-backed RSS \(before) kB -> \(after) kB")
        XCTAssertEqual(try DNSMessage(parsing: DNSMessage.reply(to: DNSMessage()).serialized()).isResponse, true)
    }
}
