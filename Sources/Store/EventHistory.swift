/// The most recent events, oldest first, in a fixed-size ring: the window a watch can replay.
///
/// Every write produces exactly one event with the next revision, so the retained events
/// always cover the contiguous revisions `latest - count + 1 ... latest`. That lets a replay
/// jump straight to the first event it needs instead of searching.
struct EventHistory: Sendable {
    let capacity: Int
    private var ring: [WatchEvent] = []
    /// Where the oldest event sits once the ring is full.
    private var start = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        ring.reserveCapacity(min(self.capacity, 1024))
    }

    var count: Int { ring.count }

    mutating func append(_ event: WatchEvent) {
        guard capacity > 0 else { return }
        if ring.count < capacity {
            ring.append(event)
        } else {
            ring[start] = event
            start = (start + 1) % capacity
        }
    }

    /// Retained events with a revision above `revision` whose key starts with `prefix`, oldest
    /// first. `latest` is the store's current revision (the revision of the newest event).
    func events(after revision: Int64, latest: Int64, prefix: String) -> [WatchEvent] {
        let oldestRetained = latest - Int64(ring.count) + 1
        let skip = max(0, revision + 1 - oldestRetained)
        guard skip < Int64(ring.count) else { return [] }
        var result: [WatchEvent] = []
        for offset in Int(skip)..<ring.count {
            let event = ring[(start + offset) % ring.count]
            if StoreKey(event.kv.key).hasPrefix(prefix) {
                result.append(event)
            }
        }
        return result
    }
}
