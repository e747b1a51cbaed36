import APIMachinery

/// Definition names the generator needs to know by heart: the scalar wrappers that have a
/// special OpenAPI shape, and the apimachinery types every REST operation refers to.
enum OpenAPINames {
    static let time = "io.k8s.apimachinery.pkg.apis.meta.v1.Time"
    static let intOrString = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    static let quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"
    static let objectMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    static let listMeta = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    static let status = "io.k8s.apimachinery.pkg.apis.meta.v1.Status"
    static let statusDetails = "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails"
    static let statusCause = "io.k8s.apimachinery.pkg.apis.meta.v1.StatusCause"
    static let deleteOptions = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    static let preconditions = "io.k8s.apimachinery.pkg.apis.meta.v1.Preconditions"
    static let patch = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
    static let scale = "io.k8s.api.autoscaling.v1.Scale"
    static let scaleSpec = "io.k8s.api.autoscaling.v1.ScaleSpec"
    static let scaleStatus = "io.k8s.api.autoscaling.v1.ScaleStatus"

    /// Scalars whose schema is not an object with properties, so they are rendered by hand
    /// (and differently in swagger 2.0 and OpenAPI 3) instead of from a `TypeDefinition`.
    static let scalars: Set<String> = [time, intOrString, quantity]
}

/// Definitions the documents need even when the type registry does not describe them:
/// list metadata, Status, DeleteOptions, the patch body and the autoscaling/v1 Scale of the
/// `scale` subresource. A registry definition with the same name always wins.
///
/// Field numbers are 0 on purpose: these exist only to be rendered as OpenAPI, never to
/// decode protobuf.
enum OpenAPIBuiltins {
    static func typeMeta() -> [Field] {
        [
            Field("apiVersion", 0, .string(), "The versioned schema this object follows, e.g. \"v1\" or \"apps/v1\"."),
            Field("kind", 0, .string(), "The kind of object, in CamelCase, e.g. \"Pod\"."),
        ]
    }

    static let definitions: [TypeDefinition] = [
        TypeDefinition(
            OpenAPINames.listMeta,
            "Metadata of a list: the resource version it was read at and how to continue a chunked read.",
            fields: [
                Field("continue", 0, .string(), "Opaque token to fetch the next chunk of a limited list; empty on the last chunk."),
                Field("remainingItemCount", 0, .integer(format: "int64"), "How many items are left after this chunk, when the server can tell."),
                Field("resourceVersion", 0, .string(), "The store revision this list was read at; start a watch from it."),
                Field("selfLink", 0, .string(), "Deprecated and never set."),
            ]),
        TypeDefinition(
            OpenAPINames.status,
            "The result of an operation that does not return an object, and the body of every error.",
            gvks: [GroupVersionKind(group: "", version: "v1", kind: "Status")],
            fields: typeMeta() + [
                Field("code", 0, .integer(), "The HTTP status code of this result."),
                Field("details", 0, .ref(OpenAPINames.statusDetails), "Extra data about the failure, depending on the reason."),
                Field("message", 0, .string(), "A human-readable explanation of what happened."),
                Field("metadata", 0, .ref(OpenAPINames.listMeta), "Standard list metadata."),
                Field("reason", 0, .string(), "A machine-readable word for why the operation failed, e.g. NotFound."),
                Field("status", 0, .string(), "\"Success\" or \"Failure\"."),
            ]),
        TypeDefinition(
            OpenAPINames.statusDetails,
            "Which object a Status is about and, for invalid requests, what was wrong with it.",
            fields: [
                Field("causes", 0, .array(.ref(OpenAPINames.statusCause)), "One entry per problem found, e.g. per invalid field."),
                Field("group", 0, .string(), "API group of the object."),
                Field("kind", 0, .string(), "Resource or kind of the object."),
                Field("name", 0, .string(), "Name of the object."),
                Field("retryAfterSeconds", 0, .integer(), "Seconds to wait before retrying, when the server asks for it."),
                Field("uid", 0, .string(), "UID of the object."),
            ]),
        TypeDefinition(
            OpenAPINames.statusCause,
            "One problem found while handling a request.",
            fields: [
                Field("field", 0, .string(), "Path of the field at fault, e.g. \"spec.ports[0].port\"."),
                Field("message", 0, .string(), "What is wrong, in words."),
                Field("reason", 0, .string(), "Machine-readable kind of problem, e.g. FieldValueRequired."),
            ]),
        TypeDefinition(
            OpenAPINames.deleteOptions,
            "Options for a DELETE request.",
            gvks: [GroupVersionKind(group: "", version: "v1", kind: "DeleteOptions")],
            fields: typeMeta() + [
                Field("dryRun", 0, .array(.string(), .atomic), "\"All\" to run every step without saving the result."),
                Field("gracePeriodSeconds", 0, .integer(format: "int64"), "Seconds to wait before the object is removed; 0 means now."),
                Field("orphanDependents", 0, .boolean, "Deprecated; use propagationPolicy."),
                Field("preconditions", 0, .ref(OpenAPINames.preconditions), "Conditions that must hold, or the deletion fails with 409 Conflict."),
                Field("propagationPolicy", 0, .string(enumValues: ["Background", "Foreground", "Orphan"]), "What happens to objects owned by this one."),
            ]),
        TypeDefinition(
            OpenAPINames.preconditions,
            "Conditions an object must meet for a deletion to go ahead.",
            fields: [
                Field("resourceVersion", 0, .string(), "The object must still be at this resource version."),
                Field("uid", 0, .string(), "The object must still have this UID."),
            ]),
        TypeDefinition(
            OpenAPINames.patch,
            "A patch body: JSON patch, merge patch, strategic merge patch or an apply configuration, as the Content-Type says.",
            fields: []),
        TypeDefinition(
            OpenAPINames.scale,
            "The scale subresource: desired and observed replica counts of a scalable object.",
            gvks: [GroupVersionKind(group: "autoscaling", version: "v1", kind: "Scale")],
            fields: typeMeta() + [
                Field("metadata", 0, .ref(OpenAPINames.objectMeta), "Metadata of the scaled object."),
                Field("spec", 0, .ref(OpenAPINames.scaleSpec), "The desired number of replicas."),
                Field("status", 0, .ref(OpenAPINames.scaleStatus), "The observed number of replicas."),
            ]),
        TypeDefinition(
            OpenAPINames.scaleSpec,
            "Desired state of a scale subresource.",
            fields: [Field("replicas", 0, .integer(), "Desired number of replicas.")]),
        TypeDefinition(
            OpenAPINames.scaleStatus,
            "Observed state of a scale subresource.",
            fields: [
                Field("replicas", 0, .integer(), "Number of replicas seen.", required: true),
                Field("selector", 0, .string(), "Label selector of the pods counted, in query-string form (app=nginx)."),
            ]),
    ]

    /// The `<Kind>List` definition of a listable resource, for registries that do not describe it.
    static func list(of resource: ResourceInfo, itemDefinition: String) -> TypeDefinition {
        TypeDefinition(
            itemDefinition + "List",
            "A list of \(resource.kind) objects.",
            gvks: [GroupVersionKind(group: resource.group, version: resource.version, kind: resource.listKind)],
            fields: typeMeta() + [
                Field("items", 0, .array(.ref(itemDefinition)), "The \(resource.kind) objects.", required: true),
                Field("metadata", 0, .ref(OpenAPINames.listMeta), "Standard list metadata."),
            ])
    }

    /// Stands in for a kind the registry does not describe, so that kubectl still finds the
    /// kind (explain, the fieldValidation check) and every `$ref` resolves.
    static func placeholder(name: String, gvk: GroupVersionKind, hasObjectMeta: Bool) -> TypeDefinition {
        var fields = typeMeta()
        if hasObjectMeta {
            fields.append(Field("metadata", 0, .ref(OpenAPINames.objectMeta), "Standard object metadata."))
        }
        return TypeDefinition(
            name,
            "\(gvk.kind) (labnode does not describe the fields of this kind; the server accepts them as sent).",
            gvks: [gvk],
            fields: fields)
    }

    /// The scalar wrappers, rendered per dialect. Swagger 2.0 has no `oneOf`, so there
    /// IntOrString and Quantity are strings with a format, as kube-apiserver serves them.
    static func scalar(_ name: String, dialect: OpenAPIDialect) -> JSONObject? {
        switch name {
        case OpenAPINames.time:
            return [
                "description": "A timestamp in RFC 3339 form, e.g. \"2024-05-01T12:00:00Z\".",
                "format": "date-time",
                "type": "string",
            ]
        case OpenAPINames.intOrString:
            var o: JSONObject = [
                "description": "Either an integer or a string, e.g. a port number (80) or a port name (\"http\").",
                "format": "int-or-string",
                "x-kubernetes-int-or-string": true,
            ]
            switch dialect {
            case .v2: o["type"] = "string"
            case .v3: o["oneOf"] = [["type": "integer"], ["type": "string"]]
            }
            return o
        case OpenAPINames.quantity:
            var o: JSONObject = [
                "description": "An amount with an optional unit suffix, e.g. \"500m\" CPU or \"128Mi\" memory.",
            ]
            switch dialect {
            case .v2: o["type"] = "string"
            case .v3: o["oneOf"] = [["type": "string"], ["type": "number"]]
            }
            return o
        default:
            return nil
        }
    }
}
