import Collections

// Deployment and ReplicaSet validation after pkg/apis/apps/validation, plus the apps/v1
// selector immutability that the registry strategies add on update.

extension Validation {
    /// ValidateDeployment (create) or the spec half of ValidateDeploymentUpdate.
    static func validateDeploymentSpec(_ obj: JSON, ctx: inout Context) {
        let p = Path("spec")
        let spec = ctx.object(obj["spec"], p) ?? .object([:])
        let replicas = ctx.int(spec["replicas"], p.child("replicas")) ?? 0
        if replicas < 0 { ctx.add(.invalid(p.child("replicas"), replicas, isNegativeErrorMsg)) }
        validateSelectorAndTemplate(spec, p, workload: "deployment", ctx: &ctx)

        let strategyPath = p.child("strategy")
        let strategy = ctx.object(spec["strategy"], strategyPath) ?? .object([:])
        let type = ctx.string(strategy["type"], strategyPath.child("type")) ?? ""
        let rolling = ctx.object(strategy["rollingUpdate"], strategyPath.child("rollingUpdate"))
        switch type {
        case "Recreate":
            if rolling != nil {
                ctx.add(.forbidden(strategyPath.child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
            }
        case "RollingUpdate":
            if let rolling {
                validateRollingUpdateDeployment(rolling, strategyPath.child("rollingUpdate"), ctx: &ctx)
            } else {
                ctx.add(.required(strategyPath.child("rollingUpdate"), "this should be defaulted and never be nil"))
            }
        default:
            let ru = rolling == nil ? "(*apps.RollingUpdateDeployment)(nil)" : "(*apps.RollingUpdateDeployment)(0xc000a1e000)"
            ctx.add(.notSupported(strategyPath, .goSyntax("apps.DeploymentStrategy{Type:\(GoSyntax.quote(type)), RollingUpdate:\(ru)}"),
                                  ["Recreate", "RollingUpdate"]))
        }
        let minReady = ctx.int(spec["minReadySeconds"], p.child("minReadySeconds")) ?? 0
        if minReady < 0 { ctx.add(.invalid(p.child("minReadySeconds"), minReady, isNegativeErrorMsg)) }
        if let rhl = ctx.int(spec["revisionHistoryLimit"], p.child("revisionHistoryLimit")), rhl < 0 {
            ctx.add(.invalid(p.child("revisionHistoryLimit"), rhl, isNegativeErrorMsg))
        }
        if let pds = ctx.int(spec["progressDeadlineSeconds"], p.child("progressDeadlineSeconds")) {
            if pds < 0 { ctx.add(.invalid(p.child("progressDeadlineSeconds"), pds, isNegativeErrorMsg)) }
            if pds <= minReady {
                ctx.add(.invalid(p.child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
            }
        }
        _ = ctx.bool(spec["paused"], p.child("paused"))
    }

    /// ValidateReplicaSetSpec.
    static func validateReplicaSetSpec(_ obj: JSON, ctx: inout Context) {
        let p = Path("spec")
        let spec = ctx.object(obj["spec"], p) ?? .object([:])
        let replicas = ctx.int(spec["replicas"], p.child("replicas")) ?? 0
        if replicas < 0 { ctx.add(.invalid(p.child("replicas"), replicas, isNegativeErrorMsg)) }
        let minReady = ctx.int(spec["minReadySeconds"], p.child("minReadySeconds")) ?? 0
        if minReady < 0 { ctx.add(.invalid(p.child("minReadySeconds"), minReady, isNegativeErrorMsg)) }
        // ReplicaSets reuse the Deployment wording for an empty selector, as upstream does.
        validateSelectorAndTemplate(spec, p, workload: "deployment", ctx: &ctx)
    }

    /// Selector checks and ValidatePodTemplateSpecForReplicaSet, shared by both workloads.
    private static func validateSelectorAndTemplate(_ spec: JSON, _ p: Path, workload: String, ctx: inout Context) {
        let selectorPath = p.child("selector")
        let selectorJSON = Context.present(spec["selector"])
        if let selectorJSON {
            if let sel = ctx.object(selectorJSON, selectorPath) {
                validateLabelSelector(sel, selectorPath, ctx: &ctx)
                let ml = sel["matchLabels"]?.objectValue?.count ?? 0
                let me = sel["matchExpressions"]?.arrayValue?.count ?? 0
                if ml + me == 0 {
                    ctx.add(.invalid(selectorPath, .goSyntax(GoSyntax.labelSelector(sel)), "empty selector is invalid for \(workload)"))
                }
            }
        } else {
            ctx.add(.required(selectorPath))
        }
        let selector = Selector(selectorJSON)
        if case .invalid = selector {
            ctx.add(.invalid(selectorPath, .goSyntax(GoSyntax.labelSelector(selectorJSON)), "invalid label selector"))
            return
        }
        let templatePath = p.child("template")
        let template = ctx.object(spec["template"], templatePath) ?? .object([:])
        let labelsJSON = template["metadata"]?["labels"]
        if !selector.isEmpty {
            var labels: [String: String] = [:]
            for (k, v) in labelsJSON?.objectValue ?? [:] { if let s = v.stringValue { labels[k] = s } }
            if !selector.matches(labels) {
                ctx.add(.invalid(templatePath.child("metadata", "labels"), .goSyntax(GoSyntax.stringMap(GoSyntax.pairs(labelsJSON))),
                                 "`selector` does not match template `labels`"))
            }
        }
        validatePodTemplateSpec(template, templatePath, ctx: &ctx)
        let restartPolicy = template["spec"]?["restartPolicy"]?.stringValue ?? ""
        if restartPolicy != "Always" {
            ctx.add(.notSupported(templatePath.child("spec", "restartPolicy"), .string(restartPolicy), ["Always"]))
        }
        if Context.present(template["spec"]?["activeDeadlineSeconds"]) != nil {
            let owner = workload == "deployment" ? "ReplicaSet" : workload
            ctx.add(.forbidden(templatePath.child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in \(owner) is not Supported"))
        }
    }

    private static func validateRollingUpdateDeployment(_ rolling: JSON, _ p: Path, ctx: inout Context) {
        let maxUnavailable = Context.present(rolling["maxUnavailable"])
        let maxSurge = Context.present(rolling["maxSurge"])
        validatePositiveIntOrPercent(maxUnavailable, p.child("maxUnavailable"), ctx: &ctx)
        validatePositiveIntOrPercent(maxSurge, p.child("maxSurge"), ctx: &ctx)
        if intOrPercentValue(maxUnavailable) == 0 && intOrPercentValue(maxSurge) == 0 {
            ctx.add(.invalid(p.child("maxUnavailable"), .goSyntax(GoSyntax.intOrString(maxUnavailable)), "may not be 0 when `maxSurge` is 0"))
        }
        if let pct = percentValue(maxUnavailable), pct > 100 {
            ctx.add(.invalid(p.child("maxUnavailable"), .goSyntax(GoSyntax.intOrString(maxUnavailable)), "must not be greater than 100%"))
        }
    }

    private static func validatePositiveIntOrPercent(_ v: JSON?, _ p: Path, ctx: inout Context) {
        guard let v else { return }
        if let s = v.stringValue {
            for msg in NameValidation.isValidPercent(s) { ctx.add(.invalid(p, .goSyntax(GoSyntax.intOrString(v)), msg)) }
        } else if let i = v.intValue {
            if i < 0 { ctx.add(.invalid(p, i, isNegativeErrorMsg)) }
        } else {
            ctx.add(.wrongType(p, expected: "integer or string", actual: v))
        }
    }

    private static func percentValue(_ v: JSON?) -> Int64? {
        guard let s = v?.stringValue, NameValidation.isValidPercent(s).isEmpty else { return nil }
        return Int64(s.dropLast()) ?? Int64.max
    }

    private static func intOrPercentValue(_ v: JSON?) -> Int64 {
        if let pct = percentValue(v) { return pct }
        if let i = v?.intValue { return i }
        // IntOrString.IntValue() of a non-percent string parses it as an integer.
        return v?.stringValue.flatMap { Int64($0) } ?? 0
    }

    /// apps/v1 selectors may not change after creation.
    static func validateSelectorImmutable(new: JSON, old: JSON, ctx: inout Context) {
        let n = Context.present(new["spec"]?["selector"])
        let o = Context.present(old["spec"]?["selector"])
        if !semanticallyEqual(n, o) {
            ctx.add(.invalid(Path("spec", "selector"), .goSyntax(n.map { GoSyntax.labelSelector($0) } ?? "null"), fieldImmutable))
        }
    }
}
