import APIMachinery

/// managedFields bookkeeping and server-side apply, through APIMachinery's FieldManager.
enum FieldOwnership {
    static let manager = FieldManager()

    static func schema(_ r: ResourceInfo) -> Schema { .ref(r.definition) }

    /// Gives the fields this write changed to `manager` (operation Update).
    static func recordUpdate(old: JSON?, new: JSON, manager name: String?, registry: TypeRegistry, resource: ResourceInfo,
                             time: String, subresource: String? = nil) -> JSON {
        guard let name, !name.isEmpty else { return new }
        return manager.recordUpdate(old: old, new: new, manager: name, schema: schema(resource), registry: registry, now: time,
                                    subresource: subresource ?? "", apiVersion: resource.apiVersion)
    }

    /// Merges an applied configuration into the live object (nil: create), with conflicts as 409.
    static func apply(patch: JSON, to live: JSON?, manager name: String, force: Bool, registry: TypeRegistry,
                      resource: ResourceInfo, time: String, subresource: String? = nil) throws(APIError) -> JSON {
        try manager.apply(patch: patch, to: live, manager: name, force: force, schema: schema(resource), registry: registry,
                          now: time, subresource: subresource ?? "", gvk: resource.gvk)
    }

    /// Whether a write would change nothing. managedFields count: a write that only moves
    /// ownership (kubectl's client-side to server-side apply migration) must be stored.
    static func unchanged(_ a: JSON, _ b: JSON) -> Bool { a == b }
}
