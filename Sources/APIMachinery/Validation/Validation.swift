import Collections

/// Validation as kube-apiserver performs it for the kinds labnode serves.
///
/// Call after `Defaults.apply` (create) or `Defaults.applyForUpdate` (update): like upstream,
/// the checks expect defaulted objects (a missing `restartPolicy` is "Required", not assumed).
/// The result is the list of causes for `APIError.invalid`; an empty list means valid.
///
/// Facts, field paths and message wording follow kube-apiserver 1.33. Objects are dynamic JSON,
/// so every field read is type-checked: a wrong JSON type becomes a `FieldValueTypeInvalid`
/// cause instead of the 400 that Go's decoder would give, and never a crash.
public enum Validation {
    /// Causes for creating `obj`. `namespaced` comes from the resource table.
    public static func validateCreate(kind: String, group: String, obj: JSON, namespaced: Bool) -> [APIError.Cause] {
        fieldErrorsForCreate(kind: kind, group: group, obj: obj, namespaced: namespaced).map(\.cause)
    }

    /// Causes for replacing `old` with `new` (PUT, PATCH, apply): the create rules on `new`
    /// plus what may not change.
    public static func validateUpdate(kind: String, group: String, new: JSON, old: JSON, namespaced: Bool) -> [APIError.Cause] {
        fieldErrorsForUpdate(kind: kind, group: group, new: new, old: old, namespaced: namespaced).map(\.cause)
    }

    /// The field errors behind `validateCreate`, for callers that want the structured form.
    public static func fieldErrorsForCreate(kind: String, group: String, obj: JSON, namespaced: Bool) -> [FieldError] {
        if let e = notAnObject(obj) { return [e] }
        var ctx = Context()
        switch (group, kind) {
        case ("", "Pod"):
            validatePodCreate(obj, ctx: &ctx)
        case ("", "Service"):
            let allocation = serviceAllocationErrors(obj)
            if !allocation.isEmpty { return allocation }
            validateService(obj, ctx: &ctx)
        case ("apps", "Deployment"):
            validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
            validateDeploymentSpec(obj, ctx: &ctx)
        case ("apps", "ReplicaSet"):
            validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
            validateReplicaSetSpec(obj, ctx: &ctx)
        case ("", "ConfigMap"):
            validateConfigMap(obj, ctx: &ctx)
        case ("", "Secret"):
            validateSecret(obj, ctx: &ctx)
        case ("", "Namespace"):
            validateNamespace(obj, ctx: &ctx)
        case ("", "ServiceAccount"):
            validateServiceAccount(obj, ctx: &ctx)
        case ("", "Endpoints"):
            validateEndpoints(obj, ctx: &ctx)
        case ("discovery.k8s.io", "EndpointSlice"):
            validateEndpointSlice(obj, update: false, ctx: &ctx)
        case ("coordination.k8s.io", "Lease"):
            validateLease(obj, ctx: &ctx)
        case ("", "Event"):
            validateEvent(obj, ctx: &ctx)
        case ("", "Node"):
            validateNode(obj, ctx: &ctx)
        default:
            validateObjectMeta(obj, requiresNamespace: namespaced, rule: NameValidation.nameRule(kind: kind, group: group), ctx: &ctx)
        }
        return finish(ctx)
    }

    /// The field errors behind `validateUpdate`.
    public static func fieldErrorsForUpdate(kind: String, group: String, new: JSON, old: JSON, namespaced: Bool) -> [FieldError] {
        if let e = notAnObject(new) { return [e] }
        var ctx = Context()
        switch (group, kind) {
        case ("", "Pod"):
            validatePodUpdate(new: new, old: old, ctx: &ctx)
        case ("", "Service"):
            validateServiceUpdate(new: new, old: old, ctx: &ctx)
        case ("apps", "Deployment"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateDeploymentSpec(new, ctx: &ctx)
            validateSelectorImmutable(new: new, old: old, ctx: &ctx)
        case ("apps", "ReplicaSet"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateReplicaSetSpec(new, ctx: &ctx)
            validateSelectorImmutable(new: new, old: old, ctx: &ctx)
        case ("", "ConfigMap"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateImmutableData(new: new, old: old, keys: ["data", "binaryData"], ctx: &ctx)
            validateConfigMap(new, ctx: &ctx)
        case ("", "Secret"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            let newType = new["type"]?.stringValue ?? ""
            if newType != (old["type"]?.stringValue ?? "") {
                ctx.add(.invalid(Path("type"), newType, fieldImmutable))
            }
            validateImmutableData(new: new, old: old, keys: ["data"], ctx: &ctx)
            validateSecret(new, ctx: &ctx)
        case ("", "Namespace"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
        case ("", "ServiceAccount"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateServiceAccount(new, ctx: &ctx)
        case ("", "Endpoints"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateEndpoints(new, ctx: &ctx)
        case ("discovery.k8s.io", "EndpointSlice"):
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
            validateEndpointSlice(new, update: true, ctx: &ctx)
            let n = new["addressType"]?.stringValue ?? ""
            if n != (old["addressType"]?.stringValue ?? "") {
                ctx.add(.invalid(Path("addressType"), n, fieldImmutable))
            }
        case ("coordination.k8s.io", "Lease"):
            validateObjectMetaUpdate(new: new, old: old, kubeFinalizerCheck: false, ctx: &ctx)
            validateLeaseSpec(new, ctx: &ctx)
        case ("", "Event"):
            validateEvent(new, ctx: &ctx)
        case ("", "Node"):
            validateNodeUpdate(new: new, old: old, ctx: &ctx)
        default:
            validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
        }
        return finish(ctx)
    }

    // MARK: Helpers

    private static func notAnObject(_ obj: JSON) -> FieldError? {
        if obj.objectValue != nil { return nil }
        let actual = GoSyntax.schemaTypeName(obj)
        return FieldError(kind: .typeInvalid, field: "", value: .string(actual), detail: "body must be of type object: \"\(actual)\"")
    }

    /// Wrong JSON types stop upstream at decoding, before any validation; when there are
    /// some, they are the whole answer (the checks after them saw the field as unset).
    private static func finish(_ ctx: Context) -> [FieldError] {
        let typeErrors = ctx.errors.filter { $0.kind == .typeInvalid }
        return unique(typeErrors.isEmpty ? ctx.errors : typeErrors)
    }

    /// Identical errors collapse, as upstream's aggregate (and kubectl) collapse them.
    private static func unique(_ errors: [FieldError]) -> [FieldError] {
        var seen = Set<String>()
        return errors.filter { seen.insert($0.kind.rawValue + "\u{0}" + $0.description).inserted }
    }

    /// ConfigMaps and Secrets marked `immutable: true` keep their data and the flag.
    private static func validateImmutableData(new: JSON, old: JSON, keys: [String], ctx: inout Context) {
        guard old["immutable"]?.boolValue == true else { return }
        if new["immutable"]?.boolValue != true {
            ctx.add(.forbidden(Path("immutable"), "field is immutable when `immutable` is set"))
        }
        for key in keys where !semanticallyEqual(new[key], old[key]) {
            ctx.add(.forbidden(Path(key), "field is immutable when `immutable` is set"))
        }
    }

    /// apimachinery's semantic equality on JSON: absent, null and empty lists are the same
    /// (Go cannot tell nil from empty there), and 3 equals 3.0.
    static func semanticallyEqual(_ a: JSON?, _ b: JSON?) -> Bool {
        normalized(a) == normalized(b)
    }

    static func normalized(_ v: JSON?) -> JSON? {
        guard let v else { return nil }
        switch v {
        case .null: return nil
        case .double(let d) where d.rounded() == d && abs(d) < 9e15: return .int(Int64(d))
        case .array(let a):
            if a.isEmpty { return nil }
            return .array(a.map { normalized($0) ?? .null })
        case .object(let o):
            var out = JSONObject()
            for (k, value) in o {
                if let n = normalized(value) { out[k] = n }
            }
            return .object(out)
        default: return v
        }
    }

    // MARK: Pod update

    static let updatablePodSpecFields = [
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
    ]

    /// ValidatePodUpdate: only images, activeDeadlineSeconds (downwards), added tolerations and
    /// removed scheduling gates may change in a running pod's spec.
    static func validatePodUpdate(new: JSON, old: JSON, ctx: inout Context) {
        validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
        validatePodMetadataAndSpec(new, ctx: &ctx)
        let specPath = Path("spec")
        let newSpec = new["spec"] ?? .object([:])
        let oldSpec = old["spec"] ?? .object([:])

        for key in ["containers", "initContainers"] {
            let n = newSpec[key]?.arrayValue ?? []
            let o = oldSpec[key]?.arrayValue ?? []
            if n.count != o.count {
                ctx.add(.forbidden(specPath.child(key), "pod updates may not add or remove containers"))
                return
            }
            for (i, c) in n.enumerated() {
                let image = c["image"]?.stringValue ?? ""
                if image.isEmpty { ctx.add(.required(specPath.child(key).index(i).child("image"))) }
                if trimSpace(image) != image {
                    ctx.add(.invalid(specPath.child(key).index(i).child("image"), image, "must not have leading or trailing whitespace"))
                }
            }
        }

        let adsPath = specPath.child("activeDeadlineSeconds")
        if let newADS = newSpec["activeDeadlineSeconds"]?.intValue {
            if newADS < 0 || newADS > Int64(Int32.max) {
                ctx.add(.invalid(adsPath, newADS, NameValidation.inclusiveRangeError(0, Int64(Int32.max))))
                return
            }
            if let oldADS = oldSpec["activeDeadlineSeconds"]?.intValue, oldADS < newADS {
                ctx.add(.invalid(adsPath, newADS, "must be less than or equal to previous value"))
                return
            }
        } else if Context.present(oldSpec["activeDeadlineSeconds"]) != nil {
            ctx.add(.invalid(adsPath, .goSyntax("null"), "must not update from a positive integer to nil value"))
        }

        // Tolerations: each old one must still be there (its tolerationSeconds may change).
        let newTolerations = newSpec["tolerations"]?.arrayValue ?? []
        for oldT in oldSpec["tolerations"]?.arrayValue ?? [] {
            let found = newTolerations.contains { t in
                var a = normalized(t) ?? .object([:])
                var b = normalized(oldT) ?? .object([:])
                a["tolerationSeconds"] = nil
                b["tolerationSeconds"] = nil
                return a == b
            }
            if !found {
                ctx.add(.forbidden(specPath.child("tolerations"), "existing toleration can not be modified except its tolerationSeconds"))
                break
            }
        }
        // Scheduling gates: only deletions.
        let oldGates = Set((oldSpec["schedulingGates"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        for (i, g) in (newSpec["schedulingGates"]?.arrayValue ?? []).enumerated() {
            if let name = g["name"]?.stringValue, !oldGates.contains(name) {
                ctx.add(.forbidden(specPath.child("schedulingGates").index(i).child("name"),
                                   "only deletion is allowed, but found new scheduling gate '\(name)'"))
            }
        }

        if semanticallyEqual(newSpec, oldSpec) { return }
        var munged = newSpec
        for key in ["containers", "initContainers"] {
            guard var list = munged[key]?.arrayValue, let oldList = oldSpec[key]?.arrayValue else { continue }
            for i in list.indices where i < oldList.count {
                list[i]["image"] = oldList[i]["image"]
            }
            munged[key] = .array(list)
        }
        munged["activeDeadlineSeconds"] = oldSpec["activeDeadlineSeconds"]
        munged["schedulingGates"] = oldSpec["schedulingGates"]
        munged["tolerations"] = oldSpec["tolerations"]
        if let oldGrace = oldSpec["terminationGracePeriodSeconds"]?.intValue, oldGrace < 0,
           munged["terminationGracePeriodSeconds"]?.intValue == 1 {
            munged["terminationGracePeriodSeconds"] = oldSpec["terminationGracePeriodSeconds"]
        }
        if !semanticallyEqual(munged, oldSpec) {
            let diff = specDiff(old: oldSpec, new: munged)
            ctx.add(.forbidden(specPath, "pod updates may not change fields other than "
                + updatablePodSpecFields.joined(separator: ",") + "\n" + diff))
        }
    }

    /// A short diff of two specs in the spirit of go-cmp's output (upstream appends cmp.Diff).
    /// Only the top-level fields that differ are listed, with JSON values.
    static func specDiff(old: JSON, new: JSON) -> String {
        var lines = ["  core.PodSpec{"]
        var keys: [String] = Array(old.objectValue?.keys ?? [])
        for k in new.objectValue?.keys ?? [] where !keys.contains(k) { keys.append(k) }
        var identical = 0
        for k in keys {
            let o = normalized(old[k])
            let n = normalized(new[k])
            if o == n {
                identical += 1
                continue
            }
            if identical > 0 {
                lines.append("  \t... // \(identical) identical field\(identical == 1 ? "" : "s")")
                identical = 0
            }
            let goName = k.prefix(1).uppercased() + k.dropFirst()
            if let o { lines.append("- \t\(goName): \(o.text),") }
            if let n { lines.append("+ \t\(goName): \(n.text),") }
        }
        if identical > 0 { lines.append("  \t... // \(identical) identical field\(identical == 1 ? "" : "s")") }
        lines.append("  }")
        return lines.joined(separator: "\n") + "\n"
    }
}
