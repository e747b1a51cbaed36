extension TablePrinter {
    /// Renders a duration the way `kubectl get` shows AGE: two or three significant figures,
    /// with finer units kept only while the value is small ("90s", "5m30s", "3h5m", "4d2h", "2y30d").
    ///
    /// The thresholds are kube-apiserver's (k8s.io/apimachinery `duration.HumanDuration`): seconds
    /// up to 119s, then minutes (with seconds below 10m), hours (with minutes below 8h), days (with
    /// hours below 8d), years (with days below 8y). Up to one second in the future counts as "0s"
    /// (clock skew between machines); further in the future is "<invalid>".
    /// The input is rounded to the microsecond so that float noise cannot move a value across a
    /// unit boundary.
    public static func humanDuration(seconds: Double) -> String {
        let ns = nanoseconds(seconds)
        let second: Int64 = 1_000_000_000
        let wholeSeconds = ns / second  // truncates toward zero, like Go's int(d.Seconds())
        if wholeSeconds < -1 { return "<invalid>" }
        if wholeSeconds < 0 { return "0s" }
        if wholeSeconds < 120 { return "\(wholeSeconds)s" }

        let minutes = ns / (60 * second)
        if minutes < 10 {
            let s = wholeSeconds % 60
            return s == 0 ? "\(minutes)m" : "\(minutes)m\(s)s"
        }
        if minutes < 3 * 60 { return "\(minutes)m" }

        let hours = ns / (3600 * second)
        if hours < 8 {
            let m = minutes % 60
            return m == 0 ? "\(hours)h" : "\(hours)h\(m)m"
        }
        if hours < 48 { return "\(hours)h" }
        if hours < 24 * 8 {
            let h = hours % 24
            return h == 0 ? "\(hours / 24)d" : "\(hours / 24)d\(h)h"
        }
        if hours < 24 * 365 * 2 { return "\(hours / 24)d" }
        if hours < 24 * 365 * 8 {
            let days = (hours / 24) % 365
            return days == 0 ? "\(hours / 24 / 365)y" : "\(hours / 24 / 365)y\(days)d"
        }
        return "\(hours / 24 / 365)y"
    }

    /// Seconds to nanoseconds, saturating like Go's `time.Since` instead of trapping.
    static func nanoseconds(_ seconds: Double) -> Int64 {
        if seconds.isNaN { return 0 }
        let micro = (seconds * 1_000_000).rounded()
        let limit = Double(Int64.max / 1000)  // in microseconds; about 292 years
        if micro >= limit { return Int64.max }
        if micro <= -limit { return Int64.min }
        return Int64(micro) * 1000
    }

    /// The AGE cell: "<unknown>" for a missing (or zero) timestamp, else the human duration since it.
    static func age(since timestamp: Double?, now: Double) -> String {
        guard let timestamp else { return "<unknown>" }
        return humanDuration(seconds: now - timestamp)
    }
}

extension TablePrinter {
    /// RFC 3339 timestamps as Kubernetes writes them (`2026-11-30T03:15:18Z`, `...18.123456Z`,
    /// `...18+05:30`), converted to and from unix seconds without calendar libraries.
    enum RFC3339 {
        /// Unix seconds of Go's zero `time.Time` (0001-01-01T00:00:00Z). Kubernetes treats that instant
        /// as "no timestamp", so parsing it gives nil too.
        static let goZeroTime: Double = -62_135_596_800

        /// Unix seconds, or nil when the text is not an RFC 3339 date-time or is Go's zero time.
        static func parse(_ text: String) -> Double? {
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

        /// `2006-01-02T15:04:05Z` in UTC, whole seconds (Go's `Format(time.RFC3339)` of a UTC time).
        static func format(_ unixSeconds: Double) -> String {
            let whole = Int(unixSeconds.rounded(.down))
            let days = whole >= 0 ? whole / 86_400 : -((-whole + 86_399) / 86_400)
            let secondOfDay = whole - days * 86_400
            let (y, m, d) = civilFromDays(days)
            func pad(_ v: Int, _ width: Int) -> String {
                let s = String(v)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondOfDay / 3600, 2)):"
                + "\(pad(secondOfDay % 3600 / 60, 2)):\(pad(secondOfDay % 60, 2))Z"
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
}
