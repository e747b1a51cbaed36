/// What a component may ask of the API server: the REST verbs, in-process.
///
/// Controllers, the node agent, the proxy and the DNS add-on depend on this protocol only;
/// `Cluster` hands them the API server's transport-free core, so a request from a
/// controller goes through the same defaulting, validation, admission and storage as one
/// from kubectl, without HTTP or serialisation.
public protocol APIClient: Sendable {
    func get(_ r: ResourceInfo, namespace: String?, name: String, subresource: String?) async throws(APIError) -> JSON
    func list(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> ListResult
    func create(_ r: ResourceInfo, namespace: String?, body: JSON, options: WriteOptions,
                subresource: String?) async throws(APIError) -> JSON
    func update(_ r: ResourceInfo, namespace: String?, name: String, body: JSON, subresource: String?,
                options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool)
    func patch(_ r: ResourceInfo, namespace: String?, name: String, type: PatchType, body: [UInt8],
               subresource: String?, options: WriteOptions) async throws(APIError) -> (object: JSON, created: Bool)
    func delete(_ r: ResourceInfo, namespace: String?, name: String, options: DeleteOptions) async throws(APIError) -> DeleteResult
    func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent>
}

extension APIClient {
    /// The object, or nil when it does not exist.
    public func find(_ r: ResourceInfo, namespace: String?, name: String) async throws(APIError) -> JSON? {
        do {
            return try await get(r, namespace: namespace, name: name, subresource: nil)
        } catch where error.reason == .notFound {
            return nil
        }
    }

    public func items(_ r: ResourceInfo, namespace: String? = nil,
                      selector: LabelSelector = .everything) async throws(APIError) -> [JSON] {
        try await list(r, namespace: namespace, options: ListOptions(labelSelector: selector)).items
    }

    /// Creates `obj` in its own namespace (metadata.namespace).
    public func create(_ r: ResourceInfo, _ obj: JSON, manager: String) async throws(APIError) -> JSON {
        try await create(r, namespace: obj.namespace, body: obj, options: WriteOptions(fieldManager: manager), subresource: nil)
    }

    /// PUT of the whole object (or of its status with `subresource: "status"`); the
    /// resourceVersion inside `obj` makes it fail with 409 Conflict when someone wrote first.
    public func update(_ r: ResourceInfo, _ obj: JSON, subresource: String? = nil, manager: String) async throws(APIError) -> JSON {
        try await update(r, namespace: obj.namespace, name: obj.name ?? "", body: obj, subresource: subresource,
                         options: WriteOptions(fieldManager: manager)).object
    }

    /// A JSON merge patch.
    public func mergePatch(_ r: ResourceInfo, namespace: String?, name: String, _ patch: JSON, subresource: String? = nil,
                           manager: String) async throws(APIError) -> JSON {
        try await self.patch(r, namespace: namespace, name: name, type: .merge, body: patch.serialized(),
                             subresource: subresource, options: WriteOptions(fieldManager: manager)).object
    }

    /// Deletes; a missing object is not an error (nil is returned).
    @discardableResult
    public func remove(_ r: ResourceInfo, namespace: String?, name: String,
                       options: DeleteOptions = DeleteOptions()) async throws(APIError) -> DeleteResult? {
        do {
            return try await delete(r, namespace: namespace, name: name, options: options)
        } catch where error.reason == .notFound {
            return nil
        }
    }
}
