import APIMachinery
import APIServer

/// A small registry in the shape of the real one (Pod, Service, Deployment, ObjectMeta ...),
/// so the OpenAPI tests do not depend on the full `TypeRegistry.kubernetes`.
enum OpenAPIFixtures {
    static let core = "io.k8s.api.core.v1."
    static let apps = "io.k8s.api.apps.v1."
    static let meta = "io.k8s.apimachinery.pkg.apis.meta.v1."

    static func typeMeta() -> [Field] {
        [
            Field("apiVersion", 0, .string(), "Schema version of this object."),
            Field("kind", 0, .string(), "Kind of this object."),
        ]
    }

    static let definitions: [TypeDefinition] = [
        TypeDefinition(meta + "ObjectMeta", "Fixture: metadata every object has.", fields: [
            Field("annotations", 12, .map(.string()), "Fixture: free-form notes."),
            Field("creationTimestamp", 8, .time, "Fixture: when the object was created."),
            Field("finalizers", 14, .array(.string(), .mergedSet), "Fixture: blockers of deletion."),
            Field("generation", 7, .integer(format: "int64"), "Fixture: spec generation."),
            Field("labels", 11, .map(.string()), "Fixture: labels for selectors."),
            Field("managedFields", 17, .array(.ref(meta + "ManagedFieldsEntry")), "Fixture: field ownership."),
            Field("name", 1, .string(), "Fixture: the object's name."),
            Field("namespace", 3, .string(), "Fixture: the object's namespace."),
            Field("ownerReferences", 13, .array(.ref(meta + "OwnerReference"), .map("uid")), "Fixture: owners."),
            Field("resourceVersion", 6, .string(), "Fixture: store revision."),
            Field("uid", 5, .string(), "Fixture: unique id."),
        ]),
        TypeDefinition(meta + "ManagedFieldsEntry", "Fixture: one manager's fields.", fields: [
            Field("fieldsV1", 7, .any, "Fixture: the owned fields."),
            Field("manager", 1, .string(), "Fixture: manager name."),
            Field("time", 4, .time, "Fixture: when."),
        ]),
        TypeDefinition(meta + "OwnerReference", "Fixture: a reference to an owner.", fields: [
            Field("apiVersion", 5, .string(), "Fixture: owner API version.", required: true),
            Field("controller", 6, .boolean, "Fixture: owner is the managing controller."),
            Field("kind", 1, .string(), "Fixture: owner kind.", required: true),
            Field("name", 3, .string(), "Fixture: owner name.", required: true),
            Field("uid", 4, .string(), "Fixture: owner uid.", required: true),
        ]),
        TypeDefinition(meta + "LabelSelector", "Fixture: a label query.", fields: [
            Field("matchLabels", 1, .map(.string()), "Fixture: exact label matches."),
        ]),
        TypeDefinition(
            core + "Pod", "Fixture: a group of containers.",
            gvks: [GroupVersionKind(group: "", version: "v1", kind: "Pod")],
            fields: typeMeta() + [
                Field("metadata", 1, .ref(meta + "ObjectMeta"), "Fixture: pod metadata."),
                Field("spec", 2, .ref(core + "PodSpec"), "Fixture: desired pod."),
                Field("status", 3, .ref(core + "PodStatus"), "Fixture: observed pod."),
            ]),
        TypeDefinition(core + "PodSpec", "Fixture: what a pod runs.", fields: [
            Field("containers", 2, .array(.ref(core + "Container"), .map("name")), "Fixture: the containers.", required: true),
            Field("nodeName", 10, .string(), "Fixture: node the pod runs on."),
            Field("restartPolicy", 3, .string(enumValues: ["Always", "Never", "OnFailure"]), "Fixture: restart rule."),
            Field("terminationGracePeriodSeconds", 4, .integer(format: "int64"), "Fixture: grace period."),
        ]),
        TypeDefinition(core + "Container", "Fixture: one container.", fields: [
            Field("args", 4, .array(.string()), "Fixture: arguments."),
            Field("command", 3, .array(.string()), "Fixture: entrypoint."),
            Field("env", 7, .array(.ref(core + "EnvVar"), .map("name")), "Fixture: environment."),
            Field("image", 2, .string(), "Fixture: image reference."),
            Field("name", 1, .string(), "Fixture: container name.", required: true),
            Field("ports", 6, .array(.ref(core + "ContainerPort"), .map("containerPort", "protocol")), "Fixture: ports."),
            Field("resources", 8, .ref(core + "ResourceRequirements"), "Fixture: compute resources."),
        ]),
        TypeDefinition(core + "EnvVar", "Fixture: one variable.", fields: [
            Field("name", 1, .string(), "Fixture: variable name.", required: true),
            Field("value", 2, .string(), "Fixture: variable value."),
        ]),
        TypeDefinition(core + "ContainerPort", "Fixture: a container port.", fields: [
            Field("containerPort", 3, .integer(), "Fixture: port number.", required: true),
            Field("name", 1, .string(), "Fixture: port name."),
            Field("protocol", 4, .string(enumValues: ["SCTP", "TCP", "UDP"]), "Fixture: protocol."),
        ]),
        TypeDefinition(core + "ResourceRequirements", "Fixture: requests and limits.", fields: [
            Field("limits", 1, .map(.quantity), "Fixture: maximum amounts."),
            Field("requests", 2, .map(.quantity), "Fixture: guaranteed amounts."),
        ]),
        TypeDefinition(core + "PodStatus", "Fixture: observed pod state.", fields: [
            Field("phase", 1, .string(enumValues: ["Failed", "Pending", "Running", "Succeeded", "Unknown"]), "Fixture: phase."),
            Field("podIP", 6, .string(), "Fixture: pod address."),
            Field("startTime", 7, .time, "Fixture: start time."),
        ]),
        TypeDefinition(
            core + "Service", "Fixture: a stable address for pods.",
            gvks: [GroupVersionKind(group: "", version: "v1", kind: "Service")],
            fields: typeMeta() + [
                Field("metadata", 1, .ref(meta + "ObjectMeta"), "Fixture: service metadata."),
                Field("spec", 2, .ref(core + "ServiceSpec"), "Fixture: desired service."),
                Field("status", 3, .ref(core + "ServiceStatus"), "Fixture: observed service."),
            ]),
        TypeDefinition(core + "ServiceSpec", "Fixture: how a service routes.", fields: [
            Field("clusterIP", 3, .string(), "Fixture: virtual address."),
            Field("ports", 1, .array(.ref(core + "ServicePort"), .map("port", "protocol", mergeKey: "port")), "Fixture: service ports."),
            Field("selector", 2, .map(.string()), "Fixture: pods to route to."),
            Field("type", 4, .string(enumValues: ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]), "Fixture: service type."),
        ]),
        TypeDefinition(core + "ServicePort", "Fixture: one service port.", fields: [
            Field("appProtocol", 6, .string(), "Fixture: application protocol."),
            Field("name", 1, .string(), "Fixture: port name."),
            Field("nodePort", 5, .integer(), "Fixture: node port."),
            Field("port", 3, .integer(), "Fixture: service port.", required: true),
            Field("protocol", 2, .string(enumValues: ["SCTP", "TCP", "UDP"]), "Fixture: protocol."),
            Field("targetPort", 4, .intOrString, "Fixture: pod port, number or name."),
        ]),
        TypeDefinition(core + "ServiceStatus", "Fixture: observed service state.", fields: [
            Field("loadBalancer", 1, .any, "Fixture: load balancer state."),
        ]),
        TypeDefinition(
            core + "Secret", "Fixture: secret data.",
            gvks: [GroupVersionKind(group: "", version: "v1", kind: "Secret")],
            fields: typeMeta() + [
                Field("data", 2, .map(.string(format: "byte")), "Fixture: base64 values."),
                Field("immutable", 5, .boolean, "Fixture: cannot change."),
                Field("metadata", 1, .ref(meta + "ObjectMeta"), "Fixture: secret metadata."),
                Field("weight", 0, .number, "Fixture: a number field."),
            ]),
        TypeDefinition(
            apps + "Deployment", "Fixture: replicated pods with rollouts.",
            gvks: [GroupVersionKind(group: "apps", version: "v1", kind: "Deployment")],
            fields: typeMeta() + [
                Field("metadata", 1, .ref(meta + "ObjectMeta"), "Fixture: deployment metadata."),
                Field("spec", 2, .ref(apps + "DeploymentSpec"), "Fixture: desired deployment."),
                Field("status", 3, .ref(apps + "DeploymentStatus"), "Fixture: observed deployment."),
            ]),
        TypeDefinition(apps + "DeploymentSpec", "Fixture: deployment spec.", fields: [
            Field("replicas", 1, .integer(), "Fixture: desired pods."),
            Field("selector", 2, .ref(meta + "LabelSelector"), "Fixture: pods it owns.", required: true),
            Field("strategy", 4, .ref(apps + "DeploymentStrategy"), "Fixture: rollout strategy."),
            Field("template", 3, .ref(core + "PodTemplateSpec"), "Fixture: pod template.", required: true),
        ]),
        TypeDefinition(apps + "DeploymentStrategy", "Fixture: rollout strategy.", fields: [
            Field("rollingUpdate", 2, .ref(apps + "RollingUpdateDeployment"), "Fixture: rolling parameters."),
            Field("type", 1, .string(enumValues: ["Recreate", "RollingUpdate"]), "Fixture: strategy type."),
        ]),
        TypeDefinition(apps + "RollingUpdateDeployment", "Fixture: rolling parameters.", fields: [
            Field("maxSurge", 2, .intOrString, "Fixture: extra pods allowed."),
            Field("maxUnavailable", 1, .intOrString, "Fixture: missing pods allowed."),
        ]),
        TypeDefinition(apps + "DeploymentStatus", "Fixture: deployment status.", fields: [
            Field("availableReplicas", 4, .integer(), "Fixture: available pods."),
            Field("replicas", 2, .integer(), "Fixture: pods."),
        ]),
        TypeDefinition(core + "PodTemplateSpec", "Fixture: a pod template.", fields: [
            Field("metadata", 1, .ref(meta + "ObjectMeta"), "Fixture: template metadata."),
            Field("spec", 2, .ref(core + "PodSpec"), "Fixture: template spec."),
        ]),
    ]

    static let registry = TypeRegistry(definitions)

    static let resources: [ResourceInfo] = [
        ResourceInfo(group: "", version: "v1", resource: "pods", singular: "pod", kind: "Pod", namespaced: true,
                     shortNames: ["po"], categories: ["all"],
                     subresources: ["attach", "binding", "eviction", "exec", "log", "portforward", "proxy", "status"],
                     definition: core + "Pod"),
        ResourceInfo(group: "", version: "v1", resource: "services", singular: "service", kind: "Service", namespaced: true,
                     shortNames: ["svc"], categories: ["all"], subresources: ["proxy", "status"], definition: core + "Service"),
        ResourceInfo(group: "", version: "v1", resource: "secrets", singular: "secret", kind: "Secret", namespaced: true,
                     definition: core + "Secret"),
        ResourceInfo(group: "", version: "v1", resource: "namespaces", singular: "namespace", kind: "Namespace",
                     namespaced: false, shortNames: ["ns"],
                     verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
                     subresources: ["finalize", "status"], definition: core + "Namespace"),
        ResourceInfo(group: "apps", version: "v1", resource: "deployments", singular: "deployment", kind: "Deployment",
                     namespaced: true, shortNames: ["deploy"], categories: ["all"], subresources: ["scale", "status"],
                     definition: apps + "Deployment"),
    ]

    /// Built once and shared by the tests that only read it.
    static let sharedDocuments = documents()

    static func documents(registry: TypeRegistry = registry, resources: [ResourceInfo] = resources) -> OpenAPIDocuments {
        OpenAPIDocuments(registry: registry, resources: resources)
    }
}
