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
