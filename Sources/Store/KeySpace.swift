import Foundation

/// A key compared and hashed by its UTF-8 bytes.
///
/// Swift's `String` equality and ordering follow Unicode canonical equivalence, so two keys
/// spelled with different byte sequences ("é" precomposed or decomposed) would collide, and
/// the order would differ from SQLite's BINARY collation. The store promises byte order
/// (like etcd), so every comparison goes through the bytes.
struct StoreKey: Hashable, Comparable, Sendable {
    let string: String

    init(_ string: String) {
        self.string = string
    }

    static func == (lhs: StoreKey, rhs: StoreKey) -> Bool {
        compareUTF8(lhs.string, rhs.string) == 0
    }

    static func < (lhs: StoreKey, rhs: StoreKey) -> Bool {
        compareUTF8(lhs.string, rhs.string) < 0
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(bytes))
        }
        if hashed == nil {
            for byte in string.utf8 { hasher.combine(byte) }
        }
    }

    func hasPrefix(_ prefix: String) -> Bool {
        string.utf8.starts(with: prefix.utf8)
    }
}

/// Compares two strings by their UTF-8 bytes: negative, zero or positive like `memcmp`.
func compareUTF8(_ lhs: String, _ rhs: String) -> Int {
    let fast: Int?? = lhs.utf8.withContiguousStorageIfAvailable { left in
        rhs.utf8.withContiguousStorageIfAvailable { right in
            compareBytes(left, right)
        }
    }
    if let outer = fast, let result = outer {
        return result
    }
    // Bridged or otherwise non-contiguous strings: compare byte by byte.
    var left = lhs.utf8.makeIterator()
    var right = rhs.utf8.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case let (l?, r?) where l != r: return l < r ? -1 : 1
        default: continue
        }
    }
}

private func compareBytes(_ left: UnsafeBufferPointer<UInt8>, _ right: UnsafeBufferPointer<UInt8>) -> Int {
    let common = min(left.count, right.count)
    if common > 0, let l = left.baseAddress, let r = right.baseAddress {
        let result = memcmp(l, r, common)
        if result != 0 { return Int(result) }
    }
    return left.count - right.count
}

/// Every live key in memory: a dictionary for point reads and a sorted array of keys for
/// prefix ranges.
///
/// A lab cluster holds thousands of objects, not millions, so an insert's O(n) shift of the
/// sorted array (a `memmove` of pointers) is cheaper than any tree; updates of existing keys
/// (the common write) never touch the array.
struct KeySpace: Sendable {
    private var entries: [StoreKey: KeyValue] = [:]
    private var sortedKeys: [StoreKey] = []

    init(_ values: [KeyValue] = []) {
        entries.reserveCapacity(values.count)
        for kv in values {
            entries[StoreKey(kv.key)] = kv
        }
        sortedKeys = entries.keys.sorted()
    }

    var count: Int { entries.count }

    func get(_ key: StoreKey) -> KeyValue? {
        entries[key]
    }

    mutating func put(_ kv: KeyValue) {
        let key = StoreKey(kv.key)
        if entries.updateValue(kv, forKey: key) == nil {
            sortedKeys.insert(key, at: firstIndex(notBelow: key))
        }
    }

    mutating func remove(_ key: StoreKey) {
        guard entries.removeValue(forKey: key) != nil else { return }
        let index = firstIndex(notBelow: key)
        if index < sortedKeys.count, sortedKeys[index] == key {
            sortedKeys.remove(at: index)
        }
    }

    /// Keys with `prefix`, strictly after `after` when given, at most `limit` of them.
    func list(prefix: String, after: String?, limit: Int?) -> (items: [KeyValue], more: Bool) {
        var index = firstIndex(notBelow: StoreKey(prefix))
        if let after {
            index = max(index, firstIndex(above: StoreKey(after)))
        }
        let cap = limit.map { max(0, $0) } ?? Int.max
        var items: [KeyValue] = []
        while index < sortedKeys.count, sortedKeys[index].hasPrefix(prefix) {
            if items.count == cap {
                return (items, true)
            }
            if let kv = entries[sortedKeys[index]] {
                items.append(kv)
            }
            index += 1
        }
        return (items, false)
    }

    /// The first position whose key is >= `key` (where `key` would be inserted).
    private func firstIndex(notBelow key: StoreKey) -> Int {
        var low = 0
        var high = sortedKeys.count
        while low < high {
            let mid = low + (high - low) / 2
            if sortedKeys[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low
    }

    /// The first position whose key is > `key`.
    private func firstIndex(above key: StoreKey) -> Int {
        var low = 0
        var high = sortedKeys.count
        while low < high {
            let mid = low + (high - low) / 2
            if key < sortedKeys[mid] { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
