import Testing
@testable import Addons

/// The trim that follows work of any kind: it waits for page faults to stop, measures the level
/// serving settles at after a trim, and trims again only once the mapped file pages have grown
/// past that level by the threshold.
@Suite struct GrowthWatchTests {
    let start = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { start + .milliseconds(ms) }
    static let mb = 1 << 20

    @Test func measuresTheLevelThenTrimsOnlyOnGrowthOnceFaultsStop() {
        var w = MemoryTrim.GrowthWatch(quiet: .seconds(3), growth: Self.mb, faults: 100, at: at(0))
        func look(_ faults: Int, _ mb: Double, _ ms: Int) -> Bool {
            w.look(.init(faults: faults, fileResident: Int(mb * Double(Self.mb))), at: at(ms))
        }
        // Quiet from the start: the first settled look only measures the level (15 MB).
        #expect(!look(100, 15, 1_000))
        #expect(!look(100, 15, 3_000))
        // A burst of faults maps 2 MB; nothing is trimmed while faults keep coming.
        #expect(!look(400, 16, 4_000))
        #expect(!look(900, 17, 5_000))
        #expect(!look(900, 17, 7_000))
        // Quiet for 3 s after the last fault, 2 MB over the level: trim, once.
        #expect(look(900, 17, 8_000))
        #expect(!look(900, 17, 9_000))
        w.trimmed(at: at(9_000))
        // The trim's own faults bring the busy path back (15.5 MB): that is the new level.
        #expect(!look(950, 15.5, 10_000))
        #expect(!look(950, 15.5, 13_000))
        // Less than the threshold over it: no trim, however quiet.
        #expect(!look(990, 16.2, 14_000))
        #expect(!look(990, 16.2, 17_000))
        #expect(!look(990, 16.2, 60_000))
        // More work, 1 MB over the level once it stops: trim.
        #expect(!look(1_200, 16.6, 61_000))
        #expect(look(1_200, 16.6, 64_000))
    }

    @Test func aTrimWithoutFaultsAfterItStillMeasuresTheLevel() {
        var w = MemoryTrim.GrowthWatch(quiet: .seconds(3), growth: Self.mb, faults: 0, at: at(0))
        func look(_ faults: Int, _ mb: Int, _ ms: Int) -> Bool {
            w.look(.init(faults: faults, fileResident: mb * Self.mb), at: at(ms))
        }
        #expect(!look(0, 12, 3_000))
        w.trimmed(at: at(3_000))
        // No fault after the trim (nothing was running): the level is measured 3 s later...
        #expect(!look(0, 8, 5_000))
        #expect(!look(0, 8, 6_000))
        // ...from the trimmed 8 MB, so 1 MB of growth is enough for the next trim.
        #expect(!look(10, 9, 7_000))
        #expect(look(10, 9, 10_000))
    }
}
