import APIMachinery
import Foundation

/// The discovery documents kubectl reads before anything else, precomputed once.
///
/// Both forms are served: aggregated discovery (`apidiscovery.k8s.io` v2 and v2beta1, one
/// request for everything, chosen by the Accept header) and the legacy per-group documents.
struct Discovery: Sendable {
    let resources: [ResourceInfo]
    let serverAddress: String

    static let aggregatedV2Type = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    static let aggregatedV2Beta1Type = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

    init(resources: [ResourceInfo], serverAddress: String) {
        self.resources = resources
        self.serverAddress = serverAddress
    }

    enum Form { case legacy, v2, v2beta1 }

    /// Picks the first aggregated form the client lists in Accept, else the legacy one.
    static func form(accept: String?) -> Form {
        guard let accept else { return .legacy }
        for entry in accept.split(separator: ",") {
            let params = entry.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard params.contains("as=APIGroupDiscoveryList"), params.contains("g=apidiscovery.k8s.io") else { continue }
            if params.contains("v=v2") { return .v2 }
            if params.contains("v=v2beta1") { return .v2beta1 }
        }
        return .legacy
    }

    // MARK: Legacy

    var apiVersions: JSON {
        ["kind": "APIVersions", "versions": ["v1"],
         "serverAddressByClientCIDRs": [["clientCIDR": "0.0.0.0/0", "serverAddress": .string(serverAddress)]]]
    }

    var groupNames: [String] {
        var seen: [String] = []
        for r in resources where !r.group.isEmpty && !seen.contains(r.group) { seen.append(r.group) }
        return seen
    }

    func versions(of group: String) -> [String] {
        var seen: [String] = []
        for r in resources where r.group == group && !seen.contains(r.version) { seen.append(r.version) }
        return seen
    }

    func apiGroup(_ name: String) -> JSON? {
        let vs = versions(of: name)
        guard let preferred = vs.first else { return nil }
        return ["name": .string(name),
                "versions": .array(vs.map { ["groupVersion": .string("\(name)/\($0)"), "version": .string($0)] }),
                "preferredVersion": ["groupVersion": .string("\(name)/\(preferred)"), "version": .string(preferred)]]
    }

    var apiGroupList: JSON {
        ["kind": "APIGroupList", "apiVersion": "v1", "groups": .array(groupNames.compactMap { apiGroup($0) })]
    }

    func apiGroupDocument(_ name: String) -> JSON? {
        guard var g = apiGroup(name) else { return nil }
        var out: JSON = ["kind": "APIGroup", "apiVersion": "v1"]
        for (k, v) in g.objectValue ?? [:] { out[k] = v }
        g = out
        return g
    }

    func apiResourceList(group: String, version: String) -> JSON? {
        let rs = resources.filter { $0.group == group && $0.version == version }
        guard !rs.isEmpty else { return nil }
        var rows: [JSON] = []
        for r in rs {
            var row: JSON = ["name": .string(r.resource), "singularName": .string(r.singular), "namespaced": .bool(r.namespaced),
                             "kind": .string(r.kind), "verbs": .array(r.verbs.map { .string($0) })]
            if !r.shortNames.isEmpty { row["shortNames"] = .array(r.shortNames.map { .string($0) }) }
            if !r.categories.isEmpty { row["categories"] = .array(r.categories.map { .string($0) }) }
            rows.append(row)
            for sub in r.subresources {
                let (kind, verbs) = Self.subresource(sub, of: r)
                var s: JSON = ["name": .string("\(r.resource)/\(sub)"), "singularName": "", "namespaced": .bool(r.namespaced),
                               "kind": .string(kind.kind), "verbs": .array(verbs.map { .string($0) })]
                if kind.group != r.group || kind.version != r.version {
                    s["group"] = .string(kind.group)
                    s["version"] = .string(kind.version)
                }
                rows.append(s)
            }
        }
        return ["kind": "APIResourceList", "apiVersion": "v1", "groupVersion": .string(group.isEmpty ? version : "\(group)/\(version)"),
                "resources": .array(rows)]
    }

    /// The kind a subresource answers with and the verbs it takes, as kube-apiserver registers them.
    static func subresource(_ sub: String, of r: ResourceInfo) -> (GroupVersionKind, [String]) {
        let core = { (k: String) in GroupVersionKind(group: "", version: "v1", kind: k) }
        switch sub {
        case "status": return (r.gvk, ["get", "patch", "update"])
        case "scale": return (GroupVersionKind(group: "autoscaling", version: "v1", kind: "Scale"), ["get", "patch", "update"])
        case "binding": return (core("Binding"), ["create"])
        case "token": return (GroupVersionKind(group: "authentication.k8s.io", version: "v1", kind: "TokenRequest"), ["create"])
        case "log": return (core("Pod"), ["get"])
        case "exec": return (core("PodExecOptions"), ["create", "get"])
        case "attach": return (core("PodAttachOptions"), ["create", "get"])
        case "portforward": return (core("PodPortForwardOptions"), ["create", "get"])
        case "eviction": return (GroupVersionKind(group: "policy", version: "v1", kind: "Eviction"), ["create"])
        case "finalize": return (core("Namespace"), ["update"])
        case "proxy":
            let kind = r.resource == "pods" ? "PodProxyOptions" : r.resource == "nodes" ? "NodeProxyOptions" : "ServiceProxyOptions"
            return (core(kind), ["create", "delete", "get", "patch", "update"])
        default: return (r.gvk, ["get"])
        }
    }

    // MARK: Aggregated

    /// `/api` (core) or `/apis` (named groups) in aggregated form.
    func aggregated(core: Bool, form: Form) -> JSON {
        let apiVersion = form == .v2beta1 ? "apidiscovery.k8s.io/v2beta1" : "apidiscovery.k8s.io/v2"
        let groups = core ? [""] : groupNames
        var items: [JSON] = []
        for g in groups {
            var versionsJSON: [JSON] = []
            for v in versions(of: g) {
                var rows: [JSON] = []
                for r in resources where r.group == g && r.version == v {
                    var row: JSON = ["resource": .string(r.resource),
                                     "responseKind": ["group": .string(r.group), "version": .string(r.version), "kind": .string(r.kind)],
                                     "scope": r.namespaced ? "Namespaced" : "Cluster",
                                     "singularResource": .string(r.singular),
                                     "verbs": .array(r.verbs.map { .string($0) })]
                    if !r.shortNames.isEmpty { row["shortNames"] = .array(r.shortNames.map { .string($0) }) }
                    if !r.categories.isEmpty { row["categories"] = .array(r.categories.map { .string($0) }) }
                    if !r.subresources.isEmpty {
                        row["subresources"] = .array(r.subresources.map { sub in
                            let (k, verbs) = Self.subresource(sub, of: r)
                            return ["subresource": .string(sub),
                                    "responseKind": ["group": .string(k.group), "version": .string(k.version), "kind": .string(k.kind)],
                                    "verbs": .array(verbs.map { .string($0) })]
                        })
                    }
                    rows.append(row)
                }
                versionsJSON.append(["version": .string(v), "resources": .array(rows), "freshness": "Current"])
            }
            items.append(["metadata": ["name": .string(g), "creationTimestamp": nil], "versions": .array(versionsJSON)])
        }
        return ["kind": "APIGroupDiscoveryList", "apiVersion": .string(apiVersion), "metadata": [:], "items": .array(items)]
    }
}
