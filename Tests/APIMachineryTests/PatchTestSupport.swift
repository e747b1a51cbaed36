@testable import APIMachinery

/// Parses JSON text in a test; a typo in a literal is a test bug, so crashing is fine here.
func patchJSON(_ text: String) -> JSON {
    do {
        return try JSON.parse(text)
    } catch {
        fatalError("bad JSON literal in test: \(error): \(text)")
    }
}

/// A small slice of the Kubernetes types, with the patch metadata upstream declares for them,
/// so the patch tests do not depend on the full registry.
enum PatchTestTypes {
    static let deployment = Schema.ref("io.k8s.api.apps.v1.Deployment")
    static let service = Schema.ref("io.k8s.api.core.v1.Service")
    static let pod = Schema.ref("io.k8s.api.core.v1.Pod")

    private static func f(_ name: String, _ schema: Schema) -> Field { Field(name, 0, schema) }

    private static let stringList = Schema.array(.string(), .atomic)

    static let registry = TypeRegistry([
        TypeDefinition("io.k8s.api.apps.v1.Deployment", "",
                       gvks: [GroupVersionKind(group: "apps", version: "v1", kind: "Deployment")],
                       fields: [
                           f("apiVersion", .string()), f("kind", .string()),
                           f("metadata", .ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")),
                           f("spec", .ref("io.k8s.api.apps.v1.DeploymentSpec")),
                           f("status", .any),
                       ]),
        TypeDefinition("io.k8s.api.apps.v1.DeploymentSpec", "", fields: [
            f("replicas", .integer()),
            f("selector", .ref("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector")),
            f("template", .ref("io.k8s.api.core.v1.PodTemplateSpec")),
            f("strategy", .ref("io.k8s.api.apps.v1.DeploymentStrategy")),
            f("revisionHistoryLimit", .integer()),
            f("progressDeadlineSeconds", .integer()),
        ]),
        TypeDefinition("io.k8s.api.apps.v1.DeploymentStrategy", "", fields: [
            f("type", .string()),
            f("rollingUpdate", .ref("io.k8s.api.apps.v1.RollingUpdateDeployment")),
        ]),
        TypeDefinition("io.k8s.api.apps.v1.RollingUpdateDeployment", "", fields: [
            f("maxSurge", .intOrString), f("maxUnavailable", .intOrString),
        ]),
        TypeDefinition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector", "", fields: [
            f("matchLabels", .map(.string())),
            f("matchExpressions", .array(.ref("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement"), .atomic)),
        ]),
        TypeDefinition("io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement", "", fields: [
            f("key", .string()), f("operator", .string()), f("values", stringList),
        ]),
        TypeDefinition("io.k8s.api.core.v1.PodTemplateSpec", "", fields: [
            f("metadata", .ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")),
            f("spec", .ref("io.k8s.api.core.v1.PodSpec")),
        ]),
        TypeDefinition("io.k8s.api.core.v1.Pod", "",
                       gvks: [GroupVersionKind(group: "", version: "v1", kind: "Pod")],
                       fields: [
                           f("apiVersion", .string()), f("kind", .string()),
                           f("metadata", .ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")),
                           f("spec", .ref("io.k8s.api.core.v1.PodSpec")),
                           f("status", .any),
                       ]),
        TypeDefinition("io.k8s.api.core.v1.PodSpec", "", fields: [
            f("containers", .array(.ref("io.k8s.api.core.v1.Container"), .map("name"))),
            f("initContainers", .array(.ref("io.k8s.api.core.v1.Container"), .map("name"))),
            f("volumes", .array(.ref("io.k8s.api.core.v1.Volume"),
                                ListSemantics(listType: .map, mapKeys: ["name"], patchMergeKey: "name",
                                              patchStrategy: "merge,retainKeys"))),
            f("restartPolicy", .string()),
            f("nodeSelector", .map(.string())),
            f("terminationGracePeriodSeconds", .integer(format: "int64")),
            f("tolerations", .array(.ref("io.k8s.api.core.v1.Toleration"), .atomic)),
        ]),
        TypeDefinition("io.k8s.api.core.v1.Toleration", "", fields: [
            f("key", .string()), f("operator", .string()), f("effect", .string()),
        ]),
        TypeDefinition("io.k8s.api.core.v1.Container", "", fields: [
            f("name", .string()), f("image", .string()),
            f("command", stringList), f("args", stringList),
            f("ports", .array(.ref("io.k8s.api.core.v1.ContainerPort"),
                              ListSemantics(listType: .map, mapKeys: ["containerPort", "protocol"],
                                            patchMergeKey: "containerPort", patchStrategy: "merge"))),
            f("env", .array(.ref("io.k8s.api.core.v1.EnvVar"), .map("name"))),
            f("resources", .ref("io.k8s.api.core.v1.ResourceRequirements")),
            f("imagePullPolicy", .string()),
        ]),
        TypeDefinition("io.k8s.api.core.v1.ContainerPort", "", fields: [
            f("name", .string()), f("containerPort", .integer()), f("protocol", .string()),
        ]),
        TypeDefinition("io.k8s.api.core.v1.EnvVar", "", fields: [
            f("name", .string()), f("value", .string()), f("valueFrom", .any),
        ]),
        TypeDefinition("io.k8s.api.core.v1.ResourceRequirements", "", fields: [
            f("limits", .map(.quantity)), f("requests", .map(.quantity)),
        ]),
        TypeDefinition("io.k8s.api.core.v1.Volume", "", fields: [
            f("name", .string()),
            f("configMap", .ref("io.k8s.api.core.v1.ConfigMapVolumeSource")),
            f("emptyDir", .ref("io.k8s.api.core.v1.EmptyDirVolumeSource")),
            f("secret", .ref("io.k8s.api.core.v1.SecretVolumeSource")),
        ]),
        TypeDefinition("io.k8s.api.core.v1.ConfigMapVolumeSource", "", fields: [f("name", .string())]),
        TypeDefinition("io.k8s.api.core.v1.EmptyDirVolumeSource", "", fields: [
            f("medium", .string()), f("sizeLimit", .quantity),
        ]),
        TypeDefinition("io.k8s.api.core.v1.SecretVolumeSource", "", fields: [f("secretName", .string())]),
        TypeDefinition("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "", fields: [
            f("name", .string()), f("namespace", .string()), f("uid", .string()),
            f("resourceVersion", .string()), f("generation", .integer(format: "int64")),
            f("creationTimestamp", .time),
            f("labels", .map(.string())), f("annotations", .map(.string())),
            f("finalizers", .array(.string(), .mergedSet)),
            f("ownerReferences", .array(.ref("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference"), .map("uid"))),
        ]),
        TypeDefinition("io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference", "", fields: [
            f("apiVersion", .string()), f("kind", .string()), f("name", .string()), f("uid", .string()),
            f("controller", .boolean), f("blockOwnerDeletion", .boolean),
        ]),
        TypeDefinition("io.k8s.api.core.v1.Service", "",
                       gvks: [GroupVersionKind(group: "", version: "v1", kind: "Service")],
                       fields: [
                           f("apiVersion", .string()), f("kind", .string()),
                           f("metadata", .ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta")),
                           f("spec", .ref("io.k8s.api.core.v1.ServiceSpec")),
                           f("status", .any),
                       ]),
        TypeDefinition("io.k8s.api.core.v1.ServiceSpec", "", fields: [
            f("ports", .array(.ref("io.k8s.api.core.v1.ServicePort"), .map("port", "protocol"))),
            f("selector", .map(.string())),
            f("type", .string()), f("clusterIP", .string()), f("clusterIPs", stringList),
            f("sessionAffinity", .string()),
        ]),
        TypeDefinition("io.k8s.api.core.v1.ServicePort", "", fields: [
            f("name", .string()), f("protocol", .string()), f("port", .integer()),
            f("targetPort", .intOrString), f("nodePort", .integer()),
        ]),
    ])

    /// What `kubectl create deployment nginx --image=nginx` leaves on a real cluster, trimmed.
    static let nginxDeployment = patchJSON("""
    {"apiVersion":"apps/v1","kind":"Deployment",
     "metadata":{"name":"nginx","namespace":"default","labels":{"app":"nginx"},
                 "annotations":{"deployment.kubernetes.io/revision":"2"},"generation":3},
     "spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},
             "template":{"metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},
                         "spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}],
                                 "restartPolicy":"Always"}},
             "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}},
             "revisionHistoryLimit":10,"progressDeadlineSeconds":600},
     "status":{"replicas":1}}
    """)

    /// The Service `kubectl apply -f svc.yaml` created in transcript 15.
    static let webService = patchJSON("""
    {"apiVersion":"v1","kind":"Service",
     "metadata":{"name":"web","namespace":"default","labels":{"app":"web"},
                 "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\\n"}},
     "spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":80,"nodePort":31234}],
             "selector":{"app":"nginx"},"type":"NodePort","clusterIP":"10.96.0.20"}}
    """)
}
