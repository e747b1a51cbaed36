import Testing
@testable import APIMachinery

@Suite("Deployment and ReplicaSet validation")
struct ValidationWorkloadTests {
    typealias S = ValidationTestSupport

    static let cases: [(String, @Sendable (inout JSON) -> Void, [String])] = [
        ("valid", { _ in }, []),
        ("selector does not match the template", { $0[path: "spec", "template", "metadata", "labels"] = ["app": "api", "tier": "x"] },
         ["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\", \"tier\":\"x\"}: `selector` does not match template `labels`"]),
        ("no selector", { $0[path: "spec", "selector"] = nil },
         ["spec.selector: Required value",
          "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"]),
        ("empty selector", { $0[path: "spec", "selector"] = [:] },
         ["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"]),
        ("selector expressions", { $0[path: "spec", "selector"] = ["matchExpressions": [["key": "app", "operator": "In", "values": ["web", "api"]]]] }, []),
        ("bad selector operator", { $0[path: "spec", "selector"] = ["matchExpressions": [["key": "app", "operator": "Like", "values": ["web"]]]] },
         ["spec.selector.matchExpressions[0].operator: Invalid value: \"Like\": not a valid selector operator",
          "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"Like\", Values:[]string{\"web\"}}}}: invalid label selector"]),
        ("negative replicas", { $0[path: "spec", "replicas"] = -1 },
         ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
        ("template restart policy", { $0[path: "spec", "template", "spec", "restartPolicy"] = "Never" },
         ["spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""]),
        ("strategy type", { $0[path: "spec", "strategy"] = ["type": "BlueGreen"] },
         ["spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"BlueGreen\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\""]),
        ("rolling update values", { $0[path: "spec", "strategy", "rollingUpdate"] = ["maxUnavailable": "0%", "maxSurge": 0] },
         ["spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"0%\"}: may not be 0 when `maxSurge` is 0"]),
        ("recreate with rolling update", { $0[path: "spec", "strategy", "type"] = "Recreate" },
         ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
        ("progress deadline", { $0[path: "spec", "minReadySeconds"] = 700 },
         ["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"]),
        ("template container", { $0[path: "spec", "template", "spec", "containers"] = [["name": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"]] },
         ["spec.template.spec.containers[0].image: Required value"]),
    ]

    @Test(arguments: cases)
    func deployment(name: String, edit: @Sendable (inout JSON) -> Void, expected: [String]) throws {
        var d = try S.created("Deployment", "apps", S.minimalDeployment)
        edit(&d)
        #expect(S.createErrors("Deployment", "apps", d) == expected, "\(name)")
    }

    @Test func replicaSetSharesTheTemplateRules() throws {
        let rs = try S.created("ReplicaSet", "apps", #"{"metadata":{"name":"web-abc","namespace":"default"},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"api"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}}}}"#)
        #expect(S.createErrors("ReplicaSet", "apps", rs) == [
            "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"api\"}: `selector` does not match template `labels`",
        ])
    }
}
