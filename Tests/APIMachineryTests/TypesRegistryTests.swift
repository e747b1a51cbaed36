import Testing
@testable import APIMachinery

@Suite("Type registry")
struct TypesRegistryTests {
    let registry = TypeRegistry.kubernetes

    @Test("definition names are unique")
    func uniqueDefinitions() {
        let names = KubernetesTypes.all().map(\.name)
        var seen: Set<String> = []
        let duplicates = names.filter { !seen.insert($0).inserted }
        #expect(duplicates.isEmpty)
        #expect(registry.definitions.count == names.count)
    }

    @Test("no definition repeats a field name or a nonzero protobuf number")
    func uniqueFields() {
        for def in registry.definitions.values {
            var names: Set<String> = []
            var numbers: Set<Int> = []
            for field in def.fields {
                #expect(names.insert(field.name).inserted, "\(def.name) repeats field \(field.name)")
                if field.proto != 0 {
                    #expect(numbers.insert(field.proto).inserted, "\(def.name) repeats proto \(field.proto)")
                }
            }
            #expect(!def.description.isEmpty, "\(def.name) has no description")
        }
    }

    @Test("every ref resolves")
    func refsResolve() {
        func refs(_ schema: Schema) -> [String] {
            switch schema {
            case .ref(let name): [name]
            case .array(let element, _): refs(element)
            case .map(let value): refs(value)
            default: []
            }
        }
        for def in registry.definitions.values {
            for field in def.fields {
                for name in refs(field.schema) {
                    #expect(registry[name] != nil, "\(def.name).\(field.name) refers to missing \(name)")
                }
            }
        }
    }

    @Test("every served resource has its definition and kind", arguments: Resources.all)
    func servedKinds(resource: ResourceInfo) throws {
        let def = try #require(registry.definition(for: resource.gvk), "no definition for \(resource.gvk)")
        #expect(def.name == resource.definition)
        // Top-level kinds carry TypeMeta (JSON only) and ObjectMeta as field 1.
        #expect(def.field(named: "apiVersion")?.proto == 0)
        #expect(def.field(named: "kind")?.proto == 0)
        #expect(def.field(named: "metadata")?.proto == 1)
        #expect(def.field(named: "metadata")?.schema == .ref("io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"))
    }

    @Test("subresource kinds are registered")
    func subresourceKinds() {
        let kinds = [
            GroupVersionKind(group: "autoscaling", version: "v1", kind: "Scale"),
            GroupVersionKind(group: "authentication.k8s.io", version: "v1", kind: "TokenRequest"),
            GroupVersionKind(group: "", version: "v1", kind: "Status"),
            GroupVersionKind(group: "", version: "v1", kind: "DeleteOptions"),
            GroupVersionKind(group: "apps", version: "v1", kind: "DeleteOptions"),
            GroupVersionKind(group: "", version: "v1", kind: "Binding"),
        ]
        for gvk in kinds {
            #expect(registry.definition(for: gvk) != nil, "\(gvk) is not registered")
        }
    }

    @Test("the types labnode's handlers rely on are all defined")
    func coverage() {
        let names = [
            "apimachinery.pkg.apis.meta.v1": ["ObjectMeta", "ListMeta", "OwnerReference", "ManagedFieldsEntry", "LabelSelector",
                                              "LabelSelectorRequirement", "Status", "StatusDetails", "StatusCause",
                                              "DeleteOptions", "Preconditions", "Condition"],
            "api.autoscaling.v1": ["Scale", "ScaleSpec", "ScaleStatus"],
            "api.authentication.v1": ["TokenRequest", "TokenRequestSpec", "TokenRequestStatus", "BoundObjectReference"],
            "api.core.v1": ["Pod", "PodSpec", "PodStatus", "PodCondition", "ContainerStatus", "ContainerState",
                            "ContainerStateWaiting", "ContainerStateRunning", "ContainerStateTerminated", "PodIP", "Container",
                            "ContainerPort", "EnvVar", "EnvVarSource", "ConfigMapKeySelector", "SecretKeySelector",
                            "ObjectFieldSelector", "EnvFromSource", "ResourceRequirements", "VolumeMount", "Volume",
                            "EmptyDirVolumeSource", "ConfigMapVolumeSource", "SecretVolumeSource", "HostPathVolumeSource",
                            "ProjectedVolumeSource", "DownwardAPIVolumeSource", "Probe", "HTTPGetAction", "TCPSocketAction",
                            "ExecAction", "SecurityContext", "Capabilities", "PodSecurityContext", "Toleration", "Affinity",
                            "PodTemplateSpec", "Service", "ServiceSpec", "ServicePort", "ServiceStatus", "LoadBalancerStatus",
                            "LoadBalancerIngress", "SessionAffinityConfig", "ClientIPConfig", "Endpoints", "EndpointSubset",
                            "EndpointAddress", "EndpointPort", "ObjectReference", "Namespace", "NamespaceSpec", "NamespaceStatus",
                            "ConfigMap", "Secret", "ServiceAccount", "LocalObjectReference", "Node", "NodeSpec", "NodeStatus",
                            "NodeAddress", "NodeCondition", "NodeSystemInfo", "NodeDaemonEndpoints", "DaemonEndpoint", "Taint",
                            "Event", "EventSource", "Binding"],
            "api.apps.v1": ["Deployment", "DeploymentSpec", "DeploymentStrategy", "RollingUpdateDeployment", "DeploymentStatus",
                            "DeploymentCondition", "ReplicaSet", "ReplicaSetSpec", "ReplicaSetStatus", "ReplicaSetCondition"],
            "api.discovery.v1": ["EndpointSlice", "Endpoint", "EndpointConditions", "EndpointHints", "ForZone", "EndpointPort"],
            "api.coordination.v1": ["Lease", "LeaseSpec"],
        ]
        for (package, kinds) in names {
            for kind in kinds {
                #expect(registry["io.k8s.\(package).\(kind)"] != nil, "missing io.k8s.\(package).\(kind)")
            }
        }
    }

    @Test("protobuf layout tables agree with the definitions")
    func layoutTables() throws {
        for (parent, embeds) in KubernetesProtobuf.inlinedMessages {
            let outer = try #require(registry[parent])
            for (number, inner) in embeds {
                let embedded = try #require(registry[inner], "\(parent) inlines missing \(inner)")
                #expect(outer.fields.allSatisfy { $0.proto != number }, "\(parent) also has a field numbered \(number)")
                for field in embedded.fields {
                    // JSON flattens the embedded struct: each of its fields is also the parent's, without a number.
                    #expect(outer.field(named: field.name)?.proto == 0, "\(parent) lacks inlined \(field.name)")
                }
            }
        }
        for key in KubernetesProtobuf.zeroValueKept.union(KubernetesProtobuf.microTimeFields) {
            let parts = key.split(separator: "#").map(String.init)
            #expect(parts.count == 2)
            #expect(registry[parts[0]]?.field(named: parts[1]) != nil, "\(key) names no field")
        }
        for key in KubernetesProtobuf.microTimeFields {
            let parts = key.split(separator: "#").map(String.init)
            #expect(registry[parts[0]]?.field(named: parts[1])?.schema == .time)
        }
    }

    struct Fact: Sendable, CustomTestStringConvertible {
        let definition: String
        let field: String
        let proto: Int
        let schema: Schema
        var required = false
        var testDescription: String { "\(definition.split(separator: ".").last ?? "").\(field)" }
    }

    static let core = "io.k8s.api.core.v1."
    static let meta = "io.k8s.apimachinery.pkg.apis.meta.v1."

    /// Facts checked by hand against upstream generated.proto, types.go and the published OpenAPI.
    static let facts: [Fact] = [
        Fact(definition: core + "ConfigMap", field: "data", proto: 2, schema: .map(.string())),
        Fact(definition: core + "ConfigMap", field: "binaryData", proto: 3, schema: .map(.string(format: "byte"))),
        Fact(definition: core + "ConfigMap", field: "immutable", proto: 4, schema: .boolean),
        Fact(definition: core + "Secret", field: "data", proto: 2, schema: .map(.string(format: "byte"))),
        Fact(definition: core + "Secret", field: "type", proto: 3, schema: .string()),
        Fact(definition: core + "Secret", field: "stringData", proto: 4, schema: .map(.string())),
        Fact(definition: core + "Secret", field: "immutable", proto: 5, schema: .boolean),
        Fact(definition: "io.k8s.api.apps.v1.DeploymentSpec", field: "replicas", proto: 1, schema: .integer()),
        Fact(definition: "io.k8s.api.apps.v1.DeploymentSpec", field: "selector", proto: 2,
             schema: .ref(meta + "LabelSelector"), required: true),
        Fact(definition: "io.k8s.api.apps.v1.DeploymentSpec", field: "template", proto: 3,
             schema: .ref(core + "PodTemplateSpec"), required: true),
        Fact(definition: "io.k8s.api.apps.v1.DeploymentSpec", field: "progressDeadlineSeconds", proto: 9, schema: .integer()),
        Fact(definition: "io.k8s.api.apps.v1.RollingUpdateDeployment", field: "maxSurge", proto: 2, schema: .intOrString),
        Fact(definition: meta + "ObjectMeta", field: "generation", proto: 7, schema: .integer(format: "int64")),
        Fact(definition: meta + "ObjectMeta", field: "creationTimestamp", proto: 8, schema: .time),
        Fact(definition: meta + "ObjectMeta", field: "managedFields", proto: 17, schema: .array(.ref(meta + "ManagedFieldsEntry"))),
        Fact(definition: meta + "ObjectMeta", field: "ownerReferences", proto: 13,
             schema: .array(.ref(meta + "OwnerReference"), .map("uid"))),
        Fact(definition: meta + "ObjectMeta", field: "finalizers", proto: 14, schema: .array(.string(), .mergedSet)),
        Fact(definition: meta + "ManagedFieldsEntry", field: "fieldsV1", proto: 7, schema: .any),
        Fact(definition: meta + "OwnerReference", field: "uid", proto: 4, schema: .string(), required: true),
        Fact(definition: core + "PodSpec", field: "containers", proto: 2,
             schema: .array(.ref(core + "Container"), .map("name")), required: true),
        Fact(definition: core + "PodSpec", field: "volumes", proto: 1,
             schema: .array(.ref(core + "Volume"), ListSemantics(listType: .map, mapKeys: ["name"], patchMergeKey: "name",
                                                              patchStrategy: "merge,retainKeys"))),
        Fact(definition: core + "PodSpec", field: "restartPolicy", proto: 3,
             schema: .string(enumValues: ["Always", "Never", "OnFailure"])),
        Fact(definition: core + "PodSpec", field: "terminationGracePeriodSeconds", proto: 4, schema: .integer(format: "int64")),
        Fact(definition: core + "PodSpec", field: "tolerations", proto: 22, schema: .array(.ref(core + "Toleration"))),
        Fact(definition: core + "PodSpec", field: "affinity", proto: 18, schema: .ref(core + "Affinity")),
        Fact(definition: core + "PodSpec", field: "nodeSelector", proto: 7, schema: .map(.string())),
        Fact(definition: core + "Container", field: "name", proto: 1, schema: .string(), required: true),
        Fact(definition: core + "Container", field: "env", proto: 7, schema: .array(.ref(core + "EnvVar"), .map("name"))),
        Fact(definition: core + "Container", field: "ports", proto: 6,
             schema: .array(.ref(core + "ContainerPort"), .map("containerPort", "protocol"))),
        Fact(definition: core + "Container", field: "volumeMounts", proto: 9,
             schema: .array(.ref(core + "VolumeMount"), .map("mountPath"))),
        Fact(definition: core + "Container", field: "command", proto: 3, schema: .array(.string())),
        Fact(definition: core + "ResourceRequirements", field: "limits", proto: 1, schema: .map(.quantity)),
        Fact(definition: core + "ServiceSpec", field: "ports", proto: 1,
             schema: .array(.ref(core + "ServicePort"), .map("port", "protocol"))),
        Fact(definition: core + "ServiceSpec", field: "type", proto: 4,
             schema: .string(enumValues: ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"])),
        Fact(definition: core + "ServicePort", field: "port", proto: 3, schema: .integer(), required: true),
        Fact(definition: core + "ServicePort", field: "targetPort", proto: 4, schema: .intOrString),
        Fact(definition: core + "ServicePort", field: "protocol", proto: 2, schema: .string(enumValues: ["SCTP", "TCP", "UDP"])),
        Fact(definition: core + "NodeStatus", field: "conditions", proto: 4,
             schema: .array(.ref(core + "NodeCondition"), .map("type"))),
        Fact(definition: core + "DaemonEndpoint", field: "Port", proto: 1, schema: .integer(), required: true),
        Fact(definition: core + "Event", field: "eventTime", proto: 10, schema: .time),
        Fact(definition: "io.k8s.api.discovery.v1.EndpointSlice", field: "endpoints", proto: 2,
             schema: .array(.ref("io.k8s.api.discovery.v1.Endpoint"))),
        Fact(definition: "io.k8s.api.discovery.v1.EndpointSlice", field: "addressType", proto: 4,
             schema: .string(enumValues: ["FQDN", "IPv4", "IPv6"]), required: true),
        Fact(definition: "io.k8s.api.coordination.v1.LeaseSpec", field: "renewTime", proto: 4, schema: .time),
        Fact(definition: "io.k8s.api.authentication.v1.TokenRequestSpec", field: "expirationSeconds", proto: 4,
             schema: .integer(format: "int64")),
        Fact(definition: "io.k8s.api.authentication.v1.TokenRequestSpec", field: "audiences", proto: 1,
             schema: .array(.string())),
        Fact(definition: "io.k8s.api.autoscaling.v1.ScaleSpec", field: "replicas", proto: 1, schema: .integer()),
    ]

    @Test("upstream facts", arguments: facts)
    func upstreamFact(fact: Fact) throws {
        let field = try #require(registry[fact.definition]?.field(named: fact.field))
        #expect(field.proto == fact.proto)
        #expect(field.schema == fact.schema)
        #expect(field.required == fact.required)
    }

    @Test("inlined embedded structs are flattened in JSON")
    func flattened() throws {
        let volume = try #require(registry[Self.core + "Volume"])
        #expect(volume.field(named: "configMap")?.schema == .ref(Self.core + "ConfigMapVolumeSource"))
        #expect(volume.field(named: "configMap")?.proto == 0)
        let selector = try #require(registry[Self.core + "SecretKeySelector"])
        #expect(selector.fields.map(\.name) == ["name", "key", "optional"])
        let probe = try #require(registry[Self.core + "Probe"])
        #expect(probe.fields.prefix(4).map(\.name) == ["exec", "httpGet", "tcpSocket", "grpc"])
    }

    @Test("schema lookup along a path")
    func pathLookup() {
        let containers = registry.schema(at: ["spec", "template", "spec", "containers"], from: "io.k8s.api.apps.v1.Deployment")
        #expect(containers == .array(.ref(Self.core + "Container"), .map("name")))
        let image = registry.schema(at: ["spec", "template", "spec", "containers", "image"], from: "io.k8s.api.apps.v1.Deployment")
        #expect(image == .string())
        #expect(registry.schema(at: ["spec", "nope"], from: "io.k8s.api.core.v1.Service") == nil)
    }
}
