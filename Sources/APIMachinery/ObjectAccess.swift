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

/// Timestamps as Kubernetes writes them: RFC 3339, UTC, second precision ("2026-11-30T04:19:00Z").
public enum Timestamp {
    public static func rfc3339(_ date: Date = Date()) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
                      Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
    }

    /// RFC 3339 with microseconds, as metav1.MicroTime (leases, events) writes it.
    public static func rfc3339Micro(_ date: Date = Date()) -> String {
        let base = rfc3339(date).dropLast()  // drop the Z
        let micros = Int((date.timeIntervalSince1970 - date.timeIntervalSince1970.rounded(.down)) * 1_000_000)
        return base + String(format: ".%06dZ", micros)
    }

    /// Parses "2026-11-30T04:19:00Z", with optional fraction and numeric offset, to Unix seconds.
    public static func parse(_ s: String) -> Double? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= b.count else { return nil }
            var v = 0
            for i in from..<(from + n) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20, let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2),
              let mi = num(14, 2), let se = num(17, 2) else { return nil }
        var i = 19
        var frac = 0.0
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < b.count && b[i] >= 48 && b[i] <= 57 {
                frac += Double(b[i] - 48) * scale
                scale /= 10
                i += 1
            }
        }
        var offset = 0
        guard i < b.count else { return nil }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            guard let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        // Days from civil (Howard Hinnant's algorithm), so no calendar object is needed.
        let yy = mo <= 2 ? y - 1 : y
        let era = (yy >= 0 ? yy : yy - 399) / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return Double(days * 86400 + h * 3600 + mi * 60 + se - offset) + frac
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
