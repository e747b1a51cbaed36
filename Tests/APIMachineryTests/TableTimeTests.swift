import Testing
@testable import APIMachinery

@Suite("Table time formatting")
struct TableTimeTests {
    static let minute = 60.0
    static let hour = 3600.0
    static let day = 86_400.0

    static let durations: [(Double, String)] = [
        (-3.0, "<invalid>"),
        (-2.0, "<invalid>"),
        (-1.5, "0s"),  // up to a second of clock skew is tolerated
        (-1.0, "0s"),
        (0.0, "0s"),
        (0.999, "0s"),
        (59.0, "59s"),
        (60.0, "60s"),
        (119.0, "119s"),
        (119.9999, "119s"),
        (120.0, "2m"),
        (121.0, "2m1s"),
        (5 * minute, "5m"),
        (9 * minute + 59, "9m59s"),
        (10 * minute, "10m"),
        (10 * minute + 30, "10m"),
        (119 * minute, "119m"),
        (179 * minute + 59, "179m"),
        (3 * hour, "3h"),
        (3 * hour + 5 * minute, "3h5m"),
        (3 * hour + 5 * minute + 59, "3h5m"),
        (7 * hour + 59 * minute, "7h59m"),
        (8 * hour, "8h"),
        (8 * hour + 30 * minute, "8h"),
        (47 * hour + 59 * minute, "47h"),
        (2 * day, "2d"),
        (2 * day + 5 * hour, "2d5h"),
        (7 * day + 23 * hour, "7d23h"),
        (8 * day, "8d"),
        (8 * day + 5 * hour, "8d"),
        (729 * day, "729d"),
        (730 * day, "2y"),
        (730 * day + 30 * day, "2y30d"),
        (365 * 8 * day - day, "7y364d"),
        (365 * 8 * day, "8y"),
        (365 * 10 * day + 100 * day, "10y"),
        (1e12, "292y"),  // saturates like Go's time.Duration instead of trapping
    ]

    @Test("humanDuration follows kube-apiserver's unit thresholds", arguments: durations)
    func humanDuration(seconds: Double, expected: String) {
        #expect(TablePrinter.humanDuration(seconds: seconds) == expected)
    }

    @Test("AGE is <unknown> without a creation time")
    func ageUnknown() {
        #expect(TablePrinter.age(since: nil, now: 1000) == "<unknown>")
        #expect(TablePrinter.age(since: 880, now: 1000) == "2m")
    }

    @Test("RFC 3339 timestamps parse to unix seconds", arguments: [
        ("2026-11-30T03:15:18Z", 1_796_008_518.0),
        ("2026-11-30T03:15:18.5Z", 1_796_008_518.5),
        ("2026-11-30T03:15:18.250000Z", 1_796_008_518.25),
        ("2026-11-30T04:15:18+01:00", 1_796_008_518.0),
        ("2026-11-30T02:45:18-00:30", 1_796_008_518.0),
        ("2024-02-29T12:00:00Z", 1_709_208_000.0),
        ("1969-12-31T23:59:59Z", -1.0),
        ("1970-01-01T00:00:00Z", 0.0),
    ])
    func parse(text: String, expected: Double) {
        #expect(Timestamp.parse(text) == expected)
    }

    @Test("malformed timestamps and Go's zero time parse to nil", arguments: [
        "", "2026-11-30", "2026-11-30T03:15:18", "2026-11-30 03:15:18Z", "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-30T24:00:00Z", "2026-11-30T03:15:18.Z", "2026-11-30T03:15:18+0100",
        "2026-11-30T03:15:18Zjunk", "0001-01-01T00:00:00Z",
    ])
    func parseRejects(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("formatting gives whole-second UTC RFC 3339 and round-trips", arguments: [
        (1_796_008_518.0, "2026-11-30T03:15:18Z"),
        (1_796_008_518.9, "2026-11-30T03:15:18Z"),
        (1_709_208_000.0, "2024-02-29T12:00:00Z"),
        (-1.0, "1969-12-31T23:59:59Z"),
        (Timestamp.goZeroTime, "0001-01-01T00:00:00Z"),
    ])
    func format(seconds: Double, expected: String) {
        #expect(Timestamp.format(seconds) == expected)
        if seconds != Timestamp.goZeroTime {
            #expect(Timestamp.parse(expected) == seconds.rounded(.down))
        }
    }
}
