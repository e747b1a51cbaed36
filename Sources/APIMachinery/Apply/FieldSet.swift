/// A set of field paths: what one manager owns, what changed between two objects.
///
/// Stored as a tree like structured-merge-diff's `fieldpath.Set`: at each level the elements
/// that are themselves in the set (`members`) and the subsets below elements (`children`), both
/// kept sorted. All operations are on the set of paths; the tree is only the storage.
public struct FieldSet: Sendable, Equatable, CustomStringConvertible {
    /// Elements at this level that are paths of the set, sorted.
    var members: [PathElement] = []
    /// Non-empty subsets below elements, sorted by element.
    var children: [Child] = []

    struct Child: Sendable, Equatable {
        var element: PathElement
        var set: FieldSet
    }

    /// The empty set.
    public init() {}

    /// The set of exactly these paths.
    public init(_ paths: [FieldPath]) {
        for p in paths { insert(p) }
    }

    public var isEmpty: Bool { members.isEmpty && children.isEmpty }

    /// Number of paths in the set.
    public var count: Int { members.count + children.reduce(0) { $0 + $1.set.count } }

    /// Adds a path (its parents are not added). The empty path, the whole object, is never owned.
    public mutating func insert(_ path: FieldPath) {
        insert(path[...])
    }

    private mutating func insert(_ path: ArraySlice<PathElement>) {
        guard let first = path.first else { return }
        if path.count == 1 {
            let (i, found) = Self.search(members, first)
            if !found { members.insert(first, at: i) }
            return
        }
        let (i, found) = Self.searchChildren(children, first)
        if found {
            children[i].set.insert(path.dropFirst())
        } else {
            var s = FieldSet()
            s.insert(path.dropFirst())
            children.insert(Child(element: first, set: s), at: i)
        }
    }

    /// Whether `path` is in the set.
    public func has(_ path: FieldPath) -> Bool {
        has(path[...])
    }

    private func has(_ path: ArraySlice<PathElement>) -> Bool {
        guard let first = path.first else { return false }
        if path.count == 1 { return Self.search(members, first).found }
        guard let child = child(first) else { return false }
        return child.has(path.dropFirst())
    }

    /// Whether `element` is a member at this level.
    func hasMember(_ element: PathElement) -> Bool { Self.search(members, element).found }

    /// The subset below `element`, without the element itself.
    func child(_ element: PathElement) -> FieldSet? {
        let (i, found) = Self.searchChildren(children, element)
        return found ? children[i].set : nil
    }

    /// The paths below `element`, with `element` removed from their front.
    public func withPrefix(_ element: PathElement) -> FieldSet {
        child(element) ?? FieldSet()
    }

    /// Every path, members of a level before the levels below it, each level in sorted order
    /// (the order apiserver lists conflicts in).
    public var paths: [FieldPath] {
        var out: [FieldPath] = []
        collect(prefix: [], into: &out)
        return out
    }

    private func collect(prefix: FieldPath, into out: inout [FieldPath]) {
        for m in members { out.append(prefix + [m]) }
        for c in children { c.set.collect(prefix: prefix + [c.element], into: &out) }
    }

    public var description: String { paths.map(\.pathString).joined(separator: "\n") }

    // MARK: Set algebra

    /// The paths in either set.
    public func union(_ other: FieldSet) -> FieldSet {
        var out = FieldSet()
        out.members = Self.mergeSorted(members, other.members)
        var i = 0, j = 0
        while i < children.count || j < other.children.count {
            if j == other.children.count || (i < children.count && children[i].element < other.children[j].element) {
                out.children.append(children[i])
                i += 1
            } else if i == children.count || other.children[j].element < children[i].element {
                out.children.append(other.children[j])
                j += 1
            } else {
                out.children.append(Child(element: children[i].element, set: children[i].set.union(other.children[j].set)))
                i += 1
                j += 1
            }
        }
        return out
    }

    /// The paths in both sets.
    public func intersection(_ other: FieldSet) -> FieldSet {
        var out = FieldSet()
        out.members = members.filter { other.hasMember($0) }
        for c in children {
            guard let o = other.child(c.element) else { continue }
            let s = c.set.intersection(o)
            if !s.isEmpty { out.children.append(Child(element: c.element, set: s)) }
        }
        return out
    }

    /// The paths of this set that are not in `other` (a path below one of `other`'s paths stays).
    public func subtracting(_ other: FieldSet) -> FieldSet {
        var out = FieldSet()
        out.members = members.filter { !other.hasMember($0) }
        for c in children {
            if let o = other.child(c.element) {
                let s = c.set.subtracting(o)
                if !s.isEmpty { out.children.append(Child(element: c.element, set: s)) }
            } else {
                out.children.append(c)
            }
        }
        return out
    }

    /// Like `subtracting`, but a path of `other` also takes away everything below it.
    public func subtractingRecursively(_ other: FieldSet) -> FieldSet {
        var out = FieldSet()
        out.members = members.filter { !other.hasMember($0) }
        for c in children where !other.hasMember(c.element) {
            if let o = other.child(c.element) {
                let s = c.set.subtractingRecursively(o)
                if !s.isEmpty { out.children.append(Child(element: c.element, set: s)) }
            } else {
                out.children.append(c)
            }
        }
        return out
    }

    // MARK: Sorted-array helpers

    private static func search(_ a: [PathElement], _ e: PathElement) -> (index: Int, found: Bool) {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let c = PathElement.compare(a[mid], e)
            if c == 0 { return (mid, true) }
            if c < 0 { lo = mid + 1 } else { hi = mid }
        }
        return (lo, false)
    }

    private static func searchChildren(_ a: [Child], _ e: PathElement) -> (index: Int, found: Bool) {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let c = PathElement.compare(a[mid].element, e)
            if c == 0 { return (mid, true) }
            if c < 0 { lo = mid + 1 } else { hi = mid }
        }
        return (lo, false)
    }

    private static func mergeSorted(_ a: [PathElement], _ b: [PathElement]) -> [PathElement] {
        var out: [PathElement] = []
        out.reserveCapacity(a.count + b.count)
        var i = 0, j = 0
        while i < a.count || j < b.count {
            if j == b.count || (i < a.count && a[i] < b[j]) {
                out.append(a[i]); i += 1
            } else if i == a.count || b[j] < a[i] {
                out.append(b[j]); j += 1
            } else {
                out.append(a[i]); i += 1; j += 1
            }
        }
        return out
    }
}

// MARK: - FieldsV1

extension FieldSet {
    /// The set in the FieldsV1 format of `metadata.managedFields[].fieldsV1`: one nested object
    /// per element, `{}` for a path that is in the set, and `".": {}` when an element is both
    /// in the set and has paths below it.
    public var fieldsV1: JSON { .object(contentsV1(includeSelf: false)) }

    /// `fieldsV1` as compact text, keys in upstream order.
    public var fieldsV1Text: String { fieldsV1.text }

    private func contentsV1(includeSelf: Bool) -> JSONObject {
        var o = JSONObject()
        if includeSelf && !isEmpty { o["."] = .object([:]) }
        var i = 0, j = 0
        while i < members.count || j < children.count {
            if j == children.count || (i < members.count && members[i] < children[j].element) {
                o[members[i].fieldsV1Key] = .object([:])
                i += 1
            } else if i == members.count || children[j].element < members[i] {
                o[children[j].element.fieldsV1Key] = .object(children[j].set.contentsV1(includeSelf: false))
                j += 1
            } else {
                o[children[j].element.fieldsV1Key] = .object(children[j].set.contentsV1(includeSelf: true))
                i += 1
                j += 1
            }
        }
        return o
    }

    /// Reads a FieldsV1 document. Keys of unknown element types are dropped, as upstream does.
    public init(fieldsV1 json: JSON) throws(FieldsV1Error) {
        guard case .object(let o) = json else {
            throw FieldsV1Error("FieldsV1 must be a JSON object, got \(json.typeName)")
        }
        self = try Self.readV1(o, depth: 0).children ?? FieldSet()
    }

    /// Reads a FieldsV1 document from text.
    public init(fieldsV1Text text: String) throws(FieldsV1Error) {
        let json: JSON
        do {
            json = try JSON.parse(text)
        } catch {
            throw FieldsV1Error("invalid FieldsV1 JSON: \(error.message)")
        }
        try self.init(fieldsV1: json)
    }

    /// Returns the subset an object describes, and whether the element owning the object is
    /// itself in the set (an empty object, or one holding ".").
    private static func readV1(_ o: JSONObject, depth: Int) throws(FieldsV1Error) -> (children: FieldSet?, isMember: Bool) {
        guard depth < JSON.maxDepth else { throw FieldsV1Error("FieldsV1 nested too deeply") }
        var result: FieldSet?
        var isMember = false
        for (key, value) in o {
            if key == "." {
                isMember = true
                continue
            }
            guard let element = try PathElement.parse(fieldsV1Key: key) else { continue }
            guard case .object(let inner) = value else {
                throw FieldsV1Error("FieldsV1 entry \(key) must be an object, got \(value.typeName)")
            }
            let (grandchildren, childIsMember) = try readV1(inner, depth: depth + 1)
            var s = result ?? FieldSet()
            if childIsMember {
                let (i, found) = search(s.members, element)
                if !found { s.members.insert(element, at: i) }
            }
            if let grandchildren, !grandchildren.isEmpty {
                let (i, found) = searchChildren(s.children, element)
                if found {
                    s.children[i].set = s.children[i].set.union(grandchildren)
                } else {
                    s.children.insert(Child(element: element, set: grandchildren), at: i)
                }
            }
            result = s
        }
        if result == nil { isMember = true }
        return (result, isMember)
    }
}
