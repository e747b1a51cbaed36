import Foundation

/// Typed reads and writes of the fields every Kubernetes object shares.
extension JSON {
    public var apiVersion: String? { self["apiVersion"]?.stringValue }
    public var kind: String? { self["kind"]?.stringValue }

    public var name: String? {
        get { self[path: "metadata", "name"]?.stringValue }
        set { self[path: "metadata", "name"] = newValue.map { .string($0) } }
    }

    public var namespace: String? {
        get { self[path: "metadata", "namespace"]?.stringValue }
        set { self[path: "metadata", "namespace"] = newValue.map { .string($0) } }
    }

    public var uid: String? { self[path: "metadata", "uid"]?.stringValue }

    public var resourceVersion: String? {
        get { self[path: "metadata", "resourceVersion"]?.stringValue }
        set { self[path: "metadata", "resourceVersion"] = newValue.map { .string($0) } }
    }

    public var labels: [String: String] {
        guard let o = self[path: "metadata", "labels"]?.objectValue else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in o { if let s = v.stringValue { out[k] = s } }
        return out
    }

    public var deletionTimestamp: String? { self[path: "metadata", "deletionTimestamp"]?.stringValue }

    public var finalizers: [String] {
        self[path: "metadata", "finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }
}

/// Timestamps as Kubernetes writes them (`2026-11-30T03:15:18Z`, `...18.123456Z`, `...18+05:30`),
/// to and from unix seconds without calendar libraries. The one implementation for metadata,
/// Table cells and protobuf times.
public enum Timestamp {
    /// Now (or `date`) as metav1.Time: UTC, whole seconds.
    public static func rfc3339(_ date: Date = Date()) -> String { format(date.timeIntervalSince1970) }

    /// Now (or `date`) as metav1.MicroTime (leases, events).
    public static func rfc3339Micro(_ date: Date = Date()) -> String { format(date.timeIntervalSince1970, micro: true) }

    /// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z). Kubernetes treats that instant
    /// as "no timestamp", so parsing it gives nil too.
    public static let goZeroTime: Double = -62_135_596_800

    /// Unix seconds, or nil when the text is not an RFC 3339 date-time or is Go's zero time.
    public static func parse(_ text: String) -> Double? {
        let b = Array(text.utf8)
        var i = 0

        func digits(_ count: Int) -> Int? {
            guard i + count <= b.count else { return nil }
            var v = 0
            for k in 0..<count {
                let c = b[i + k]
                guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
                v = v * 10 + Int(c - UInt8(ascii: "0"))
            }
            i += count
            return v
        }
        func expect(_ allowed: String) -> Bool {
            guard i < b.count, allowed.utf8.contains(b[i]) else { return false }
            i += 1
            return true
        }

        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
              expect("Tt"), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"),
              let second = digits(2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
              hour < 24, minute < 60, second < 60
        else { return nil }

        var fraction = 0.0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                fraction += Double(b[i] - UInt8(ascii: "0")) * scale
                scale /= 10
                i += 1
            }
            if i == start { return nil }
        }

        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else {
            let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
            guard expect("+-"), let oh = digits(2), expect(":"), let om = digits(2), oh < 24, om < 60 else { return nil }
            offset = sign * (oh * 3600 + om * 60)
        }
        guard i == b.count else { return nil }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
        if seconds == goZeroTime { return nil }
        return seconds
    }

    /// `2006-01-02T15:04:05Z` in UTC, whole seconds (Go's `Format(time.RFC3339)` of a UTC time), or
    /// with `micro`, `2006-01-02T15:04:05.000000Z` as metav1.MicroTime writes it.
    public static func format(_ unixSeconds: Double, micro: Bool = false) -> String {
        let whole = Int64(unixSeconds.rounded(.down))
        let micros = Int64(((unixSeconds - unixSeconds.rounded(.down)) * 1_000_000).rounded(.down))
        return format(seconds: whole, micros: micro ? micros : nil)
    }

    /// The same from whole seconds and, for MicroTime, microseconds.
    public static func format(seconds whole: Int64, micros: Int64?) -> String {
        let days = whole >= 0 ? whole / 86_400 : -((-whole + 86_399) / 86_400)
        let secondOfDay = Int(whole - days * 86_400)
        let (y, m, d) = civilFromDays(Int(days))
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        var text = "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondOfDay / 3600, 2)):"
            + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))"
        if let micros { text += "." + pad(Int(micros), 6) }
        return text + "Z"
    }

    static func isLeap(_ year: Int) -> Bool { (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}

public enum Names {
    /// The alphabet of apiserver's generateName suffix (no vowels, no confusable digits).
    static let alphabet = Array("bcdfghjklmnpqrstvwxz2456789")

    /// `prefix` + 5 random characters, trimmed so the result stays within 63 characters.
    public static func generate(prefix: String) -> String {
        var p = prefix
        if p.count > 58 { p = String(p.prefix(58)) }
        var s = p
        for _ in 0..<5 { s.append(alphabet.randomElement() ?? "x") }
        return s
    }

    public static func uuid() -> String { UUID().uuidString.lowercased() }
}
