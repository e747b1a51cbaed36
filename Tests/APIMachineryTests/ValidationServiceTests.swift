import Testing
@testable import APIMachinery

@Suite("Service validation")
struct ValidationServiceTests {
    typealias S = ValidationTestSupport

    /// (name, service JSON before defaulting, expected errors)
    static let cases: [(String, String, [String])] = [
        ("NodePort is valid", S.nodePortService, []),
        ("port 0", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":0,"targetPort":80}]}}"#,
         ["spec.ports[0].port: Invalid value: 0: " + S.portRange]),
        ("port 70000", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":70000,"targetPort":80}]}}"#,
         ["spec.ports[0].port: Invalid value: 70000: " + S.portRange]),
        ("unsupported type", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"Foo","ports":[{"port":80}]}}"#,
         ["spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]),
        ("headless NodePort", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"NodePort","clusterIP":"None","selector":{"app":"x"},"ports":[{"port":80}]}}"#,
         ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]),
        ("headless LoadBalancer", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"LoadBalancer","clusterIP":"None","selector":{"app":"x"},"ports":[{"port":80}]}}"#,
         ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for LoadBalancer services"]),
        ("headless ClusterIP without ports is valid", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"clusterIP":"None","selector":{"app":"x"}}}"#, []),
        ("ExternalName without externalName", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"ExternalName"}}"#,
         ["spec.externalName: Required value"]),
        ("ExternalName with a bad name", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"ExternalName","externalName":"Db_Host."}}"#,
         ["spec.externalName: Invalid value: \"Db_Host\": " + S.subdomainMessage]),
        ("ExternalName with a cluster IP", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"ExternalName","externalName":"db.example.com","clusterIP":"10.96.0.5"}}"#,
         ["spec.clusterIPs: Forbidden: may not be set for ExternalName services"]),
        ("no ports", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"selector":{"app":"x"}}}"#,
         ["spec.ports: Required value"]),
        ("two unnamed ports", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80},{"port":443}]}}"#,
         ["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
        ("port names", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"name":"Web","port":80},{"name":"a","port":81},{"name":"a","port":82}]}}"#,
         ["spec.ports[0].name: Invalid value: \"Web\": " + S.labelMessage, "spec.ports[2].name: Duplicate value: \"a\""]),
        ("duplicate port", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"name":"a","port":80},{"name":"b","port":80}]}}"#,
         ["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]),
        ("target port name", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80,"targetPort":"http_port"}]}}"#,
         ["spec.ports[0].targetPort: Invalid value: \"http_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
        ("protocol", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80,"protocol":"HTTP"}]}}"#,
         ["spec.ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""]),
        ("service name is a DNS-1035 label", #"{"metadata":{"name":"1web","namespace":"default"},"spec":{"ports":[{"port":80}]}}"#,
         ["metadata.name: Invalid value: \"1web\": " + S.dns1035Message]),
        ("selector values", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"selector":{"app":"a b"},"ports":[{"port":80}]}}"#,
         ["spec.selector: Invalid value: \"a b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
        ("session affinity", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"sessionAffinity":"Cookie","ports":[{"port":80}]}}"#,
         ["spec.sessionAffinity: Unsupported value: \"Cookie\": supported values: \"ClientIP\", \"None\""]),
        ("affinity timeout", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":90000}},"ports":[{"port":80}]}}"#,
         ["spec.sessionAffinityConfig.clientIP.timeoutSeconds: Invalid value: 90000: must be greater than 0 and less than 86400"]),
        ("nodePort on ClusterIP", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80,"nodePort":30080}]}}"#,
         ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
        ("cluster IP", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"clusterIP":"10.96.0.300","ports":[{"port":80}]}}"#,
         ["spec.clusterIPs[0]: Invalid value: \"10.96.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"]),
        ("dual stack on a single-stack cluster", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ipFamilyPolicy":"RequireDualStack","ports":[{"port":80}]}}"#,
         ["spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"]),
        ("external traffic policy on ClusterIP", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"externalTrafficPolicy":"Local","ports":[{"port":80}]}}"#,
         ["spec.externalTrafficPolicy: Invalid value: \"Local\": may only be set for externally-accessible services"]),
        ("external IPs", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"externalIPs":["127.0.0.1"],"ports":[{"port":80}]}}"#,
         ["spec.externalIPs[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"]),
    ]

    @Test(arguments: cases)
    func create(name: String, json: String, expected: [String]) throws {
        let svc = try S.created("Service", "", json)
        #expect(S.createErrors("Service", "", svc) == expected, "\(name)")
    }

    @Test func reasonsAreUpstreamCauseTypes() throws {
        let svc = try S.created("Service", "", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"type":"Foo","ports":[{"port":0}]}}"#)
        let causes = Validation.validateCreate(kind: "Service", group: "", obj: svc, namespaced: true)
        #expect(causes.map(\.reason) == ["FieldValueInvalid", "FieldValueInvalid", "FieldValueNotSupported"])
        #expect(causes.map(\.field) == ["spec.ports[0].port", "spec.ports[0].targetPort", "spec.type"])
    }
}
