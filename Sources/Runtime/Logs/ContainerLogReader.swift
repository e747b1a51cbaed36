import Foundation

/// What `kubectl logs` asks for, in the form the kubelet applies it to a CRI log file.
public struct ContainerLogOptions: Sendable, Equatable {
    /// Only the last N lines of the file (nil: all). Counted in file lines, as the kubelet does:
    /// a line the writer had to split into partial entries counts once per entry.
    public var tailLines: Int?
    /// Skip lines logged before this instant.
    public var since: CRITimestamp?
    /// Prefix every line with its RFC 3339 timestamp (nine fraction digits) and a space.
    public var timestamps: Bool
    /// Stop after this many bytes of output (the last line may be cut).
    public var limitBytes: Int?
    /// Keep reading lines as they are appended, until the container's output has ended.
    public var follow: Bool

    public init(tailLines: Int? = nil, since: CRITimestamp? = nil, timestamps: Bool = false,
                limitBytes: Int? = nil, follow: Bool = false) {
        self.tailLines = tailLines
        self.since = since
        self.timestamps = timestamps
        self.limitBytes = limitBytes
        self.follow = follow
    }

    /// The pod log API's parameters turned into options the way the kubelet does it: `since` is
    /// the later of `now - sinceSeconds` and `sinceTime`.
    public init(tailLines: Int64?, sinceSeconds: Int64?, sinceTime: Date?, timestamps: Bool, limitBytes: Int64?,
                follow: Bool, now: CRITimestamp = .now()) {
        var since: CRITimestamp?
        if let sinceSeconds { since = now.subtracting(seconds: sinceSeconds) }
        if let sinceTime {
            let t = CRITimestamp(sinceTime)
            if since.map({ t > $0 }) ?? true { since = t }
        }
        self.init(tailLines: tailLines.map { Int(clamping: $0) }, since: since, timestamps: timestamps,
                  limitBytes: limitBytes.map { Int(clamping: $0) }, follow: follow)
    }
}

/// Reads a CRI log file as `kubectl logs` shows it: the container's own bytes, partial entries
/// joined back into their lines, filtered and limited by `ContainerLogOptions`.
///
/// Reading is pull-driven: each chunk is read from the file only when the consumer asks for the
/// next one, so a slow client never makes the whole file pile up in memory. Reads of a local file
/// are short, so they run on the caller's task rather than on a thread of their own.
///
/// Following polls the file every `pollInterval` (20 ms by default) once it has reached the end.
/// inotify would wake sooner but needs a blocking thread or an event loop per follower; a short
/// poll keeps a new line's delay well under the 100 ms a person can notice, costs one read(2)
/// per interval per follower, and handles rotation the same way (the path names a new file).
/// The follow ends when `stillWriting` says the writer is done and the file is read to the end,
/// or when the consuming task is cancelled.
public struct ContainerLogReader: Sendable {
    public var path: String
    public var options: ContainerLogOptions
    public var pollInterval: Duration
    /// Whether lines may still be appended (the container's writer is running); asked only when
    /// following, once the end of the file is reached.
    public var stillWriting: @Sendable () -> Bool

    public init(path: String, options: ContainerLogOptions = ContainerLogOptions(),
                pollInterval: Duration = .milliseconds(20),
                stillWriting: @escaping @Sendable () -> Bool = { false }) {
        self.path = path
        self.options = options
        self.pollInterval = pollInterval
        self.stillWriting = stillWriting
    }

    /// The current run's log (`<restartCount>.log`) or, with `previous`, the run before it
    /// (`<restartCount - 1>.log`), as `kubectl logs --previous` means while a container runs.
    public init(location: ContainerLogLocation, restartCount: Int, previous: Bool = false,
                options: ContainerLogOptions = ContainerLogOptions(), pollInterval: Duration = .milliseconds(20),
                stillWriting: @escaping @Sendable () -> Bool = { false }) {
        // A previous run's writer is long done, whatever `stillWriting` says about the current one.
        var writing = stillWriting
        if previous { writing = { false } }
        self.init(path: location.file(restartCount: previous ? restartCount - 1 : restartCount), options: options,
                  pollInterval: pollInterval, stillWriting: writing)
    }

    /// Opens the file now, so that a missing log fails here (before any byte of a reply is sent),
    /// and returns its content in chunks of up to 32 KiB.
    public func open() throws(ContainerLogError) -> AsyncThrowingStream<[UInt8], any Error> {
        let cursor = try LogCursor(path: path, options: options, pollInterval: pollInterval, stillWriting: stillWriting)
        return AsyncThrowingStream(unfolding: { try await cursor.next() })
    }

    /// Everything `open()` would stream, collected (for callers that do not follow).
    public func readAll() async throws -> [UInt8] {
        var out: [UInt8] = []
        for try await chunk in try open() { out += chunk }
        return out
    }
}

/// The reading position in one log file and what the options still allow.
actor LogCursor {
    static let chunkBytes = 32 * 1024
    static let readBytes = 64 * 1024

    let path: String
    let options: ContainerLogOptions
    let pollInterval: Duration
    let stillWriting: @Sendable () -> Bool
    var fd: Int32
    /// Device and inode of the open file: when the path names another one, the writer rotated.
    var identity: (dev: UInt64, ino: UInt64)
    /// Bytes read but not yet parsed, from `consumed` on.
    var pending: [UInt8] = []
    var consumed = 0
    var scratch = [UInt8](repeating: 0, count: LogCursor.readBytes)
    /// Entries still to emit when tailing without following (the kubelet's "limited mode").
    var linesLeft: Int?
    var bytesLeft: Int?
    /// Whether the next emitted entry starts a line (and so gets the timestamp prefix).
    var atLineStart = true
    var done = false

    init(path: String, options: ContainerLogOptions, pollInterval: Duration,
         stillWriting: @escaping @Sendable () -> Bool) throws(ContainerLogError) {
        self.path = path
        self.options = options
        self.pollInterval = pollInterval
        self.stillWriting = stillWriting
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ContainerLogError("opening", path: path, errno: errno) }
        var st = stat()
        fstat(fd, &st)
        identity = (UInt64(st.st_dev), UInt64(st.st_ino))
        if let n = options.tailLines {
            let start: off_t
            do {
                start = try Self.tailStart(fd: fd, lines: n, path: path)
            } catch {
                close(fd)
                throw error
            }
            lseek(fd, start, SEEK_SET)
        }
        self.fd = fd
        let lines = options.follow ? nil : options.tailLines
        linesLeft = lines
        bytesLeft = options.limitBytes
        done = lines == 0 || (options.limitBytes ?? 1) <= 0
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// The next chunk of output, or nil at the end.
    func next() async throws -> [UInt8]? {
        var out: [UInt8] = []
        while !done {
            if drainLines(into: &out) {
                done = true
                break
            }
            if out.count >= Self.chunkBytes { return out }
            // Asked before reading: if the writer was done by then, this read sees all it wrote.
            let writing = options.follow && stillWriting()
            if try readMore() > 0 { continue }
            if !out.isEmpty { return out }
            if options.follow {
                if try switchIfRotated() { continue }
                if writing {
                    do {
                        try await Task.sleep(for: pollInterval)
                        continue
                    } catch {
                        done = true
                        break
                    }
                }
            }
            finishTrailingLine(into: &out)
            done = true
        }
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        return out.isEmpty ? nil : out
    }

    /// Emits every complete line read so far; true when a limit ends the read.
    func drainLines(into out: inout [UInt8]) -> Bool {
        while out.count < Self.chunkBytes,
              let nl = pending[consumed...].firstIndex(of: CRILogEntry.newline) {
            let line = pending[consumed..<nl]
            consumed = nl + 1
            if emit(line, endedByNewline: true, into: &out) { return true }
        }
        return false
    }

    /// A last line the file does not end with a newline (a writer cut off mid-write); the kubelet
    /// still shows it.
    func finishTrailingLine(into out: inout [UInt8]) {
        guard consumed < pending.count else { return }
        let line = pending[consumed...]
        consumed = pending.count
        _ = emit(line, endedByNewline: false, into: &out)
    }

    /// Applies the options to one file line; true when a limit ends the read.
    func emit(_ line: ArraySlice<UInt8>, endedByNewline: Bool, into out: inout [UInt8]) -> Bool {
        // Lines that do not parse are skipped, and not counted, as the kubelet does.
        guard let entry = CRILogEntry.parse(line) else { return false }
        var stop = false
        if options.since.map({ entry.timestamp >= $0 }) ?? true {
            var piece: [UInt8] = []
            piece.reserveCapacity(entry.content.count + 32)
            if options.timestamps && atLineStart {
                entry.timestamp.append(to: &piece)
                piece.append(CRILogEntry.space)
            }
            piece += entry.content
            if !entry.partial && endedByNewline { piece.append(CRILogEntry.newline) }
            if let left = bytesLeft {
                if piece.count > left { piece.removeLast(piece.count - left) }
                bytesLeft = left - piece.count
                if left - piece.count <= 0 { stop = true }
            }
            out += piece
        }
        atLineStart = !entry.partial
        if let n = linesLeft {
            linesLeft = n - 1
            if n - 1 <= 0 { stop = true }
        }
        return stop
    }

    /// Reads what the file has past the current position; 0 at its end.
    func readMore() throws(ContainerLogError) -> Int {
        if consumed > 0 {
            pending.removeFirst(consumed)
            consumed = 0
        }
        while true {
            let n = scratch.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n >= 0 {
                pending += scratch[0..<n]
                return n
            }
            if errno != EINTR { throw ContainerLogError("reading", path: path, errno: errno) }
        }
    }

    /// At the end of the open file: if the path now names a new file (the writer rotated), reads
    /// whatever reached the old one before it was renamed, then moves to the new one. True when
    /// there is something new to read.
    func switchIfRotated() throws(ContainerLogError) -> Bool {
        var st = stat()
        // Missing: the writer is between renaming the old file and creating the new one.
        guard stat(path, &st) == 0 else { return false }
        if UInt64(st.st_dev) == identity.dev && UInt64(st.st_ino) == identity.ino { return false }
        if try readMore() > 0 { return true }
        let newFD = open(path, O_RDONLY | O_CLOEXEC)
        guard newFD >= 0 else { return false }
        close(fd)
        fd = newFD
        identity = (UInt64(st.st_dev), UInt64(st.st_ino))
        // An unfinished line of the old file can never be completed: drop it.
        pending = []
        consumed = 0
        return true
    }

    /// The offset where the last `lines` lines of the file start: found by reading backwards
    /// block by block and counting newlines, so a tail of a large file reads only its end.
    static func tailStart(fd: Int32, lines: Int, path: String) throws(ContainerLogError) -> off_t {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return 0 }
        var block = [UInt8](repeating: 0, count: 32 * 1024)
        var count = 0
        var end = size
        while end > 0 {
            let start = max(0, end - off_t(block.count))
            let length = Int(end - start)
            let n = block.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, start) }
            guard n == length else { throw ContainerLogError("reading", path: path, errno: n < 0 ? errno : EIO) }
            var i = length - 1
            while i >= 0 {
                if block[i] == CRILogEntry.newline {
                    count += 1
                    // The newline before the wanted lines: they start right after it.
                    if count > lines { return start + off_t(i) + 1 }
                }
                i -= 1
            }
            end = start
        }
        return 0
    }
}
