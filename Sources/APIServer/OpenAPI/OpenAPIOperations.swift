import APIMachinery

/// A query or path parameter of a REST operation.
struct OpenAPIParameter: Sendable {
    enum Location: String, Sendable { case query, path }
    var name: String
    var location: Location
    /// "string", "integer" or "boolean".
    var type: String
    var description: String
    var required = false
}

/// What a request carries in its body.
enum OpenAPIBody: Sendable {
    /// The object itself (create, replace, subresource POSTs).
    case object(String)
    /// A patch document, in any of the patch content types.
    case patch
    /// DeleteOptions (optional).
    case deleteOptions
}

/// What a successful response carries.
enum OpenAPIPayload: Sendable {
    case definition(String)
    /// Plain text (logs) or a raw stream (exec, attach, port-forward, proxy).
    case text
}

struct OpenAPIResponse: Sendable {
    var code: String
    var description: String
    var payload: OpenAPIPayload?
}

/// One operation (method) on one path, in a dialect-neutral form rendered later as v2 and v3.
struct OpenAPIOperation: Sendable {
    var method: String
    var id: String
    var description: String
    /// x-kubernetes-action: get, list, post, put, patch, delete, deletecollection, connect.
    var action: String
    var gvk: GroupVersionKind
    var parameters: [OpenAPIParameter] = []
    var body: OpenAPIBody? = nil
    var responses: [OpenAPIResponse]
    var produces: [String]
    var tag: String
}

struct OpenAPIPath: Sendable {
    var path: String
    var parameters: [OpenAPIParameter]
    var operations: [OpenAPIOperation]
}

/// The REST surface of one group-version ("api/v1", "apis/apps/v1"), and the kinds it needs.
struct OpenAPIGroupVersion {
    /// The key in the /openapi/v3 index, e.g. "apis/apps/v1".
    var documentPath: String
    var paths: [OpenAPIPath] = []
    var needs: [OpenAPIKindNeed] = []

    /// Definition names the operations refer to directly.
    var roots: [String] {
        var out: [String] = []
        for path in paths {
            for op in path.operations {
                switch op.body {
                case .object(let n): out.append(n)
                case .patch: out.append(OpenAPINames.patch)
                case .deleteOptions: out.append(OpenAPINames.deleteOptions)
                case nil: break
                }
                for r in op.responses {
                    if case .definition(let n)? = r.payload { out.append(n) }
                }
            }
        }
        return out
    }
}

/// Builds the paths and operations kube-apiserver would serve for a list of resources.
///
/// kubectl relies on two facts here: every PATCH operation names its kind in
/// x-kubernetes-group-version-kind and lists a `fieldValidation` query parameter (otherwise
/// `create -f` and `apply` fall back to client-side validation), and kubectl stops at the
/// first PATCH it finds for a kind, so subresource PATCHes must carry it too.
enum OpenAPIRoutes {
    static let objectTypes = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
    static let watchTypes = ["application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"]
    static let patchTypes = [
        "application/apply-patch+yaml", "application/json-patch+json",
        "application/merge-patch+json", "application/strategic-merge-patch+json",
    ]

    /// Groups the operations of `resources` by group-version, keyed by the v3 index path.
    static func build(resources: [ResourceInfo], registry: TypeRegistry) -> [String: OpenAPIGroupVersion] {
        var out: [String: OpenAPIGroupVersion] = [:]
        for r in resources {
            let key = documentPath(group: r.group, version: r.version)
            var gv = out[key] ?? OpenAPIGroupVersion(documentPath: key)
            add(r, to: &gv, registry: registry)
            out[key] = gv
        }
        return out
    }

    /// "api/v1" for the core group, "apis/<group>/<version>" otherwise.
    static func documentPath(group: String, version: String) -> String {
        group.isEmpty ? "api/\(version)" : "apis/\(group)/\(version)"
    }

    /// The word upstream operation ids use for a group: "Core", "Apps", "Discovery", "RbacAuthorization".
    static func groupWord(_ group: String) -> String {
        if group.isEmpty { return "Core" }
        var trimmed = Substring(group)
        if trimmed.hasSuffix(".k8s.io") { trimmed = trimmed.dropLast(".k8s.io".count) }
        return trimmed.split(whereSeparator: { $0 == "." || $0 == "-" }).map { capitalized(String($0)) }.joined()
    }

    /// The tag upstream puts on operations: "core_v1", "apps_v1", "rbacAuthorization_v1".
    static func tag(group: String, version: String) -> String {
        let word = groupWord(group)
        return word.prefix(1).lowercased() + word.dropFirst() + "_" + version
    }

    static func capitalized(_ s: String) -> String {
        s.prefix(1).uppercased() + s.dropFirst()
    }

    // MARK: - Parameters

    static func query(_ name: String, _ type: String, _ description: String) -> OpenAPIParameter {
        OpenAPIParameter(name: name, location: .query, type: type, description: description)
    }

    static func pathParameter(_ name: String, _ description: String) -> OpenAPIParameter {
        OpenAPIParameter(name: name, location: .path, type: "string", description: description, required: true)
    }

    static let pretty = query("pretty", "string", "If 'true', the reply is indented for humans.")
    static let dryRun = query("dryRun", "string", "\"All\" runs every stage of the request but does not save the result.")
    static let fieldManager = query("fieldManager", "string", "Name of the actor making this change; recorded in managedFields.")
    static let fieldValidation = query(
        "fieldValidation", "string",
        "What to do with unknown or duplicate fields in the body: Ignore, Warn (reply with warnings) or Strict (reject the request).")
    static let force = query(
        "force", "boolean", "Server-side apply only: take over fields owned by other managers instead of failing with a conflict.")
    static let writeParameters = [dryRun, fieldManager, fieldValidation]
    static let patchParameters = [dryRun, fieldManager, fieldValidation, force]
    static let deleteParameters = [
        dryRun,
        query("gracePeriodSeconds", "integer", "Seconds to wait before the object is removed; 0 removes it at once."),
        query("propagationPolicy", "string", "What happens to dependents: Orphan, Background or Foreground."),
    ]
    static let selectorParameters = [
        query("continue", "string", "The token from the previous chunk's metadata.continue, to read the next chunk."),
        query("fieldSelector", "string", "Only objects whose fields match, e.g. metadata.name=web."),
        query("labelSelector", "string", "Only objects whose labels match, e.g. app=web,tier!=db."),
        query("limit", "integer", "At most this many items per reply; follow metadata.continue for the rest."),
        query("resourceVersion", "string", "Read at (or after) this resource version; \"0\" accepts any."),
        query("resourceVersionMatch", "string", "How resourceVersion applies: Exact or NotOlderThan."),
        query("timeoutSeconds", "integer", "End the list or watch after this many seconds."),
    ]
    static let listParameters = selectorParameters + [
        query("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events on a watch."),
        query("sendInitialEvents", "boolean", "Start a watch with ADDED events for existing objects, then a bookmark."),
        query("watch", "boolean", "Stream changes (ADDED, MODIFIED, DELETED) instead of returning a list."),
    ]

    // MARK: - Resources

    /// The registry's name for a resource's kind: the resource's own definition name if the
    /// registry has it, else whatever the registry files under the kind's GVK.
    static func definitionName(of r: ResourceInfo, registry: TypeRegistry) -> String {
        if registry[r.definition] != nil { return r.definition }
        return registry.definition(for: r.gvk)?.name ?? r.definition
    }

    static func add(_ r: ResourceInfo, to gv: inout OpenAPIGroupVersion, registry: TypeRegistry) {
        let prefix = "/" + documentPath(group: r.group, version: r.version)
        let def = definitionName(of: r, registry: registry)
        let kind = r.kind
        let words = groupWord(r.group) + capitalized(r.version)
        let scope = r.namespaced ? "Namespaced" : ""
        let tag = tag(group: r.group, version: r.version)
        let verbs = Set(r.verbs)
        let collection = prefix + (r.namespaced ? "/namespaces/{namespace}/" : "/") + r.resource
        let item = collection + "/{name}"
        let namespace = pathParameter("namespace", "The namespace of the objects.")
        let name = pathParameter("name", "The name of the \(kind).")
        let scopeParameters = r.namespaced ? [namespace] : []

        gv.needs.append(OpenAPIKindNeed(definition: def, gvk: r.gvk))
        let objectOK = OpenAPIResponse(code: "200", description: "OK", payload: .definition(def))
        let unauthorized = OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil)
        let statusOK = OpenAPIResponse(code: "200", description: "OK", payload: .definition(OpenAPINames.status))

        var collectionOps: [OpenAPIOperation] = []
        if verbs.contains("list") {
            let listDef = def + "List"
            let listGVK = GroupVersionKind(group: r.group, version: r.version, kind: r.listKind)
            gv.needs.append(OpenAPIKindNeed(definition: listDef, gvk: listGVK, listOf: r, itemDefinition: def))
            let listOK = OpenAPIResponse(code: "200", description: "OK", payload: .definition(listDef))
            collectionOps.append(OpenAPIOperation(
                method: "get", id: "list\(words)\(scope)\(kind)",
                description: "List or watch \(kind) objects\(r.namespaced ? " in a namespace" : "").",
                action: "list", gvk: r.gvk, parameters: listParameters,
                responses: [listOK, unauthorized], produces: objectTypes + watchTypes, tag: tag))
            if r.namespaced {
                gv.paths.append(OpenAPIPath(
                    path: prefix + "/" + r.resource, parameters: [pretty],
                    operations: [OpenAPIOperation(
                        method: "get", id: "list\(words)\(kind)ForAllNamespaces",
                        description: "List or watch \(kind) objects across all namespaces.",
                        action: "list", gvk: r.gvk, parameters: listParameters,
                        responses: [listOK, unauthorized], produces: objectTypes + watchTypes, tag: tag)]))
            }
        }
        if verbs.contains("create") {
            collectionOps.append(OpenAPIOperation(
                method: "post", id: "create\(words)\(scope)\(kind)", description: "Create a \(kind).",
                action: "post", gvk: r.gvk, parameters: writeParameters, body: .object(def),
                responses: [
                    objectOK,
                    OpenAPIResponse(code: "201", description: "Created", payload: .definition(def)),
                    OpenAPIResponse(code: "202", description: "Accepted", payload: .definition(def)),
                    unauthorized,
                ],
                produces: objectTypes, tag: tag))
        }
        if verbs.contains("deletecollection") {
            collectionOps.append(OpenAPIOperation(
                method: "delete", id: "delete\(words)Collection\(scope)\(kind)",
                description: "Delete every \(kind) that matches the selectors.",
                action: "deletecollection", gvk: r.gvk, parameters: deleteParameters + selectorParameters,
                body: .deleteOptions, responses: [statusOK, unauthorized], produces: objectTypes, tag: tag))
        }
        if !collectionOps.isEmpty {
            gv.paths.append(OpenAPIPath(path: collection, parameters: scopeParameters + [pretty], operations: collectionOps))
        }

        var itemOps: [OpenAPIOperation] = []
        if verbs.contains("get") {
            itemOps.append(OpenAPIOperation(
                method: "get", id: "read\(words)\(scope)\(kind)", description: "Read the named \(kind).",
                action: "get", gvk: r.gvk, responses: [objectOK, unauthorized], produces: objectTypes, tag: tag))
        }
        if verbs.contains("update") {
            itemOps.append(replace(id: "replace\(words)\(scope)\(kind)", what: "the named \(kind)", gvk: r.gvk, def: def, tag: tag))
        }
        if verbs.contains("patch") {
            itemOps.append(patch(id: "patch\(words)\(scope)\(kind)", what: "the named \(kind)", gvk: r.gvk, def: def, tag: tag))
        }
        if verbs.contains("delete") {
            itemOps.append(OpenAPIOperation(
                method: "delete", id: "delete\(words)\(scope)\(kind)", description: "Delete the named \(kind).",
                action: "delete", gvk: r.gvk, parameters: deleteParameters, body: .deleteOptions,
                responses: [
                    statusOK,
                    OpenAPIResponse(code: "202", description: "Accepted", payload: .definition(OpenAPINames.status)),
                    unauthorized,
                ],
                produces: objectTypes, tag: tag))
        }
        if !itemOps.isEmpty {
            gv.paths.append(OpenAPIPath(path: item, parameters: scopeParameters + [name, pretty], operations: itemOps))
        }

        for sub in r.subresources {
            let context = SubresourceContext(
                resource: r, definition: def, groupVersionWords: words, subject: scope + kind + capitalized(sub), tag: tag,
                path: item + "/" + sub, parameters: scopeParameters + [name, pretty])
            let (paths, needs) = subresource(sub, context)
            gv.paths.append(contentsOf: paths)
            gv.needs.append(contentsOf: needs)
        }
    }

    static func replace(id: String, what: String, gvk: GroupVersionKind, def: String, tag: String) -> OpenAPIOperation {
        OpenAPIOperation(
            method: "put", id: id, description: "Replace \(what).", action: "put", gvk: gvk,
            parameters: writeParameters, body: .object(def),
            responses: [
                OpenAPIResponse(code: "200", description: "OK", payload: .definition(def)),
                OpenAPIResponse(code: "201", description: "Created", payload: .definition(def)),
                OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
            ],
            produces: objectTypes, tag: tag)
    }

    static func patch(id: String, what: String, gvk: GroupVersionKind, def: String, tag: String) -> OpenAPIOperation {
        OpenAPIOperation(
            method: "patch", id: id, description: "Patch \(what).", action: "patch", gvk: gvk,
            parameters: patchParameters, body: .patch,
            responses: [
                OpenAPIResponse(code: "200", description: "OK", payload: .definition(def)),
                OpenAPIResponse(code: "201", description: "Created", payload: .definition(def)),
                OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
            ],
            produces: objectTypes, tag: tag)
    }

    static func read(id: String, what: String, gvk: GroupVersionKind, def: String, tag: String) -> OpenAPIOperation {
        OpenAPIOperation(
            method: "get", id: id, description: "Read \(what).", action: "get", gvk: gvk,
            responses: [
                OpenAPIResponse(code: "200", description: "OK", payload: .definition(def)),
                OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
            ],
            produces: objectTypes, tag: tag)
    }

    struct SubresourceContext {
        var resource: ResourceInfo
        var definition: String
        /// "CoreV1": the group-version words of operation ids.
        var groupVersionWords: String
        /// "NamespacedPodStatus": what the operation acts on.
        var subject: String
        /// "CoreV1NamespacedPodStatus": the operation id without its verb.
        var idStem: String { groupVersionWords + subject }
        var tag: String
        var path: String
        var parameters: [OpenAPIParameter]
    }

    /// Paths and needed kinds of one subresource, shaped as kube-apiserver serves it.
    static func subresource(_ sub: String, _ c: SubresourceContext) -> ([OpenAPIPath], [OpenAPIKindNeed]) {
        let r = c.resource
        let kind = r.kind
        func core(_ kind: String) -> GroupVersionKind { GroupVersionKind(group: "", version: "v1", kind: kind) }

        switch sub {
        case "scale":
            let gvk = GroupVersionKind(group: "autoscaling", version: "v1", kind: "Scale")
            let what = "the scale of the named \(kind)"
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: [
                read(id: "read" + c.idStem, what: what, gvk: gvk, def: OpenAPINames.scale, tag: c.tag),
                replace(id: "replace" + c.idStem, what: what, gvk: gvk, def: OpenAPINames.scale, tag: c.tag),
                patch(id: "patch" + c.idStem, what: what, gvk: gvk, def: OpenAPINames.scale, tag: c.tag),
            ])], [OpenAPIKindNeed(definition: OpenAPINames.scale, gvk: gvk)])

        case "binding", "eviction", "token":
            let (def, gvk): (String, GroupVersionKind)
            switch sub {
            case "binding": (def, gvk) = ("io.k8s.api.core.v1.Binding", core("Binding"))
            case "eviction": (def, gvk) = ("io.k8s.api.policy.v1.Eviction", GroupVersionKind(group: "policy", version: "v1", kind: "Eviction"))
            default: (def, gvk) = ("io.k8s.api.authentication.v1.TokenRequest", GroupVersionKind(group: "authentication.k8s.io", version: "v1", kind: "TokenRequest"))
            }
            let op = OpenAPIOperation(
                method: "post", id: "create" + c.idStem, description: "Create a \(gvk.kind) for the named \(kind).",
                action: "post", gvk: gvk, parameters: writeParameters, body: .object(def),
                responses: [
                    OpenAPIResponse(code: "200", description: "OK", payload: .definition(def)),
                    OpenAPIResponse(code: "201", description: "Created", payload: .definition(def)),
                    OpenAPIResponse(code: "202", description: "Accepted", payload: .definition(def)),
                    OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
                ],
                produces: objectTypes, tag: c.tag)
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: [op])],
                    [OpenAPIKindNeed(definition: def, gvk: gvk)])

        case "finalize":
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: [
                replace(id: "replace" + c.idStem, what: "the finalizers of the named \(kind)", gvk: r.gvk, def: c.definition, tag: c.tag),
            ])], [])

        case "log":
            let op = OpenAPIOperation(
                method: "get", id: "read" + c.idStem, description: "Read the log of a container of the named \(kind).",
                action: "get", gvk: r.gvk,
                parameters: [
                    query("container", "string", "The container whose log to read; may be left out when there is only one."),
                    query("follow", "boolean", "Keep streaming the log as it grows."),
                    query("limitBytes", "integer", "Stop after this many bytes."),
                    query("previous", "boolean", "Read the log of the previous, terminated run of the container."),
                    query("sinceSeconds", "integer", "Only lines newer than this many seconds."),
                    query("sinceTime", "string", "Only lines newer than this RFC 3339 time."),
                    query("tailLines", "integer", "Only this many lines from the end."),
                    query("timestamps", "boolean", "Prefix each line with its RFC 3339 timestamp."),
                ],
                responses: [
                    OpenAPIResponse(code: "200", description: "OK", payload: .text),
                    OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
                ],
                produces: ["text/plain"], tag: c.tag)
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: [op])], [])

        case "exec", "attach", "portforward":
            let optionsKind: String
            var parameters: [OpenAPIParameter] = []
            switch sub {
            case "exec":
                optionsKind = "PodExecOptions"
                parameters = [query("command", "string", "One word of the command line; repeat the parameter for each word.")]
            case "attach":
                optionsKind = "PodAttachOptions"
            default:
                optionsKind = "PodPortForwardOptions"
                parameters = [query("ports", "integer", "A port to forward; repeat the parameter for each port.")]
            }
            if sub != "portforward" {
                parameters += [
                    query("container", "string", "The container to connect to; may be left out when there is only one."),
                    query("stderr", "boolean", "Stream the container's standard error."),
                    query("stdin", "boolean", "Send standard input to the container."),
                    query("stdout", "boolean", "Stream the container's standard output."),
                    query("tty", "boolean", "Allocate a terminal; standard error is then merged into standard output."),
                ]
            }
            let ops = ["get", "post"].map { method in
                connect(method: method, c, gvk: core(optionsKind), what: "\(sub) into the named \(kind)", parameters: parameters)
            }
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: ops)], [])

        case "proxy":
            let gvk = core(kind + "ProxyOptions")
            let methods = ["delete", "get", "head", "options", "patch", "post", "put"]
            let plain = methods.map { method in
                connect(method: method, c, gvk: gvk, what: "proxy to the named \(kind)",
                        parameters: [query("path", "string", "The path to request on the target.")])
            }
            let withPath = methods.map { method in
                connect(method: method, c, suffix: "WithPath", gvk: gvk, what: "proxy to a path on the named \(kind)",
                        parameters: [])
            }
            return ([
                OpenAPIPath(path: c.path, parameters: c.parameters, operations: plain),
                OpenAPIPath(path: c.path + "/{path}",
                            parameters: c.parameters + [pathParameter("path", "The path to request on the target.")],
                            operations: withPath),
            ], [])

        default:
            // "status" and any other object-shaped subresource: the parent kind, read/replace/patch.
            let what = "the \(sub) of the named \(kind)"
            return ([OpenAPIPath(path: c.path, parameters: c.parameters, operations: [
                read(id: "read" + c.idStem, what: what, gvk: r.gvk, def: c.definition, tag: c.tag),
                replace(id: "replace" + c.idStem, what: what, gvk: r.gvk, def: c.definition, tag: c.tag),
                patch(id: "patch" + c.idStem, what: what, gvk: r.gvk, def: c.definition, tag: c.tag),
            ])], [])
        }
    }

    /// A "connect" operation: the reply is a raw stream, not an object. Upstream ids put the
    /// method after the group-version words: connectCoreV1PostNamespacedPodExec.
    static func connect(method: String, _ c: SubresourceContext, suffix: String = "", gvk: GroupVersionKind,
                        what: String, parameters: [OpenAPIParameter]) -> OpenAPIOperation {
        OpenAPIOperation(
            method: method, id: "connect" + c.groupVersionWords + capitalized(method) + c.subject + suffix,
            description: "Connect (\(method.uppercased())): \(what).",
            action: "connect", gvk: gvk, parameters: parameters,
            responses: [
                OpenAPIResponse(code: "200", description: "OK", payload: .text),
                OpenAPIResponse(code: "401", description: "Unauthorized", payload: nil),
            ],
            produces: ["*/*"], tag: c.tag)
    }
}
