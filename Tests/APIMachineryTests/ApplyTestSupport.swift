import APIMachinery
import Testing

/// A small slice of the Kubernetes types, enough to exercise server-side apply: Service and
/// Deployment with the list types and keys the real API declares.
enum ApplyFixtures {
    static let core = "io.k8s.api.core.v1."
    static let apps = "io.k8s.api.apps.v1."
    static let meta = "io.k8s.apimachinery.pkg.apis.meta.v1."

    static let service: Schema = .ref(core + "Service")
    static let deployment: Schema = .ref(apps + "Deployment")

    static let registry = TypeRegistry([
        TypeDefinition(meta + "ObjectMeta", "", fields: [
            Field("name", 1, .string()),
            Field("generateName", 2, .string()),
            Field("namespace", 3, .string()),
            Field("uid", 5, .string()),
            Field("resourceVersion", 6, .string()),
            Field("generation", 7, .integer(format: "int64")),
            Field("creationTimestamp", 8, .time),
            Field("deletionTimestamp", 9, .time),
            Field("labels", 11, .map(.string())),
            Field("annotations", 12, .map(.string())),
            Field("ownerReferences", 13, .array(.ref(meta + "OwnerReference"), .map("uid"))),
            Field("finalizers", 14, .array(.string(), .mergedSet)),
            Field("managedFields", 17, .array(.any)),
        ]),
        TypeDefinition(meta + "OwnerReference", "", fields: [
            Field("apiVersion", 5, .string()), Field("kind", 1, .string()),
            Field("name", 3, .string()), Field("uid", 4, .string()), Field("controller", 6, .boolean),
        ]),
        TypeDefinition(meta + "LabelSelector", "", fields: [
            Field("matchLabels", 1, .map(.string())),
            Field("matchExpressions", 2, .array(.any)),
        ]),
        TypeDefinition(core + "Service", "", gvks: [GroupVersionKind(group: "", version: "v1", kind: "Service")], fields: [
            Field("apiVersion", 0, .string()), Field("kind", 0, .string()),
            Field("metadata", 1, .ref(meta + "ObjectMeta")),
            Field("spec", 2, .ref(core + "ServiceSpec")),
            Field("status", 3, .ref(core + "ServiceStatus")),
        ]),
        TypeDefinition(core + "ServiceSpec", "", fields: [
            Field("ports", 1, .array(.ref(core + "ServicePort"), .map("port", "protocol", mergeKey: "port"))),
            Field("selector", 2, .map(.string())),
            Field("clusterIP", 3, .string()),
            Field("clusterIPs", 18, .array(.string())),
            Field("type", 4, .string()),
            Field("sessionAffinity", 7, .string()),
            Field("externalTrafficPolicy", 11, .string()),
        ]),
        TypeDefinition(core + "ServicePort", "", fields: [
            Field("name", 1, .string()), Field("protocol", 2, .string()), Field("port", 3, .integer(), required: true),
            Field("targetPort", 4, .intOrString), Field("nodePort", 5, .integer()),
        ]),
        TypeDefinition(core + "ServiceStatus", "", fields: [
            Field("loadBalancer", 1, .any),
        ]),
        TypeDefinition(apps + "Deployment", "", gvks: [GroupVersionKind(group: "apps", version: "v1", kind: "Deployment")], fields: [
            Field("apiVersion", 0, .string()), Field("kind", 0, .string()),
            Field("metadata", 1, .ref(meta + "ObjectMeta")),
            Field("spec", 2, .ref(apps + "DeploymentSpec")),
            Field("status", 3, .ref(apps + "DeploymentStatus")),
        ]),
        TypeDefinition(apps + "DeploymentSpec", "", fields: [
            Field("replicas", 1, .integer()),
            Field("selector", 2, .ref(meta + "LabelSelector"), required: true),
            Field("template", 3, .ref(core + "PodTemplateSpec"), required: true),
            Field("strategy", 4, .ref(apps + "DeploymentStrategy")),
            Field("revisionHistoryLimit", 6, .integer()),
            Field("progressDeadlineSeconds", 9, .integer()),
        ]),
        TypeDefinition(apps + "DeploymentStrategy", "", fields: [
            Field("type", 1, .string()),
            Field("rollingUpdate", 2, .ref(apps + "RollingUpdateDeployment")),
        ]),
        TypeDefinition(apps + "RollingUpdateDeployment", "", fields: [
            Field("maxUnavailable", 1, .intOrString), Field("maxSurge", 2, .intOrString),
        ]),
        TypeDefinition(apps + "DeploymentStatus", "", fields: [
            Field("replicas", 2, .integer()), Field("readyReplicas", 7, .integer()),
            Field("conditions", 6, .array(.any, .map("type"))),
        ]),
        TypeDefinition(core + "PodTemplateSpec", "", fields: [
            Field("metadata", 1, .ref(meta + "ObjectMeta")),
            Field("spec", 2, .ref(core + "PodSpec")),
        ]),
        TypeDefinition(core + "PodSpec", "", fields: [
            Field("containers", 2, .array(.ref(core + "Container"), .map("name")), required: true),
            Field("restartPolicy", 3, .string()),
            Field("nodeSelector", 7, .map(.string())),
            Field("tolerations", 22, .array(.any)),
        ]),
        TypeDefinition(core + "Container", "", fields: [
            Field("name", 1, .string(), required: true), Field("image", 2, .string()),
            Field("command", 3, .array(.string())), Field("args", 4, .array(.string())),
            Field("ports", 6, .array(.ref(core + "ContainerPort"), .map("containerPort", "protocol", mergeKey: "containerPort"))),
            Field("env", 7, .array(.ref(core + "EnvVar"), .map("name"))),
            Field("resources", 8, .ref(core + "ResourceRequirements")),
            Field("imagePullPolicy", 14, .string()),
        ]),
        TypeDefinition(core + "ContainerPort", "", fields: [
            Field("name", 1, .string()), Field("hostPort", 2, .integer()),
            Field("containerPort", 3, .integer(), required: true), Field("protocol", 4, .string()),
        ]),
        TypeDefinition(core + "EnvVar", "", fields: [
            Field("name", 1, .string()), Field("value", 2, .string()),
        ]),
        TypeDefinition(core + "ResourceRequirements", "", fields: [
            Field("limits", 1, .map(.quantity)), Field("requests", 2, .map(.quantity)),
        ]),
    ])

    /// Parses JSON test text; a broken fixture fails the test that uses it.
    static func json(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> JSON {
        do {
            return try JSON.parse(text)
        } catch {
            Issue.record("fixture is not JSON: \(error) in \(text)", sourceLocation: sourceLocation)
            return .null
        }
    }

    static let t0 = "2026-11-30T03:00:00Z"
    static let t1 = "2026-11-30T03:01:00Z"
    static let t2 = "2026-11-30T03:02:00Z"
    static let t3 = "2026-11-30T03:03:00Z"
}

extension JSON {
    /// The managedFields entry of `manager` with `operation`, if any.
    func ssaEntry(_ manager: String, _ operation: String = "Apply") -> JSON? {
        self[path: "metadata", "managedFields"]?.arrayValue?.first {
            $0["manager"]?.stringValue == manager && $0["operation"]?.stringValue == operation
        }
    }

    /// The fieldsV1 text of that entry.
    func ssaOwned(_ manager: String, _ operation: String = "Apply") -> String? {
        ssaEntry(manager, operation)?["fieldsV1"]?.text
    }

    var ssaManagers: [String] {
        self[path: "metadata", "managedFields"]?.arrayValue?.compactMap {
            guard let m = $0["manager"]?.stringValue, let op = $0["operation"]?.stringValue else { return nil }
            return "\(m)/\(op)"
        } ?? []
    }
}
