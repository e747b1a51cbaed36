import APIMachinery
import NIOConcurrencyHelpers
import Store

/// Decoded objects and their JSON encoding, by key and revision. A GET is mostly a lookup then:
/// parsing and re-encoding the stored bytes cost more than the rest of the request.
final class ObjectCache: Sendable {
    struct Entry {
        var revision: Int64
        var object: JSON
        var encoded: [UInt8]?
    }

    let entries = NIOLockedValueBox<[String: Entry]>([:])
    static let limit = 20_000

    func object(_ kv: KeyValue) -> JSON? {
        entries.withLockedValue { e in
            guard let hit = e[kv.key], hit.revision == kv.modRevision else { return nil }
            return hit.object
        }
    }

    func encoded(_ kv: KeyValue) -> [UInt8]? {
        entries.withLockedValue { e in
            guard let hit = e[kv.key], hit.revision == kv.modRevision else { return nil }
            return hit.encoded
        }
    }

    func store(_ kv: KeyValue, object: JSON, encoded: [UInt8]?) {
        entries.withLockedValue { e in
            if e.count >= Self.limit { e.removeAll(keepingCapacity: true) }
            e[kv.key] = Entry(revision: kv.modRevision, object: object, encoded: encoded)
        }
    }
}

/// Objects in the KVStore: where each one lives, and how resourceVersion maps to store revisions.
///
/// Objects are stored as JSON without `metadata.resourceVersion`; on the way out the key's
/// modRevision is written into it, as kube-apiserver does with etcd.
struct ObjectStorage: Sendable {
    let store: any KVStore
    /// The store, when it can read without suspending (cast once: a cast per request shows in profiles).
    let immediate: (any ImmediateReading)?
    let cache = ObjectCache()

    init(store: any KVStore) {
        self.store = store
        immediate = store as? any ImmediateReading
    }

    static func resourcePrefix(_ r: ResourceInfo) -> String {
        r.group.isEmpty ? "/\(r.resource)/" : "/\(r.resource).\(r.group)/"
    }

    static func key(_ r: ResourceInfo, namespace: String?, name: String) -> String {
        if r.namespaced { return resourcePrefix(r) + (namespace ?? "") + "/" + name }
        return resourcePrefix(r) + name
    }

    /// All objects of the resource, or of one namespace.
    static func prefix(_ r: ResourceInfo, namespace: String?) -> String {
        if r.namespaced, let namespace { return resourcePrefix(r) + namespace + "/" }
        return resourcePrefix(r)
    }

    static func decode(_ kv: KeyValue) throws(APIError) -> JSON {
        var obj: JSON
        do {
            obj = try JSON.parse(kv.value)
        } catch {
            throw APIError.internalError("stored object \(kv.key) is not valid JSON: \(error.message)")
        }
        obj.resourceVersion = String(kv.modRevision)
        return obj
    }

    static func encode(_ obj: JSON) -> [UInt8] {
        var o = obj
        o.resourceVersion = nil
        return o.serialized()
    }

    func mapError(_ e: StoreError, _ r: ResourceInfo, name: String) -> APIError {
        switch e {
        case .notFound: return .notFound(r.resource, group: r.group, name: name)
        case .alreadyExists: return .alreadyExists(r.resource, group: r.group, name: name)
        case .conflict: return .conflict(r.resource, group: r.group, name: name)
        case .compacted(let req, let oldest):
            return .gone("too old resource version: \(req) (\(oldest))")
        case .closed: return APIError(code: 503, reason: .serviceUnavailable, message: "the store is shutting down")
        case .backend(let op, let why): return .internalError("store \(op): \(why)")
        }
    }

    func get(_ r: ResourceInfo, namespace: String?, name: String) async throws(APIError) -> JSON? {
        guard let kv = try await getKV(r, namespace: namespace, name: name) else { return nil }
        return try decodeCached(kv)
    }

    func getKV(_ r: ResourceInfo, namespace: String?, name: String) async throws(APIError) -> KeyValue? {
        do {
            return try await store.get(Self.key(r, namespace: namespace, name: name))
        } catch {
            throw mapError(error, r, name: name)
        }
    }

    /// The key's current value without suspending; nil when absent or when the store can only
    /// answer asynchronously.
    func getKVImmediately(_ r: ResourceInfo, namespace: String?, name: String) -> KeyValue? {
        try? immediate?.getImmediately(Self.key(r, namespace: namespace, name: name))
    }

    func decodeCached(_ kv: KeyValue) throws(APIError) -> JSON {
        if let hit = cache.object(kv) { return hit }
        let obj = try Self.decode(kv)
        cache.store(kv, object: obj, encoded: nil)
        return obj
    }

    /// The object's JSON as a GET returns it, encoded once per revision.
    func encodedCached(_ kv: KeyValue) throws(APIError) -> [UInt8] {
        if let hit = cache.encoded(kv) { return hit }
        let obj = try decodeCached(kv)
        let bytes = obj.serialized()
        cache.store(kv, object: obj, encoded: bytes)
        return bytes
    }

    func mustGet(_ r: ResourceInfo, namespace: String?, name: String) async throws(APIError) -> JSON {
        guard let obj = try await get(r, namespace: namespace, name: name) else {
            throw APIError.notFound(r.resource, group: r.group, name: name)
        }
        return obj
    }

    func create(_ r: ResourceInfo, _ obj: JSON) async throws(APIError) -> JSON {
        let name = obj.name ?? ""
        do {
            let kv = try await store.create(Self.key(r, namespace: obj.namespace, name: name), value: Self.encode(obj))
            var out = obj
            out.resourceVersion = String(kv.modRevision)
            return out
        } catch {
            throw mapError(error, r, name: name)
        }
    }

    func update(_ r: ResourceInfo, _ obj: JSON, ifRevision: Int64?) async throws(APIError) -> JSON {
        let name = obj.name ?? ""
        do {
            let kv = try await store.update(Self.key(r, namespace: obj.namespace, name: name), value: Self.encode(obj),
                                            ifModRevision: ifRevision)
            var out = obj
            out.resourceVersion = String(kv.modRevision)
            return out
        } catch {
            throw mapError(error, r, name: name)
        }
    }

    func delete(_ r: ResourceInfo, namespace: String?, name: String, ifRevision: Int64?) async throws(APIError) -> JSON {
        let kv: KeyValue
        do {
            kv = try await store.delete(Self.key(r, namespace: namespace, name: name), ifModRevision: ifRevision)
        } catch {
            throw mapError(error, r, name: name)
        }
        return try Self.decode(kv)
    }
}
