/// Go's `sort.SliceStable` algorithm: insertion sort on blocks of 20, then blocks merged
/// pairwise with SymMerge (Kim & Kutzner), all by swaps.
///
/// With a proper ordering any stable sort gives the same result. Strategic merge patch sorts
/// with a comparator that is not one (see `StrategicMerger.sorted`), and for those inputs only
/// the same algorithm gives the same order as kube-apiserver.
enum GoStableSort {
    static func sort<T>(_ data: inout [T], by less: (T, T) -> Bool) {
        let n = data.count
        var blockSize = 20
        var a = 0
        var b = blockSize
        while b <= n {
            insertionSort(&data, a, b, less)
            a = b
            b += blockSize
        }
        insertionSort(&data, a, n, less)
        while blockSize < n {
            a = 0
            b = 2 * blockSize
            while b <= n {
                symMerge(&data, a, a + blockSize, b, less)
                a = b
                b += 2 * blockSize
            }
            let m = a + blockSize
            if m < n { symMerge(&data, a, m, n, less) }
            blockSize *= 2
        }
    }

    private static func insertionSort<T>(_ data: inout [T], _ a: Int, _ b: Int, _ less: (T, T) -> Bool) {
        guard b - a > 1 else { return }
        for i in (a + 1)..<b {
            var j = i
            while j > a && less(data[j], data[j - 1]) {
                data.swapAt(j, j - 1)
                j -= 1
            }
        }
    }

    /// Merges the sorted runs data[a..<m] and data[m..<b] in place.
    private static func symMerge<T>(_ data: inout [T], _ a: Int, _ m: Int, _ b: Int, _ less: (T, T) -> Bool) {
        if m - a == 1 {
            // Binary search for where data[a] goes in the right run, then bubble it there.
            var i = m
            var j = b
            while i < j {
                let h = (i + j) / 2
                if less(data[h], data[a]) { i = h + 1 } else { j = h }
            }
            var k = a
            while k < i - 1 {
                data.swapAt(k, k + 1)
                k += 1
            }
            return
        }
        if b - m == 1 {
            var i = a
            var j = m
            while i < j {
                let h = (i + j) / 2
                if !less(data[m], data[h]) { i = h + 1 } else { j = h }
            }
            var k = m
            while k > i {
                data.swapAt(k, k - 1)
                k -= 1
            }
            return
        }
        let mid = (a + b) / 2
        let n = mid + m
        var start: Int
        var r: Int
        if m > mid {
            start = n - b
            r = mid
        } else {
            start = a
            r = m
        }
        let p = n - 1
        while start < r {
            let c = (start + r) / 2
            if !less(data[p - c], data[c]) { start = c + 1 } else { r = c }
        }
        let end = n - start
        if start < m && m < end { rotate(&data, start, m, end) }
        if a < start && start < mid { symMerge(&data, a, start, mid, less) }
        if mid < end && end < b { symMerge(&data, mid, end, b, less) }
    }

    /// Swaps the blocks data[a..<m] and data[m..<b] with the minimum number of swaps.
    private static func rotate<T>(_ data: inout [T], _ a: Int, _ m: Int, _ b: Int) {
        var i = m - a
        var j = b - m
        while i != j {
            if i > j {
                swapRange(&data, m - i, m, j)
                i -= j
            } else {
                swapRange(&data, m - i, m + j - i, i)
                j -= i
            }
        }
        swapRange(&data, m - i, m, i)
    }

    private static func swapRange<T>(_ data: inout [T], _ a: Int, _ b: Int, _ n: Int) {
        for i in 0..<n { data.swapAt(a + i, b + i) }
    }
}
