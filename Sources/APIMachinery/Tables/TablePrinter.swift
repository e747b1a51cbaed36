import Collections

/// What a Table row carries besides its cells, chosen by the `includeObject` query parameter.
public enum IncludeObject: Sendable, Hashable {
    /// No object in the rows.
    case none
    /// `{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{...}}`; the
    /// default. kubectl needs it for the NAMESPACE column of `-A`, `--show-labels` and `-L`.
    case metadata
    /// The whole object, with kind and apiVersion; kubectl asks for it for `--sort-by`.
    case object

    /// Reads the query parameter value (`None`, `Metadata`, `Object`; empty means `Metadata`).
    /// nil for anything else, which kube-apiserver answers with 400
    /// `unrecognized includeObject value: "<value>"`.
    public init?(queryValue: String) {
        switch queryValue {
        case "None": self = .none
        case "Metadata", "": self = .metadata
        case "Object": self = .object
        default: return nil
        }
    }
}

/// Server-side printing: turns objects into the `meta.k8s.io/v1` Table that `kubectl get`
/// prints verbatim (it only adds NAMESPACE, LABELS and `-L` columns from the row objects).
///
/// Columns and cell rules follow kube-apiserver's printers for the kinds labnode serves; any
/// other resource gets the generic Name / Created At table. Like kube-apiserver, every row is
/// computed with the wide (`-o wide`) columns included; kubectl hides columns whose priority is
/// above 0 unless asked for them.
public enum TablePrinter {
    /// Builds the Table for a list (or, with one object, for a single GET or watch event).
    ///
    /// - Parameters:
    ///   - objects: the objects in list order; list items may lack kind and apiVersion.
    ///   - listResourceVersion: `metadata.resourceVersion` of the Table (the list's, or the single object's).
    ///   - continueToken: `metadata.continue`, omitted when nil or empty.
    ///   - now: the current time in unix seconds, for AGE and other "time since" cells.
    ///   - includeColumnDefinitions: false for the events after the first on a watch, which
    ///     kube-apiserver sends without column definitions.
    public static func table(resource: ResourceInfo, objects: [JSON], listResourceVersion: String?,
                             continueToken: String?, includeObject: IncludeObject, now: Double,
                             includeColumnDefinitions: Bool = true) -> JSON {
        let printer = printer(for: resource)
        var metadata = JSONObject()
        if let listResourceVersion, !listResourceVersion.isEmpty {
            metadata["resourceVersion"] = .string(listResourceVersion)
        }
        if let continueToken, !continueToken.isEmpty { metadata["continue"] = .string(continueToken) }

        var rows: [JSON] = []
        rows.reserveCapacity(objects.count)
        let context = Context(now: now)
        for object in objects {
            let content = printer.row(Fields(object), context)
            var row: JSONObject = ["cells": .array(content.cells)]
            if !content.conditions.isEmpty { row["conditions"] = .array(content.conditions) }
            switch includeObject {
            case .none: break
            case .metadata: row["object"] = partialObjectMetadata(of: object)
            case .object: row["object"] = withTypeMeta(object, resource: resource)
            }
            rows.append(.object(row))
        }

        var table: JSONObject = [
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": .object(metadata),
        ]
        table["columnDefinitions"] = .array(includeColumnDefinitions ? printer.columns.map(\.json) : [])
        table["rows"] = .array(rows)
        return .object(table)
    }

    static func partialObjectMetadata(of object: JSON) -> JSON {
        [
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": object["metadata"] ?? .object([:]),
        ]
    }

    /// List items are stored without kind and apiVersion; a row object must carry them so that
    /// kubectl can decode it (kube-apiserver converts each row object to the request's version).
    static func withTypeMeta(_ object: JSON, resource: ResourceInfo) -> JSON {
        guard var fields = object.objectValue else { return object }
        if fields["kind"]?.stringValue?.isEmpty == false, fields["apiVersion"]?.stringValue?.isEmpty == false {
            return object
        }
        fields.removeValue(forKey: "kind")
        fields.removeValue(forKey: "apiVersion")
        var result: JSONObject = ["kind": .string(resource.kind), "apiVersion": .string(resource.apiVersion)]
        result.merge(fields) { current, _ in current }
        return .object(result)
    }
}

// MARK: - Building blocks shared by the per-kind printers

extension TablePrinter {
    /// One column of a Table, as `columnDefinitions` lists it.
    struct Column: Sendable {
        var name: String
        var type: String
        var format: String = ""
        var description: String
        /// 0 = always shown; 1 = shown by `kubectl get -o wide` only.
        var priority: Int64 = 0

        var json: JSON {
            [
                "name": .string(name), "type": .string(type), "format": .string(format),
                "description": .string(description), "priority": .int(priority),
            ]
        }

        static let name = Column(name: "Name", type: "string", format: "name",
                                 description: "Name of the object, unique within its namespace (or the cluster, for cluster-scoped kinds).")
        static let age = Column(name: "Age", type: "string",
                                description: "Time since the object was created (metadata.creationTimestamp).")

        static func wide(_ name: String, _ description: String, type: String = "string") -> Column {
            Column(name: name, type: type, description: description, priority: 1)
        }
    }

    /// The cells of one row (in column order) and its row conditions.
    struct Row {
        var cells: [JSON]
        var conditions: [JSON] = []
    }

    struct Context {
        let now: Double

        func age(_ timestamp: Double?) -> String { TablePrinter.age(since: timestamp, now: now) }
        func age(of object: Fields) -> String { age(object.timestamp("metadata", "creationTimestamp")) }
    }

    struct Printer: Sendable {
        var columns: [Column]
        var row: @Sendable (Fields, Context) -> Row
    }

    /// Lenient read access to an object. A missing or mistyped field reads as its zero value,
    /// which is what kube-apiserver's typed structs hold when the field is absent.
    struct Fields {
        let json: JSON

        init(_ json: JSON?) { self.json = json ?? .null }

        subscript(_ key: String) -> Fields { Fields(json[key]) }

        func at(_ path: [String]) -> Fields { Fields(json[path: path[...]]) }

        /// Present and not null: the test for a Go pointer field being set.
        var isSet: Bool { !json.isNull }

        func string(_ path: String...) -> String { at(path).json.stringValue ?? "" }
        func int(_ path: String...) -> Int64 { at(path).json.intValue ?? 0 }
        func optionalInt(_ path: String...) -> Int64? { at(path).json.intValue }
        func bool(_ path: String...) -> Bool { at(path).json.boolValue ?? false }
        func has(_ path: String...) -> Bool { at(path).isSet }
        func array(_ path: String...) -> [Fields] { (at(path).json.arrayValue ?? []).map(Fields.init) }
        func count(_ path: String...) -> Int64 {
            let value = at(path).json
            return Int64(value.objectValue?.count ?? value.arrayValue?.count ?? 0)
        }
        /// A timestamp in unix seconds; nil when missing, null, unparseable or Go's zero time.
        func timestamp(_ path: String...) -> Double? {
            at(path).json.stringValue.flatMap(Timestamp.parse)
        }
    }

    /// Picks the printer kube-apiserver uses for the resource; unknown ones get the generic one.
    static func printer(for resource: ResourceInfo) -> Printer {
        switch (resource.group, resource.resource) {
        case ("", "pods"): return podPrinter
        case ("", "services"): return servicePrinter
        case ("", "endpoints"): return endpointsPrinter
        case ("", "namespaces"): return namespacePrinter
        case ("", "nodes"): return nodePrinter
        case ("", "configmaps"): return configMapPrinter
        case ("", "secrets"): return secretPrinter
        case ("", "serviceaccounts"): return serviceAccountPrinter
        case ("", "events"): return eventPrinter
        case ("apps", "deployments"): return deploymentPrinter
        case ("apps", "replicasets"): return replicaSetPrinter
        case ("discovery.k8s.io", "endpointslices"): return endpointSlicePrinter
        case ("coordination.k8s.io", "leases"): return leasePrinter
        default: return genericPrinter
        }
    }

    /// kube-apiserver's fallback for kinds without a printer: the name and the creation time as
    /// an RFC 3339 date (Go's zero time when there is none).
    static let genericPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Created At", type: "date",
                   description: "When the object was created (metadata.creationTimestamp), in RFC 3339 form."),
        ],
        row: { object, _ in
            let created = object.timestamp("metadata", "creationTimestamp") ?? Timestamp.goZeroTime
            return Row(cells: [.string(object.string("metadata", "name")), .string(Timestamp.format(created))])
        }
    )

    /// "a,b,c" of the containers' names and of their images.
    static func containerCells(_ containers: [Fields]) -> (names: String, images: String) {
        (containers.map { $0.string("name") }.joined(separator: ","),
         containers.map { $0.string("image") }.joined(separator: ","))
    }

    /// Up to `max` items joined by commas, then " + N more..." for the rest.
    static func listWithMore(_ items: [String], max: Int = 3, emptyText: String) -> String {
        if items.count > max {
            return items.prefix(max).joined(separator: ",") + " + \(items.count - max) more..."
        }
        return items.isEmpty ? emptyText : items.joined(separator: ",")
    }

    /// host:port, with IPv6 addresses in brackets (Go's net.JoinHostPort).
    static func joinHostPort(_ host: String, _ port: Int64) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
