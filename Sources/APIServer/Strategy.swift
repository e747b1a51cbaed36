import APIMachinery

/// Per-resource rules kube-apiserver applies around a write: what a create resets, what the main
/// resource may not change (status) and what the status subresource may not change (everything
/// else), when `generation` moves, and which fields a field selector may name.
enum Strategy {
    static func hasStatus(_ r: ResourceInfo) -> Bool { r.subresources.contains("status") }

    /// Kinds whose spec changes bump metadata.generation (what rollout status and controllers watch).
    static func tracksGeneration(_ r: ResourceInfo) -> Bool {
        (r.group == "apps" && (r.resource == "deployments" || r.resource == "replicasets")) || r.resource == "pods" && r.group.isEmpty
    }

    static func prepareForCreate(_ r: ResourceInfo, _ obj: inout JSON) {
        if tracksGeneration(r) { obj[path: "metadata", "generation"] = 1 }
        switch (r.group, r.resource) {
        case ("", "pods"):
            obj["status"] = ["phase": "Pending", "qosClass": .string(qosClass(obj))]
        case ("", "namespaces"):
            obj["status"] = ["phase": "Active"]
        case ("", "services"):
            obj["status"] = ["loadBalancer": [:]]
        case ("apps", "deployments"), ("apps", "replicasets"):
            obj["status"] = [:]
        default:
            break
        }
    }

    /// An update of the main resource keeps the stored status; a changed spec bumps generation.
    static func prepareForUpdate(_ r: ResourceInfo, _ new: inout JSON, old: JSON) {
        if hasStatus(r) {
            new["status"] = old["status"]
        }
        if tracksGeneration(r) {
            let oldGen = old[path: "metadata", "generation"]?.intValue ?? 1
            new[path: "metadata", "generation"] = .int(specChanged(new, old) ? oldGen + 1 : oldGen)
        }
    }

    /// An update through /status takes only the status (and managedFields) from the request.
    static func prepareForStatusUpdate(_ r: ResourceInfo, new: JSON, old: JSON) -> JSON {
        var out = old
        out["status"] = new["status"]
        out[path: "metadata", "managedFields"] = new[path: "metadata", "managedFields"]
        if r.resource == "namespaces", r.group.isEmpty, out["status"] == nil {
            out["status"] = old["status"]
        }
        return out
    }

    /// Everything but metadata and status counts as spec (Secrets and ConfigMaps have data instead).
    static func specChanged(_ a: JSON, _ b: JSON) -> Bool {
        var x = a
        var y = b
        x["metadata"] = nil
        y["metadata"] = nil
        x["status"] = nil
        y["status"] = nil
        return x != y
    }

    static func qosClass(_ pod: JSON) -> String {
        let containers = (pod[path: "spec", "containers"]?.arrayValue ?? []) + (pod[path: "spec", "initContainers"]?.arrayValue ?? [])
        var any = false
        var guaranteed = !containers.isEmpty
        for c in containers {
            let req = c[path: "resources", "requests"]?.objectValue ?? [:]
            let lim = c[path: "resources", "limits"]?.objectValue ?? [:]
            if !req.isEmpty || !lim.isEmpty { any = true }
            for res in ["cpu", "memory"] {
                guard let l = lim[res] else {
                    guaranteed = false
                    continue
                }
                if let q = req[res], q != l { guaranteed = false }
            }
        }
        if !any { return "BestEffort" }
        return guaranteed ? "Guaranteed" : "Burstable"
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
