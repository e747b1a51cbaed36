import Collections

extension Validation {
    static let fieldImmutable = "field is immutable"
    static let isNegativeErrorMsg = "must be greater than or equal to 0"
    static let totalAnnotationSizeLimit = 256 * 1024

    /// apimachinery ValidateObjectMeta (plus, for core and apps kinds, the kube finalizer-name check).
    static func validateObjectMeta(_ obj: JSON, requiresNamespace: Bool, rule: NameValidation.NameRule,
                                   kubeFinalizerCheck: Bool = true, ctx: inout Context) {
        let p = Path("metadata")
        guard Context.present(obj["metadata"]) != nil else {
            ctx.add(.required(p.child("name"), "name or generateName is required"))
            if requiresNamespace { ctx.add(.required(p.child("namespace"))) }
            return
        }
        guard let meta = ctx.object(obj["metadata"], p) else { return }

        let generateName = ctx.string(meta["generateName"], p.child("generateName")) ?? ""
        if !generateName.isEmpty {
            for msg in rule.check(generateName, prefix: true) {
                ctx.add(.invalid(p.child("generateName"), generateName, msg))
            }
        }
        let name = ctx.string(meta["name"], p.child("name")) ?? ""
        if name.isEmpty {
            // The store derives a name from generateName before validating; tolerate a caller
            // that validates first.
            if generateName.isEmpty {
                ctx.add(.required(p.child("name"), "name or generateName is required"))
            }
        } else {
            for msg in rule.check(name, prefix: false) {
                ctx.add(.invalid(p.child("name"), name, msg))
            }
        }

        let namespace = ctx.string(meta["namespace"], p.child("namespace")) ?? ""
        if requiresNamespace {
            if namespace.isEmpty {
                ctx.add(.required(p.child("namespace")))
            } else {
                for msg in NameValidation.NameRule.dns1123Label.check(namespace, prefix: false) {
                    ctx.add(.invalid(p.child("namespace"), namespace, msg))
                }
            }
        } else if !namespace.isEmpty {
            ctx.add(.forbidden(p.child("namespace"), "not allowed on this type"))
        }

        if let g = ctx.int(meta["generation"], p.child("generation")), g < 0 {
            ctx.add(.invalid(p.child("generation"), g, isNegativeErrorMsg))
        }
        validateLabels(meta["labels"], p.child("labels"), ctx: &ctx)
        validateAnnotations(meta["annotations"], p.child("annotations"), ctx: &ctx)
        validateOwnerReferences(meta["ownerReferences"], p.child("ownerReferences"), ctx: &ctx)
        let finalizers = validateFinalizers(meta["finalizers"], p.child("finalizers"), ctx: &ctx)
        if kubeFinalizerCheck {
            for (i, f) in finalizers.enumerated() {
                validateKubeFinalizerName(f, p.child("finalizers").index(i), ctx: &ctx)
            }
        }
        _ = ctx.array(meta["managedFields"], p.child("managedFields"))
    }

    /// ValidateLabels: keys must be qualified names, values label values; errors name the map, not the key.
    static func validateLabels(_ v: JSON?, _ p: Path, ctx: inout Context) {
        guard let labels = ctx.stringMap(v, p) else { return }
        for (k, value) in labels {
            for msg in NameValidation.isQualifiedName(k) {
                ctx.add(.invalid(p, k, msg))
            }
            for msg in NameValidation.isValidLabelValue(value) {
                ctx.add(.invalid(p, value, msg))
            }
        }
    }

    /// ValidateAnnotations: case-insensitive qualified-name keys and a 256 KiB total.
    static func validateAnnotations(_ v: JSON?, _ p: Path, ctx: inout Context) {
        guard let annotations = ctx.stringMap(v, p) else { return }
        var total = 0
        for (k, value) in annotations {
            for msg in NameValidation.isQualifiedName(k.lowercased()) {
                ctx.add(.invalid(p, k, msg))
            }
            total += k.utf8.count + value.utf8.count
        }
        if total > totalAnnotationSizeLimit {
            ctx.add(.tooLong(p, totalAnnotationSizeLimit))
        }
    }

    static func validateOwnerReferences(_ v: JSON?, _ p: Path, ctx: inout Context) {
        var firstController: String?
        for (i, ref) in ctx.objects(v, p) {
            let ip = p.index(i)
            let apiVersion = ctx.string(ref["apiVersion"], ip.child("apiVersion")) ?? ""
            let kind = ctx.string(ref["kind"], ip.child("kind")) ?? ""
            let name = ctx.string(ref["name"], ip.child("name")) ?? ""
            let uid = ctx.string(ref["uid"], ip.child("uid")) ?? ""
            let controller = ctx.bool(ref["controller"], ip.child("controller")) ?? false
            _ = ctx.bool(ref["blockOwnerDeletion"], ip.child("blockOwnerDeletion"))
            let gv = apiVersion.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            let version = gv.last ?? ""
            let group = gv.count > 1 ? gv[0] : ""
            // Errors name the list, not the element, as upstream does.
            if version.isEmpty { ctx.add(.invalid(p.child("apiVersion"), apiVersion, "version must not be empty")) }
            if kind.isEmpty { ctx.add(.invalid(p.child("kind"), kind, "kind must not be empty")) }
            if name.isEmpty { ctx.add(.invalid(p.child("name"), name, "name must not be empty")) }
            if uid.isEmpty { ctx.add(.invalid(p.child("uid"), uid, "uid must not be empty")) }
            if group.isEmpty && version == "v1" && kind == "Event" {
                ctx.add(.invalid(p, .goSyntax(ref.text), "/v1, Kind=Event is disallowed from being an owner"))
            }
            if controller {
                let current = kind + "/" + name
                if let first = firstController {
                    ctx.add(.invalid(p, .goSyntax(v?.text ?? "[]"),
                                     "Only one reference can have Controller set to true. Found \"true\" in references for \(first) and \(current)"))
                } else {
                    firstController = current
                }
            }
        }
    }

    /// ValidateFinalizers; returns the finalizer names for the kube-specific check.
    @discardableResult
    static func validateFinalizers(_ v: JSON?, _ p: Path, ctx: inout Context) -> [String] {
        guard let finalizers = ctx.stringList(v, p) else { return [] }
        for f in finalizers {
            for msg in NameValidation.isQualifiedName(f) {
                ctx.add(.invalid(p, f, msg))
            }
        }
        if finalizers.contains("orphan") && finalizers.contains("foregroundDeletion") {
            ctx.add(.invalid(p, .goSyntax(GoSyntax.stringSlice(finalizers)), "finalizer orphan and foregroundDeletion cannot be both set"))
        }
        return finalizers
    }

    static func validateKubeFinalizerName(_ name: String, _ p: Path, ctx: inout Context) {
        let standard: Set<String> = ["kubernetes", "orphan", "foregroundDeletion"]
        if !name.contains("/") && !standard.contains(name) {
            ctx.add(.invalid(p, name, "name is neither a standard finalizer name nor is it fully qualified"))
        }
    }

    /// ValidateObjectMetaUpdate. The store has already carried uid, creationTimestamp and the
    /// deletion fields over from the stored object (see `Defaults.applyForUpdate`).
    static func validateObjectMetaUpdate(new: JSON, old: JSON, kubeFinalizerCheck: Bool = true, ctx: inout Context) {
        let p = Path("metadata")
        let newMeta = ctx.object(new["metadata"], p) ?? .object([:])
        let oldMeta = old["metadata"] ?? .object([:])

        if Context.present(oldMeta["deletionTimestamp"]) != nil {
            let newF = Set(newMeta["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            let oldF = Set(oldMeta["finalizers"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            let extra = newF.subtracting(oldF).sorted()
            if !extra.isEmpty {
                ctx.add(.forbidden(p.child("finalizers"),
                                   "no new finalizers can be added if the object is being deleted, found new finalizers \(GoSyntax.stringSlice(extra))"))
            }
        }
        let newGen = ctx.int(newMeta["generation"], p.child("generation")) ?? 0
        let oldGen = oldMeta["generation"]?.intValue ?? 0
        if newGen < oldGen {
            ctx.add(.invalid(p.child("generation"), newGen, "must not be decremented"))
        }
        for key in ["name", "namespace", "uid"] {
            let n = newMeta[key]?.stringValue ?? ""
            let o = oldMeta[key]?.stringValue ?? ""
            if n != o { ctx.add(.invalid(p.child(key), n, fieldImmutable)) }
        }
        for key in ["creationTimestamp", "deletionTimestamp"] {
            let n = Context.present(newMeta[key])
            let o = Context.present(oldMeta[key])
            if n != o {
                ctx.add(.invalid(p.child(key), .goSyntax(goTime(n, pointer: key == "deletionTimestamp")), fieldImmutable))
            }
        }
        let nGrace = Context.present(newMeta["deletionGracePeriodSeconds"])
        let oGrace = Context.present(oldMeta["deletionGracePeriodSeconds"])
        if nGrace?.intValue != oGrace?.intValue {
            ctx.add(.invalid(p.child("deletionGracePeriodSeconds"), nGrace?.intValue.map { .int($0) } ?? .goSyntax("null"), fieldImmutable))
        }
        validateLabels(newMeta["labels"], p.child("labels"), ctx: &ctx)
        validateAnnotations(newMeta["annotations"], p.child("annotations"), ctx: &ctx)
        validateOwnerReferences(newMeta["ownerReferences"], p.child("ownerReferences"), ctx: &ctx)
        if kubeFinalizerCheck, let finalizers = newMeta["finalizers"]?.arrayValue {
            for (i, f) in finalizers.enumerated() {
                if let s = f.stringValue { validateKubeFinalizerName(s, p.child("finalizers").index(i), ctx: &ctx) }
            }
        }
    }

    /// How Go prints a metav1.Time: via time.Time's String(), e.g. "2024-05-01 10:00:00 +0000 UTC".
    static func goTime(_ v: JSON?, pointer: Bool) -> String {
        guard let s = v?.stringValue else { return pointer ? "null" : "0001-01-01 00:00:00 +0000 UTC" }
        let bytes = Array(s.utf8)
        if bytes.count == 20, bytes[10] == UInt8(ascii: "T"), bytes[19] == UInt8(ascii: "Z") {
            return String(decoding: bytes[0..<10], as: UTF8.self) + " " + String(decoding: bytes[11..<19], as: UTF8.self) + " +0000 UTC"
        }
        return s
    }

    /// ValidateLabelSelector (metav1), strict about label values as Deployments and ReplicaSets are.
    static func validateLabelSelector(_ sel: JSON, _ p: Path, ctx: inout Context) {
        validateLabels(sel["matchLabels"], p.child("matchLabels"), ctx: &ctx)
        for (i, expr) in ctx.objects(sel["matchExpressions"], p.child("matchExpressions")) {
            let ep = p.child("matchExpressions").index(i)
            let op = ctx.string(expr["operator"], ep.child("operator")) ?? ""
            let values = ctx.stringList(expr["values"], ep.child("values")) ?? []
            switch op {
            case "In", "NotIn":
                if values.isEmpty {
                    ctx.add(.required(ep.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
                }
            case "Exists", "DoesNotExist":
                if !values.isEmpty {
                    ctx.add(.forbidden(ep.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
                }
            default:
                ctx.add(.invalid(ep.child("operator"), op, "not a valid selector operator"))
            }
            let key = ctx.string(expr["key"], ep.child("key")) ?? ""
            for msg in NameValidation.isQualifiedName(key) {
                ctx.add(.invalid(ep.child("key"), key, msg))
            }
            for (vi, value) in values.enumerated() {
                for msg in NameValidation.isValidLabelValue(value) {
                    ctx.add(.invalid(ep.child("values").index(vi), value, msg))
                }
            }
        }
    }

    /// The outcome of metav1.LabelSelectorAsSelector on a selector.
    enum Selector {
        /// A nil selector: matches nothing.
        case nothing
        /// An empty selector: matches everything.
        case everything
        case requirements(matchLabels: [(String, String)], expressions: [(key: String, op: String, values: [String])])
        /// The selector would not convert; upstream reports "invalid label selector".
        case invalid

        init(_ json: JSON?) {
            guard let json = Context.present(json) else { self = .nothing; return }
            guard json.objectValue != nil else { self = .invalid; return }
            var labels: [(String, String)] = []
            if let ml = Context.present(json["matchLabels"]) {
                guard let o = ml.objectValue else { self = .invalid; return }
                for (k, v) in o {
                    guard let s = v.stringValue, NameValidation.isQualifiedName(k).isEmpty,
                          NameValidation.isValidLabelValue(s).isEmpty else { self = .invalid; return }
                    labels.append((k, s))
                }
            }
            var exprs: [(key: String, op: String, values: [String])] = []
            if let me = Context.present(json["matchExpressions"]) {
                guard let list = me.arrayValue else { self = .invalid; return }
                for e in list {
                    guard let key = e["key"]?.stringValue, let op = e["operator"]?.stringValue,
                          NameValidation.isQualifiedName(key).isEmpty else { self = .invalid; return }
                    let valuesJSON = Context.present(e["values"])
                    if valuesJSON != nil && valuesJSON?.arrayValue == nil { self = .invalid; return }
                    let values = valuesJSON?.arrayValue?.compactMap(\.stringValue) ?? []
                    if values.count != (valuesJSON?.arrayValue?.count ?? 0) { self = .invalid; return }
                    switch op {
                    case "In", "NotIn": if values.isEmpty { self = .invalid; return }
                    case "Exists", "DoesNotExist": if !values.isEmpty { self = .invalid; return }
                    default: self = .invalid; return
                    }
                    if values.contains(where: { !NameValidation.isValidLabelValue($0).isEmpty }) { self = .invalid; return }
                    exprs.append((key, op, values))
                }
            }
            if labels.isEmpty && exprs.isEmpty { self = .everything; return }
            self = .requirements(matchLabels: labels, expressions: exprs)
        }

        var isEmpty: Bool {
            if case .everything = self { return true }
            return false
        }

        func matches(_ labels: [String: String]) -> Bool {
            switch self {
            case .nothing, .invalid: return false
            case .everything: return true
            case .requirements(let ml, let exprs):
                for (k, v) in ml where labels[k] != v { return false }
                for e in exprs {
                    let value = labels[e.key]
                    switch e.op {
                    case "In": if value == nil || !e.values.contains(value ?? "") { return false }
                    case "NotIn": if let value, e.values.contains(value) { return false }
                    case "Exists": if value == nil { return false }
                    case "DoesNotExist": if value != nil { return false }
                    default: return false
                    }
                }
                return true
            }
        }
    }
}
