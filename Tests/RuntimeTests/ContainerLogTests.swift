import Foundation
import Synchronization
import Testing
@testable import Runtime

/// A scratch directory removed when the test ends.
private final class ScratchDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("labnode-logs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = base
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A pipe whose read end goes to the writer and whose write end the test feeds.
private struct TestPipe {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ContainerLogError("pipe", path: "", errno: errno) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    func send(_ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(writeEnd, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            offset += n
        }
    }

    func closeWriteEnd() { close(writeEnd) }
}

/// A clock the test moves by hand.
private final class FakeClock: Sendable {
    let now = Mutex(CRITimestamp(seconds: 1_700_000_000))
    func set(_ t: CRITimestamp) { now.withLock { $0 = t } }
    var read: @Sendable () -> CRITimestamp { { self.now.withLock { $0 } } }
}

private func fileLines(_ path: String) throws -> [String] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
}

private func entries(_ path: String) throws -> [CRILogEntry] {
    try fileLines(path).compactMap { CRILogEntry.parse(Array($0.utf8)[...]) }
}

private func text(_ e: CRILogEntry) -> String { String(decoding: e.content, as: UTF8.self) }

/// Writes a CRI file directly: (seconds after a base time, stream, tag, content).
private func writeCRIFile(_ path: String, _ lines: [(Int64, CRILogStream, String, String)]) throws {
    var out: [UInt8] = []
    for (offset, stream, tag, content) in lines {
        CRITimestamp(seconds: 1_700_000_000 + offset, nanoseconds: 5).append(to: &out)
        out += Array(" \(stream.rawValue) \(tag) \(content)\n".utf8)
    }
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(out).write(to: URL(fileURLWithPath: path))
}

private func readString(_ path: String, _ options: ContainerLogOptions) async throws -> String {
    String(decoding: try await ContainerLogReader(path: path, options: options).readAll(), as: UTF8.self)
}

@Suite("CRI log format")
struct CRILogFormatTests {
    @Test("timestamps print with nine fraction digits in UTC and parse back exactly",
          arguments: [
              ("2016-10-06T00:17:09.669794202Z", "2016-10-06T00:17:09.669794202Z"),
              ("2016-10-06T00:17:09Z", "2016-10-06T00:17:09.000000000Z"),
              ("2016-10-06T02:17:09.5+02:00", "2016-10-06T00:17:09.500000000Z"),
              ("2016-10-05T23:17:09.1234567891-01:00", "2016-10-06T00:17:09.123456789Z"),
          ])
    func timestamps(input: String, printed: String) throws {
        let t = try #require(CRITimestamp.parse(Array(input.utf8)))
        #expect(t.description == printed)
        #expect(CRITimestamp.parse(Array(printed.utf8)) == t)
    }

    @Test("malformed timestamps do not parse",
          arguments: ["", "2016-10-06", "2016-10-06T00:17:09", "2016-13-06T00:17:09Z", "2016-10-06T00:17:09.Z",
                      "2016-10-06T00:17:09Zjunk", "x016-10-06T00:17:09Z"])
    func badTimestamps(input: String) {
        #expect(CRITimestamp.parse(Array(input.utf8)) == nil)
    }

    @Test("a Date converts to the microsecond it holds")
    func fromDate() {
        let t = CRITimestamp(Date(timeIntervalSince1970: 1_700_000_000.25))
        #expect(t == CRITimestamp(seconds: 1_700_000_000, nanoseconds: 250_000_000))
    }

    @Test("entries parse: stream, tag (with extensions), content with spaces; junk is refused")
    func entryParsing() throws {
        let full = try #require(CRILogEntry.parse(Array("2016-10-06T00:17:09.669794202Z stdout F hello  world".utf8)[...]))
        #expect(full.stream == .stdout && !full.partial && text(full) == "hello  world")
        let partial = try #require(CRILogEntry.parse(Array("2016-10-06T00:17:09.669794202Z stderr P:x:y abc".utf8)[...]))
        #expect(partial.stream == .stderr && partial.partial && text(partial) == "abc")
        let empty = try #require(CRILogEntry.parse(Array("2016-10-06T00:17:09.669794202Z stdout F ".utf8)[...]))
        #expect(text(empty).isEmpty)
        for junk in ["hello", "2016-10-06T00:17:09Z stdin F x", "2016-10-06T00:17:09Z stdout", "nottime stdout F x"] {
            #expect(CRILogEntry.parse(Array(junk.utf8)[...]) == nil, "\(junk)")
        }
    }

    @Test("the writer's format round-trips through the parser")
    func roundTrip() throws {
        var out: [UInt8] = []
        let t = CRITimestamp(seconds: 1_475_713_029, nanoseconds: 669_794_202)
        CRILogEntry.encode(timestamp: t, stream: .stderr, partial: true, content: Array("a b c".utf8)[...], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "2016-10-06T00:17:09.669794202Z stderr P a b c\n")
        let back = try #require(CRILogEntry.parse(out.dropLast()))
        #expect(back == CRILogEntry(timestamp: t, stream: .stderr, partial: true, content: Array("a b c".utf8)[...]))
    }
}

@Suite("Container log writer")
struct ContainerLogWriterTests {
    @Test("stdout and stderr lines from pipes become F entries, timestamps never go backwards")
    func lines() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let err = try TestPipe()
        let clock = FakeClock()
        let path = ContainerLogLocation(root: dir.path, namespace: "default", pod: "web", uid: "u1", container: "nginx")
            .file(restartCount: 0)
        #expect(path == dir.path + "/default_web_u1/nginx/0.log")
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: err.readEnd, clock: clock.read)
        clock.set(CRITimestamp(seconds: 1_700_000_100))
        out.send("hello\nworld\n")
        try await waitFor { (try? entries(path).count) == 2 }
        // The wall clock is stepped back: the file's timestamps stay in order anyway.
        clock.set(CRITimestamp(seconds: 1_700_000_050))
        err.send("oops\n")
        out.closeWriteEnd()
        err.closeWriteEnd()
        await writer.waitUntilFinished()
        #expect(writer.isFinished && writer.writeError == nil)
        let got = try entries(path)
        #expect(got.map(text) == ["hello", "world", "oops"])
        #expect(got.map(\.stream) == [.stdout, .stdout, .stderr])
        #expect(got.allSatisfy { !$0.partial })
        #expect(zip(got, got.dropFirst()).allSatisfy { $0.timestamp <= $1.timestamp })
        #expect(try fileLines(path)[0] == "2023-11-14T22:15:00.000000000Z stdout F hello")
    }

    @Test("long lines are cut into P entries ending with an F entry; text without a newline at EOF is P")
    func partialLines() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil, limits: .init(maxLineBytes: 8))
        out.send("abcdefghijkl\n")       // 12 bytes: P(8) + F(4)
        out.send("12345678\n")           // exactly the limit: one F
        out.send("abcdefghijklmnopq\n")  // 17: P(8) P(8) F(1)
        out.send("no newline")           // 10 at EOF: P(8) P(2)
        out.closeWriteEnd()
        await writer.waitUntilFinished()
        let got = try entries(path)
        #expect(got.map(text) == ["abcdefgh", "ijkl", "12345678", "abcdefgh", "ijklmnop", "q", "no newli", "ne"])
        #expect(got.map(\.partial) == [true, false, false, true, true, false, true, true])
        #expect(got.map(text).joined() == "abcdefghijkl12345678abcdefghijklmnopqno newline")
    }

    @Test("a line is in the file within a few milliseconds of the container's write")
    func promptness() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil)
        // Measured by polling the file from a thread of its own (no task scheduling in between).
        let worst = try await timed { () -> Duration in
            var worst = Duration.zero
            for i in 0..<20 {
                let start = ContinuousClock.now
                out.send("line \(i)\n")
                while (try? entries(path).count) != i + 1 && ContinuousClock.now - start < .seconds(2) {
                    usleep(100)
                }
                worst = max(worst, ContinuousClock.now - start)
            }
            return worst
        }
        out.closeWriteEnd()
        await writer.waitUntilFinished()
        print("writer: worst delay from pipe write to line in file: \(worst)")
        #expect(try entries(path).count == 20)
        #expect(worst < .milliseconds(50))
    }

    @Test("stop ends copying while the pipe is still open, keeping what was readable")
    func stop() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil)
        out.send("done\nhalf a line")
        try await Task.sleep(for: .milliseconds(20))
        writer.stop()
        await writer.waitUntilFinished()
        let got = try entries(path)
        #expect(got.map(text) == ["done", "half a line"])
        #expect(got.map(\.partial) == [false, true])
        // Stopping again once finished is harmless (no SIGPIPE, no blocking).
        for _ in 0..<100_000 { writer.stop() }
        out.closeWriteEnd()
    }

    @Test("a full file is rotated: one rotated file kept, the current one under the cap, nothing lost in between")
    func rotation() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil, limits: .init(maxFileBytes: 1000))
        for i in 0..<100 {
            out.send("line number \(i)\n")
            if i % 10 == 0 { try await Task.sleep(for: .milliseconds(2)) }
        }
        out.closeWriteEnd()
        await writer.waitUntilFinished()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/p/c").sorted()
        #expect(names.count == 2 && names[0] == "0.log" && names[1].hasPrefix("0.log."), "\(names)")
        let suffix = names[1].dropFirst("0.log.".count)
        #expect(suffix.count == 15 && suffix.dropFirst(8).first == "-")
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int ?? 0
        #expect(size <= 1000 && size > 0)
        let kept = try entries(dir.path + "/p/c/" + names[1]).map(text) + entries(path).map(text)
        // What is kept is the tail of what was written, in order and without gaps.
        let written = (0..<100).map { "line number \($0)" }
        #expect(Array(written.suffix(kept.count)) == kept && kept.count > 10)
    }

    @Test("an unwritable location fails with the path and errno")
    func unwritable() throws {
        let out = try TestPipe()
        defer {
            close(out.readEnd)
            out.closeWriteEnd()
        }
        #expect(throws: ContainerLogError.self) {
            _ = try ContainerLogWriter(path: "/proc/labnode-no/such/0.log", stdout: out.readEnd, stderr: nil)
        }
    }
}

@Suite("Container log reader")
struct ContainerLogReaderTests {
    static let sample: [(Int64, CRILogStream, String, String)] = [
        (0, .stdout, "F", "one"),
        (10, .stderr, "F", "two"),
        (20, .stdout, "P", "thr"),
        (20, .stdout, "P", "e"),
        (20, .stdout, "F", "e"),
        (30, .stdout, "F", "four"),
        (40, .stdout, "F", "five"),
    ]

    static func since(_ offset: Int64) -> CRITimestamp { CRITimestamp(seconds: 1_700_000_000 + offset) }

    @Test("kubectl logs options applied to a CRI file",
          arguments: [
              (ContainerLogOptions(), "one\ntwo\nthree\nfour\nfive\n"),
              (ContainerLogOptions(tailLines: 2), "four\nfive\n"),
              (ContainerLogOptions(tailLines: 0), ""),
              (ContainerLogOptions(tailLines: 100), "one\ntwo\nthree\nfour\nfive\n"),
              // Tail counts file lines: the last four start in the middle of "three".
              (ContainerLogOptions(tailLines: 4), "ee\nfour\nfive\n"),
              (ContainerLogOptions(since: since(30)), "four\nfive\n"),
              (ContainerLogOptions(since: since(15)), "three\nfour\nfive\n"),
              (ContainerLogOptions(limitBytes: 6), "one\ntw"),
              (ContainerLogOptions(limitBytes: 4), "one\n"),
              (ContainerLogOptions(tailLines: 1, timestamps: true),
               "2023-11-14T22:14:00.000000005Z five\n"),
              // A joined line carries one timestamp, the first piece's.
              (ContainerLogOptions(since: since(15), timestamps: true, limitBytes: 47),
               "2023-11-14T22:13:40.000000005Z three\n2023-11-14"),
          ])
    func options(options: ContainerLogOptions, expected: String) async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/0.log"
        try writeCRIFile(path, Self.sample)
        #expect(try await readString(path, options) == expected)
    }

    @Test("lines that are not CRI entries are skipped; a last line without newline is still shown")
    func malformedAndTrailing() async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/0.log"
        let text = "garbage\n2023-11-14T22:13:20.000000005Z stdout F good\n2023-11-14T22:13:21.000000005Z stdout F cut"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        #expect(try await readString(path, ContainerLogOptions()) == "good\ncut")
    }

    @Test("previous reads the run before the current one; a missing file says so")
    func previous() async throws {
        let dir = try ScratchDirectory()
        let location = ContainerLogLocation(root: dir.path, namespace: "ns", pod: "p", uid: "u", container: "c")
        try writeCRIFile(location.file(restartCount: 0), [(0, .stdout, "F", "first run")])
        try writeCRIFile(location.file(restartCount: 1), [(5, .stdout, "F", "second run")])
        let current = try await ContainerLogReader(location: location, restartCount: 1).readAll()
        let before = try await ContainerLogReader(location: location, restartCount: 1, previous: true).readAll()
        #expect(String(decoding: current, as: UTF8.self) == "second run\n")
        #expect(String(decoding: before, as: UTF8.self) == "first run\n")
        do {
            _ = try ContainerLogReader(location: location, restartCount: 0, previous: true).open()
            Issue.record("a log file that does not exist was opened")
        } catch {
            #expect(error.isMissing && error.path.hasSuffix("/c/-1.log"))
        }
    }

    @Test("API parameters: since is the later of now - sinceSeconds and sinceTime")
    func apiOptions() {
        let now = CRITimestamp(seconds: 1_000_000)
        let a = ContainerLogOptions(tailLines: 5, sinceSeconds: 60, sinceTime: Date(timeIntervalSince1970: 999_000),
                                    timestamps: true, limitBytes: 10, follow: true, now: now)
        #expect(a == ContainerLogOptions(tailLines: 5, since: CRITimestamp(seconds: 999_940), timestamps: true, limitBytes: 10, follow: true))
        let b = ContainerLogOptions(tailLines: nil, sinceSeconds: nil, sinceTime: Date(timeIntervalSince1970: 999_990),
                                    timestamps: false, limitBytes: nil, follow: false, now: now)
        #expect(b.since == CRITimestamp(seconds: 999_990) && b.tailLines == nil)
    }

    @Test("a large file: tail reads only its end, chunks stay bounded")
    func largeFile() async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/0.log"
        try writeCRIFile(path, (0..<20_000).map { (Int64($0), .stdout, "F", "line \($0) " + String(repeating: "x", count: 40)) })
        let tail = try await readString(path, ContainerLogOptions(tailLines: 3))
        #expect(tail.split(separator: "\n").map { $0.prefix(10) } == ["line 19997", "line 19998", "line 19999"])
        var chunks = 0
        var total = 0
        for try await chunk in try ContainerLogReader(path: path).open() {
            #expect(chunk.count <= 32 * 1024 + 100)
            chunks += 1
            total += chunk.count
        }
        #expect(chunks > 10 && total > 900_000)
    }
}

@Suite("Container log follow", .serialized)
struct ContainerLogFollowTests {
    /// What a follower has received, and when each chunk arrived.
    final class Received: Sendable {
        let state = Mutex<(text: String, arrivals: [(end: Int, at: ContinuousClock.Instant)], ended: Bool)>(("", [], false))
        var text: String { state.withLock { $0.text } }
        var ended: Bool { state.withLock { $0.ended } }

        func add(_ bytes: [UInt8]) {
            let now = ContinuousClock.now
            state.withLock {
                $0.text += String(decoding: bytes, as: UTF8.self)
                $0.arrivals.append(($0.text.utf8.count, now))
            }
        }

        func end() { state.withLock { $0.ended = true } }

        /// When the text first reached `count` bytes.
        func arrival(ofByte count: Int) -> ContinuousClock.Instant? {
            state.withLock { s in s.arrivals.first { $0.end >= count }?.at }
        }
    }

    /// Consumes on the timing thread, stamping each chunk as it arrives.
    static func consume(_ stream: AsyncThrowingStream<[UInt8], any Error>, into received: Received) -> Task<Void, any Error> {
        Task(executorPreference: DedicatedThreadExecutor.shared) {
            for try await chunk in stream { received.add(chunk) }
            received.end()
        }
    }

    @Test("a follower gets each new line within 100 ms and ends when the container's output ends")
    func latency() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil)
        out.send("before\n")
        try await waitFor { (try? entries(path).count) == 1 }
        let reader = ContainerLogReader(path: path, options: ContainerLogOptions(follow: true)) { !writer.isFinished }
        let received = Received()
        let task = Self.consume(try reader.open(), into: received)
        try await waitFor { received.text == "before\n" }
        var expected = "before\n"
        // A sample counts only if a 2 ms sleep beside it woke on time: Task.sleep's timers go
        // through the cooperative pool, which other tests running in parallel can keep busy for
        // seconds, and such a sample measures them, not the follower.
        let (delays, discarded, endDelay) = try await timed { () -> ([Duration], Int, Duration) in
            var delays: [Duration] = []
            var discarded = 0
            var i = 0
            let budget = ContinuousClock.now + .seconds(30)
            while delays.count < 20 && ContinuousClock.now < budget {
                // Lines at random moments, so they meet the poll at every phase of its interval.
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...30)))
                let probe = Task(executorPreference: DedicatedThreadExecutor.shared) { () -> Duration in
                    var late = Duration.zero
                    while !Task.isCancelled {
                        let asleep = ContinuousClock.now
                        try? await Task.sleep(for: .milliseconds(2))
                        if !Task.isCancelled { late = max(late, ContinuousClock.now - asleep - .milliseconds(2)) }
                    }
                    return late
                }
                let sent = ContinuousClock.now
                out.send("line \(i)\n")
                expected += "line \(i)\n"
                i += 1
                try await waitFor { received.text == expected }
                let delay = (received.arrival(ofByte: expected.utf8.count) ?? .now) - sent
                probe.cancel()
                if await probe.value < .milliseconds(30) { delays.append(delay) } else { discarded += 1 }
            }
            let closed = ContinuousClock.now
            out.closeWriteEnd()
            try await waitFor { received.ended }
            return (delays, discarded, ContinuousClock.now - closed)
        }
        try await task.value
        #expect(received.text == expected)
        let sorted = delays.sorted()
        guard sorted.count >= 5 else {
            print("follow: latency not measurable, the cooperative pool was busy (\(discarded) samples discarded)")
            return
        }
        print("follow: \(sorted.count) samples, median \(sorted[sorted.count / 2]), worst \(sorted.last ?? .zero), "
              + "\(discarded) discarded; end noticed after \(endDelay)")
        #expect((sorted.last ?? .zero) < .milliseconds(100))
    }

    @Test("a follower moves on to the new file when the writer rotates, losing nothing")
    func followAcrossRotation() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil, limits: .init(maxFileBytes: 600))
        let reader = ContainerLogReader(path: path, options: ContainerLogOptions(follow: true),
                                        pollInterval: .milliseconds(5)) { !writer.isFinished }
        let received = Received()
        let task = Self.consume(try reader.open(), into: received)
        var expected = ""
        for i in 0..<40 {
            out.send("rotating line \(i)\n")
            expected += "rotating line \(i)\n"
            // Slow enough that the follower sees each file before the next rotation replaces it.
            try await waitFor { received.text == expected }
        }
        out.closeWriteEnd()
        try await task.value
        #expect(received.text == expected)
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/p/c")
        #expect(names.count == 2)
    }

    @Test("cancelling the consumer ends an idle follow at once")
    func cancellation() async throws {
        let dir = try ScratchDirectory()
        let out = try TestPipe()
        let path = dir.path + "/p/c/0.log"
        let writer = try ContainerLogWriter(path: path, stdout: out.readEnd, stderr: nil)
        let reader = ContainerLogReader(path: path, options: ContainerLogOptions(follow: true)) { !writer.isFinished }
        let received = Received()
        let task = Self.consume(try reader.open(), into: received)
        let took = try await timed { () -> Duration in
            try await Task.sleep(for: .milliseconds(50))
            let start = ContinuousClock.now
            task.cancel()
            _ = try? await task.value
            return ContinuousClock.now - start
        }
        #expect(took < .milliseconds(100))
        #expect(received.ended)
        out.closeWriteEnd()
        await writer.waitUntilFinished()
    }

    @Test("following a finished log (previous run) reads it and ends")
    func followFinished() async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/0.log"
        try writeCRIFile(path, [(0, .stdout, "F", "old")])
        let bytes = try await ContainerLogReader(path: path, options: ContainerLogOptions(follow: true)).readAll()
        #expect(String(decoding: bytes, as: UTF8.self) == "old\n")
    }
}

/// Polls `condition` until it holds, failing the test after `timeout`. The timeout only bounds a
/// hang: in a parallel run on two cores the cooperative pool can be starved for several seconds.
private func waitFor(timeout: Duration = .seconds(30), _ condition: () -> Bool) async throws {
    let start = ContinuousClock.now
    while !condition() {
        if ContinuousClock.now - start > timeout {
            // One last look: a late wake-up (a busy machine) is not a failure of what is awaited.
            if condition() { return }
            Issue.record("condition not met within \(timeout)")
            return
        }
        try await Task.sleep(for: .microseconds(500))
    }
}

/// Runs jobs on one thread of its own. Timing tests run their tasks here: in a parallel test run,
/// CPU-heavy tests can keep both threads of the cooperative pool busy for seconds, and a latency
/// measured there would be the other tests' latency, not the log code's.
final class DedicatedThreadExecutor: TaskExecutor {
    static let shared = DedicatedThreadExecutor()

    let queue = Mutex<[UnownedJob]>([])
    let wakeup = DispatchSemaphore(value: 0)

    private init() {
        let thread = Thread { [self] in
            while true {
                wakeup.wait()
                let jobs = queue.withLock { q -> [UnownedJob] in
                    defer { q = [] }
                    return q
                }
                for job in jobs { job.runSynchronously(on: asUnownedTaskExecutor()) }
            }
        }
        thread.name = "log-tests-timing"
        thread.start()
    }

    func enqueue(_ job: UnownedJob) {
        queue.withLock { $0.append(job) }
        wakeup.signal()
    }
}

/// `body` with its task (and the actors it calls) on the dedicated timing thread.
private func timed<T>(_ body: () async throws -> T) async throws -> T {
    try await withTaskExecutorPreference(DedicatedThreadExecutor.shared) { try await body() }
}
