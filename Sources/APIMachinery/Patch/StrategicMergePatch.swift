/// Kubernetes strategic merge patch (`application/strategic-merge-patch+json`), sent by
/// `kubectl apply` (client-side), `edit`, `set image`, `set selector` and `rollout restart`.
///
/// It is a JSON merge patch that knows, from the schema, how each list merges:
/// - a list whose field has patch strategy "merge" and a merge key (containers by `name`,
///   Service ports by `port`, env by `name`, ...) merges element by element, matched on the key;
/// - a "merge" list of scalars (finalizers) merges as a set;
/// - every other list is replaced.
/// Objects and maps merge recursively and `null` deletes a member. Directives:
/// - `"$patch": "replace"` in an object: the object is replaced by the rest of it;
///   `"$patch": "delete"` in an object: it becomes `{}` (or disappears if it did not exist);
/// - in a merge list, `{"$patch": "delete", <key>: v}` removes the elements with that key and
///   `{"$patch": "replace"}` replaces the whole list by the other patch elements;
/// - `"$setElementOrder/<list>": [...]` gives the order of the patched list's elements;
/// - `"$deleteFromPrimitiveList/<list>": [...]` removes scalars from a list;
/// - `"$retainKeys": [...]` drops the object's members not named there.
/// `"$patch": "merge"` is refused, as kube-apiserver refuses it.
///
/// Members the schema does not know (labnode keeps unknown fields) merge like a JSON merge
/// patch: objects recursively, lists replaced.
///
/// Errors are what kube-apiserver answers: malformed directives are 400 BadRequest; a list of
/// lists is 422; a value of the wrong JSON type for its field (a list where an object belongs)
/// is 422 Invalid on field `patch`; the other merge failures (missing merge key, unknown
/// `$patch` value, element order that contradicts the patch) reach kubectl as 500 with the
/// library's message (`Error from server: map: map[...] does not contain declared merge key: port`).
public enum StrategicMergePatch {
    /// Applies `patch` to `doc`, an object described by `schema` (normally `.ref` of its kind's
    /// definition, e.g. `.ref("io.k8s.api.apps.v1.Deployment")`).
    public static func apply(_ patch: JSON, to doc: JSON, schema: Schema, registry: TypeRegistry) throws(APIError) -> JSON {
        let patchObject: JSONObject
        switch patch {
        case .null:
            // Go decodes a null body into a nil map: nothing to merge.
            return doc
        case .object(let o):
            patchObject = o
        default:
            throw .badRequest("json: cannot unmarshal \(GoFormat.jsonKind(patch)) into Go value of type map[string]interface {}")
        }
        let merged: JSONObject
        do {
            merged = try StrategicMerger(registry: registry).mergeMap(doc.objectValue, patchObject, schema: schema)
        } catch {
            throw error.apiError
        }
        // kube-apiserver finds wrong types when it decodes the merged map into the Go type;
        // values can only have come from the patch, so checking the patch is enough.
        if let detail = PatchTypeCheck.problem(in: patch, schema: schema, registry: registry) {
            throw invalidPatch(patch, detail: detail)
        }
        return .object(merged)
    }

    /// 422 as `errors.NewInvalid(schema.GroupKind{}, "", field.Invalid("patch", "%+v" of the patch, detail))`.
    static func invalidPatch(_ patch: JSON, detail: String) -> APIError {
        APIError.invalid(kind: "", name: "", causes: [
            APIError.Cause(reason: "FieldValueInvalid",
                           message: "Invalid value: \(GoFormat.quote(GoFormat.value(patch))): \(detail)",
                           field: "patch"),
        ])
    }

    /// Why a merge failed, sorted by how kube-apiserver reports it.
    enum Failure: Error, Equatable {
        /// One of apimachinery's mergepatch sentinel errors it maps to 400.
        case badRequest(String)
        /// mergepatch.ErrNoListOfLists, which it maps to a generic 422.
        case listOfLists
        /// Any other error: not a Status, so the apiserver answers 500 with the bare message.
        case other(String)

        static let badPrimitiveList = Failure.badRequest("invalid patch format of primitive list")
        static let badRetainKeys = Failure.badRequest("invalid patch format of retainKeys")
        static let badSetElementOrder = Failure.badRequest("invalid patch format of setElementOrder list")

        var apiError: APIError {
            switch self {
            case .badRequest(let message):
                return .badRequest(message)
            case .listOfLists:
                return APIError(code: 422, reason: .invalid,
                                message: "the server rejected our request due to an error in our request")
            case .other(let message):
                // Upstream's reason here is empty (StatusReasonUnknown), which kubectl prints as
                // "Error from server: <message>".
                return APIError(code: 500, reason: .unknown, message: message)
            }
        }
    }
}

/// The merge walk. Follows k8s.io/apimachinery/pkg/util/strategicpatch's server-side merge
/// (mergeMap with MergeParallelList and IgnoreUnmatchedNulls), step for step where the
/// outcome is visible to a client.
struct StrategicMerger {
    typealias Failure = StrategicMergePatch.Failure

    let registry: TypeRegistry

    static let directiveMarker = "$patch"
    static let retainKeysDirective = "$retainKeys"
    static let setElementOrderPrefix = "$setElementOrder"
    static let deleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList"

    // MARK: Objects

    func mergeMap(_ original: JSONObject?, _ patchIn: JSONObject, schema: Schema?) throws(Failure) -> JSONObject {
        if let directive = patchIn[Self.directiveMarker] {
            switch directive {
            case "replace":
                return Self.strippedObject(patchIn)
            case "delete":
                return [:]
            default:
                throw .other("unknown patch type: \(GoFormat.s(directive)) in map: \(GoFormat.value(.object(patchIn)))")
            }
        }
        var original = original ?? [:]
        var patch = patchIn
        try applyRetainKeys(&original, &patch)
        try mergeOrderedLists(&original, &patch, schema: schema)

        for (patchKey, patchValue) in patch {
            var key = patchKey
            var isDeleteList = false
            if patchKey.hasPrefix(Self.deleteFromPrimitiveListPrefix) {
                guard let listKey = Self.directiveSuffix(patchKey, prefix: Self.deleteFromPrimitiveListPrefix) else {
                    throw Failure.badPrimitiveList
                }
                key = listKey
                isDeleteList = true
            }
            if patchValue.isNull {
                original.removeValue(forKey: key)
                continue
            }
            guard let current = original[key], Self.sameGoType(current, patchValue) else {
                // Absent, null, or of another type: the patch value wins as it is.
                if !isDeleteList {
                    if let cleaned = Self.cleaned(patchValue) {
                        original[key] = cleaned
                    } else {
                        original.removeValue(forKey: key)
                    }
                }
                continue
            }
            switch (current, patchValue) {
            case (.object(let currentObject), .object(let patchObject)):
                original[key] = .null  // release the old child so the merge below does not copy it
                original[key] = .object(try mergeMap(currentObject, patchObject, schema: fieldSchema(key, in: schema)))
            case (.array(let currentList), .array(let patchList)):
                original[key] = .null
                original[key] = .array(try mergeList(currentList, patchList, meta: listMeta(key, in: schema),
                                                     isDeleteList: isDeleteList))
            default:
                original[key] = patchValue
            }
        }
        return original
    }

    /// `$retainKeys`: keep only the listed members of the original; every member the patch
    /// sets must be listed too.
    private func applyRetainKeys(_ original: inout JSONObject, _ patch: inout JSONObject) throws(Failure) {
        guard let directive = patch.removeValue(forKey: Self.retainKeysDirective) else { return }
        guard case .array(let kept) = directive else { throw Failure.badRetainKeys }
        let names = Set(kept.compactMap(\.stringValue))
        for (key, value) in patch where !value.isNull {
            if key.hasPrefix(Self.deleteFromPrimitiveListPrefix) || key.hasPrefix(Self.setElementOrderPrefix) { continue }
            if !names.contains(key) { throw Failure.badRetainKeys }
        }
        original = original.filter { names.contains($0.key) }
    }

    // MARK: Lists

    /// What the schema says about a list-valued member.
    struct ListMeta {
        var merge = false
        var mergeKey = ""
        var element: Schema?
        /// reflect.Kind name of the element type, for one error message.
        var elementKindName = "interface"
    }

    func fieldSchema(_ key: String, in schema: Schema?) -> Schema? {
        switch schema {
        case .ref?: return schema.flatMap { registry.child(of: $0, key) }
        case .map(let value)?: return value
        default: return nil
        }
    }

    func listMeta(_ key: String, in schema: Schema?) -> ListMeta {
        guard case .array(let element, let semantics)? = fieldSchema(key, in: schema) else { return ListMeta() }
        let strategies = (semantics.patchStrategy ?? "").split(separator: ",").map { String($0.filter { $0 != " " }) }
        var meta = ListMeta()
        meta.merge = strategies.contains("merge")
        meta.mergeKey = semantics.patchMergeKey ?? ""
        meta.element = element
        switch element {
        case .ref: meta.elementKindName = "struct"
        case .map: meta.elementKindName = "map"
        case .string, .quantity, .time: meta.elementKindName = "string"
        default: break
        }
        return meta
    }

    /// mergeSliceHandler: merge lists merge, deletion lists delete, everything else is replaced.
    func mergeList(_ original: [JSON], _ patch: [JSON], meta: ListMeta, isDeleteList: Bool) throws(Failure) -> [JSON] {
        try mergeListSharing(original, patch, meta: meta, isDeleteList: isDeleteList).items
    }

    /// A merged list, and the original list as upstream's `$setElementOrder` step sees it
    /// afterwards (see `SharedStorage`).
    struct MergedList {
        var items: [JSON]
        var originalSeenByCaller: [JSON]
    }

    func mergeListSharing(_ original: [JSON], _ patch: [JSON], meta: ListMeta, isDeleteList: Bool) throws(Failure) -> MergedList {
        if meta.merge || isDeleteList {
            return try mergeSlice(original, patch, meta: meta, isDeleteList: isDeleteList)
        }
        return MergedList(items: patch.map(Self.stripped), originalSeenByCaller: original)
    }

    /// Upstream edits a merge list in the storage it shares with its caller (a Go slice):
    /// `$patch: delete` shifts later elements left in place, and elements appended after
    /// deletions land in the freed slots. The `$setElementOrder` step still holds the old slice
    /// of the original length, so it sees those writes, and it orders server-only elements by
    /// what it sees. Replaying the writes keeps our element order identical to the apiserver's
    /// (e.g. apply that renames one Service port while another port was added by hand).
    struct SharedStorage {
        var slots: [JSON]
        var live: Int

        init(_ list: [JSON]) {
            slots = list
            live = list.count
        }

        var current: [JSON] { Array(slots[0..<live]) }

        /// `append(s[:i], s[i+1:]...)`: the last live slot keeps its old value.
        mutating func remove(at index: Int) {
            var j = index
            while j < live - 1 {
                slots[j] = slots[j + 1]
                j += 1
            }
            live -= 1
        }

        /// Writes past the original length are invisible to the caller (new storage or beyond its length).
        mutating func append(_ value: JSON) {
            if live < slots.count { slots[live] = value }
            live += 1
        }
    }

    private func mergeSlice(_ originalIn: [JSON], _ patchIn: [JSON], meta: ListMeta, isDeleteList: Bool) throws(Failure) -> MergedList {
        if originalIn.isEmpty && patchIn.isEmpty { return MergedList(items: originalIn, originalSeenByCaller: originalIn) }
        let kind = try Self.elementKind(originalIn, patchIn)
        if kind != .object {
            if isDeleteList {
                let kept = originalIn.filter { item in !patchIn.contains { Self.scalarEqual($0, item) } }
                return MergedList(items: kept, originalSeenByCaller: originalIn)
            }
            let merged = Self.deduplicated(originalIn + patchIn)
            let (patchItems, serverOnly) = try Self.partition(merged, by: patchIn, mergeKey: "")
            let ordered = try Self.normalizeOrder(patchItems: patchItems, serverOnly: serverOnly, patchOrder: patchIn,
                                                  serverOrder: originalIn, mergeKey: "", kind: kind)
            return MergedList(items: ordered, originalSeenByCaller: originalIn)
        }
        let mergeKey = meta.mergeKey
        guard !mergeKey.isEmpty else {
            throw .other("cannot merge lists without merge key for \(meta.elementKindName)")
        }
        var storage = SharedStorage(originalIn)
        let (plain, replaced) = try applyListDirectives(&storage, patchIn, mergeKey: mergeKey)
        // After `$patch: replace` the patch's other elements are the list; nothing is merged.
        let original = replaced ? plain : storage.current
        let patch = replaced ? [] : plain
        let merged = try mergeByKey(original, patch, mergeKey: mergeKey, element: meta.element)
        if !replaced {
            for added in merged[original.count...] { storage.append(added) }
        }
        let (patchItems, serverOnly) = try Self.partition(merged, by: patch, mergeKey: mergeKey)
        let ordered = try Self.normalizeOrder(patchItems: patchItems, serverOnly: serverOnly, patchOrder: patch,
                                              serverOrder: original, mergeKey: mergeKey, kind: kind)
        // Elements taken whole from a replacing patch are raw until here, as upstream's are
        // (its errors quote them raw).
        return MergedList(items: replaced ? ordered.map(Self.stripped) : ordered, originalSeenByCaller: storage.slots)
    }

    /// Handles `$patch` elements of a merge list: deletions are applied to the original's
    /// storage; `replace` (returned true) means the other patch elements become the list.
    /// Returns the patch elements without directives.
    private func applyListDirectives(_ storage: inout SharedStorage, _ patch: [JSON], mergeKey: String) throws(Failure) -> ([JSON], Bool) {
        var plain: [JSON] = []
        var replace = false
        for item in patch {
            guard case .object(let element) = item, let directive = element[Self.directiveMarker] else {
                plain.append(item)
                continue
            }
            switch directive {
            case "delete":
                guard let keyValue = element[mergeKey] else { throw Self.noMergeKey(element, mergeKey) }
                while true {
                    var match: Int?
                    for index in 0..<storage.live {
                        guard case .object(let candidate) = storage.slots[index] else {
                            throw .other("value for key \(index) is not a map")
                        }
                        if let value = candidate[mergeKey], Self.scalarEqual(value, keyValue) {
                            match = index
                            break
                        }
                    }
                    guard let index = match else { break }
                    storage.remove(at: index)
                }
            case "replace":
                // Keep scanning: later directive elements must still be dropped from the list.
                replace = true
            case "merge":
                throw .other("merging lists cannot yet be specified in the patch")
            default:
                throw .other("unknown patch type: \(GoFormat.s(directive)) in map: \(GoFormat.value(item))")
            }
        }
        return (plain, replace)
    }

    /// Merges each patch element into the original element with the same merge key, or
    /// appends it.
    private func mergeByKey(_ originalIn: [JSON], _ patch: [JSON], mergeKey: String, element: Schema?) throws(Failure) -> [JSON] {
        var original = originalIn
        for item in patch {
            guard case .object(let patchElement) = item else {
                throw .other(Self.badArgType(expected: "map[string]interface {}", item))
            }
            guard let keyValue = patchElement[mergeKey] else { throw Self.noMergeKey(patchElement, mergeKey) }
            var match: Int?
            for (index, candidate) in original.enumerated() {
                guard case .object(let candidateObject) = candidate else {
                    throw .other("value for key \(index) is not a map")
                }
                if let v = candidateObject[mergeKey], Self.scalarEqual(v, keyValue) {
                    match = index
                    break
                }
            }
            if let index = match, case .object(let originalElement) = original[index] {
                original[index] = .null
                original[index] = .object(try mergeMap(originalElement, patchElement, schema: element))
            } else {
                var added = Self.strippedObject(patchElement)
                // The merge key must survive cleaning even when null, or ordering cannot find it.
                if added[mergeKey] == nil { added[mergeKey] = keyValue }
                original.append(.object(added))
            }
        }
        return original
    }

    /// `$setElementOrder/<list>`: merges the list now (if the patch has it) and puts the
    /// elements in the given order; elements only on the server keep their relative place.
    private func mergeOrderedLists(_ original: inout JSONObject, _ patch: inout JSONObject, schema: Schema?) throws(Failure) {
        for directiveKey in Array(patch.keys) where directiveKey.hasPrefix(Self.setElementOrderPrefix) {
            guard let orderValue = patch.removeValue(forKey: directiveKey) else { continue }
            guard case .array(let order) = orderValue else {
                throw .other(Self.badArgType(expected: "[]interface {}", orderValue))
            }
            guard let listKey = Self.directiveSuffix(directiveKey, prefix: Self.setElementOrderPrefix) else {
                throw Failure.badSetElementOrder
            }
            var originalList: [JSON]?
            if let value = original[listKey] {
                guard case .array(let list) = value else { throw .other(Self.badArgType(expected: "[]interface {}", value)) }
                originalList = list
            }
            var patchList: [JSON]?
            if let value = patch[listKey] {
                guard case .array(let list) = value else { throw .other(Self.badArgType(expected: "[]interface {}", value)) }
                patchList = list
            }
            let meta = listMeta(listKey, in: schema)
            try Self.validateOrder(patchList ?? [], order: order, mergeKey: meta.mergeKey)

            let merged: [JSON]
            var originalSeen = originalList ?? []
            switch (originalList, patchList) {
            case (let o?, nil): merged = o
            case (nil, let p?): merged = Self.cleanedList(p)
            case (let o?, let p?):
                let result = try mergeListSharing(o, p, meta: meta, isDeleteList: false)
                merged = result.items
                originalSeen = result.originalSeenByCaller
            case (nil, nil): continue
            }
            let (patchItems, serverOnly) = try Self.partition(merged, by: order, mergeKey: meta.mergeKey)
            let kind = try Self.elementKind(originalSeen, patchList ?? [])
            original[listKey] = .array(try Self.normalizeOrder(
                patchItems: patchItems, serverOnly: serverOnly, patchOrder: order,
                serverOrder: originalSeen, mergeKey: meta.mergeKey, kind: kind))
            patch.removeValue(forKey: listKey)
        }
    }

    /// The patch list must not name (non-deleted) elements in an order that contradicts
    /// `$setElementOrder`, nor elements it does not list.
    private static func validateOrder(_ patchList: [JSON], order: [JSON], mergeKey: String) throws(Failure) {
        if order.isEmpty || patchList.isEmpty { return }
        var items = patchList
        if !mergeKey.isEmpty {
            items = []
            for item in patchList {
                guard case .object(let o) = item else { throw .other(badArgType(expected: "map[string]interface {}", item)) }
                if o[directiveMarker] != .string("delete") { items.append(item) }
            }
        }
        var p = 0
        var s = 0
        while p < items.count && s < order.count {
            if case .object(let o) = items[p], o[directiveMarker] != nil {
                p += 1
                continue
            }
            if try mergeKeyValueEqual(items[p], order[s], mergeKey: mergeKey) { p += 1 }
            s += 1
        }
        if p < items.count && s >= order.count {
            throw .other("The order in patch list:\n\(GoFormat.list(patchList))\n doesn't match \(setElementOrderPrefix) list:\n\(GoFormat.list(order))\n")
        }
    }

    private static func mergeKeyValueEqual(_ left: JSON, _ right: JSON, mergeKey: String) throws(Failure) -> Bool {
        if mergeKey.isEmpty { return scalarEqual(left, right) }
        guard case .object(let l) = left else { throw .other(badArgType(expected: "map[string]interface {}", left)) }
        guard case .object(let r) = right else { throw .other(badArgType(expected: "map[string]interface {}", right)) }
        guard let lv = l[mergeKey] else { throw noMergeKey(l, mergeKey) }
        guard let rv = r[mergeKey] else { throw noMergeKey(r, mergeKey) }
        return scalarEqual(lv, rv)
    }

    // MARK: Ordering

    /// Splits `merged` into the elements named by `list` (by merge key, or by value for scalars)
    /// and the rest.
    private static func partition(_ merged: [JSON], by list: [JSON], mergeKey: String) throws(Failure) -> ([JSON], [JSON]) {
        var named: [JSON] = []
        var rest: [JSON] = []
        for item in merged {
            if mergeKey.isEmpty {
                if list.contains(where: { scalarEqual($0, item) }) { named.append(item) } else { rest.append(item) }
                continue
            }
            guard case .object(let o) = item else { throw .other(badArgType(expected: "map[string]interface {}", item)) }
            guard let keyValue = o[mergeKey] else { throw noMergeKey(o, mergeKey) }
            var found = false
            for (index, candidate) in list.enumerated() {
                guard case .object(let c) = candidate else { throw .other("value for key \(index) is not a map") }
                if let v = c[mergeKey], scalarEqual(v, keyValue) {
                    found = true
                    break
                }
            }
            if found { named.append(item) } else { rest.append(item) }
        }
        return (named, rest)
    }

    /// Sorts patch items by `patchOrder` and server-only items by `serverOrder`, then
    /// interleaves them: a server-only item goes before the first patch item that comes
    /// after it on the server. Patch order wins over server order.
    private static func normalizeOrder(patchItems: [JSON], serverOnly: [JSON], patchOrder: [JSON],
                                       serverOrder: [JSON], mergeKey: String, kind: ElementKind) throws(Failure) -> [JSON] {
        let right = try sorted(patchItems, by: patchOrder, mergeKey: mergeKey, kind: kind)
        let left = try sorted(serverOnly, by: serverOrder, mergeKey: mergeKey, kind: kind)
        var result: [JSON] = []
        result.reserveCapacity(left.count + right.count)
        var i = 0
        var j = 0
        while i < left.count || j < right.count {
            if i >= left.count {
                result.append(right[j])
                j += 1
            } else if j >= right.count {
                result.append(left[i])
                i += 1
            } else {
                let li = index(of: left[i], in: serverOrder, mergeKey: mergeKey, kind: kind)
                let ri = index(of: right[j], in: serverOrder, mergeKey: mergeKey, kind: kind)
                if let li, let ri, li < ri {
                    result.append(left[i])
                    i += 1
                } else {
                    result.append(right[j])
                    j += 1
                }
            }
        }
        return result
    }

    private static func sorted(_ items: [JSON], by order: [JSON], mergeKey: String, kind: ElementKind) throws(Failure) -> [JSON] {
        var toSort = items
        var deletions: [JSON] = []
        if kind == .object {
            for list in [items, order] {
                for item in list {
                    guard case .object(let o) = item else { throw .other(badArgType(expected: "map[string]interface {}", item)) }
                    if o[mergeKey] == nil { throw noMergeKey(o, mergeKey) }
                }
            }
            toSort = items.filter { $0.objectValue?[directiveMarker] != .string("delete") }
            deletions = items.filter { $0.objectValue?[directiveMarker] == .string("delete") }
        }
        var ranked = toSort.map { (item: $0, position: index(of: $0, in: order, mergeKey: mergeKey, kind: kind)) }
        // Upstream's "less" says yes whenever either element is missing from `order`. That is
        // not a strict order, so the result depends on the sort algorithm: use Go's.
        GoStableSort.sort(&ranked) { a, b in
            guard let i = a.position, let j = b.position else { return true }
            return i < j
        }
        return ranked.map(\.item) + deletions
    }

    private static func index(of item: JSON, in list: [JSON], mergeKey: String, kind: ElementKind) -> Int? {
        if kind == .object {
            // Go compares the merge key values, nil (absent) matching nil.
            let wanted = item.objectValue?[mergeKey]
            return list.firstIndex { candidate in
                let value = candidate.objectValue?[mergeKey]
                switch (wanted, value) {
                case (nil, nil): return true
                case (let a?, let b?): return scalarEqual(a, b)
                default: return false
                }
            }
        }
        return list.firstIndex { scalarEqual($0, item) }
    }

    // MARK: Element types

    enum ElementKind: Equatable {
        case null, bool, number, string, array, object
    }

    static func kind(of value: JSON) -> ElementKind {
        switch value {
        case .null: return .null
        case .bool: return .bool
        case .int, .double: return .number
        case .string: return .string
        case .array: return .array
        case .object: return .object
        }
    }

    /// The one element type of all the lists; lists of lists and mixed lists are refused.
    /// Integers and floats count as one type here (Go would tell int64 from float64, which
    /// only makes a patch fail that mixes `1` and `1.5` in one list).
    static func elementKind(_ lists: [JSON]...) throws(Failure) -> ElementKind {
        var found: ElementKind?
        for list in lists {
            for item in list {
                let k = kind(of: item)
                guard let previous = found else {
                    if k == .array { throw .listOfLists }
                    found = k
                    continue
                }
                if previous != k {
                    throw .other("list element types are not identical: \(GoFormat.value(.array(lists.map { .array($0) })))")
                }
            }
        }
        guard let found else { throw .other("no elements in any of the given slices") }
        return found
    }

    /// Same Go type after decoding: decides whether two values merge or the patch replaces.
    static func sameGoType(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int, .int), (.double, .double): return true
        default: return kind(of: a) == kind(of: b) && kind(of: a) != .number
        }
    }

    /// Go's `==` on decoded scalars, except that 80 and 80.0 are the same number.
    static func scalarEqual(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        default: return a.sameValue(as: b)
        }
    }

    static func deduplicated(_ items: [JSON]) -> [JSON] {
        var out: [JSON] = []
        for item in items where !out.contains(where: { scalarEqual($0, item) }) {
            out.append(item)
        }
        return out
    }

    // MARK: Values taken from the patch as they are

    // Upstream has two ways of taking a patch value where nothing on the server merges with
    // it, and we keep both, because they differ for nested directives:
    // - for a member the original lacks, it drops null members and every object that carries
    //   `$patch` (also inside lists): `cleaned`;
    // - for a list element it appends, a `$patch: replace` object, or a replaced list, it
    //   keeps the patch value raw: `stripped`.
    // In both cases the Go type decode then forgets nulls and `$`-directive members. labnode
    // stores JSON without such a decode, so both functions also remove what it would forget.

    static func stripped(_ value: JSON) -> JSON {
        switch value {
        case .object(let o): return .object(strippedObject(o))
        case .array(let a): return .array(a.map(stripped))
        default: return value
        }
    }

    static func strippedObject(_ o: JSONObject) -> JSONObject {
        var out = JSONObject(minimumCapacity: o.count)
        for (k, v) in o where !v.isNull && !isDirectiveKey(k) {
            out[k] = stripped(v)
        }
        return out
    }

    /// nil when the value is itself an object carrying `$patch`.
    static func cleaned(_ value: JSON) -> JSON? {
        switch value {
        case .object(let o):
            if let marker = o[directiveMarker], !marker.isNull { return nil }
            return .object(cleanedObject(o))
        case .array(let a):
            return .array(cleanedList(a))
        default:
            return value
        }
    }

    static func cleanedObject(_ o: JSONObject) -> JSONObject {
        var out = JSONObject(minimumCapacity: o.count)
        for (k, v) in o where !v.isNull && !isDirectiveKey(k) {
            if let c = cleaned(v) { out[k] = c }
        }
        return out
    }

    static func cleanedList(_ a: [JSON]) -> [JSON] {
        a.compactMap { item in item.isNull ? JSON.null : cleaned(item) }
    }

    static func isDirectiveKey(_ key: String) -> Bool {
        key == directiveMarker || key == retainKeysDirective
            || key.hasPrefix(setElementOrderPrefix + "/") || key.hasPrefix(deleteFromPrimitiveListPrefix + "/")
    }

    /// The list name after `<prefix>/`; nil when the key is not exactly that shape.
    static func directiveSuffix(_ key: String, prefix: String) -> String? {
        guard let slash = key.firstIndex(of: "/"), key[..<slash] == prefix else { return nil }
        return String(key[key.index(after: slash)...])
    }

    // MARK: Error wording (k8s.io/apimachinery/pkg/util/mergepatch)

    static func noMergeKey(_ o: JSONObject, _ key: String) -> Failure {
        .other("map: \(GoFormat.value(.object(o))) does not contain declared merge key: \(key)")
    }

    static func badArgType(expected: String, _ actual: JSON) -> String {
        "expected a \(expected), but received a \(GoFormat.typeName(actual))"
    }
}
