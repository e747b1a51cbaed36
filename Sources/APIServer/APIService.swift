import APIMachinery
import Foundation
import Store

/// The API's logic without HTTP: create, read, update, patch, delete and watch of every resource,
/// with kube-apiserver's defaulting, validation, optimistic concurrency and deletion rules.
///
/// The HTTP layer (`HTTPHandler`) only decodes requests into calls on this type and encodes
/// the results; the controllers and the node agent call it directly, in-process.
public final class APIService: Sendable {
    let storage: ObjectStorage
    public let store: any KVStore
    public let registry: TypeRegistry
    let now: @Sendable () -> Date
    /// A name from a generateName prefix (tests make it collide on purpose).
    let generateName: @Sendable (String) -> String
    /// Issues service-account tokens for `serviceaccounts/token`; nil refuses such requests.
    let tokenIssuer: (any TokenIssuing)?
    /// Gives Services their ClusterIP and node ports; nil leaves them as written (unit tests).
    public let serviceAllocator: ServiceAllocator?
    let openWatches = OpenWatches()
    /// Container logs for `pods/log`, once the node agent connects them (PodLogs.swift).
    let podLogSource = PodLogSourceSlot()
    let podStreamSource = PodStreamSourceSlot()

    public init(store: any KVStore, registry: TypeRegistry = .kubernetes, tokenIssuer: (any TokenIssuing)? = nil,
                serviceAllocator: ServiceAllocator? = nil, now: @escaping @Sendable () -> Date = { Date() },
                generateName: @escaping @Sendable (String) -> String = Names.generate) {
        self.store = store
        self.serviceAllocator = serviceAllocator
        self.storage = ObjectStorage(store: store)
        self.registry = registry
        self.tokenIssuer = tokenIssuer
        self.now = now
        self.generateName = generateName
    }

    // MARK: - Read

    public func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String? = nil) async throws(APIError) -> JSON {
        let obj = try await storage.mustGet(r, namespace: namespace, name: name)
        if subresource == "scale" { return try scale(of: obj, r) }
        return obj
    }

    /// A plain GET's reply body, from the cache when the object has not changed.
    public func getEncoded(_ r: ResourceInfo, namespace: String?, name: String) async throws(APIError) -> [UInt8] {
        guard let kv = try await storage.getKV(r, namespace: namespace, name: name) else {
            throw APIError.notFound(r.resource, group: r.group, name: name)
        }
        return try storage.encodedCached(kv)
    }

    /// `get` without suspending, for the HTTP fast path: nil when the object is missing or the
    /// store cannot read immediately (the caller then takes the async path, which also words
    /// the 404).
    public func getImmediately(_ r: ResourceInfo, namespace: String?, name: String) -> JSON? {
        guard let kv = storage.getKVImmediately(r, namespace: namespace, name: name) else { return nil }
        return try? storage.decodeCached(kv)
    }

    /// The store's revision without suspending; nil when the store cannot tell now. Whatever
    /// was read at one revision is still current while it is unchanged.
    public var revisionImmediately: Int64? {
        storage.immediate?.revisionImmediately
    }

    /// `getEncoded` without suspending; nil as for `getImmediately`.
    public func getEncodedImmediately(_ r: ResourceInfo, namespace: String?, name: String) -> [UInt8]? {
        guard let kv = storage.getKVImmediately(r, namespace: namespace, name: name) else { return nil }
        return try? storage.encodedCached(kv)
    }

    public typealias ListResult = APIMachinery.ListResult

    public func list(_ r: ResourceInfo, namespace: String?, options: ListOptions = ListOptions()) async throws(APIError) -> ListResult {
        try Strategy.checkFieldSelector(r, options.fieldSelector)
        let prefix = ObjectStorage.prefix(r, namespace: namespace)
        var after: String?
        if let token = options.continueToken {
            after = try ContinueToken.decode(token, prefix: prefix)
        }
        var items: [JSON] = []
        var revision: Int64 = 0
        var more = false
        // Page through the store until `limit` matching items are found, as the watch cache does.
        let pageSize = max(options.limit ?? 0, 500)
        var lastKey: String?
        outer: while true {
            let page: Store.ListResult
            do {
                page = try await store.list(prefix: prefix, after: after, limit: pageSize)
            } catch {
                throw storage.mapError(error, r, name: "")
            }
            if revision == 0 { revision = page.revision }
            for (i, kv) in page.items.enumerated() {
                lastKey = kv.key
                let obj = try storage.decodeCached(kv)
                guard matches(r, obj, options) else { continue }
                items.append(obj)
                if let limit = options.limit, items.count >= limit {
                    more = i < page.items.count - 1 || page.more
                    break outer
                }
            }
            guard page.more, let last = page.items.last else { break }
            after = last.key
        }
        var token: String?
        if more, let lastKey { token = ContinueToken.encode(revision: revision, after: lastKey, prefix: prefix) }
        return ListResult(items: items, resourceVersion: max(revision, 1), continueToken: token)
    }

    func matches(_ r: ResourceInfo, _ obj: JSON, _ options: ListOptions) -> Bool {
        if !options.labelSelector.isEmpty, !options.labelSelector.matches(obj.labels) { return false }
        if !options.fieldSelector.isEmpty, !options.fieldSelector.matches(Strategy.fieldValues(r, obj)) { return false }
        return true
    }

    // MARK: - Create

    public func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions = WriteOptions(),
                       subresource: String? = nil) async throws(APIError) -> JSON {
        if let subresource { return try await createSubresource(r, namespace: namespace, body: body, subresource: subresource) }
        if r.group.isEmpty && r.resource == "bindings" {
            return try await bind(namespace: namespace ?? "", pod: body.name ?? "", body: body)
        }
        guard r.verbs.contains("create") else { throw APIError.methodNotAllowed("create is not supported on \(r.resource)") }
        var obj = try checkBody(body, r)
        let ns = try resolveNamespace(r, url: namespace, body: obj)
        obj.namespace = ns
        if let ns { try await checkNamespaceWritable(ns, r, name: obj.name ?? "") }
        let generateName = obj[path: "metadata", "generateName"]?.stringValue ?? ""
        let givenName = obj.name ?? ""

        // System fields are the server's to set.
        obj[path: "metadata", "uid"] = .string(Names.uuid())
        obj[path: "metadata", "creationTimestamp"] = .string(Timestamp.rfc3339(now()))
        obj[path: "metadata", "resourceVersion"] = nil
        obj[path: "metadata", "deletionTimestamp"] = nil
        obj[path: "metadata", "deletionGracePeriodSeconds"] = nil
        obj[path: "metadata", "selfLink"] = nil
        obj[path: "metadata", "generation"] = nil
        // Defaulting also does what kube-apiserver's create strategies do: status reset, generation 1,
        // a name from generateName, and the admission plugins' pod fields.
        Defaults.apply(kind: r.kind, group: r.group, to: &obj)
        let causes = Validation.validateCreate(kind: r.kind, group: r.group, obj: obj, namespaced: r.namespaced)
        if !causes.isEmpty {
            throw APIError.invalid(kind: r.kind, group: r.group, name: givenName.isEmpty ? generateName : givenName, causes: causes)
        }
        obj = FieldOwnership.recordUpdate(old: nil, new: obj, manager: options.fieldManager, registry: registry, resource: r,
                                          time: Timestamp.rfc3339(now()))
        guard let allocator = allocator(for: r) else {
            return try await write(r, obj, generateName: givenName.isEmpty ? generateName : "", dryRun: options.dryRun)
        }
        let (allocated, reservation) = try await allocator.allocate(obj, old: nil, dryRun: options.dryRun)
        do {
            let out = try await write(r, allocated, generateName: givenName.isEmpty ? generateName : "", dryRun: options.dryRun)
            await allocator.commit(reservation)
            return out
        } catch {
            await allocator.revert(reservation)
            throw error
        }
    }

    /// The allocator when `r` is Services.
    func allocator(for r: ResourceInfo) -> ServiceAllocator? {
        r.group.isEmpty && r.resource == "services" ? serviceAllocator : nil
    }

    /// Stores a new object. `generateName` is set only when the client gave no name: the name
    /// (which defaulting already drew) is then drawn again on a collision, up to 8 times, as
    /// apiserver does since 1.30 (RetryGenerateName), instead of answering 409.
    func write(_ r: ResourceInfo, _ new: JSON, generateName: String, dryRun: Bool) async throws(APIError) -> JSON {
        var obj = new
        if dryRun { return obj }
        if generateName.isEmpty { return try await storage.create(r, obj) }
        for _ in 0..<8 {
            obj.name = self.generateName(generateName)
            do {
                return try await storage.create(r, obj)
            } catch where error.reason == .alreadyExists {
                continue
            }
        }
        var e = APIError.alreadyExists(r.resource, group: r.group, name: obj.name ?? generateName)
        e.message += ", the server was not able to generate a unique name for the object"
        throw e
    }

    /// Checks kind and apiVersion of a request body and that it is an object.
    func checkBody(_ body: JSON, _ r: ResourceInfo) throws(APIError) -> JSON {
        guard case .object = body else {
            throw APIError.badRequest("the body of the request was not a JSON object")
        }
        var obj = body
        if let kind = obj.kind, kind != r.kind {
            throw APIError.badRequest("the kind in the data (\(kind)) does not match the expected kind (\(r.kind))")
        }
        if let av = obj.apiVersion, av != r.apiVersion {
            throw APIError.badRequest("the API version in the data (\(av)) does not match the expected API version (\(r.apiVersion))")
        }
        if obj["metadata"] != nil, obj["metadata"]?.objectValue == nil {
            throw APIError.badRequest("\(r.kind) in version \"\(r.version)\" cannot be handled as a \(r.kind): json: cannot unmarshal \(obj["metadata"]?.typeName ?? "value") into Go struct field \(r.kind).metadata of type v1.ObjectMeta")
        }
        // Put apiVersion and kind first, as every object read back from a real server has them.
        var ordered: JSON = ["apiVersion": .string(r.apiVersion), "kind": .string(r.kind)]
        for (k, v) in obj.objectValue ?? [:] where k != "apiVersion" && k != "kind" { ordered[k] = v }
        obj = ordered
        if obj["metadata"] == nil { obj["metadata"] = [:] }
        return obj
    }

    func resolveNamespace(_ r: ResourceInfo, url: String?, body: JSON) throws(APIError) -> String? {
        guard r.namespaced else { return nil }
        let bodyNS = body.namespace ?? ""
        guard let url, !url.isEmpty else {
            throw APIError.badRequest("the server could not find the requested resource")
        }
        if !bodyNS.isEmpty && bodyNS != url {
            throw APIError.badRequest("the namespace of the provided object does not match the namespace sent on the request")
        }
        return url
    }

    func checkNamespaceWritable(_ ns: String, _ r: ResourceInfo, name: String) async throws(APIError) {
        guard let obj = try await storage.get(Resources.namespaces, namespace: nil, name: ns) else {
            throw APIError.notFound("namespaces", name: ns)
        }
        if obj.deletionTimestamp != nil || obj[path: "status", "phase"]?.stringValue == "Terminating" {
            throw APIError(code: 403, reason: .forbidden,
                           message: "\(r.qualifiedResource) \"\(name)\" is forbidden: unable to create new content in namespace \(ns) because it is being terminated",
                           name: name, group: r.group.isEmpty ? nil : r.group, kind: r.resource)
        }
    }

    // MARK: - Update

    /// PUT. Returns the stored object and whether it was created.
    public func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String? = nil,
                       options: WriteOptions = WriteOptions()) async throws(APIError) -> (object: JSON, created: Bool) {
        var obj = try checkBody(body, r)
        if let bodyName = obj.name, !bodyName.isEmpty, bodyName != name {
            throw APIError.badRequest("the name of the object (\(bodyName)) does not match the name on the URL (\(name))")
        }
        obj.name = name
        let ns = try resolveNamespace(r, url: namespace, body: obj)
        obj.namespace = ns
        guard let old = try await storage.get(r, namespace: ns, name: name) else {
            if r.resource == "leases" || r.resource == "events" {
                return (try await create(r, namespace: ns, body: obj, options: options), true)
            }
            throw APIError.notFound(r.resource, group: r.group, name: name)
        }
        if let rv = obj.resourceVersion, !rv.isEmpty, rv != old.resourceVersion {
            throw APIError.conflict(r.resource, group: r.group, name: name)
        }
        let updated = try await finishUpdate(r, old: old, new: obj, subresource: subresource, options: options)
        return (updated, false)
    }

    /// Shared tail of update and patch: system fields, strategy, defaults, validation, ownership, write.
    func finishUpdate(_ r: ResourceInfo, old: JSON, new proposed: JSON, subresource: String?, options: WriteOptions,
                      managerOperation: String = "Update") async throws(APIError) -> JSON {
        var new = proposed
        switch subresource {
        case "scale":
            new = try applyScale(new, to: old, r)
            Defaults.applyForUpdate(kind: r.kind, group: r.group, to: &new, old: old)
        case "status":
            new = Strategy.prepareForStatusUpdate(r, new: new, old: old)
            Defaults.applyForStatusUpdate(kind: r.kind, group: r.group, to: &new, old: old)
        case "finalize":
            var out = old
            out[path: "spec", "finalizers"] = new[path: "spec", "finalizers"]
            new = out
        case nil:
            // Keeps the stored status and system metadata, bumps generation on a spec change.
            Defaults.applyForUpdate(kind: r.kind, group: r.group, to: &new, old: old)
        default:
            throw APIError.notFound(r.resource + "/" + (subresource ?? ""), group: r.group, name: old.name ?? "")
        }
        new.namespace = old.namespace
        new.name = old.name
        let causes = Validation.validateUpdate(kind: r.kind, group: r.group, new: new, old: old, namespaced: r.namespaced)
        if !causes.isEmpty { throw APIError.invalid(kind: r.kind, group: r.group, name: old.name ?? "", causes: causes) }
        if managerOperation == "Update" {
            new = FieldOwnership.recordUpdate(old: old, new: new, manager: options.fieldManager, registry: registry,
                                              resource: r, time: Timestamp.rfc3339(now()), subresource: subresource)
        }
        // Nothing changed: no write, no event, same resourceVersion (as GuaranteedUpdate does).
        var a = new
        var b = old
        a.resourceVersion = nil
        b.resourceVersion = nil
        if FieldOwnership.unchanged(a, b) { return old }
        new.resourceVersion = old.resourceVersion
        // The last finalizer gone from an object being deleted: the delete completes now.
        if new.deletionTimestamp != nil, new.finalizers.isEmpty, Strategy.finalizersDone(r, new),
           Strategy.deleteImmediately(r, new) || r.resource != "pods" {
            if options.dryRun { return new }
            let gone = try await storage.delete(r, namespace: old.namespace, name: old.name ?? "", ifRevision: Int64(old.resourceVersion ?? ""))
            await allocator(for: r)?.release(old)
            return gone
        }
        guard let allocator = allocator(for: r), subresource == nil else {
            if options.dryRun { return new }
            return try await storage.update(r, new, ifRevision: Int64(old.resourceVersion ?? ""))
        }
        let (allocated, reservation) = try await allocator.allocate(new, old: old, dryRun: options.dryRun)
        if options.dryRun { return allocated }
        do {
            let out = try await storage.update(r, allocated, ifRevision: Int64(old.resourceVersion ?? ""))
            await allocator.commit(reservation)
            return out
        } catch {
            await allocator.revert(reservation)
            throw error
        }
    }

    // MARK: - Patch

    public func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
                      subresource: String? = nil, options: WriteOptions = WriteOptions()) async throws(APIError) -> (object: JSON, created: Bool) {
        let patchDoc: JSON
        do {
            patchDoc = try JSON.parse(body)
        } catch {
            throw APIError.badRequest("error decoding patch: \(error.message)")
        }
        guard let schemaRoot = registry.definition(for: r.gvk)?.name else {
            throw APIError.internalError("no schema for \(r.kind)")
        }
        // Optimistic concurrency: retry on a concurrent write unless the patch pins a resourceVersion.
        let pinned = patchDoc[path: "metadata", "resourceVersion"]?.stringValue
        for attempt in 0..<8 {
            let old = try await storage.get(r, namespace: namespace, name: name)
            if type == .apply && old == nil && subresource == nil {
                let created = try FieldOwnership.apply(patch: patchDoc, to: nil, manager: options.fieldManager ?? "",
                                                       force: options.force, registry: registry, resource: r,
                                                       time: Timestamp.rfc3339(now()))
                var createOptions = options
                createOptions.fieldManager = nil
                do {
                    return (try await createApplied(r, namespace: namespace, name: name, obj: created, options: createOptions), true)
                } catch where error.reason == .alreadyExists && attempt < 7 {
                    continue
                }
            }
            guard let old else { throw APIError.notFound(r.resource, group: r.group, name: name) }
            if let pinned, !pinned.isEmpty, pinned != old.resourceVersion {
                throw APIError.conflict(r.resource, group: r.group, name: name)
            }
            var target = old
            var rootSchema: Schema = .ref(schemaRoot)
            if subresource == "scale" {
                target = try scale(of: old, r)
                rootSchema = .ref("io.k8s.api.autoscaling.v1.Scale")
            }
            var patched: JSON
            var operation = "Update"
            switch type {
            case .json:
                patched = try JSONPatch.apply(patchDoc, to: target, strict: options.fieldValidation == .strict)
            case .merge:
                try MergePatch.validate(patchDoc, strict: options.fieldValidation == .strict)
                patched = MergePatch.apply(patchDoc, to: target)
            case .strategic:
                guard case .object = patchDoc else { throw APIError.badRequest("json: cannot unmarshal \(patchDoc.typeName) into Go value of type map[string]interface {}") }
                patched = try StrategicMergePatch.apply(patchDoc, to: target, schema: rootSchema, registry: registry)
            case .apply:
                guard options.fieldManager.map({ !$0.isEmpty }) == true else {
                    throw APIError.badRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
                }
                patched = try FieldOwnership.apply(patch: patchDoc, to: target, manager: options.fieldManager ?? "",
                                                   force: options.force, registry: registry, resource: r,
                                                   time: Timestamp.rfc3339(now()), subresource: subresource)
                operation = "Apply"
            }
            guard case .object = patched else { throw APIError.badRequest("the patch did not produce an object") }
            if subresource != "scale" {
                patched = try checkBody(patched, r)
                try Self.checkName(patched, name: name, namespace: namespace)
            }
            do {
                let result = try await finishUpdate(r, old: old, new: patched, subresource: subresource, options: options,
                                                    managerOperation: operation)
                return (subresource == "scale" ? try scale(of: result, r) : result, false)
            } catch where error.reason == .conflict && (pinned ?? "").isEmpty && error.causes.isEmpty && attempt < 7 {
                continue
            }
        }
        throw APIError.conflict(r.resource, group: r.group, name: name)
    }

    /// kube-apiserver's checkName after a patch: a patch may not rename the object or move it
    /// to another namespace (the update would otherwise silently keep the old ones).
    static func checkName(_ obj: JSON, name: String, namespace: String?) throws(APIError) {
        let objName = obj.name ?? ""
        if objName.isEmpty {
            throw APIError.badRequest("the name of the object (\(name) based on URL) was undeterminable: name must be provided")
        }
        if objName != name {
            throw APIError.badRequest("the name of the object (\(objName)) does not match the name on the URL (\(name))")
        }
        if let namespace, !namespace.isEmpty, let objNS = obj.namespace, !objNS.isEmpty, objNS != namespace {
            throw APIError.badRequest("the namespace of the object (\(objNS)) does not match the namespace on the request (\(namespace))")
        }
    }

    func createApplied(_ r: ResourceInfo, namespace: String?, name: String, obj: JSON, options: WriteOptions) async throws(APIError) -> JSON {
        var o = obj
        if let n = o.name, n != name {
            throw APIError.badRequest("the name of the object (\(n)) does not match the name on the URL (\(name))")
        }
        o.name = name
        return try await create(r, namespace: namespace, body: o, options: options)
    }

    // MARK: - Delete

    public typealias DeleteResult = APIMachinery.DeleteResult

    /// The namespaces the NamespaceLifecycle admission plugin never lets anyone delete: without
    /// them the cluster (its DNS, the kubernetes Service) would be gone.
    public static let immortalNamespaces: Set<String> = ["default", "kube-system", "kube-public"]

    public func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions = DeleteOptions()) async throws(APIError) -> DeleteResult {
        if r.group.isEmpty && r.resource == "namespaces" && Self.immortalNamespaces.contains(name) {
            throw APIError(code: 403, reason: .forbidden, message: "namespaces \"\(name)\" is forbidden: this namespace may not be deleted",
                           name: name, kind: "namespaces")
        }
        for attempt in 0..<8 {
            let old = try await storage.mustGet(r, namespace: namespace, name: name)
            if let uid = options.preconditionUID, uid != old.uid {
                throw APIError.conflict(r.resource, group: r.group, name: name,
                                        why: "Precondition failed: UID in precondition: \(uid), UID in object meta: \(old.uid ?? "")")
            }
            if let rv = options.preconditionResourceVersion, rv != old.resourceVersion {
                throw APIError.conflict(r.resource, group: r.group, name: name,
                                        why: "Precondition failed: ResourceVersion in precondition: \(rv), ResourceVersion in object meta: \(old.resourceVersion ?? "")")
            }
            var obj = old
            var finalizers = old.finalizers
            switch options.propagationPolicy {
            case "Orphan": if !finalizers.contains("orphan") { finalizers.append("orphan") }
            case "Foreground": if !finalizers.contains("foregroundDeletion") { finalizers.append("foregroundDeletion") }
            default: break
            }
            let stamp = Timestamp.rfc3339(now())
            var graceful = false
            if r.group.isEmpty && r.resource == "namespaces" {
                // Namespaces are emptied and finalized by the namespace controller.
                if obj[path: "status", "phase"]?.stringValue != "Terminating" || obj.deletionTimestamp == nil {
                    obj[path: "status", "phase"] = "Terminating"
                    graceful = true
                }
                if (obj[path: "spec", "finalizers"]?.arrayValue ?? []).isEmpty && finalizers.isEmpty {
                    graceful = false
                }
            } else if !Strategy.deleteImmediately(r, old) {
                let grace = options.gracePeriodSeconds ?? old[path: "spec", "terminationGracePeriodSeconds"]?.intValue ?? 30
                if grace > 0 || !finalizers.isEmpty {
                    let current = old[path: "metadata", "deletionGracePeriodSeconds"]?.intValue
                    if current == nil || grace < (current ?? 0) {
                        obj[path: "metadata", "deletionGracePeriodSeconds"] = .int(grace)
                        obj[path: "metadata", "deletionTimestamp"] = .string(Timestamp.rfc3339(now().addingTimeInterval(Double(grace))))
                    }
                    graceful = true
                }
            }
            if !finalizers.isEmpty || graceful {
                if obj.deletionTimestamp == nil {
                    obj[path: "metadata", "deletionTimestamp"] = .string(stamp)
                    obj[path: "metadata", "deletionGracePeriodSeconds"] = 0
                }
                obj[path: "metadata", "finalizers"] = finalizers.isEmpty ? nil : .array(finalizers.map { .string($0) })
                if options.dryRun { return .pending(obj) }
                if obj == old { return .pending(old) }
                do {
                    return .pending(try await storage.update(r, obj, ifRevision: Int64(old.resourceVersion ?? "")))
                } catch where error.reason == .conflict && attempt < 7 {
                    continue
                }
            }
            if options.dryRun { return .deleted(old) }
            do {
                let gone = try await storage.delete(r, namespace: namespace, name: name, ifRevision: Int64(old.resourceVersion ?? ""))
                await allocator(for: r)?.release(old)
                return .deleted(gone)
            } catch where error.reason == .conflict && attempt < 7 {
                continue
            }
        }
        throw APIError.conflict(r.resource, group: r.group, name: name)
    }

    public func deleteCollection(_ r: ResourceInfo, namespace: String?, listOptions: ListOptions,
                                 options: DeleteOptions) async throws(APIError) -> [JSON] {
        let items = try await list(r, namespace: namespace, options: listOptions).items
        var out: [JSON] = []
        for item in items {
            do {
                switch try await delete(r, namespace: item.namespace, name: item.name ?? "", options: options) {
                case .deleted(let o), .pending(let o): out.append(o)
                }
            } catch where error.reason == .notFound {
                continue
            }
        }
        return out
    }

    // MARK: - Subresources

    func scale(of obj: JSON, _ r: ResourceInfo) throws(APIError) -> JSON {
        guard r.subresources.contains("scale") else {
            throw APIError.notFound("\(r.resource)/scale", group: r.group, name: obj.name ?? "")
        }
        var meta: JSON = [:]
        for f in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
            meta[f] = obj[path: "metadata", f]
        }
        let selector = LabelSelector.from(obj[path: "spec", "selector"]).description
        return ["kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
                "spec": ["replicas": obj[path: "spec", "replicas"] ?? 1],
                "status": ["replicas": obj[path: "status", "replicas"] ?? 0, "selector": .string(selector)]]
    }

    func applyScale(_ scale: JSON, to old: JSON, _ r: ResourceInfo) throws(APIError) -> JSON {
        if let kind = scale.kind, kind != "Scale" {
            throw APIError.badRequest("the kind in the data (\(kind)) does not match the expected kind (Scale)")
        }
        guard let replicas = scale[path: "spec", "replicas"]?.intValue else {
            throw APIError.invalid(kind: "Scale", group: "autoscaling", name: old.name ?? "",
                                   causes: [.init(reason: "FieldValueRequired", message: "Required value", field: "spec.replicas")])
        }
        if replicas < 0 {
            throw APIError.invalid(kind: "Scale", group: "autoscaling", name: old.name ?? "",
                                   causes: [.init(reason: "FieldValueInvalid",
                                                  message: "Invalid value: \(replicas): must be greater than or equal to 0",
                                                  field: "spec.replicas")])
        }
        if let rv = scale.resourceVersion, !rv.isEmpty, rv != old.resourceVersion {
            throw APIError.conflict(r.resource, group: r.group, name: old.name ?? "")
        }
        var new = old
        new[path: "spec", "replicas"] = .int(replicas)
        return new
    }

    /// POST to a subresource: `serviceaccounts/NAME/token` (TokenRequest) and `pods/NAME/binding`.
    /// The name comes in the body's metadata for binding and as `name` for the parent object.
    public func createSubresource(_ r: ResourceInfo, namespace: String?, name: String? = nil, body: JSON,
                                  subresource: String) async throws(APIError) -> JSON {
        switch (r.group, r.resource, subresource) {
        case ("", "serviceaccounts", "token"):
            return try await tokenRequest(namespace: namespace ?? "", serviceAccount: name ?? body.name ?? "", body: body)
        case ("", "pods", "binding"):
            return try await bind(namespace: namespace ?? "", pod: name ?? body.name ?? "", body: body)
        default:
            throw APIError.methodNotAllowed("create is not supported on \(r.resource)/\(subresource)")
        }
    }

    /// Issues a service-account token, as `kubectl create token` asks for it.
    func tokenRequest(namespace: String, serviceAccount: String, body: JSON) async throws(APIError) -> JSON {
        guard let tokenIssuer else {
            throw APIError(code: 503, reason: .serviceUnavailable, message: "this server issues no service account tokens")
        }
        guard let sas = Resources.find(group: "", version: "v1", resource: "serviceaccounts") else {
            throw APIError.internalError("serviceaccounts are not served")
        }
        let sa = try await storage.mustGet(sas, namespace: namespace, name: serviceAccount)
        let requested = body[path: "spec", "expirationSeconds"]?.intValue ?? 3600
        if requested < 600 {
            throw APIError.invalid(kind: "TokenRequest", group: "authentication.k8s.io", name: serviceAccount, causes: [
                .init(reason: "FieldValueInvalid", message: "Invalid value: \(requested): may not specify a duration less than 10 minutes",
                      field: "spec.expirationSeconds")])
        }
        let audiences = body[path: "spec", "audiences"]?.arrayValue?.compactMap(\.stringValue) ?? []
        var boundPod: (name: String, uid: String)?
        if body[path: "spec", "boundObjectRef", "kind"]?.stringValue == "Pod",
           let podName = body[path: "spec", "boundObjectRef", "name"]?.stringValue,
           let pods = Resources.find(group: "", version: "v1", resource: "pods") {
            let pod = try await storage.mustGet(pods, namespace: namespace, name: podName)
            boundPod = (podName, pod.uid ?? "")
        }
        let issued: (token: String, expiration: Date)
        do {
            issued = try tokenIssuer.issue(namespace: namespace, serviceAccount: serviceAccount, uid: sa.uid ?? "",
                                           audiences: audiences, expirationSeconds: min(requested, 48 * 3600), boundPod: boundPod)
        } catch {
            throw APIError.internalError("issuing a token for \(namespace)/\(serviceAccount): \(error)")
        }
        var out: JSON = ["kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                         "metadata": ["name": .string(serviceAccount), "namespace": .string(namespace),
                                      "creationTimestamp": .string(Timestamp.rfc3339(now()))]]
        out["spec"] = body["spec"] ?? [:]
        out[path: "spec", "expirationSeconds"] = .int(min(requested, 48 * 3600))
        out["status"] = ["token": .string(issued.token), "expirationTimestamp": .string(Timestamp.rfc3339(issued.expiration))]
        return out
    }

    /// Assigns a pod to a node (what the scheduler does through `pods/binding`).
    func bind(namespace: String, pod name: String, body: JSON) async throws(APIError) -> JSON {
        guard let pods = Resources.find(group: "", version: "v1", resource: "pods") else {
            throw APIError.internalError("pods are not served")
        }
        guard let node = body[path: "target", "name"]?.stringValue, !node.isEmpty else {
            throw APIError.invalid(kind: "Binding", name: name, causes: [
                .init(reason: "FieldValueRequired", message: "Required value", field: "target.name")])
        }
        for _ in 0..<8 {
            var pod = try await storage.mustGet(pods, namespace: namespace, name: name)
            if let current = pod[path: "spec", "nodeName"]?.stringValue, !current.isEmpty {
                throw APIError.conflict("pods", name: name, why: "pod \(name) is already assigned to node \"\(current)\"")
            }
            if pod.deletionTimestamp != nil {
                throw APIError.conflict("pods", name: name, why: "pod \(name) is being deleted, cannot be assigned to a host")
            }
            pod[path: "spec", "nodeName"] = .string(node)
            do {
                _ = try await storage.update(pods, pod, ifRevision: Int64(pod.resourceVersion ?? ""))
                return ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Success", "code": 201]
            } catch where error.reason == .conflict {
                continue
            }
        }
        throw APIError.conflict("pods", name: name)
    }
}

/// Issues bearer tokens for service accounts (the `serviceaccounts/token` subresource).
public protocol TokenIssuing: Sendable {
    func issue(namespace: String, serviceAccount: String, uid: String, audiences: [String], expirationSeconds: Int64,
               boundPod: (name: String, uid: String)?) throws -> (token: String, expiration: Date)
}

/// `continue` tokens: base64 of a small JSON naming the revision and the last key returned.
enum ContinueToken {
    static func encode(revision: Int64, after key: String, prefix: String) -> String {
        let start = String(key.dropFirst(prefix.count))
        let j: JSON = ["v": "meta.k8s.io/v1", "rv": .int(revision), "start": .string(start + "\u{0}")]
        return Data(j.serialized()).base64EncodedString()
    }

    static func decode(_ token: String, prefix: String) throws(APIError) -> String {
        guard let data = Data(base64Encoded: token), let j = try? JSON.parse(Array(data)),
              j["v"]?.stringValue == "meta.k8s.io/v1", let start = j["start"]?.stringValue else {
            throw APIError.badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        }
        let key = start.hasSuffix("\u{0}") ? String(start.dropLast()) : start
        guard !key.contains("..") else { throw APIError.badRequest("continue key is not valid: path traversal") }
        return prefix + key
    }
}

extension APIService: APIClient {}
