import Testing
@testable import APIMachinery

@Suite("Table: envelope, columns and row objects")
struct TablePrinterTests {
    static let service = #"""
        {"metadata":{"name":"nginx","namespace":"default","uid":"e5e0fd26","resourceVersion":"1016",
          "creationTimestamp":"2026-11-30T03:15:18Z","labels":{"app":"nginx"}},
         "spec":{"clusterIP":"10.96.0.3","clusterIPs":["10.96.0.3"],"type":"NodePort",
                 "ports":[{"port":80,"nodePort":30081,"protocol":"TCP"}],"selector":{"app":"nginx"}}}
        """#

    func serviceTable(_ include: IncludeObject, columns: Bool = true) throws -> JSON {
        TablePrinter.table(resource: try tableResource("services"), objects: [try JSON.parse(Self.service)],
                           listResourceVersion: "1018", continueToken: nil, includeObject: include,
                           now: tableFixtureNow, includeColumnDefinitions: columns)
    }

    @Test("envelope: kind, apiVersion, metadata, column definitions, rows")
    func envelope() throws {
        let table = try serviceTable(.metadata)
        #expect(table["kind"] == "Table")
        #expect(table["apiVersion"] == "meta.k8s.io/v1")
        #expect(table["metadata"] == ["resourceVersion": "1018"])
        let first = table["columnDefinitions"]?.arrayValue?.first
        #expect(first == ["name": "Name", "type": "string", "format": "name", "description": first?["description"] ?? "",
                          "priority": 0])
        #expect(first?["description"]?.stringValue?.isEmpty == false)
        #expect(table["rows"]?.arrayValue?.count == 1)
    }

    @Test("metadata carries continue when given and omits empty values")
    func listMetadata() throws {
        let resource = try tableResource("pods")
        let paged = TablePrinter.table(resource: resource, objects: [], listResourceVersion: "55", continueToken: "abc",
                                       includeObject: .metadata, now: 0)
        #expect(paged["metadata"] == ["resourceVersion": "55", "continue": "abc"])
        #expect(paged["rows"] == .array([]))
        let bare = TablePrinter.table(resource: resource, objects: [], listResourceVersion: "", continueToken: nil,
                                      includeObject: .metadata, now: 0)
        #expect(bare["metadata"] == .object([:]))
    }

    @Test("includeObject=Metadata gives PartialObjectMetadata with the full metadata")
    func includeMetadata() throws {
        let row = try serviceTable(.metadata)["rows"]?.arrayValue?.first
        let object = row?["object"]
        #expect(object?["kind"] == "PartialObjectMetadata")
        #expect(object?["apiVersion"] == "meta.k8s.io/v1")
        #expect(object?[path: "metadata"] == (try JSON.parse(Self.service))["metadata"])
        #expect(object?["spec"] == nil)
    }

    @Test("includeObject=Object gives the whole object with kind and apiVersion filled in")
    func includeObject() throws {
        let object = try serviceTable(.object)["rows"]?.arrayValue?.first?["object"]
        #expect(object?["kind"] == "Service")
        #expect(object?["apiVersion"] == "v1")
        #expect(object?[path: "spec", "clusterIP"] == "10.96.0.3")
        #expect(object?.objectValue?.keys.first == "kind", "type meta comes first, as kube-apiserver writes it")

        let deployment = try JSON.parse(#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"}}"#)
        let table = TablePrinter.table(resource: try tableResource("deployments", group: "apps"), objects: [deployment],
                                       listResourceVersion: nil, continueToken: nil, includeObject: .object, now: 0)
        #expect(table["rows"]?.arrayValue?.first?["object"] == deployment, "objects that carry type meta are unchanged")
    }

    @Test("includeObject=None leaves the object out")
    func includeNone() throws {
        let row = try serviceTable(.none)["rows"]?.arrayValue?.first
        #expect(row?["object"] == nil)
        #expect(row?["cells"]?.arrayValue?.count == 7)
    }

    @Test("includeObject query values", arguments: [
        ("None", IncludeObject.none), ("Metadata", .metadata), ("Object", .object), ("", .metadata),
    ])
    func includeObjectQuery(value: String, expected: IncludeObject) {
        #expect(IncludeObject(queryValue: value) == expected)
    }

    @Test("unknown includeObject values are rejected")
    func includeObjectQueryRejects() {
        #expect(IncludeObject(queryValue: "object") == nil)
        #expect(IncludeObject(queryValue: "All") == nil)
    }

    @Test("watch events after the first carry no column definitions")
    func withoutColumnDefinitions() throws {
        let table = try serviceTable(.metadata, columns: false)
        #expect(table["columnDefinitions"] == .array([]))
        #expect(table["rows"]?.arrayValue?.first?["cells"]?.arrayValue?.count == 7)
    }

    @Test("the nginx service row matches the recorded kubectl transcript")
    func nginxService() throws {
        let cells = try serviceTable(.metadata)["rows"]?.arrayValue?.first?["cells"]
        #expect(cells == ["nginx", "NodePort", "10.96.0.3", "<none>", "80:30081/TCP", "5m", "app=nginx"])
    }

    @Test("wide-only columns have priority 1, the others 0", arguments: [
        ("pods", "", ["IP", "Node", "Nominated Node", "Readiness Gates"]),
        ("services", "", ["Selector"]),
        ("nodes", "", ["Internal-IP", "External-IP", "OS-Image", "Kernel-Version", "Container-Runtime"]),
        ("events", "", ["Subobject", "Source", "First Seen", "Count", "Name"]),
        ("deployments", "apps", ["Containers", "Images", "Selector"]),
        ("replicasets", "apps", ["Containers", "Images", "Selector"]),
        ("endpoints", "", []),
        ("configmaps", "", []),
    ])
    func widePriorities(resource: String, group: String, wide: [String]) throws {
        let table = TablePrinter.table(resource: try tableResource(resource, group: group), objects: [],
                                       listResourceVersion: nil, continueToken: nil, includeObject: .metadata, now: 0)
        for column in table["columnDefinitions"]?.arrayValue ?? [] {
            let name = column["name"]?.stringValue ?? ""
            #expect(column["priority"] == .int(wide.contains(name) ? 1 : 0), "\(resource) column \(name)")
        }
    }

    /// Events are the one kind whose Name column is neither first nor always shown: kube-apiserver
    /// leads with Last Seen and keeps the event's own name for `-o wide`.
    @Test("every served resource has a Name column with format name, first except for events",
          arguments: Resources.all)
    func nameColumn(resource: ResourceInfo) {
        let table = TablePrinter.table(resource: resource, objects: [], listResourceVersion: nil, continueToken: nil,
                                       includeObject: .metadata, now: 0)
        let columns = table["columnDefinitions"]?.arrayValue ?? []
        let nameColumns = columns.filter { $0["format"] == "name" }
        #expect(nameColumns.count == 1)
        #expect(nameColumns.first?["name"] == "Name")
        if resource.resource == "events" {
            #expect(columns.last?["format"] == "name")
            #expect(columns.last?["priority"] == 1)
        } else {
            #expect(columns.first?["name"] == "Name")
            #expect(columns.first?["format"] == "name")
            #expect(columns.first?["priority"] == 0)
        }
    }

    @Test("every row has one cell per column, for empty and for busy objects", arguments: Resources.all)
    func cellCount(resource: ResourceInfo) throws {
        let empty = JSON.object([:])
        let busy = try JSON.parse(#"""
            {"metadata":{"name":"x","creationTimestamp":"2026-11-30T03:15:18Z","deletionTimestamp":"2026-11-30T03:19:18Z",
              "labels":{"node-role.kubernetes.io/control-plane":""}},
             "spec":{"replicas":2,"containers":[{"name":"a","image":"i"}],"initContainers":[{"name":"b"}],"ports":[{"port":1}],
                     "selector":{"app":"x"},"template":{"spec":{"containers":[{"name":"a","image":"i"}]}}},
             "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],
                       "containerStatuses":[{"name":"a","state":{"running":{}},"ready":true}],"addresses":[]},
             "subsets":[{"addresses":[{"ip":"1.2.3.4"}]}],"endpoints":[{"addresses":["1.2.3.4"]}],"ports":[{"port":1}],
             "data":{"k":"v"},"involvedObject":{"kind":"Pod","name":"x"}}
            """#)
        let table = TablePrinter.table(resource: resource, objects: [empty, busy], listResourceVersion: nil,
                                       continueToken: nil, includeObject: .none, now: tableFixtureNow)
        let columnCount = table["columnDefinitions"]?.arrayValue?.count ?? -1
        for row in table["rows"]?.arrayValue ?? [] {
            let cells = row["cells"]?.arrayValue ?? []
            #expect(cells.count == columnCount, "\(resource.resource)")
            #expect(cells.allSatisfy { $0.stringValue != nil || $0.intValue != nil }, "\(resource.resource): \(cells)")
        }
    }

    @Test("column types are the ones kubectl understands")
    func columnTypes() throws {
        let allowed: Set<String> = ["string", "integer", "number", "boolean", "date"]
        for resource in Resources.all {
            let table = TablePrinter.table(resource: resource, objects: [], listResourceVersion: nil, continueToken: nil,
                                           includeObject: .none, now: 0)
            for column in table["columnDefinitions"]?.arrayValue ?? [] {
                #expect(allowed.contains(column["type"]?.stringValue ?? ""), "\(resource.resource): \(column)")
                #expect(column["description"]?.stringValue?.isEmpty == false, "\(resource.resource): \(column)")
            }
        }
    }
}
