import Testing
@testable import APIMachinery

@Suite("Pod validation")
struct ValidationPodTests {
    typealias S = ValidationTestSupport

    /// Each case edits the defaulted minimal pod and lists kube-apiserver's errors in order.
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var edit: @Sendable (inout JSON) -> Void
        var expected: [String]
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "valid", edit: { _ in }, expected: []),
        Case(name: "bad name", edit: { $0[path: "metadata", "name"] = "Foo_Bar" },
             expected: ["metadata.name: Invalid value: \"Foo_Bar\": " + S.subdomainMessage]),
        Case(name: "missing image", edit: { $0[path: "spec", "containers"] = [["name": "nginx", "imagePullPolicy": "Always",
                                                                              "terminationMessagePolicy": "File"]] },
             expected: ["spec.containers[0].image: Required value"]),
        Case(name: "duplicate container names", edit: { pod in
            var list = pod[path: "spec", "containers"]?.arrayValue ?? []
            list.append(list[0])
            pod[path: "spec", "containers"] = .array(list)
        }, expected: ["spec.containers[1].name: Duplicate value: \"nginx\""]),
        Case(name: "container name not a label", edit: { $0[path: "spec", "containers"] = [["name": "Web_1", "image": "nginx",
                                                                                           "imagePullPolicy": "Always", "terminationMessagePolicy": "File"]] },
             expected: ["spec.containers[0].name: Invalid value: \"Web_1\": " + S.labelMessage]),
        Case(name: "no containers", edit: { $0[path: "spec", "containers"] = [] },
             expected: ["spec.containers: Required value"]),
        Case(name: "container ports", edit: { pod in
            pod[path: "spec", "containers"] = [["name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                                                 "ports": [["containerPort": 0, "protocol": "TCP"], ["containerPort": 70000, "protocol": "TCP"],
                                                           ["containerPort": 80, "protocol": "HTTP", "name": "web"], ["containerPort": 81, "protocol": "TCP", "name": "web"]]]]
        }, expected: [
            "spec.containers[0].ports[0].containerPort: Required value",
            "spec.containers[0].ports[1].containerPort: Invalid value: 70000: " + S.portRange,
            "spec.containers[0].ports[2].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
            "spec.containers[0].ports[3].name: Duplicate value: \"web\"",
        ]),
        Case(name: "restart and dns policy", edit: { pod in
            pod[path: "spec", "restartPolicy"] = "Sometimes"
            pod[path: "spec", "dnsPolicy"] = "Google"
        }, expected: [
            "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
        ]),
        Case(name: "mount of a missing volume", edit: { pod in
            pod[path: "spec", "containers"] = [["name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                                                 "volumeMounts": [["name": "data", "mountPath": "/data"]]]]
        }, expected: ["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]),
        Case(name: "volumes", edit: { pod in
            pod[path: "spec", "volumes"] = [["name": "a", "emptyDir": [:]], ["name": "a", "emptyDir": [:]],
                                            ["name": "b", "emptyDir": [:], "configMap": ["name": "x"]], ["name": "c", "secret": [:]]]
        }, expected: [
            "spec.volumes[1].name: Duplicate value: \"a\"",
            "spec.volumes[2].configMap: Forbidden: may not specify more than 1 volume type",
            "spec.volumes[3].secret.secretName: Required value",
        ]),
        Case(name: "env", edit: { pod in
            pod[path: "spec", "containers"] = [["name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                                                 "env": [["name": "A=B"], ["value": "x"], ["name": "C", "valueFrom": [:]]]]]
        }, expected: [
            "spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='",
            "spec.containers[0].env[1].name: Required value",
            "spec.containers[0].env[2].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ]),
        Case(name: "resources", edit: { pod in
            pod[path: "spec", "containers"] = [["name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                                                 "resources": ["limits": ["cpu": "500m", "memory": "1Gb", "ephemeral-storage": "1K"], "requests": ["cpu": "1", "gpu": "1"]]]]
        }, expected: [
            "spec.containers[0].resources.limits[memory]: Invalid value: \"1Gb\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            "spec.containers[0].resources.limits[ephemeral-storage]: Invalid value: \"1K\": unable to parse quantity's suffix",
            "spec.containers[0].resources.requests: Invalid value: \"1\": must be less than or equal to cpu limit of 500m",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
            "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
        ]),
        Case(name: "probes", edit: { pod in
            pod[path: "spec", "containers"] = [["name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "terminationMessagePolicy": "File",
                                                 "livenessProbe": ["successThreshold": 2, "timeoutSeconds": 1, "periodSeconds": 10, "failureThreshold": 3,
                                                                   "httpGet": ["port": "http_port", "path": "/", "scheme": "FTP"]],
                                                 "readinessProbe": ["timeoutSeconds": -1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3]]]
        }, expected: [
            "spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"http_port\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            "spec.containers[0].livenessProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\"",
            "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1",
            "spec.containers[0].readinessProbe: Required value: must specify a handler type",
            "spec.containers[0].readinessProbe.timeoutSeconds: Invalid value: -1: must be greater than or equal to 0",
        ]),
        Case(name: "labels and annotations", edit: { pod in
            pod[path: "metadata", "labels"] = ["app": "bad value", "-x": "ok"]
            pod[path: "metadata", "annotations"] = ["big": .string(String(repeating: "x", count: 256 * 1024))]
        }, expected: [
            "metadata.labels: Invalid value: \"bad value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            "metadata.labels: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            "metadata.annotations: Too long: may not be more than 262144 bytes",
        ]),
        Case(name: "namespace required", edit: { $0[path: "metadata", "namespace"] = nil },
             expected: ["metadata.namespace: Required value"]),
        Case(name: "name required", edit: { $0[path: "metadata", "name"] = nil },
             expected: ["metadata.name: Required value: name or generateName is required"]),
        Case(name: "tolerations", edit: { $0[path: "spec", "tolerations"] = [["operator": "Equal", "value": "x"], ["key": "k", "operator": "Maybe"]] },
             expected: [
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\"",
             ]),
        Case(name: "image whitespace", edit: { $0[path: "spec", "containers"] = [["name": "nginx", "image": " nginx", "imagePullPolicy": "Always",
                                                                                 "terminationMessagePolicy": "File"]] },
             expected: ["spec.containers[0].image: Invalid value: \" nginx\": must not have leading or trailing whitespace"]),
        Case(name: "ephemeral containers on create", edit: { $0[path: "spec", "ephemeralContainers"] = [["name": "debug", "image": "busybox"]] },
             expected: ["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
    ]

    @Test(arguments: cases)
    func create(_ c: Case) throws {
        var pod = try S.created("Pod", "", S.minimalPod)
        c.edit(&pod)
        #expect(S.createErrors("Pod", "", pod) == c.expected)
    }

    @Test func undefaultedPodReportsTheFieldsDefaultingWouldFill() throws {
        let pod = try JSON.parse(S.minimalPod)
        #expect(S.createErrors("Pod", "", pod) == [
            "spec.terminationGracePeriodSeconds: Required value",
            "spec.containers[0].terminationMessagePolicy: Required value",
            "spec.containers[0].imagePullPolicy: Required value",
            "spec.restartPolicy: Required value",
            "spec.dnsPolicy: Required value",
        ])
    }

    @Test func generateNameIsEnoughBeforeNameGeneration() throws {
        let pod = try JSON.parse(#"{"metadata":{"generateName":"web-","namespace":"default"},"spec":{"containers":[{"name":"c","image":"x","imagePullPolicy":"Always","terminationMessagePolicy":"File"}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst","terminationGracePeriodSeconds":30}}"#)
        #expect(S.createErrors("Pod", "", pod) == [])
        let badPrefix = try JSON.parse(#"{"metadata":{"generateName":"Web-","namespace":"default"},"spec":{}}"#)
        #expect(S.createErrors("Pod", "", badPrefix).first == "metadata.generateName: Invalid value: \"Web-\": " + S.subdomainMessage)
    }
}
