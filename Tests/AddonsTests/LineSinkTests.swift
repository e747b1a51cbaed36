import Foundation
import XCTest

@testable import Addons

/// The log sink writes whole lines in order, and a reader that falls behind loses lines (said
/// so in the log) rather than blocking writers or growing memory.
final class LineSinkTests: XCTestCase {
    /// Reads `fd` until `done` holds for what has arrived or 20 s pass.
    func read(_ fd: Int32, until done: (String) -> Bool) -> String {
        var text = Data()
        let deadline = Date().addingTimeInterval(20)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline, !done(String(decoding: text, as: UTF8.self)) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let n = Foundation.read(fd, &chunk, chunk.count)
            if n <= 0 { break }
            text.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// A sink writing into a new pipe, and the pipe's read end (the caller closes it).
    func pipeSink(limit: Int? = nil) throws -> (Int32, LineSink) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        return (fds[0], limit.map { LineSink(fd: fds[1], limit: $0) } ?? LineSink(fd: fds[1]))
    }

    func testLinesArriveWholeAndInOrder() throws {
        let (readEnd, sink) = try pipeSink()
        defer { close(readEnd) }
        for i in 0..<500 { sink.write("[INFO] line \(i)") }
        let text = read(readEnd) { $0.hasSuffix("[INFO] line 499\n") }
        XCTAssertEqual(text.split(separator: "\n").map(String.init), (0..<500).map { "[INFO] line \($0)" })
    }

    /// Nobody reads until the writers are done: the pipe (64 KB) and the sink's 20 kB fill, the
    /// rest is dropped and counted, and every line that did arrive is whole.
    func testASlowReaderLosesLinesAndIsTold() throws {
        let (readEnd, sink) = try pipeSink(limit: 20_000)
        defer { close(readEnd) }
        let line = String(repeating: "x", count: 90)
        for i in 0..<5000 { sink.write("\(line) \(i)") }
        let text = read(readEnd) { $0.contains("lines dropped: the log reader is too slow\n") }
        let lines = text.split(separator: "\n")
        let warning = try XCTUnwrap(lines.first { $0.hasPrefix("[WARNING] log: ") }, "the drop is said in the log")
        let dropped = try XCTUnwrap(Int(warning.split(separator: " ")[2]))
        let kept = lines.filter { $0.hasPrefix(line) }
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertLessThan(kept.count, 5000, "about 64 kB + 20 kB of 500 kB fit")
        XCTAssertTrue(kept.allSatisfy { $0.count > 91 && Int($0.split(separator: " ")[1]) != nil }, "lines are whole")
    }

    /// The writer thread wakes once per batch: with a wake-up per line it kept waking every
    /// 2 ms, long after a burst of logged queries had been written.
    func testTheWriterWakesPerBatchNotPerLine() throws {
        let (readEnd, sink) = try pipeSink()
        defer { close(readEnd) }
        for i in 0..<10_000 { sink.write("[INFO] q \(i)") }
        let text = read(readEnd) { $0.hasSuffix("[INFO] q 9999\n") }
        XCTAssertEqual(text.split(separator: "\n").count, 10_000, "140 kB: under the limit, nothing dropped")
        usleep(100_000)
        let settled = sink.batches
        usleep(100_000)
        XCTAssertEqual(sink.batches, settled, "the writer is idle once everything is written")
        XCTAssertLessThan(settled, 200, "10,000 lines written in a few batches")
    }
}
