import Testing
@testable import APIMachinery

/// One object and the cells kube-apiserver prints for it (wide columns included).
struct TableRowCase: Sendable, CustomTestStringConvertible {
    var label: String
    var resource: String
    var group: String = ""
    var json: String
    var cells: [String]
    var testDescription: String { "\(resource): \(label)" }
}

@Suite("Table: cells per resource")
struct TableResourceTests {
    static let meta = #""creationTimestamp":"2026-11-30T03:15:18Z""#

    static let cases: [TableRowCase] = [
        // services
        TableRowCase(label: "NodePort service from `kubectl expose`", resource: "services", json: #"""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"nginx","namespace":"default",\#(meta),"labels":{"app":"nginx"}},
             "spec":{"clusterIP":"10.96.0.3","clusterIPs":["10.96.0.3"],"ports":[{"nodePort":30081,"port":80,"protocol":"TCP","targetPort":80}],
                     "selector":{"app":"nginx"},"type":"NodePort"},"status":{"loadBalancer":{}}}
            """#, cells: ["nginx", "NodePort", "10.96.0.3", "<none>", "80:30081/TCP", "5m", "app=nginx"]),
        TableRowCase(label: "ClusterIP with two ports and no selector", resource: "services", json: #"""
            {"metadata":{"name":"kube-dns",\#(meta)},
             "spec":{"type":"ClusterIP","clusterIP":"10.96.0.10","clusterIPs":["10.96.0.10"],
                     "ports":[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}]}}
            """#, cells: ["kube-dns", "ClusterIP", "10.96.0.10", "<none>", "53/UDP,53/TCP", "5m", "<none>"]),
        TableRowCase(label: "ClusterIP with external IPs, clusterIP only, default protocol", resource: "services", json: #"""
            {"metadata":{"name":"web",\#(meta)},
             "spec":{"type":"ClusterIP","clusterIP":"10.96.0.20","externalIPs":["192.0.2.1","192.0.2.2"],"ports":[{"port":8080}],
                     "selector":{"tier":"web","app":"shop"}}}
            """#, cells: ["web", "ClusterIP", "10.96.0.20", "192.0.2.1,192.0.2.2", "8080/TCP", "5m", "app=shop,tier=web"]),
        TableRowCase(label: "LoadBalancer without ingress", resource: "services", json: #"""
            {"metadata":{"name":"lb",\#(meta)},
             "spec":{"type":"LoadBalancer","clusterIPs":["10.96.0.30"],"ports":[{"port":80,"nodePort":31000,"protocol":"TCP"}]},
             "status":{"loadBalancer":{}}}
            """#, cells: ["lb", "LoadBalancer", "10.96.0.30", "<pending>", "80:31000/TCP", "5m", "<none>"]),
        TableRowCase(label: "LoadBalancer with ingress and external IPs", resource: "services", json: #"""
            {"metadata":{"name":"lb",\#(meta)},
             "spec":{"type":"LoadBalancer","clusterIPs":["10.96.0.30"],"externalIPs":["192.0.2.9"],
                     "ports":[{"port":80,"nodePort":31000,"protocol":"TCP"}]},
             "status":{"loadBalancer":{"ingress":[{"ip":"203.0.113.7"},{"hostname":"lb.example.com"},{"ip":"203.0.113.7"}]}}}
            """#, cells: ["lb", "LoadBalancer", "10.96.0.30", "203.0.113.7,lb.example.com,192.0.2.9", "80:31000/TCP", "5m", "<none>"]),
        TableRowCase(label: "ExternalName", resource: "services", json: #"""
            {"metadata":{"name":"ext",\#(meta)},"spec":{"type":"ExternalName","externalName":"db.example.com"}}
            """#, cells: ["ext", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"]),
        TableRowCase(label: "headless", resource: "services", json: #"""
            {"metadata":{"name":"db",\#(meta)},"spec":{"type":"ClusterIP","clusterIP":"None","clusterIPs":["None"],
             "ports":[{"port":5432,"protocol":"TCP"}],"selector":{"app":"db"}}}
            """#, cells: ["db", "ClusterIP", "None", "<none>", "5432/TCP", "5m", "app=db"]),

        // endpoints
        TableRowCase(label: "two addresses", resource: "endpoints", json: #"""
            {"metadata":{"name":"nginx",\#(meta)},"subsets":[{"addresses":[{"ip":"10.244.0.5"},{"ip":"10.244.0.6"}],
             "notReadyAddresses":[{"ip":"10.244.0.7"}],"ports":[{"port":80,"protocol":"TCP"}]}]}
            """#, cells: ["nginx", "10.244.0.5:80,10.244.0.6:80", "5m"]),
        TableRowCase(label: "more than three entries are cut", resource: "endpoints", json: #"""
            {"metadata":{"name":"dns",\#(meta)},"subsets":[{"addresses":[{"ip":"10.0.0.1"},{"ip":"10.0.0.2"}],
             "ports":[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}]}]}
            """#, cells: ["dns", "10.0.0.1:53,10.0.0.2:53,10.0.0.1:53 + 1 more...", "5m"]),
        TableRowCase(label: "several subsets, headless without ports, IPv6", resource: "endpoints", json: #"""
            {"metadata":{"name":"mixed",\#(meta)},"subsets":[{"addresses":[{"ip":"10.0.0.1"}]},
             {"addresses":[{"ip":"fd00::1"}],"ports":[{"port":8080}]}]}
            """#, cells: ["mixed", "10.0.0.1,[fd00::1]:8080", "5m"]),
        TableRowCase(label: "no subsets", resource: "endpoints", json: #"{"metadata":{"name":"none",\#(meta)}}"#,
                     cells: ["none", "<none>", "5m"]),
        TableRowCase(label: "subsets with only not-ready addresses", resource: "endpoints", json: #"""
            {"metadata":{"name":"starting",\#(meta)},"subsets":[{"notReadyAddresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}
            """#, cells: ["starting", "", "5m"]),

        // namespaces
        TableRowCase(label: "active", resource: "namespaces", json: #"""
            {"metadata":{"name":"default",\#(meta)},"spec":{"finalizers":["kubernetes"]},"status":{"phase":"Active"}}
            """#, cells: ["default", "Active", "5m"]),
        TableRowCase(label: "terminating", resource: "namespaces", json: #"""
            {"metadata":{"name":"old","creationTimestamp":"2026-11-20T03:15:18Z"},"status":{"phase":"Terminating"}}
            """#, cells: ["old", "Terminating", "10d"]),

        // nodes
        TableRowCase(label: "ready control-plane node", resource: "nodes", json: #"""
            {"metadata":{"name":"lab","creationTimestamp":"2026-11-30T01:15:18Z",
              "labels":{"node-role.kubernetes.io/control-plane":"","kubernetes.io/hostname":"lab","node-role.kubernetes.io/worker":""}},
             "status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}],
                       "addresses":[{"type":"Hostname","address":"lab"},{"type":"InternalIP","address":"192.168.5.2"}],
                       "nodeInfo":{"kubeletVersion":"v1.33.0-lab","osImage":"Debian GNU/Linux 12 (bookworm)",
                                   "kernelVersion":"6.1.0-28-amd64","containerRuntimeVersion":"labnode://0.1.0"}}}
            """#, cells: ["lab", "Ready", "control-plane,worker", "125m", "v1.33.0-lab", "192.168.5.2", "<none>",
                          "Debian GNU/Linux 12 (bookworm)", "6.1.0-28-amd64", "labnode://0.1.0"]),
        TableRowCase(label: "cordoned, not ready, legacy role label", resource: "nodes", json: #"""
            {"metadata":{"name":"n2",\#(meta),"labels":{"kubernetes.io/role":"edge"}},"spec":{"unschedulable":true},
             "status":{"conditions":[{"type":"Ready","status":"Unknown"}],
                       "addresses":[{"type":"ExternalIP","address":"203.0.113.5"}]}}
            """#, cells: ["n2", "NotReady,SchedulingDisabled", "edge", "5m", "", "<none>", "203.0.113.5",
                          "<unknown>", "<unknown>", "<unknown>"]),
        TableRowCase(label: "no Ready condition", resource: "nodes", json: #"{"metadata":{"name":"n3",\#(meta)}}"#,
                     cells: ["n3", "Unknown", "<none>", "5m", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]),

        // configmaps, secrets, serviceaccounts
        TableRowCase(label: "data and binaryData both count", resource: "configmaps", json: #"""
            {"metadata":{"name":"cfg",\#(meta)},"data":{"a":"1","b":"2"},"binaryData":{"c":"AA=="}}
            """#, cells: ["cfg", "3", "5m"]),
        TableRowCase(label: "empty", resource: "configmaps", json: #"{"metadata":{"name":"kube-root-ca.crt",\#(meta)}}"#,
                     cells: ["kube-root-ca.crt", "0", "5m"]),
        TableRowCase(label: "opaque", resource: "secrets", json: #"""
            {"metadata":{"name":"creds",\#(meta)},"type":"Opaque","data":{"user":"YQ==","pass":"Yg=="}}
            """#, cells: ["creds", "Opaque", "2", "5m"]),
        TableRowCase(label: "tls", resource: "secrets", json: #"""
            {"metadata":{"name":"tls",\#(meta)},"type":"kubernetes.io/tls","data":{"tls.crt":"","tls.key":""}}
            """#, cells: ["tls", "kubernetes.io/tls", "2", "5m"]),
        TableRowCase(label: "default", resource: "serviceaccounts", json: #"""
            {"metadata":{"name":"default",\#(meta)},"secrets":[{"name":"old-token"}]}
            """#, cells: ["default", "5m"]),

        // events
        TableRowCase(label: "core/v1 event with counts", resource: "events", json: #"""
            {"metadata":{"name":"web.17c1a",\#(meta)},"involvedObject":{"kind":"Pod","name":"web","fieldPath":"spec.containers{app}"},
             "reason":"Pulled","message":"  Successfully pulled image \"nginx\"\n","type":"Normal",
             "source":{"component":"kubelet","host":"lab"},"firstTimestamp":"2026-11-30T03:15:18Z",
             "lastTimestamp":"2026-11-30T03:19:18Z","count":3}
            """#, cells: ["60s", "Normal", "Pulled", "pod/web", "spec.containers{app}", "kubelet, lab",
                          "Successfully pulled image \"nginx\"", "5m", "3", "web.17c1a"]),
        TableRowCase(label: "events.k8s.io style: eventTime, reporting controller, no count", resource: "events", json: #"""
            {"metadata":{"name":"nginx.1",\#(meta)},"involvedObject":{"kind":"Deployment","name":"nginx"},
             "reason":"ScalingReplicaSet","message":"Scaled up replica set nginx-f49856cb1c to 1","type":"Normal",
             "eventTime":"2026-11-30T03:16:17.900000Z","reportingComponent":"deployment-controller","reportingInstance":"",
             "source":{}}
            """#, cells: ["4m", "Normal", "ScalingReplicaSet", "deployment/nginx", "", "deployment-controller",
                          "Scaled up replica set nginx-f49856cb1c to 1", "4m", "1", "nginx.1"]),
        TableRowCase(label: "series overrides last seen and count; object without name", resource: "events", json: #"""
            {"metadata":{"name":"n.2",\#(meta)},"involvedObject":{"kind":"Node"},"reason":"Rebooted","type":"Warning",
             "eventTime":"2026-11-30T03:15:18.000000Z","series":{"count":7,"lastObservedTime":"2026-11-30T03:20:08.000000Z"},
             "reportingComponent":"kubelet","reportingInstance":"lab"}
            """#, cells: ["10s", "Warning", "Rebooted", "node", "", "kubelet, lab", "", "5m", "7", "n.2"]),

        // deployments
        TableRowCase(label: "created by `kubectl create deployment`", resource: "deployments", group: "apps", json: #"""
            {"metadata":{"name":"nginx",\#(meta)},
             "spec":{"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},
                     "template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"},
                                                                                     {"name":"log","image":"busybox"}]}}},
             "status":{"replicas":3,"updatedReplicas":3,"readyReplicas":2,"availableReplicas":2}}
            """#, cells: ["nginx", "2/3", "3", "2", "5m", "nginx,log", "nginx:1.27,busybox", "app=nginx"]),
        TableRowCase(label: "fresh, no status, replicas defaulted, empty selector", resource: "deployments", group: "apps",
                     json: #"{"metadata":{"name":"new",\#(meta)},"spec":{"selector":{},"template":{"spec":{"containers":[]}}}}"#,
                     cells: ["new", "0/1", "0", "0", "5m", "", "", ""]),
        TableRowCase(label: "invalid selector", resource: "deployments", group: "apps", json: #"""
            {"metadata":{"name":"bad",\#(meta)},"spec":{"replicas":0,"selector":{"matchExpressions":[{"key":"a","operator":"Bogus"}]}}}
            """#, cells: ["bad", "0/0", "0", "0", "5m", "", "", "<invalid>"]),

        // replicasets
        TableRowCase(label: "owned by a deployment", resource: "replicasets", group: "apps", json: #"""
            {"metadata":{"name":"nginx-f49856cb1c",\#(meta)},
             "spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx","pod-template-hash":"f49856cb1c"}},
                     "template":{"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}},
             "status":{"replicas":1,"readyReplicas":1,"availableReplicas":1}}
            """#, cells: ["nginx-f49856cb1c", "1", "1", "1", "5m", "nginx", "nginx", "app=nginx,pod-template-hash=f49856cb1c"]),
        TableRowCase(label: "empty selector prints <none>", resource: "replicasets", group: "apps",
                     json: #"{"metadata":{"name":"rs",\#(meta)},"spec":{"replicas":2,"selector":{}}}"#,
                     cells: ["rs", "2", "0", "0", "5m", "", "", "<none>"]),

        // endpointslices
        TableRowCase(label: "IPv4 slice", resource: "endpointslices", group: "discovery.k8s.io", json: #"""
            {"metadata":{"name":"nginx-abcde",\#(meta)},"addressType":"IPv4",
             "ports":[{"name":"","port":80,"protocol":"TCP"}],
             "endpoints":[{"addresses":["10.244.0.5"],"conditions":{"ready":true}},{"addresses":["10.244.0.6"]}]}
            """#, cells: ["nginx-abcde", "IPv4", "80", "10.244.0.5,10.244.0.6", "5m"]),
        TableRowCase(label: "many endpoints, unnumbered ports", resource: "endpointslices", group: "discovery.k8s.io", json: #"""
            {"metadata":{"name":"big",\#(meta)},"addressType":"IPv4",
             "ports":[{"name":"http"},{}],
             "endpoints":[{"addresses":["10.0.0.1"]},{"addresses":["10.0.0.2"]},{"addresses":["10.0.0.3"]},{"addresses":["10.0.0.4"]},
                          {"addresses":["10.0.0.5"]}]}
            """#, cells: ["big", "IPv4", "http,*", "10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...", "5m"]),
        TableRowCase(label: "empty slice", resource: "endpointslices", group: "discovery.k8s.io",
                     json: #"{"metadata":{"name":"empty",\#(meta)},"addressType":"IPv4","ports":null,"endpoints":null}"#,
                     cells: ["empty", "IPv4", "<unset>", "<unset>", "5m"]),

        // leases
        TableRowCase(label: "held", resource: "leases", group: "coordination.k8s.io", json: #"""
            {"metadata":{"name":"lab",\#(meta)},"spec":{"holderIdentity":"lab","leaseDurationSeconds":40,
             "renewTime":"2026-11-30T03:20:00.000000Z"}}
            """#, cells: ["lab", "lab", "5m"]),
        TableRowCase(label: "free", resource: "leases", group: "coordination.k8s.io",
                     json: #"{"metadata":{"name":"free",\#(meta)},"spec":{}}"#, cells: ["free", "", "5m"]),

        // generic table
        TableRowCase(label: "resources without a printer show Created At", resource: "bindings",
                     json: #"{"metadata":{"name":"web",\#(meta)},"target":{"kind":"Node","name":"lab"}}"#,
                     cells: ["web", "2026-11-30T03:15:18Z"]),
        TableRowCase(label: "no creation time is Go's zero time", resource: "bindings",
                     json: #"{"metadata":{"name":"web"}}"#, cells: ["web", "0001-01-01T00:00:00Z"]),
    ]

    @Test("cells match kube-apiserver", arguments: cases)
    func cells(c: TableRowCase) throws {
        let resource = try tableResource(c.resource, group: c.group)
        let cells = try tableCellTexts(tableCells(resource, c.json))
        #expect(cells == c.cells)
    }

    @Test("count-like cells are JSON integers where kube-apiserver sends integers")
    func integerCells() throws {
        let deployment = try tableCells(try tableResource("deployments", group: "apps"), #"""
            {"metadata":{"name":"d"},"spec":{"replicas":2},"status":{"updatedReplicas":2,"availableReplicas":1}}
            """#)
        #expect(deployment[1] == .string("0/2"))
        #expect(deployment[2] == .int(2))
        #expect(deployment[3] == .int(1))
        let configMap = try tableCells(try tableResource("configmaps"), #"{"metadata":{"name":"c"},"data":{"k":"v"}}"#)
        #expect(configMap[1] == .int(1))
        let replicaSet = try tableCells(try tableResource("replicasets", group: "apps"), #"{"metadata":{"name":"r"},"spec":{"replicas":4}}"#)
        #expect(replicaSet[1] == .int(4))
    }

    @Test("a resource outside Resources.all gets the generic table")
    func unknownResource() throws {
        let rc = ResourceInfo(group: "", version: "v1", resource: "replicationcontrollers", singular: "replicationcontroller",
                              kind: "ReplicationController", namespaced: true, definition: "io.k8s.api.core.v1.ReplicationController")
        #expect(tableColumnNames(rc) == ["Name", "Created At"])
        let table = TablePrinter.table(resource: rc, objects: [], listResourceVersion: nil, continueToken: nil,
                                       includeObject: .metadata, now: 0)
        #expect(table["columnDefinitions"]?.arrayValue?.last?["type"] == "date")
    }

    @Test("column names per resource", arguments: [
        ("services", "", ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]),
        ("pods", "", ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]),
        ("endpoints", "", ["Name", "Endpoints", "Age"]),
        ("namespaces", "", ["Name", "Status", "Age"]),
        ("nodes", "", ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image",
                       "Kernel-Version", "Container-Runtime"]),
        ("configmaps", "", ["Name", "Data", "Age"]),
        ("secrets", "", ["Name", "Type", "Data", "Age"]),
        ("serviceaccounts", "", ["Name", "Age"]),
        ("events", "", ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count", "Name"]),
        ("deployments", "apps", ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"]),
        ("replicasets", "apps", ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"]),
        ("endpointslices", "discovery.k8s.io", ["Name", "AddressType", "Ports", "Endpoints", "Age"]),
        ("leases", "coordination.k8s.io", ["Name", "Holder", "Age"]),
        ("bindings", "", ["Name", "Created At"]),
    ])
    func columnNames(resource: String, group: String, expected: [String]) throws {
        #expect(tableColumnNames(try tableResource(resource, group: group)) == expected)
    }
}
