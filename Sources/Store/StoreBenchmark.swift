/// A quick throughput probe for any `KVStore`, for reports and tuning rather than tests.
public enum StoreBenchmark {
    /// Creates `count` keys with 1 KB values from `concurrency` concurrent writers (each
    /// awaiting its write before the next, like API requests) and returns successful creates
    /// per second. Keys go under a fresh prefix so repeated runs on one store do not collide.
    public static func creates(store: any KVStore, concurrency: Int, count: Int) async -> Double {
        let writers = max(1, concurrency)
        let value = [UInt8](repeating: 0x61, count: 1024)
        let run = UInt64.random(in: 0...UInt64.max)
        let clock = ContinuousClock()
        let start = clock.now
        let succeeded = await withTaskGroup(of: Int.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var ok = 0
                    var index = writer
                    while index < count {
                        if (try? await store.create("/benchmark/\(run)/\(index)", value: value)) != nil {
                            ok += 1
                        }
                        index += writers
                    }
                    return ok
                }
            }
            return await group.reduce(0, +)
        }
        let elapsed = start.duration(to: clock.now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(succeeded) / seconds : 0
    }
}
