/// The schema-aware operations of structured-merge-diff, on plain JSON: validate an apply body,
/// merge it into a live object, list the fields a value sets, diff two objects, remove fields.
///
/// `nil` means "absent" and `.null` an explicit JSON null; they behave differently, as upstream.
struct ApplyOperations {
    let types: ApplyTypes

    init(registry: TypeRegistry, facts: ApplyTypeFacts) {
        types = ApplyTypes(registry: registry, facts: facts)
    }

    struct Issue: Equatable {
        var path: String
        var message: String
        var text: String { path.isEmpty ? message : "\(path): \(message)" }
    }

    // MARK: Validate

    /// Problems that make an apply body unusable: list elements without identity, duplicate
    /// keys, undeclared fields. Worded like upstream's typed conversion errors.
    func validate(_ value: JSON, _ node: ApplyNode, path: String = "", issues: inout [Issue]) {
        switch types.shape(node, value) {
        case .leaf:
            return
        case .object:
            guard case .object(let o) = value else { return }
            for (k, v) in o {
                let childPath = path + "." + k
                if types.facts.rejectUndeclaredFields, case .structure(let def) = node, def.field(named: k) == nil {
                    issues.append(Issue(path: childPath, message: "field not declared in schema"))
                    return
                }
                validate(v, types.child(node, k), path: childPath, issues: &issues)
            }
        case .list:
            guard case .array(let items) = value else { return }
            var seen = Set<PathElement>()
            for (i, item) in items.enumerated() {
                switch types.pathElement(of: item, in: node) {
                case .failure(.message(let m)):
                    issues.append(Issue(path: path, message: "element \(i): \(m)"))
                    return
                case .success(let pe):
                    if seen.contains(pe) {
                        issues.append(Issue(path: path, message: "duplicate entries for key \(pe)"))
                    }
                    seen.insert(pe)
                    validate(item, types.element(node), path: path + pe.description, issues: &issues)
                }
            }
        }
    }

    // MARK: Merge

    /// `rhs` merged into `lhs`: rhs wins on leaves, objects merge member by member, lists by
    /// element identity (live order kept, applied order for shared elements). Explicit nulls on
    /// leaves end up absent, as after upstream's conversion back to a typed object.
    func merge(_ lhs: JSON?, _ rhs: JSON?, _ node: ApplyNode) -> JSON? {
        guard let rhs else { return lhs }
        if case .null = rhs {
            if let lhs, types.shape(node, lhs) != .leaf, !Self.isEmptyContainer(lhs) { return lhs }
            return .null
        }
        switch types.shape(node, rhs) {
        case .leaf:
            return rhs
        case .object:
            guard case .object(let r) = rhs else { return rhs }
            var l = JSONObject()
            if let lhs, case .object(let o) = lhs { l = o }
            if l.isEmpty && r.isEmpty { return rhs }
            var out = JSONObject()
            for (k, lv) in l {
                out[k] = settle(merge(lv, r[k], types.child(node, k)), node, k)
            }
            for (k, rv) in r where l[k] == nil {
                out[k] = settle(merge(nil, rv, types.child(node, k)), node, k)
            }
            return .object(out)
        case .list:
            guard case .array(let r) = rhs else { return rhs }
            var l: [JSON] = []
            if let lhs, case .array(let a) = lhs { l = a }
            if l.isEmpty && r.isEmpty { return rhs }
            return .array(mergeList(l, r, node))
        }
    }

    /// Upstream's list merge: walk both lists together; live-only elements stay where they are,
    /// applied elements come in applied order, and an element both have is emitted at the
    /// position the applied list gives it among the shared ones.
    private func mergeList(_ lhs: [JSON], _ rhs: [JSON], _ node: ApplyNode) -> [JSON] {
        let element = types.element(node)
        let lPEs = types.pathElements(of: lhs, in: node)
        let rPEs = types.pathElements(of: rhs, in: node)
        // A duplicated live element is not merged with anything: it becomes null here.
        var observedL: [PathElement: JSON] = [:]
        for (pe, item) in zip(lPEs, lhs) {
            observedL[pe] = observedL[pe] == nil ? item : .null
        }
        var observedR: [PathElement: JSON] = [:]
        for (pe, item) in zip(rPEs, rhs) where observedR[pe] == nil { observedR[pe] = item }

        var shared = rPEs.filter { observedL[$0] != nil }[...]
        var nextShared = shared.popFirst()
        var mergedR = Set<PathElement>()
        var out: [JSON] = []
        var li = 0, ri = 0

        func emit(_ l: JSON?, _ r: JSON?) {
            if let m = merge(l, r, element), !m.isNull { out.append(m) }
        }

        while li < lPEs.count || ri < rPEs.count {
            if li < lPEs.count && ri < rPEs.count {
                let pe = lPEs[li]
                if pe == rPEs[ri] {
                    mergedR.insert(pe)
                    emit(observedL[pe], observedR[pe])
                    li += 1
                    ri += 1
                    nextShared = shared.popFirst()
                    continue
                }
                if observedR[pe] != nil, let next = nextShared, next != pe {
                    li += 1
                    continue
                }
            }
            if li < lPEs.count {
                let pe = lPEs[li]
                if observedR[pe] == nil {
                    emit(lhs[li], nil)
                    li += 1
                    continue
                } else if mergedR.contains(pe) {
                    li += 1
                }
            }
            if ri < rPEs.count {
                let pe = rPEs[ri]
                mergedR.insert(pe)
                emit(observedL[pe], observedR[pe])
                ri += 1
                if let next = nextShared, next == pe {
                    nextShared = shared.popFirst()
                }
            }
        }
        return out
    }

    /// What a member holds once the object is stored: upstream converts the result to a typed
    /// Go object, where null becomes "unset" and an unset non-pointer struct is `{}`.
    private func settle(_ value: JSON?, _ node: ApplyNode, _ key: String) -> JSON? {
        if let value, !value.isNull { return value }
        if case .object? = types.zeroValue(node, key) { return .object([:]) }
        return nil
    }

    static func isEmptyContainer(_ v: JSON?) -> Bool {
        switch v {
        case nil, .null?: return true
        case .object(let o)?: return o.isEmpty
        case .array(let a)?: return a.isEmpty
        default: return false
        }
    }

    // MARK: Field sets

    /// The fields `value` sets: leaves, list elements, map keys, and empty or null objects.
    func fieldSet(_ value: JSON, _ node: ApplyNode) -> FieldSet {
        var set = FieldSet()
        var path: FieldPath = []
        collect(value, node, &path, &set)
        return set
    }

    private func collect(_ value: JSON, _ node: ApplyNode, _ path: inout FieldPath, _ set: inout FieldSet) {
        switch types.shape(node, value) {
        case .leaf:
            set.insert(path)
        case .object:
            guard case .object(let o) = value else { return }
            for (k, v) in o {
                path.append(.field(k))
                collect(v, types.child(node, k), &path, &set)
                if v.isNull || v.objectValue?.isEmpty == true || !types.isNamedField(node, k) {
                    set.insert(path)
                }
                path.removeLast()
            }
        case .list:
            guard case .array(let items) = value else { return }
            let pes = types.pathElements(of: items, in: node)
            var counts: [PathElement: Int] = [:]
            for pe in pes { counts[pe, default: 0] += 1 }
            let element = types.element(node)
            for (pe, item) in zip(pes, items) {
                path.append(pe)
                if (counts[pe] ?? 0) < 2 { collect(item, element, &path, &set) }
                set.insert(path)
                path.removeLast()
            }
        }
    }

    /// Adds the declared fields along the set's paths as members: owning `.spec.replicas`
    /// then also means owning `.spec`, but owning `.metadata.labels.app` does not mean owning
    /// the map `.metadata.labels`.
    func ensureNamedFieldsAreMembers(_ set: FieldSet, _ node: ApplyNode) -> FieldSet {
        var out = FieldSet()
        out.members = set.members
        for c in set.children {
            let childNode: ApplyNode
            switch c.element {
            case .field(let name):
                if types.isNamedField(node, name) { out.insert([c.element]) }
                childNode = types.child(node, name)
            case .key:
                childNode = types.element(node)
            default:
                childNode = .scalar
            }
            out.children.append(FieldSet.Child(element: c.element, set: ensureNamedFieldsAreMembers(c.set, childNode)))
        }
        return out
    }

    // MARK: Compare

    struct Comparison {
        var added = FieldSet()
        var modified = FieldSet()
        var removed = FieldSet()

        var isSame: Bool { added.isEmpty && modified.isEmpty && removed.isEmpty }
    }

    /// The fields `rhs` adds, changes and removes relative to `lhs`.
    func compare(_ lhs: JSON, _ rhs: JSON, _ node: ApplyNode) -> Comparison {
        var c = Comparison()
        var path: FieldPath = []
        compare(lhs, rhs, node, &path, &c)
        return c
    }

    private func compare(_ lhs: JSON?, _ rhs: JSON?, _ node: ApplyNode, _ path: inout FieldPath, _ c: inout Comparison) {
        let lShape = lhs.flatMap { $0.isNull ? nil : types.shape(node, $0) }
        let rShape = rhs.flatMap { $0.isNull ? nil : types.shape(node, $0) }
        var shape: ApplyShape = rShape ?? lShape ?? .leaf
        if let l = lShape, let r = rShape, l != r { shape = .leaf }
        if Self.isEmptyContainer(lhs) && Self.isEmptyContainer(rhs) { shape = .leaf }

        switch shape {
        case .leaf:
            if lhs == nil {
                c.added.insert(path)
            } else if let lhs, let rhs {
                if !ApplyValueOrder.equal(lhs, rhs) { c.modified.insert(path) }
            } else {
                c.removed.insert(path)
            }
            return
        case .object:
            let l = lhs?.objectValue ?? [:]
            let r = rhs?.objectValue ?? [:]
            let bothPresent = lhs?.objectValue != nil && rhs?.objectValue != nil
            var keys = Array(l.keys)
            for k in r.keys where l[k] == nil { keys.append(k) }
            for k in keys {
                var lv = l[k], rv = r[k]
                if bothPresent, let zero = types.zeroValue(node, k) {
                    if lv == nil { lv = zero }
                    if rv == nil { rv = zero }
                }
                path.append(.field(k))
                compare(lv, rv, types.child(node, k), &path, &c)
                path.removeLast()
            }
        case .list:
            compareList(lhs?.arrayValue ?? [], rhs?.arrayValue ?? [], node, &path, &c)
        }
        if lhs == nil {
            c.added.insert(path)
        } else if rhs == nil {
            c.removed.insert(path)
        }
    }

    private func compareList(_ lhs: [JSON], _ rhs: [JSON], _ node: ApplyNode, _ path: inout FieldPath, _ c: inout Comparison) {
        let element = types.element(node)
        var order: [PathElement] = []
        var lValues: [PathElement: [JSON]] = [:]
        for (pe, item) in zip(types.pathElements(of: lhs, in: node), lhs) {
            if lValues[pe] == nil { order.append(pe) }
            lValues[pe, default: []].append(item)
        }
        var rValues: [PathElement: [JSON]] = [:]
        for (pe, item) in zip(types.pathElements(of: rhs, in: node), rhs) {
            if rValues[pe] == nil && lValues[pe] == nil { order.append(pe) }
            rValues[pe, default: []].append(item)
        }
        for pe in order {
            let l = lValues[pe] ?? [], r = rValues[pe] ?? []
            path.append(pe)
            defer { path.removeLast() }
            if l.count <= 1 && r.count <= 1 {
                compare(l.first, r.first, element, &path, &c)
            } else if l.count >= 2 && r.count >= 2 {
                // Duplicates on both sides compare as one atomic value.
                if l.count != r.count || !zip(l, r).allSatisfy({ ApplyValueOrder.equal($0, $1) }) {
                    c.modified.insert(path)
                }
            } else if l.count >= 2 {
                if let first = r.first { compare(nil, first, element, &path, &c) }
                c.removed.insert(path)
            } else {
                if let first = l.first { compare(first, nil, element, &path, &c) }
                c.added.insert(path)
            }
        }
    }

    // MARK: Remove

    /// `value` without the fields in `set` (a removed path takes its whole subtree). Objects and
    /// lists left empty by the removal disappear.
    func removing(_ set: FieldSet, from value: JSON, _ node: ApplyNode) -> JSON? {
        switch types.shape(node, value) {
        case .leaf:
            switch value {
            case .object, .array: return set.isEmpty ? value : nil
            default: return value
            }
        case .object:
            guard case .object(let o) = value, !o.isEmpty else { return nil }
            var out = JSONObject()
            for (k, v) in o {
                let pe = PathElement.field(k)
                if set.hasMember(pe) {
                    out[k] = settle(nil, node, k)
                    continue
                }
                if let sub = set.child(pe) {
                    out[k] = settle(removing(sub, from: v, types.child(node, k)), node, k)
                } else {
                    out[k] = v
                }
            }
            return out.isEmpty ? nil : .object(out)
        case .list:
            guard case .array(let items) = value, !items.isEmpty else { return nil }
            let element = types.element(node)
            var out: [JSON] = []
            for (pe, item) in zip(types.pathElements(of: items, in: node), items) {
                if set.hasMember(pe) { continue }
                if let sub = set.child(pe) {
                    if let kept = removing(sub, from: item, element) { out.append(kept) }
                } else {
                    out.append(item)
                }
            }
            return out.isEmpty ? nil : .array(out)
        }
    }
}
