/// What the API server serves: one entry per resource, with the facts discovery, routing
/// and storage need. The list itself is `Resources.all`.
public struct ResourceInfo: Sendable, Hashable {
    public var group: String
    public var version: String
    /// Plural, lower-case: "services", "deployments".
    public var resource: String
    public var singular: String
    public var kind: String
    public var namespaced: Bool
    public var shortNames: [String]
    public var categories: [String]
    public var verbs: [String]
    /// Subresources served: "status", "scale", "binding", "token", ...
    public var subresources: [String]
    /// The OpenAPI definition name of the kind, e.g. "io.k8s.api.core.v1.Service".
    public var definition: String

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var gvk: GroupVersionKind { GroupVersionKind(group: group, version: version, kind: kind) }
    public var listKind: String { kind + "List" }
    /// "services" or "deployments.apps", as error messages name it.
    public var qualifiedResource: String { APIError.qualified(resource, group: group) }

    public init(group: String, version: String, resource: String, singular: String, kind: String,
                namespaced: Bool, shortNames: [String] = [], categories: [String] = [],
                verbs: [String] = ResourceInfo.allVerbs, subresources: [String] = [], definition: String) {
        self.group = group
        self.version = version
        self.resource = resource
        self.singular = singular
        self.kind = kind
        self.namespaced = namespaced
        self.shortNames = shortNames
        self.categories = categories
        self.verbs = verbs
        self.subresources = subresources
        self.definition = definition
    }

    public static let allVerbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
}

public enum Resources {
    static func core(_ resource: String, _ singular: String, _ kind: String, namespaced: Bool = true,
                     short: [String] = [], categories: [String] = [], verbs: [String] = ResourceInfo.allVerbs,
                     sub: [String] = []) -> ResourceInfo {
        ResourceInfo(group: "", version: "v1", resource: resource, singular: singular, kind: kind,
                     namespaced: namespaced, shortNames: short, categories: categories, verbs: verbs,
                     subresources: sub, definition: "io.k8s.api.core.v1.\(kind)")
    }

    /// Every resource labnode serves, in discovery order.
    public static let all: [ResourceInfo] = [
        bindings, configMaps, endpoints, events, namespaces, nodes, pods, secrets, serviceAccounts, services,
        deployments, replicaSets, endpointSlices, leases,
    ]

    // The one list of facts about each resource; components name them in code.
    public static let bindings = core("bindings", "binding", "Binding", verbs: ["create"])
    public static let configMaps = core("configmaps", "configmap", "ConfigMap", short: ["cm"])
    public static let endpoints = core("endpoints", "endpoints", "Endpoints", short: ["ep"])
    public static let events = core("events", "event", "Event", short: ["ev"])
    public static let namespaces = core("namespaces", "namespace", "Namespace", namespaced: false, short: ["ns"],
                                        verbs: ["create", "delete", "get", "list", "patch", "update", "watch"],
                                        sub: ["finalize", "status"])
    public static let nodes = core("nodes", "node", "Node", namespaced: false, short: ["no"], sub: ["proxy", "status"])
    public static let pods = core("pods", "pod", "Pod", short: ["po"], categories: ["all"],
                                  sub: ["attach", "binding", "eviction", "exec", "log", "portforward", "proxy", "status"])
    public static let secrets = core("secrets", "secret", "Secret")
    public static let serviceAccounts = core("serviceaccounts", "serviceaccount", "ServiceAccount", short: ["sa"], sub: ["token"])
    public static let services = core("services", "service", "Service", short: ["svc"], categories: ["all"],
                                      verbs: ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
                                      sub: ["proxy", "status"])
    public static let deployments = ResourceInfo(
        group: "apps", version: "v1", resource: "deployments", singular: "deployment", kind: "Deployment",
        namespaced: true, shortNames: ["deploy"], categories: ["all"], subresources: ["scale", "status"],
        definition: "io.k8s.api.apps.v1.Deployment")
    public static let replicaSets = ResourceInfo(
        group: "apps", version: "v1", resource: "replicasets", singular: "replicaset", kind: "ReplicaSet",
        namespaced: true, shortNames: ["rs"], categories: ["all"], subresources: ["scale", "status"],
        definition: "io.k8s.api.apps.v1.ReplicaSet")
    public static let endpointSlices = ResourceInfo(
        group: "discovery.k8s.io", version: "v1", resource: "endpointslices", singular: "endpointslice",
        kind: "EndpointSlice", namespaced: true, definition: "io.k8s.api.discovery.v1.EndpointSlice")
    public static let leases = ResourceInfo(
        group: "coordination.k8s.io", version: "v1", resource: "leases", singular: "lease", kind: "Lease",
        namespaced: true, definition: "io.k8s.api.coordination.v1.Lease")

    /// Group names in discovery order (core first).
    public static var groups: [String] {
        var seen: [String] = []
        for r in all where !seen.contains(r.group) { seen.append(r.group) }
        return seen
    }

    public static func find(group: String, version: String, resource: String) -> ResourceInfo? {
        all.first { $0.group == group && $0.version == version && $0.resource == resource }
    }

    public static func find(_ gvk: GroupVersionKind) -> ResourceInfo? {
        all.first { $0.group == gvk.group && $0.version == gvk.version && $0.kind == gvk.kind }
    }

    public static func find(group: String, kind: String) -> ResourceInfo? {
        all.first { $0.group == group && $0.kind == kind }
    }
}
