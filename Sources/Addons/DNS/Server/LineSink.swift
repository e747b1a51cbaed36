import Foundation
import Synchronization

/// Where the add-on's log lines go (stdout, which the node agent keeps as the pod's log).
///
/// Writers only append to a buffer under a lock; a background thread writes it out, so a
/// query never waits on the pipe. When the reader falls more than `limit` behind, lines are
/// dropped and counted instead of growing memory or blocking the answer path.
public final class LineSink: Sendable {
    public static let standardOutput = LineSink(fd: 1)

    struct State {
        var buffer: [UInt8] = []
        var dropped = 0
        var started = false
        /// A wake-up is on its way to the writer thread: the lines after it ride along.
        var woken = false
    }

    let fd: Int32
    let limit: Int
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    /// Times the writer thread woke (tests check it wakes per batch, not per line).
    private let wakeUps = Atomic<Int>(0)
    var batches: Int { wakeUps.load(ordering: .relaxed) }
    /// Tests read what was written.
    private final class Captured: Sendable { let lines = Mutex<[String]>([]) }
    private let capture: Captured?

    /// `limit`: 256 kB is over 2,500 query lines, tens of milliseconds at the most dnsperf
    /// gets out of the add-on with `log` on; a reader further behind than that loses lines.
    /// It bounds what a burst of logged queries adds to the pod's memory (about three times
    /// `limit`: the buffer filling, the one being written, and the growth between them).
    public init(fd: Int32, limit: Int = 256 << 10) {
        self.fd = fd
        self.limit = limit
        capture = nil
    }

    /// A sink that keeps lines in memory (for tests).
    public init(capturing: Void) {
        fd = -1
        limit = 256 << 10
        capture = Captured()
    }

    public var captured: [String] { capture?.lines.withLock { $0 } ?? [] }

    public func write(_ line: String) {
        if let capture {
            capture.lines.withLock { $0.append(line) }
            return
        }
        let (startWriter, signal) = state.withLock { s -> (Bool, Bool) in
            if s.buffer.count > limit {
                s.dropped += 1
                return (false, false)
            }
            s.buffer.append(contentsOf: line.utf8)
            s.buffer.append(10)
            // One signal per batch: a signal per line left the writer waking every 2 ms for as
            // many lines as a burst had, minutes after a logged dnsperf run.
            let signal = !s.woken
            s.woken = true
            if s.started { return (false, signal) }
            s.started = true
            return (true, signal)
        }
        if startWriter {
            let t = Thread { [self] in self.drain() }
            t.name = "dns-log"
            t.start()
        }
        if signal { wake.signal() }
    }

    private func drain() {
        while true {
            wake.wait()
            wakeUps.add(1, ordering: .relaxed)
            // Let a burst collect, then write it in one call.
            usleep(2000)
            // Taken whole: the next burst starts a new buffer. Emptying the buffer in place
            // while the taken copy still shared it made a second one of the same capacity: with
            // a slow reader the add-on held twice `limit` (8 MB more right after a burst of
            // logged queries with the 4 MB limit of the time).
            let (bytes, dropped) = state.withLock { s -> ([UInt8], Int) in
                defer {
                    s.buffer = []
                    s.dropped = 0
                    s.woken = false
                }
                return (s.buffer, s.dropped)
            }
            writeAll(bytes)
            // Its own write: appending it to `bytes` would copy them.
            if dropped > 0 { writeAll(Array("[WARNING] log: \(dropped) lines dropped: the log reader is too slow\n".utf8)) }
        }
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count, let base = raw.baseAddress {
                let n = Foundation.write(fd, base + offset, raw.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
