import Foundation
import Synchronization

/// Copies a container's stdout and stderr into its CRI log file, as containerd does for the kubelet.
///
/// Each line becomes `2016-10-06T00:17:09.669794202Z stdout F message`. A line longer than
/// `maxLineBytes` is cut into `P` (partial) entries followed by the `F` entry holding its end, and
/// text left without a newline when the stream ends is written as a `P` entry, so a reader joins
/// the pieces back into what the container wrote.
///
/// Why a dedicated thread: the writer waits in poll(2) on the two pipes and writes with write(2)
/// the moment bytes arrive. Blocking calls like these must not run on Swift's cooperative pool
/// (it has one thread per core, two here, and a blocked one stalls every task), and the Runtime
/// module does not depend on NIO. One small thread per container is cheap at lab scale (its
/// stack is only touched as far as it is used) and makes the latency simple: there is no
/// buffering in user space, so a line is in the file within microseconds of the container's write.
///
/// Rotation: when the next write would take the file past `maxFileBytes`, the file is renamed to
/// `<n>.log.<YYYYMMDD-hhmmss>` (the kubelet's rotated-file name), any older rotated file of the
/// same run is deleted, and a new `<n>.log` is started. As on a real node, `kubectl logs` reads only
/// the current file; a follower moves on to the new file when it reaches the end of the old one.
public final class ContainerLogWriter: Sendable {
    /// Size limits; the defaults are the kubelet's and containerd's.
    public struct Limits: Sendable, Equatable {
        /// The kubelet's containerLogMaxSize default.
        public var maxFileBytes: Int
        /// containerd's max_container_log_line_size default.
        public var maxLineBytes: Int

        public init(maxFileBytes: Int = 10 * 1024 * 1024, maxLineBytes: Int = 16 * 1024) {
            self.maxFileBytes = maxFileBytes
            self.maxLineBytes = maxLineBytes
        }
    }

    /// How the copying ended, once it has.
    struct State {
        var finished = false
        /// Live copies of the output for attached clients (`kubectl attach`), by id.
        var taps: [Int: AsyncStream<(CRILogStream, [UInt8])>.Continuation] = [:]
        var nextTap = 0
        /// The first write failure (a full disk): lines are dropped rather than blocking the container.
        var writeError: ContainerLogError?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// The file being written (`<restartCount>.log`).
    public let path: String
    let state = Mutex(State())
    /// Writing a byte here wakes the thread to stop early. Both ends stay open until deinit, so a
    /// late `stop()` never writes into a pipe without a reader (which would raise SIGPIPE).
    let wakeWrite: Int32
    let wakeRead: Int32

    /// Opens (appending) or creates `path`, creating its directories, and starts copying.
    ///
    /// The writer owns `stdout` and `stderr` (typically pipe read ends) from now on and closes them.
    /// The caller must close its own copies of the write ends, or the streams never end. Pass
    /// `stderr: nil` for a TTY container, whose single terminal stream is logged as stdout.
    public init(path: String, stdout: Int32, stderr: Int32?, limits: Limits = Limits(),
                clock: @escaping @Sendable () -> CRITimestamp = CRITimestamp.now) throws(ContainerLogError) {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        try Self.makeDirectories(directory)
        let fd = try Self.openForAppend(path)
        var wake: [Int32] = [0, 0]
        guard pipe(&wake) == 0 else {
            let e = errno
            close(fd)
            throw ContainerLogError("creating the wake-up pipe for", path: path, errno: e)
        }
        // Not inherited by the containers labnode starts (pipe2 is not visible from Swift's Glibc);
        // non-blocking, so that repeated stops can never block the caller on a full pipe.
        _ = fcntl(wake[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(wake[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(wake[1], F_SETFL, O_NONBLOCK)
        wakeWrite = wake[1]
        wakeRead = wake[0]
        let thread = Thread { [self] in
            var pump = LogPump(path: path, file: fd, streams: [(stdout, .stdout)] + (stderr.map { [($0, .stderr)] } ?? []),
                               wake: wakeRead, limits: limits, clock: clock)
            pump.tap = { [weak self] kind, bytes in self?.fanOut(kind, bytes) }
            let error = pump.run()
            self.finish(writeError: error)
        }
        thread.name = "labnode-log"
        thread.stackSize = 256 * 1024
        thread.start()
    }

    /// The same for run `restartCount` of the container at `location` (`<restartCount>.log`).
    public convenience init(location: ContainerLogLocation, restartCount: Int, stdout: Int32, stderr: Int32?,
                            limits: Limits = Limits()) throws(ContainerLogError) {
        try self.init(path: location.file(restartCount: restartCount), stdout: stdout, stderr: stderr, limits: limits)
    }

    deinit {
        close(wakeWrite)
        close(wakeRead)
    }

    /// True once both streams have ended (or `stop` was called) and everything read is in the file.
    public var isFinished: Bool { state.withLock { $0.finished } }

    /// The first write error, if lines had to be dropped.
    public var writeError: ContainerLogError? { state.withLock { $0.writeError } }

    /// Returns when copying has ended.
    public func waitUntilFinished() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let done = state.withLock { s -> Bool in
                if s.finished { return true }
                s.waiters.append(c)
                return false
            }
            if done { c.resume() }
        }
    }

    /// Stops copying even though the streams are still open (a process the container left behind
    /// can keep a pipe open after the container is gone): what is readable now is still written,
    /// then the streams are closed.
    public func stop() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }

    func finish(writeError: ContainerLogError?) {
        let (waiters, taps) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [AsyncStream<(CRILogStream, [UInt8])>.Continuation]) in
            s.finished = true
            s.writeError = s.writeError ?? writeError
            defer {
                s.waiters = []
                s.taps = [:]
            }
            return (s.waiters, Array(s.taps.values))
        }
        for w in waiters { w.resume() }
        for t in taps { t.finish() }
    }

    /// The output from now on, as it is read (an attached client sees new output only, as
    /// with the kubelet). Ends when the container's output ends or the caller stops iterating.
    public func follow() -> AsyncStream<(CRILogStream, [UInt8])> {
        let (stream, sink) = AsyncStream.makeStream(of: (CRILogStream, [UInt8]).self, bufferingPolicy: .bufferingNewest(256))
        let id = state.withLock { s -> Int? in
            if s.finished { return nil }
            s.nextTap += 1
            s.taps[s.nextTap] = sink
            return s.nextTap
        }
        guard let id else {
            sink.finish()
            return stream
        }
        sink.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.taps.removeValue(forKey: id) }
        }
        return stream
    }

    func fanOut(_ kind: CRILogStream, _ bytes: ArraySlice<UInt8>) {
        let taps = state.withLock { Array($0.taps.values) }
        guard !taps.isEmpty else { return }
        let chunk = Array(bytes)
        for t in taps { t.yield((kind, chunk)) }
    }

    /// mkdir -p, tolerating directories that already exist (or appear concurrently).
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(ContainerLogError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, mode) != 0 && errno != EEXIST {
                throw ContainerLogError("creating directory", path: prefix, errno: errno)
            }
        }
    }

    static func openForAppend(_ path: String) throws(ContainerLogError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ContainerLogError("opening", path: path, errno: errno) }
        return fd
    }
}

/// The writer thread's state: pending bytes per stream, the open file and its size.
struct LogPump {
    struct Stream {
        var fd: Int32
        var kind: CRILogStream
        /// Bytes of a line not yet ended by a newline.
        var pending: [UInt8] = []
        var open = true
    }

    let path: String
    var file: Int32
    var fileSize: Int
    var streams: [Stream]
    let wake: Int32
    let limits: ContainerLogWriter.Limits
    let clock: @Sendable () -> CRITimestamp
    /// Timestamps never go backwards within a file, even if the wall clock is stepped back.
    var lastTimestamp = CRITimestamp(seconds: 0)
    var writeError: ContainerLogError?
    /// Sees every chunk read, before it is split into log lines.
    var tap: @Sendable (CRILogStream, ArraySlice<UInt8>) -> Void = { _, _ in }

    init(path: String, file: Int32, streams: [(Int32, CRILogStream)], wake: Int32, limits: ContainerLogWriter.Limits,
         clock: @escaping @Sendable () -> CRITimestamp) {
        self.path = path
        self.file = file
        var st = stat()
        fileSize = fstat(file, &st) == 0 ? Int(st.st_size) : 0
        self.streams = streams.map { Stream(fd: $0.0, kind: $0.1) }
        self.wake = wake
        self.limits = limits
        self.clock = clock
    }

    /// Copies until every stream has ended or the wake pipe says stop; returns the first write error.
    mutating func run() -> ContainerLogError? {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var stopping = false
        // After a stop, a leftover process that keeps writing must not keep the thread busy forever.
        var roundsAfterStop = 0
        while streams.contains(where: \.open) {
            if stopping {
                roundsAfterStop += 1
                if roundsAfterStop > 64 { break }
            }
            var fds = streams.map { pollfd(fd: $0.open ? $0.fd : -1, events: Int16(POLLIN), revents: 0) }
            fds.append(pollfd(fd: stopping ? -1 : wake, events: Int16(POLLIN), revents: 0))
            // When stopping, only what is readable right now is taken (timeout 0).
            let rc = poll(&fds, nfds_t(fds.count), stopping ? 0 : -1)
            if rc < 0 {
                if errno == EINTR { continue }
                break
            }
            if rc == 0 && stopping { break }
            for i in streams.indices where streams[i].open && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(streams[i].fd, $0.baseAddress, $0.count) }
                if n > 0 {
                    tap(streams[i].kind, buffer[0..<n])
                    take(i, buffer[0..<n])
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    endStream(i)
                }
            }
            if !stopping, let last = fds.last, last.revents != 0 {
                stopping = true
            }
        }
        for i in streams.indices where streams[i].open { endStream(i) }
        close(file)
        return writeError
    }

    /// Appends bytes read from stream `i` and writes every line they complete.
    mutating func take(_ i: Int, _ bytes: ArraySlice<UInt8>) {
        // Worked on outside the array so appending and trimming do not copy it.
        var pending = streams[i].pending
        streams[i].pending = []
        pending += bytes
        var out: [UInt8] = []
        var start = 0
        let max = limits.maxLineBytes
        while start < pending.count {
            let window = pending[start..<min(pending.count, start + max + 1)]
            if let nl = window.firstIndex(of: CRILogEntry.newline) {
                CRILogEntry.encode(timestamp: nextTimestamp(), stream: streams[i].kind, partial: false,
                                   content: pending[start..<nl], into: &out)
                start = nl + 1
            } else if pending.count - start >= max {
                CRILogEntry.encode(timestamp: nextTimestamp(), stream: streams[i].kind, partial: true,
                                   content: pending[start..<(start + max)], into: &out)
                start += max
            } else {
                break
            }
        }
        pending.removeFirst(start)
        streams[i].pending = pending
        if !out.isEmpty { append(out) }
    }

    /// A stream ended: text left without a newline is written as a partial entry.
    mutating func endStream(_ i: Int) {
        if !streams[i].pending.isEmpty {
            var out: [UInt8] = []
            CRILogEntry.encode(timestamp: nextTimestamp(), stream: streams[i].kind, partial: true,
                               content: streams[i].pending[...], into: &out)
            streams[i].pending = []
            append(out)
        }
        close(streams[i].fd)
        streams[i].open = false
    }

    mutating func nextTimestamp() -> CRITimestamp {
        let now = clock()
        lastTimestamp = max(now, lastTimestamp)
        return lastTimestamp
    }

    /// Writes whole entries, rotating between two entries when the next would not fit, so the
    /// file never passes the cap (unless one entry alone is larger, possible only with tiny caps).
    mutating func append(_ bytes: [UInt8]) {
        var rest = bytes[...]
        while !rest.isEmpty {
            let room = limits.maxFileBytes - fileSize
            if rest.count <= room {
                writeAll(rest)
                return
            }
            if room > 0, let lastFit = rest.prefix(room).lastIndex(of: CRILogEntry.newline) {
                writeAll(rest[...lastFit])
                rest = rest[(lastFit + 1)...]
            } else if fileSize == 0 {
                let end = rest.firstIndex(of: CRILogEntry.newline) ?? (rest.endIndex - 1)
                writeAll(rest[...end])
                rest = rest[(end + 1)...]
            }
            if !rest.isEmpty { rotate() }
        }
    }

    mutating func writeAll(_ bytes: ArraySlice<UInt8>) {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let n = bytes[offset...].withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if writeError == nil { writeError = ContainerLogError("writing", path: path, errno: errno) }
                return
            }
            offset += n
        }
        fileSize += bytes.count
    }

    /// Renames the full file aside (deleting the previous rotated one) and starts an empty one.
    mutating func rotate() {
        let directory = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        if let names = try? FileManager.default.contentsOfDirectory(atPath: directory) {
            for name in names where name.hasPrefix(base + ".") {
                unlink(directory + "/" + name)
            }
        }
        close(file)
        if rename(path, path + "." + Self.rotationSuffix(clock())) != 0 {
            // Could not move it aside: start over in place rather than grow without bound.
            _ = truncate(path, 0)
        }
        if let fd = try? ContainerLogWriter.openForAppend(path) {
            file = fd
        } else {
            file = -1
            if writeError == nil { writeError = ContainerLogError("reopening", path: path, errno: errno) }
        }
        fileSize = 0
    }

    /// "20240102-150405", the kubelet's suffix for rotated container logs.
    static func rotationSuffix(_ time: CRITimestamp) -> String {
        let text = time.description  // 2024-01-02T15:04:05.000000000Z
        let chars = Array(text)
        return String(chars[0..<4]) + String(chars[5..<7]) + String(chars[8..<10]) + "-"
            + String(chars[11..<13]) + String(chars[14..<16]) + String(chars[17..<19])
    }
}
