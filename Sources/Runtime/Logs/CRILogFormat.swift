import Foundation

/// A log timestamp with nanosecond precision.
///
/// `Date` is a Double: at today's epoch seconds it keeps only about a tenth of a microsecond,
/// so a CRI timestamp read back through it would print different digits than were written.
public struct CRITimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since the Unix epoch, UTC.
    public var seconds: Int64
    /// 0 ..< 1_000_000_000.
    public var nanoseconds: Int32

    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// `date` rounded down to the microsecond it can still tell apart.
    public init(_ date: Date) {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        nanoseconds = Int32(micros - seconds * 1_000_000) * 1000
    }

    /// The wall clock now.
    public static func now() -> CRITimestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return CRITimestamp(seconds: Int64(ts.tv_sec), nanoseconds: Int32(ts.tv_nsec))
    }

    public var date: Date {
        Date(timeIntervalSince1970: Double(seconds) + Double(nanoseconds) / 1_000_000_000)
    }

    public static func < (a: CRITimestamp, b: CRITimestamp) -> Bool {
        a.seconds != b.seconds ? a.seconds < b.seconds : a.nanoseconds < b.nanoseconds
    }

    /// `self` minus whole seconds.
    public func subtracting(seconds s: Int64) -> CRITimestamp {
        CRITimestamp(seconds: seconds - s, nanoseconds: nanoseconds)
    }

    /// RFC 3339 in UTC with exactly nine fraction digits, as container runtimes write CRI logs and
    /// as the kubelet prefixes lines for `timestamps=true` ("2016-10-06T00:17:09.669794202Z").
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// `description` as bytes (the hot path of the writer and the reader).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(30)
        append(to: &out)
        return out
    }

    public func append(to out: inout [UInt8]) {
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        func put(_ value: Int, _ width: Int) {
            var divisor = 1
            for _ in 1..<width { divisor *= 10 }
            var v = value
            while divisor > 0 {
                out.append(UInt8(ascii: "0") + UInt8((v / divisor) % 10))
                v %= divisor
                divisor /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, 4)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mon) + 1, 2)
        out.append(UInt8(ascii: "-"))
        put(Int(parts.tm_mday), 2)
        out.append(UInt8(ascii: "T"))
        put(Int(parts.tm_hour), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_min), 2)
        out.append(UInt8(ascii: ":"))
        put(Int(parts.tm_sec), 2)
        out.append(UInt8(ascii: "."))
        put(Int(nanoseconds), 9)
        out.append(UInt8(ascii: "Z"))
    }

    /// Parses RFC 3339 with any number of fraction digits and a `Z` or `±hh:mm` offset, as the
    /// kubelet reads the timestamps of log lines (Go's variable-width RFC3339Nano).
    public static func parse<C: Collection<UInt8>>(_ text: C) -> CRITimestamp? where C.Index == Int {
        let b = text
        var i = b.startIndex
        func digits(_ count: Int) -> Int? {
            guard b.endIndex - i >= count else { return nil }
            var v = 0
            for k in 0..<count {
                let c = b[i + k]
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(c - UInt8(ascii: "0"))
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < b.endIndex, b[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
              let day = digits(2), expect(UInt8(ascii: "T")) || expect(UInt8(ascii: "t")),
              let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
              let second = digits(2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var nanos = 0
        if expect(UInt8(ascii: ".")) {
            var count = 0
            while i < b.endIndex, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if count < 9 { nanos = nanos * 10 + Int(b[i] - UInt8(ascii: "0")) }
                count += 1
                i += 1
            }
            guard count > 0 else { return nil }
            for _ in count..<max(count, 9) { nanos *= 10 }
        }
        var offset = 0
        if expect(UInt8(ascii: "Z")) || expect(UInt8(ascii: "z")) {
            // UTC
        } else if i < b.endIndex, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
            i += 1
            guard let oh = digits(2), expect(UInt8(ascii: ":")), let om = digits(2) else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        } else {
            return nil
        }
        guard i == b.endIndex else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let utc = Int64(timegm(&parts)) - Int64(offset)
        return CRITimestamp(seconds: utc, nanoseconds: Int32(nanos))
    }
}

/// Which output of a container a log line came from.
public enum CRILogStream: String, Sendable, Hashable {
    case stdout
    case stderr
}

/// One line of a CRI log file: `<RFC3339Nano> <stream> <tag> <content>\n`, where the tag is `F`
/// for a line the container ended with a newline and `P` for a piece of a longer (or unterminated)
/// one. The newline ending an `F` line belongs to the content; the one ending a `P` entry does not.
struct CRILogEntry: Equatable {
    var timestamp: CRITimestamp
    var stream: CRILogStream
    var partial: Bool
    /// The container's bytes, without the newline that ends the file line.
    var content: ArraySlice<UInt8>

    static let space = UInt8(ascii: " ")
    static let newline = UInt8(ascii: "\n")
    static let stdoutBytes = Array("stdout".utf8)
    static let stderrBytes = Array("stderr".utf8)

    /// Appends one entry in the file format.
    static func encode(timestamp: CRITimestamp, stream: CRILogStream, partial: Bool, content: ArraySlice<UInt8>,
                       into out: inout [UInt8]) {
        timestamp.append(to: &out)
        out.append(space)
        out += stream == .stdout ? stdoutBytes : stderrBytes
        out.append(space)
        out.append(partial ? UInt8(ascii: "P") : UInt8(ascii: "F"))
        out.append(space)
        out += content
        out.append(newline)
    }

    /// Reads one file line (without its newline). Nil for a line the kubelet would also skip:
    /// no timestamp, an unknown stream or no tag. Tags may carry `:`-separated extensions after
    /// the first one, which only decides partial or full.
    static func parse(_ line: ArraySlice<UInt8>) -> CRILogEntry? {
        guard let s1 = line.firstIndex(of: space),
              let timestamp = CRITimestamp.parse(line[line.startIndex..<s1]) else { return nil }
        let afterTime = line[(s1 + 1)...]
        guard let s2 = afterTime.firstIndex(of: space) else { return nil }
        let streamBytes = afterTime[afterTime.startIndex..<s2]
        let stream: CRILogStream
        if streamBytes.elementsEqual(stdoutBytes) {
            stream = .stdout
        } else if streamBytes.elementsEqual(stderrBytes) {
            stream = .stderr
        } else {
            return nil
        }
        let afterStream = afterTime[(s2 + 1)...]
        guard let s3 = afterStream.firstIndex(of: space) else { return nil }
        let tags = afterStream[afterStream.startIndex..<s3]
        let firstTag = tags.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false).first ?? []
        let partial = firstTag.elementsEqual([UInt8(ascii: "P")])
        return CRILogEntry(timestamp: timestamp, stream: stream, partial: partial, content: afterStream[(s3 + 1)...])
    }
}
