import APIMachinery

// TEMPORARY: replaced by the server-side apply integration.
enum FieldOwnership {
    static func recordUpdate(old: JSON?, new: JSON, manager: String?, registry: TypeRegistry, resource: ResourceInfo, time: String) -> JSON {
        new
    }

    static func apply(patch: JSON, to live: JSON?, manager: String, force: Bool, registry: TypeRegistry, resource: ResourceInfo,
                      time: String) throws(APIError) -> JSON {
        MergePatch.apply(patch, to: live ?? [:])
    }

    static func equalIgnoringTimes(_ a: JSON, _ b: JSON) -> Bool {
        var x = a
        var y = b
        x[path: "metadata", "managedFields"] = nil
        y[path: "metadata", "managedFields"] = nil
        return x == y
    }
}
