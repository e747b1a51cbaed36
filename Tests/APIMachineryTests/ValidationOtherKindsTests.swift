import Testing
@testable import APIMachinery

@Suite("ConfigMap, Secret, Namespace and the other kinds")
struct ValidationOtherKindsTests {
    typealias S = ValidationTestSupport

    static let cases: [(kind: String, group: String, json: String, namespaced: Bool, expected: [String])] = [
        ("ConfigMap", "", #"{"metadata":{"name":"cfg","namespace":"default"},"data":{"app.properties":"x","a/b":"y"}}"#, true,
         ["data[a/b]: Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
        ("ConfigMap", "", #"{"metadata":{"name":"cfg","namespace":"default"},"data":{"k":"v"},"binaryData":{"k":"AAAA"}}"#, true,
         ["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]),
        ("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"data":{"password":"cGFzcw=="},"stringData":{"user":"admin"}}"#, true, []),
        ("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"type":"kubernetes.io/tls","data":{"tls.crt":""}}"#, true,
         ["data[tls.key]: Required value"]),
        ("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"data":{"x":"not base64!"}}"#, true,
         ["data[x]: Invalid value: illegal base64 data at input byte 3"]),
        ("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"type":"kubernetes.io/dockerconfigjson","data":{".dockerconfigjson":"e30K"}}"#, true, []),
        ("Namespace", "", #"{"metadata":{"name":"team.a"}}"#, false,
         ["metadata.name: Invalid value: \"team.a\": must not contain dots"]),
        ("Namespace", "", #"{"metadata":{"name":"Team-A"}}"#, false,
         ["metadata.name: Invalid value: \"Team-A\": " + S.labelMessage]),
        ("Namespace", "", #"{"metadata":{"name":"dev"},"spec":{"finalizers":["custom"]}}"#, false,
         ["spec.finalizers: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"]),
        ("ServiceAccount", "", #"{"metadata":{"name":"builder","namespace":"ci"}}"#, true, []),
        ("Endpoints", "", #"{"metadata":{"name":"web","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.244.0.5"},{"ip":"nope"}],"ports":[{"port":80},{"port":0,"name":"b"}]}]}"#, true,
         ["subsets[0].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
          "subsets[0].addresses[1].ip: Invalid value: \"nope\": must be a valid IP address",
          "subsets[0].ports[0].name: Required value",
          "subsets[0].ports[1].port: Invalid value: 0: " + S.portRange]),
        ("Endpoints", "", #"{"metadata":{"name":"web","namespace":"default"},"subsets":[{"ports":[{"port":80}]}]}"#, true,
         ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]),
        ("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"web-abc","namespace":"default"},"addressType":"IPv4","endpoints":[{"addresses":["10.244.0.5"]}],"ports":[{"port":80}]}"#, true, []),
        ("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"web-abc","namespace":"default"},"addressType":"IP4","endpoints":[{"addresses":[]}],"ports":[{"name":"Web","port":80}]}"#, true,
         ["addressType: Unsupported value: \"IP4\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
          "endpoints[0].addresses: Required value: must contain at least 1 address",
          "ports[0].name: Invalid value: \"Web\": " + S.labelMessage]),
        ("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"web-abc","namespace":"default"},"addressType":"IPv4","endpoints":[{"addresses":["fd00::1"]}]}"#, true,
         ["endpoints[0].addresses[0]: Invalid value: \"fd00::1\": must be an IPv4 address"]),
        ("Lease", "coordination.k8s.io", #"{"metadata":{"name":"node-1","namespace":"kube-node-lease"},"spec":{"holderIdentity":"node-1","leaseDurationSeconds":0}}"#, true,
         ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
        ("Event", "", #"{"metadata":{"name":"web.1","namespace":"default"},"involvedObject":{"kind":"Pod","name":"web","namespace":"other"},"reason":"Started"}"#, true,
         ["involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"]),
        ("Event", "", #"{"metadata":{"name":"x","namespace":"default"},"involvedObject":{"kind":"Node","name":"n1"},"reason":"Ready"}"#, true, []),
        ("Node", "", #"{"metadata":{"name":"lab-node"},"spec":{"podCIDRs":["10.244.0.0/24"],"taints":[{"key":"k","effect":"Sometimes"}]}}"#, false,
         ["metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""]),
        ("Widget", "example.com", #"{"metadata":{"name":"Bad_Name","namespace":"default"}}"#, true,
         ["metadata.name: Invalid value: \"Bad_Name\": " + S.subdomainMessage]),
    ]

    @Test(arguments: cases)
    func create(kind: String, group: String, json: String, namespaced: Bool, expected: [String]) throws {
        let obj = try S.created(kind, group, json)
        #expect(S.createErrors(kind, group, obj, namespaced: namespaced) == expected, "\(kind) \(json)")
    }

    @Test func configMapSizeIsTheWholeObject() throws {
        var cm = try S.created("ConfigMap", "", #"{"metadata":{"name":"big","namespace":"default"}}"#)
        cm["data"] = ["a": .string(String(repeating: "x", count: 1024 * 1024)), "b": "y"]
        let errs = Validation.fieldErrorsForCreate(kind: "ConfigMap", group: "", obj: cm, namespaced: true)
        #expect(errs.map(\.description) == ["[]: Too long: may not be more than 1048576 bytes"])
        #expect(errs.first?.cause.reason == "FieldValueTooLong")
    }

    @Test func clusterScopedKindsForbidANamespaceTheyWereGiven() throws {
        let ns = try JSON.parse(#"{"metadata":{"name":"dev","namespace":"default"}}"#)
        #expect(S.createErrors("Namespace", "", ns, namespaced: false) == ["metadata.namespace: Forbidden: not allowed on this type"])
        // Defaulting drops it, as the store does for cluster-scoped resources.
        let defaulted = try S.created("Namespace", "", ns.text)
        #expect(defaulted[path: "metadata", "namespace"] == nil)
        #expect(S.createErrors("Namespace", "", defaulted, namespaced: false) == [])
    }
}
