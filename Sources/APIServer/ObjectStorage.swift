import APIMachinery
import Store

/// Objects in the KVStore: where each one lives, and how resourceVersion maps to store revisions.
///
/// Objects are stored as JSON without `metadata.resourceVersion`; on the way out the key's
/// modRevision is written into it, as kube-apiserver does with etcd.
struct ObjectStorage: Sendable {
    let store: any KVStore

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
        let kv: KeyValue?
        do {
            kv = try await store.get(Self.key(r, namespace: namespace, name: name))
        } catch {
            throw mapError(error, r, name: name)
        }
        guard let kv else { return nil }
        return try Self.decode(kv)
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
