/// Server-side apply and `metadata.managedFields` bookkeeping, as kube-apiserver does them.
///
/// Two entry points, both pure (the caller passes the clock in):
/// - `apply` merges an apply body (`PATCH` with `application/apply-patch+yaml`) into the live
///   object, removes what the same manager applied last time and left out now, and refuses to
///   change fields other managers own unless forced.
/// - `recordUpdate` runs after every other write (create, update, patch) and gives the fields
///   that write changed to its manager, taking them from everyone else.
///
/// The algorithm is structured-merge-diff's (sigs.k8s.io/structured-merge-diff/v6 `merge.Updater`)
/// with apiserver's wrappers around it (k8s.io/apimachinery/pkg/util/managedfields/internal):
/// strip identity metadata, track ownership from creation, "before-first-apply", cap update
/// managers at ten, the client-side-apply annotation upgrade for manager `kubectl`.
public struct FieldManager: Sendable {
    /// Type facts `Schema` does not carry (atomic structs and maps, key defaults).
    public var facts: ApplyTypeFacts

    /// How many Update entries an object keeps before the oldest merge into "ancient-changes".
    public static let maxUpdateManagers = 10
    /// The annotation `kubectl apply` (client-side) keeps its last configuration in.
    public static let lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

    /// A field manager for the Kubernetes types (or for types described by other `facts`).
    public init(facts: ApplyTypeFacts = .kubernetes) {
        self.facts = facts
    }

    /// The manager name apiserver uses when a request names none: the User-Agent up to its
    /// first "/", printable characters only, at most 128 bytes ("kubectl.1.32" for kubectl 1.32).
    public static func defaultManager(userAgent: String) -> String {
        let head = userAgent.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        var out = ""
        for ch in head.unicodeScalars {
            switch ch.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator:
                continue
            case .spaceSeparator where ch != " ":
                continue
            default:
                if out.utf8.count + String(ch).utf8.count > 128 { return out }
                out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    // MARK: - Apply

    /// Server-side apply of `patch` (the decoded apply body) to `live` (nil: the object does
    /// not exist yet and the caller will create it, answering 201).
    ///
    /// - Parameters:
    ///   - schema: the kind's schema, e.g. `.ref("io.k8s.api.core.v1.Service")`.
    ///   - now: the request time, RFC 3339 with seconds ("2026-11-30T03:17:24Z").
    ///   - subresource: "" for the object itself; "status" for `.../status`.
    ///   - gvk: the group/version/kind the URL addresses; by default the schema definition's
    ///     first kind.
    /// - Returns: the object to store, with `metadata.managedFields` set. Status is kept from
    ///   `live` when applying to the main resource. The caller still defaults, validates and
    ///   fills server-set metadata.
    /// - Throws: 409 Conflict naming every conflicting field (`Apply failed with 1 conflict:
    ///   conflict with "kubectl-client-side-apply" using v1: .spec.replicas`), 400 for a body of
    ///   the wrong kind or with managedFields, 500 for a body upstream cannot type (duplicate
    ///   keys, elements without keys, undeclared fields).
    public func apply(patch: JSON, to live: JSON?, manager: String, force: Bool, schema: Schema,
                      registry: TypeRegistry, now: String, subresource: String = "",
                      gvk: GroupVersionKind? = nil) throws(APIError) -> JSON {
        let ctx = Context(fieldManager: self, schema: schema, registry: registry, now: now, subresource: subresource,
                          gvk: gvk ?? Self.kind(of: schema, registry: registry, live: live, patch: patch))
        guard case .object = patch else {
            throw APIError.badRequest("error decoding patch: json: cannot unmarshal \(patch.typeName) into Go value of type map[string]interface {}")
        }
        let patchGVK = GroupVersionKind(apiVersion: patch["apiVersion"]?.stringValue ?? "",
                                        kind: patch["kind"]?.stringValue ?? "")
        if let expected = ctx.gvk, patchGVK != expected {
            throw APIError.badRequest("invalid object type: \(Self.goString(patchGVK))")
        }

        let liveObject = live ?? .object([:])
        let managed: ManagedFieldsList
        do {
            managed = try ManagedFieldsList(decoding: liveObject[path: "metadata", "managedFields"])
        } catch {
            throw APIError(code: 500, reason: .internalError, message: "failed to decode managed fields: \(error.message)")
        }

        var outcome = try ctx.applyChain(live: liveObject, patch: patch, managed: managed, manager: manager, force: force)
        if case .conflicts(let conflicts) = outcome, manager == "kubectl" {
            // A client-side-applied object: fields whose live value still matches the
            // last-applied annotation may be taken over by `kubectl apply --server-side`.
            guard let allowed = ctx.allowedConflictsFromLastApplied(liveObject) else {
                throw Self.conflictError(conflicts)
            }
            let remaining = conflicts.filter { !allowed.has($0.path) }
            guard remaining.isEmpty else { throw Self.conflictError(remaining) }
            outcome = try ctx.applyChain(live: liveObject, patch: patch, managed: managed, manager: manager, force: true)
        }
        guard case .applied(var object, let newManaged) = outcome else {
            if case .conflicts(let c) = outcome { throw Self.conflictError(c) }
            throw APIError.internalError("server-side apply produced no object")
        }

        if subresource.isEmpty {
            // Status belongs to the status subresource; the main resource's apply never sets it.
            object["status"] = live?["status"]
        }
        if manager == "kubectl", let value = object[path: "metadata", "annotations", Self.lastAppliedAnnotation]?.stringValue,
           !value.isEmpty {
            Self.setLastApplied(&object, from: patch)
        }
        object = Self.setManagedFields(object, newManaged.json)
        if let live { object = Self.keepingTimestampsOfNoop(new: object, old: live) }
        return object
    }

    // MARK: - Update

    /// Records the fields a non-apply write changed (create: `old` nil; update, patch) as owned
    /// by `manager` with operation Update, taking them from other managers.
    ///
    /// `new` is the object about to be stored. Its own `metadata.managedFields`, when non-empty
    /// and valid, are the starting point (a client may edit them); an empty list (`[]` or `[{}]`)
    /// resets tracking, so the result has none; otherwise `old`'s are used. An existing object
    /// without managedFields stays untracked until the next apply. Never fails: if anything
    /// cannot be read, `old`'s managedFields are kept, as apiserver does.
    public func recordUpdate(old: JSON?, new: JSON, manager: String, schema: Schema, registry: TypeRegistry,
                             now: String, subresource: String = "", apiVersion: String? = nil) -> JSON {
        let version = apiVersion ?? new["apiVersion"]?.stringValue ?? old?["apiVersion"]?.stringValue
            ?? Self.kind(of: schema, registry: registry, live: old, patch: new)?.apiVersion ?? ""
        let ctx = Context(fieldManager: self, schema: schema, registry: registry, now: now, subresource: subresource,
                          gvk: GroupVersionKind(apiVersion: version, kind: new["kind"]?.stringValue ?? ""))
        let oldObject = old ?? .object([:])
        let oldManaged = (try? ManagedFieldsList(decoding: oldObject[path: "metadata", "managedFields"])) ?? ManagedFieldsList()

        var managed: ManagedFieldsList
        let requested = new[path: "metadata", "managedFields"]
        if !subresource.isEmpty {
            managed = oldManaged
        } else if Self.isReset(requested) {
            managed = ManagedFieldsList()
        } else if let decoded = try? ManagedFieldsList(decoding: requested), !decoded.isEmpty {
            managed = decoded
        } else {
            managed = oldManaged
        }

        var object = Self.setManagedFields(new, nil)
        if managed.isEmpty && old != nil {
            // Tracking starts at creation or at the first apply, never in the middle.
            return object
        }
        managed = ctx.updateChain(old: Self.setManagedFields(oldObject, nil), new: object, managed: managed, manager: manager)
        object = Self.setManagedFields(object, managed.json)
        if let old { object = Self.keepingTimestampsOfNoop(new: object, old: old) }
        return object
    }

    // MARK: - Helpers shared by both paths

    static func kind(of schema: Schema, registry: TypeRegistry, live: JSON?, patch: JSON?) -> GroupVersionKind? {
        if case .ref(let name) = schema, let def = registry[name], !def.gvks.isEmpty {
            if def.gvks.count == 1 { return def.gvks[0] }
            let want = live ?? patch
            if let av = want?["apiVersion"]?.stringValue, let k = want?["kind"]?.stringValue,
               let match = def.gvks.first(where: { $0.apiVersion == av && $0.kind == k }) {
                return match
            }
            return def.gvks[0]
        }
        if let live, let av = live["apiVersion"]?.stringValue, let k = live["kind"]?.stringValue {
            return GroupVersionKind(apiVersion: av, kind: k)
        }
        return nil
    }

    /// Go's `schema.GroupVersionKind.String()`: "/v1, Kind=Service", "apps/v1, Kind=Deployment".
    static func goString(_ gvk: GroupVersionKind) -> String {
        "\(gvk.group)/\(gvk.version), Kind=\(gvk.kind)"
    }

    /// `[]` or `[{}]`: the client asks to forget all ownership.
    static func isReset(_ json: JSON?) -> Bool {
        guard case .array(let items)? = json else { return false }
        if items.isEmpty { return true }
        if items.count == 1, case .object(let o) = items[0] { return o.isEmpty }
        return false
    }

    /// Sets (or, with nil, removes) `metadata.managedFields`, keeping it the last member of
    /// metadata as Go's ObjectMeta does.
    static func setManagedFields(_ object: JSON, _ value: JSON?) -> JSON {
        guard case .object(var o) = object else { return object }
        var meta = o["metadata"]?.objectValue ?? JSONObject()
        meta.removeValue(forKey: "managedFields")
        if let value { meta["managedFields"] = value }
        if meta.isEmpty && o["metadata"] == nil { return object }
        o["metadata"] = .object(meta)
        return .object(o)
    }

    /// kube-apiserver does not bump managedFields timestamps for a write that changes nothing
    /// else, so a no-op apply does not create a new resourceVersion.
    static func keepingTimestampsOfNoop(new: JSON, old: JSON) -> JSON {
        guard case .array(let newMF)? = new[path: "metadata", "managedFields"],
              case .array(let oldMF)? = old[path: "metadata", "managedFields"],
              newMF.count == oldMF.count, !newMF.isEmpty else { return new }
        var timesChanged = false
        for (n, o) in zip(newMF, oldMF) {
            var n2 = n, o2 = o
            if !ApplyValueOrder.equal(n["time"] ?? .null, o["time"] ?? .null) { timesChanged = true }
            n2["time"] = nil
            o2["time"] = nil
            if !ApplyValueOrder.equal(n2, o2) { return new }
        }
        guard timesChanged,
              ApplyValueOrder.equal(setManagedFields(new, nil), setManagedFields(old, nil)) else { return new }
        return setManagedFields(new, .array(oldMF))
    }

    /// Rewrites the client-side-apply annotation to the configuration just applied, so a later
    /// client-side `kubectl apply` sees what server-side apply manages now.
    static func setLastApplied(_ object: inout JSON, from patch: JSON) {
        var config = patch
        if case .object? = config[path: "metadata", "annotations"] {
            config[path: "metadata", "annotations", lastAppliedAnnotation] = nil
        }
        let value = ApplyFormat.json(config) + "\n"
        var annotations = object[path: "metadata", "annotations"]?.objectValue ?? JSONObject()
        annotations[lastAppliedAnnotation] = .string(value)
        // apiserver drops the annotation rather than exceed the 256 KiB annotations limit.
        let total = annotations.reduce(0) { $0 + $1.key.utf8.count + ($1.value.stringValue?.utf8.count ?? 0) }
        if total > 256 * 1024 { annotations.removeValue(forKey: lastAppliedAnnotation) }
        object[path: "metadata", "annotations"] = .object(annotations)
    }

    struct Conflict {
        var entry: ManagedFieldsEntry
        var path: FieldPath
    }

    /// 409 worded as apiserver words it: one line for one conflict, else grouped by manager.
    static func conflictError(_ conflicts: [Conflict]) -> APIError {
        let causes = conflicts.map {
            APIError.Cause(reason: "FieldManagerConflict", message: "conflict with \($0.entry.conflictName)",
                           field: $0.path.pathString)
        }
        let message: String
        if conflicts.count == 1 {
            message = "Apply failed with 1 conflict: conflict with \(conflicts[0].entry.conflictName): \(conflicts[0].path.pathString)"
        } else {
            var lines: [String] = []
            var lastIdentity: String?
            for c in conflicts {
                if c.entry.identity != lastIdentity {
                    lines.append("conflicts with \(c.entry.conflictName):")
                    lastIdentity = c.entry.identity
                }
                lines.append("- \(c.path.pathString)")
            }
            message = "Apply failed with \(conflicts.count) conflicts: " + lines.joined(separator: "\n")
        }
        return APIError(code: 409, reason: .conflict, message: message, causes: causes)
    }
}

// MARK: - The pipeline

extension FieldManager {
    enum ApplyOutcome {
        case applied(JSON, ManagedFieldsList)
        case conflicts([Conflict])
    }

    /// One request's worth of settings, and the steps of apiserver's field manager chain.
    struct Context {
        let ops: ApplyOperations
        let root: ApplyNode
        let now: String
        let subresource: String
        let gvk: GroupVersionKind?

        init(fieldManager: FieldManager, schema: Schema, registry: TypeRegistry, now: String, subresource: String,
             gvk: GroupVersionKind?) {
            ops = ApplyOperations(registry: registry, facts: fieldManager.facts)
            root = ops.types.node(schema)
            self.now = now
            self.subresource = subresource
            self.gvk = gvk
        }

        var apiVersion: String { gvk?.apiVersion ?? "" }

        /// Fields a request's manager never owns: the other half of the object, reset by the
        /// REST strategy (status for the main resource, spec for the status subresource).
        var ignored: FieldSet {
            FieldSet([[.field(subresource == "status" ? "spec" : "status")]])
        }

        /// Identity metadata nobody owns (apiserver's stripMetaManager).
        static let stripped = FieldSet([
            [.field("apiVersion")], [.field("kind")], [.field("metadata")],
            [.field("metadata"), .field("name")], [.field("metadata"), .field("namespace")],
            [.field("metadata"), .field("creationTimestamp")], [.field("metadata"), .field("selfLink")],
            [.field("metadata"), .field("uid")], [.field("metadata"), .field("clusterName")],
            [.field("metadata"), .field("generation")], [.field("metadata"), .field("managedFields")],
            [.field("metadata"), .field("resourceVersion")],
        ])

        func entry(_ manager: String, _ op: ManagedFieldsEntry.Operation) -> ManagedFieldsEntry {
            ManagedFieldsEntry(manager: manager.isEmpty ? "unknown" : manager, operation: op, apiVersion: apiVersion,
                               fields: FieldSet(), subresource: subresource)
        }

        // MARK: Apply chain

        func applyChain(live: JSON, patch: JSON, managed: ManagedFieldsList, manager: String,
                        force: Bool) throws(APIError) -> ApplyOutcome {
            var managed = managed
            let liveObject = FieldManager.setManagedFields(live, nil)
            if managed.isEmpty {
                // Fields set before anyone applied belong to "before-first-apply", so the
                // first applier conflicts with them instead of silently taking them over.
                managed = updateChain(old: .object([:]), new: liveObject, managed: managed, manager: "before-first-apply")
            }
            if let mf = patch[path: "metadata", "managedFields"], !mf.isNull {
                throw APIError.badRequest("metadata.managedFields must be nil")
            }
            var issues: [ApplyOperations.Issue] = []
            ops.validate(patch, root, issues: &issues)
            if !issues.isEmpty {
                let text = issues.count == 1 ? issues[0].text : "errors:\n" + issues.map { "  " + $0.text }.joined(separator: "\n")
                let ns = patch[path: "metadata", "namespace"]?.stringValue ?? ""
                let name = patch[path: "metadata", "name"]?.stringValue ?? ""
                let kind = GroupVersionKind(apiVersion: patch["apiVersion"]?.stringValue ?? "", kind: patch["kind"]?.stringValue ?? "")
                throw APIError(code: 500, reason: .unknown,
                               message: "failed to create typed patch object (\(ns)/\(name); \(FieldManager.goString(kind))): \(text)")
            }

            let me = entry(manager, .apply)
            let id = me.identity
            let merged = ops.merge(liveObject, patch, root) ?? .object([:])
            let lastSet = managed[id]?.fields
            var mine = managed[id] ?? me
            mine.fields = ops.fieldSet(patch, root).subtractingRecursively(ignored)
            mine.apiVersion = apiVersion
            managed[id] = mine
            let pruned = prune(merged, managed: managed, lastSet: lastSet)

            switch update(ops.compare(liveObject, pruned, root), managed: managed, workflow: id, force: force) {
            case .failure(let conflicts):
                return .conflicts(conflicts.conflicts)
            case .success(let updated):
                managed = updated
            }
            strip(&managed, id)
            if !ApplyValueOrder.equal(liveObject, pruned), var e = managed[id] {
                e.time = now
                managed[id] = e
            }
            return .applied(pruned, managed)
        }

        /// Removes what the applier owned last time and no longer applies, unless someone else
        /// (or the new configuration) still owns it. Follows merge.Updater.prune step by step.
        func prune(_ merged: JSON, managed: ManagedFieldsList, lastSet: FieldSet?) -> JSON {
            guard let lastSet, !lastSet.isEmpty else { return merged }
            let last = ops.ensureNamedFieldsAreMembers(lastSet, root)
            let firstCut = ops.removing(last, from: merged, root) ?? .object([:])

            // Add back what any manager owns.
            let owned = managed.entries.values.reduce(FieldSet()) { $0.union($1.fields) }
            let mergedSet = ops.ensureNamedFieldsAreMembers(ops.fieldSet(merged, root), root)
            let firstCutSet = ops.ensureNamedFieldsAreMembers(ops.fieldSet(firstCut, root), root)
            let keep = firstCutSet.union(ops.ensureNamedFieldsAreMembers(owned, root))
            let secondCut = ops.removing(mergedSet.subtracting(keep), from: merged, root) ?? .object([:])

            // Only remove what the applier did own before (not unowned leftovers below it).
            let secondCutSet = ops.ensureNamedFieldsAreMembers(ops.fieldSet(secondCut, root), root)
            let toRemove = mergedSet.subtracting(secondCutSet).intersection(last)
            return ops.removing(toRemove, from: merged, root) ?? .object([:])
        }

        /// merge.Updater.update: whoever owns a field this write adds or changes either conflicts
        /// (not forced) or loses it; removed fields leave every other manager.
        func update(_ c: ApplyOperations.Comparison, managed: ManagedFieldsList, workflow: String,
                    force: Bool) -> Result<ManagedFieldsList, ConflictList> {
            var managed = managed
            let changed = c.modified.union(c.added).subtractingRecursively(ignored)
            let removed = c.removed.subtractingRecursively(ignored)
            var conflicts: [(String, FieldSet)] = []
            for (id, e) in managed.entries where id != workflow {
                let overlap = e.fields.intersection(changed)
                if !overlap.isEmpty { conflicts.append((id, overlap)) }
            }
            if !force && !conflicts.isEmpty {
                var list: [Conflict] = []
                for (id, set) in conflicts.sorted(by: { ApplyValueOrder.compareStrings($0.0, $1.0) < 0 }) {
                    guard let e = managed[id] else { continue }
                    for p in set.paths { list.append(Conflict(entry: e, path: p)) }
                }
                return .failure(ConflictList(conflicts: list))
            }
            for (id, set) in conflicts {
                guard var e = managed[id] else { continue }
                e.fields = e.fields.subtracting(set)
                managed[id] = e
            }
            if !removed.isEmpty {
                for id in managed.entries.keys where id != workflow {
                    guard var e = managed[id] else { continue }
                    e.fields = e.fields.subtracting(removed)
                    managed[id] = e
                }
            }
            managed.removeEmpty()
            return .success(managed)
        }

        struct ConflictList: Error {
            var conflicts: [Conflict]
        }

        func strip(_ managed: inout ManagedFieldsList, _ id: String) {
            guard var e = managed[id] else { return }
            e.fields = e.fields.subtracting(Self.stripped)
            managed[id] = e.fields.isEmpty ? nil : e
        }

        // MARK: Update chain

        /// apiserver's Update chain for one write: compute the change under a temporary
        /// identity, then fold it into the manager's entry with a new timestamp.
        func updateChain(old: JSON, new: JSON, managed: ManagedFieldsList, manager: String) -> ManagedFieldsList {
            let me = entry(manager, .update)
            let id = me.identity
            let current = ManagedFieldsEntry(manager: "current-operation", operation: .update, apiVersion: apiVersion,
                                             fields: FieldSet(), subresource: subresource)
            let currentID = current.identity

            var managed = managed
            let c = ops.compare(old, new, root)
            if case .success(let updated) = update(c, managed: managed, workflow: currentID, force: true) {
                managed = updated
            }
            var set = (managed[currentID]?.fields ?? FieldSet()).subtracting(c.removed).union(c.modified).union(c.added)
            set = set.subtractingRecursively(ignored).subtracting(Self.stripped)
            managed[currentID] = nil
            if !set.isEmpty {
                var mine = managed[id] ?? me
                mine.fields = set.union(mine.fields)
                mine.apiVersion = apiVersion
                mine.operation = .update
                mine.time = now
                managed[id] = mine
            }
            managed.capUpdateManagers(max: FieldManager.maxUpdateManagers)
            return managed
        }

        // MARK: Client-side apply upgrade

        /// The fields the last-applied annotation sets to their live values: those a
        /// `kubectl` server-side apply may take over from client-side apply without a conflict.
        func allowedConflictsFromLastApplied(_ live: JSON) -> FieldSet? {
            guard let text = live[path: "metadata", "annotations", FieldManager.lastAppliedAnnotation]?.stringValue,
                  !text.isEmpty,
                  let lastApplied = try? JSON.parse(text), case .object = lastApplied,
                  lastApplied["apiVersion"]?.stringValue == apiVersion else { return nil }
            var issues: [ApplyOperations.Issue] = []
            ops.validate(lastApplied, root, issues: &issues)
            guard issues.isEmpty else { return nil }
            let set = ops.fieldSet(lastApplied, root)
            let c = ops.compare(lastApplied, live, root)
            return set.subtracting(c.modified).subtracting(c.added).subtracting(c.removed)
        }
    }
}
