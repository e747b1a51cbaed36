import APIMachinery

/// Per-resource rules around a write that are not defaulting: what the status subresource may
/// change, when a delete completes at once, and which fields a field selector may name.
/// (Create and update defaults, status reset and generation live in APIMachinery's `Defaults`.)
enum Strategy {
    static func hasStatus(_ r: ResourceInfo) -> Bool { r.subresources.contains("status") }

    /// An update through /status takes only the status (and managedFields) from the request.
    static func prepareForStatusUpdate(_ r: ResourceInfo, new: JSON, old: JSON) -> JSON {
        var out = old
        out["status"] = new["status"]
        out[path: "metadata", "managedFields"] = new[path: "metadata", "managedFields"]
        if r.resource == "namespaces", r.group.isEmpty, out["status"] == nil {
            out["status"] = old["status"]
        }
        // The deployment controller records the revision annotation in the same status write
        // (upstream's status strategy resets only spec and labels for Deployments).
        if r.group == "apps", r.resource == "deployments" {
            out[path: "metadata", "annotations"] = new[path: "metadata", "annotations"]
        }
        return out
    }

    /// Namespaces also wait for their spec finalizers (the namespace controller's "kubernetes").
    static func finalizersDone(_ r: ResourceInfo, _ obj: JSON) -> Bool {
        guard r.group.isEmpty, r.resource == "namespaces" else { return true }
        return (obj[path: "spec", "finalizers"]?.arrayValue ?? []).isEmpty
    }

    /// Pods that never reached a node, or already finished, go at once; others wait for the node agent.
    static func deleteImmediately(_ r: ResourceInfo, _ obj: JSON) -> Bool {
        guard r.group.isEmpty, r.resource == "pods" else { return true }
        if (obj[path: "spec", "nodeName"]?.stringValue ?? "").isEmpty { return true }
        let phase = obj[path: "status", "phase"]?.stringValue
        return phase == "Succeeded" || phase == "Failed"
    }

    // MARK: Field selectors

    static func selectableFields(_ r: ResourceInfo) -> [String] {
        var fields = ["metadata.name", "metadata.namespace"]
        switch (r.group, r.resource) {
        case ("", "pods"):
            fields += ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                       "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"]
        case ("", "events"):
            fields += ["involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                       "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                       "reason", "reportingComponent", "source", "type"]
        case ("", "secrets"): fields += ["type"]
        case ("", "namespaces"): fields += ["status.phase"]
        case ("", "nodes"): fields += ["spec.unschedulable"]
        case ("", "services"): fields += ["spec.clusterIP", "spec.type"]
        case ("apps", "replicasets"): fields += ["status.replicas"]
        default: break
        }
        return fields
    }

    static func fieldValues(_ r: ResourceInfo, _ obj: JSON) -> [String: String] {
        var out: [String: String] = [:]
        for f in selectableFields(r) {
            let path = f.split(separator: ".").map(String.init)
            switch obj[path: path[...]] {
            case .string(let s)?: out[f] = s
            case .bool(let b)?: out[f] = b ? "true" : "false"
            case .int(let i)?: out[f] = String(i)
            default:
                if f == "source" { out[f] = obj[path: "source", "component"]?.stringValue ?? "" }
                else if f == "status.podIPs" { out[f] = obj[path: "status", "podIP"]?.stringValue ?? "" }
                else if f == "spec.hostNetwork" || f == "spec.unschedulable" { out[f] = "false" }
                else if f == "status.replicas" { out[f] = "0" }
                else { out[f] = "" }
            }
        }
        return out
    }

    static func checkFieldSelector(_ r: ResourceInfo, _ sel: FieldSelector) throws(APIError) {
        let allowed = selectableFields(r)
        for req in sel.requirements where !allowed.contains(req.field) {
            throw APIError.badRequest("field label not supported: \(req.field)")
        }
    }
}
