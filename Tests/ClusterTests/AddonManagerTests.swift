import APIMachinery
import XCTest

@testable import Cluster

/// What `labnode up` says when the DNS add-on does not become ready.
final class AddonManagerTests: XCTestCase {
    func testTheNewestWarningAboutTheAddOnIsTheReason() {
        func event(_ type: String, _ name: String, _ at: String, _ message: String, rv: Int = 1) -> JSON {
            ["metadata": ["resourceVersion": .string(String(rv))], "type": .string(type),
             "involvedObject": ["kind": "Pod", "name": .string(name)], "lastTimestamp": .string(at), "message": .string(message)]
        }
        let events = [
            event("Warning", "coredns-5fc5f84554-4rqd8", "2026-12-01T07:10:02Z", "Failed to pull image \"labnode\": no such image"),
            event("Normal", "coredns-5fc5f84554-4rqd8", "2026-12-01T07:10:30Z", "Back-off pulling image \"labnode\""),
            event("Warning", "coredns-5fc5f84554-4rqd8", "2026-12-01T07:09:59Z", "no nodes available to schedule pods"),
            event("Warning", "other-pod", "2026-12-01T07:11:00Z", "unrelated"),
        ]
        XCTAssertEqual(AddonManager.latestWarning(events, objectPrefix: "coredns"), "Failed to pull image \"labnode\": no such image")
        XCTAssertNil(AddonManager.latestWarning(Array(events.suffix(1)), objectPrefix: "coredns"), "no warning about the add-on")
        // Within one second (what the timestamps resolve), the later write wins.
        let sameSecond = [
            event("Warning", "coredns-1", "2026-12-01T08:09:20Z", "no nodes available to schedule pods", rv: 40),
            event("Warning", "coredns-1", "2026-12-01T08:09:20Z", "Failed to pull image \"labnode\"", rv: 45),
        ]
        XCTAssertEqual(AddonManager.latestWarning(sameSecond, objectPrefix: "coredns"), "Failed to pull image \"labnode\"")
        XCTAssertEqual(AddonManager.latestWarning(sameSecond.reversed(), objectPrefix: "coredns"), "Failed to pull image \"labnode\"")
    }
}
