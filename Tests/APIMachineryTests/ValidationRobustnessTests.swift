import Testing
@testable import APIMachinery

@Suite("Wrong JSON types and random bodies")
struct ValidationRobustnessTests {
    typealias S = ValidationTestSupport

    @Test func wrongTypesBecomeTypeCausesAndNothingElse() throws {
        let svc = try S.created("Service", "", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":"80"}],"selector":["app"]}}"#)
        let errs = Validation.fieldErrorsForCreate(kind: "Service", group: "", obj: svc, namespaced: true)
        #expect(errs.map(\.description) == [
            "spec.selector: Invalid value: \"array\": spec.selector in body must be of type object: \"array\"",
            "spec.ports[0].port: Invalid value: \"string\": spec.ports[0].port in body must be of type integer: \"string\"",
        ])
        #expect(errs.allSatisfy { $0.kind == .typeInvalid })

        let pod = try S.created("Pod", "", #"{"metadata":{"name":"p","namespace":"default","labels":"app=web"},"spec":{"containers":{"name":"c"}}}"#)
        #expect(S.createErrors("Pod", "", pod) == [
            "metadata.labels: Invalid value: \"string\": metadata.labels in body must be of type object: \"string\"",
            "spec.containers: Invalid value: \"object\": spec.containers in body must be of type array: \"object\"",
        ])

        #expect(S.createErrors("Pod", "", ["not", "an", "object"]) == [": Invalid value: \"array\": body must be of type object: \"array\""])
    }

    @Test func numbersMayComeAsFloatsFromYAML() throws {
        let svc = try S.created("Service", "", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80.0}]}}"#)
        #expect(S.createErrors("Service", "", svc) == [])
        let frac = try S.created("Service", "", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":80.5}]}}"#)
        #expect(S.createErrors("Service", "", frac) == ["spec.ports[0].port: Invalid value: \"number\": spec.ports[0].port in body must be of type integer: \"number\""])
    }

    /// A small deterministic generator (SplitMix64) so failures reproduce.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let words = ["metadata", "spec", "name", "namespace", "containers", "ports", "port", "image", "selector", "matchLabels",
                        "template", "labels", "type", "clusterIP", "clusterIPs", "targetPort", "data", "volumes", "volumeMounts",
                        "env", "valueFrom", "resources", "limits", "requests", "cpu", "probe", "httpGet", "strategy", "rollingUpdate",
                        "subsets", "addresses", "endpoints", "addressType", "status", "finalizers", "stringData", "replicas", "None",
                        "ExternalName", "NodePort", "", "0", "-1", "a/b", "web", "Foo_Bar", "10.0.0.1", "::1", "25%",
                        "ownerReferences", "apiVersion", "/", "kind", "controller", "fieldRef", "fieldPath", "['", "a[']",
                        "metadata.labels['a']", "initContainers", "hostNetwork", "tolerations", "securityContext", "sessionAffinity",
                        "ClientIP", "LoadBalancer", "ipFamilies", "ipFamilyPolicy", "matchExpressions", "operator", "values", "In",
                        "binaryData", "immutable", "eventTime", "involvedObject", "taints", "podCIDRs", "generateName", "dns_1",
                        "1Gi", "1.5", ".", "e3", "stringData", "configMap", "secret", "projected", "sources", "items", "path"]

    static func randomJSON(_ r: inout Random, depth: Int) -> JSON {
        switch r.below(depth > 4 ? 6 : 8) {
        case 0: return .null
        case 1: return .bool(r.below(2) == 0)
        case 2: return .int(Int64(r.below(140_000)) - 70_000)
        case 3: return .double(Double(r.below(1000)) / 7)
        case 4, 5: return .string(words[r.below(words.count)])
        case 6:
            return .array((0..<r.below(4)).map { _ in randomJSON(&r, depth: depth + 1) })
        default:
            var o = JSONObject()
            for _ in 0..<r.below(5) { o[words[r.below(words.count)]] = randomJSON(&r, depth: depth + 1) }
            return .object(o)
        }
    }

    /// Replaces one random node somewhere in `json` with a random value.
    static func mutate(_ json: inout JSON, _ r: inout Random) {
        switch json {
        case .object(var o) where !o.isEmpty && r.below(4) != 0:
            let i = r.below(o.count)
            var child = o.values[i]
            mutate(&child, &r)
            o.values[i] = child
            json = .object(o)
        case .array(var a) where !a.isEmpty && r.below(4) != 0:
            let i = r.below(a.count)
            mutate(&a[i], &r)
            json = .array(a)
        default:
            json = randomJSON(&r, depth: 2)
        }
    }

    static let kinds: [(String, String, Bool)] = [
        ("Pod", "", true), ("Service", "", true), ("Deployment", "apps", true), ("ReplicaSet", "apps", true),
        ("ConfigMap", "", true), ("Secret", "", true), ("Namespace", "", false), ("ServiceAccount", "", true),
        ("Endpoints", "", true), ("EndpointSlice", "discovery.k8s.io", true), ("Lease", "coordination.k8s.io", true),
        ("Event", "", true), ("Node", "", false), ("Widget", "example.com", true),
    ]

    @Test func randomBodiesNeverCrash() {
        var r = Random(state: 0x1abe1)
        for round in 0..<3000 {
            let (kind, group, namespaced) = Self.kinds[round % Self.kinds.count]
            var obj = Self.randomJSON(&r, depth: 0)
            let old = obj
            Defaults.apply(kind: kind, group: group, to: &obj)
            _ = Validation.validateCreate(kind: kind, group: group, obj: obj, namespaced: namespaced)
            var updated = Self.randomJSON(&r, depth: 0)
            Defaults.applyForUpdate(kind: kind, group: group, to: &updated, old: old)
            _ = Validation.validateUpdate(kind: kind, group: group, new: updated, old: old, namespaced: namespaced)
        }
    }

    static let richPod = #"""
    {"metadata":{"name":"p","namespace":"d","labels":{"a":"b"}},"spec":{
      "hostNetwork":true,"dnsPolicy":"None","dnsConfig":{"nameservers":["10.96.0.10"],"searches":["svc.cluster.local"],"options":[{"name":"ndots","value":"5"}]},
      "securityContext":{"runAsUser":1000,"fsGroup":2000,"sysctls":[{"name":"net.core.somaxconn","value":"1024"}],"seccompProfile":{"type":"RuntimeDefault"}},
      "tolerations":[{"key":"k","operator":"Exists","effect":"NoExecute","tolerationSeconds":30}],
      "hostAliases":[{"ip":"10.0.0.1","hostnames":["a.local"]}],"nodeSelector":{"disk":"ssd"},"activeDeadlineSeconds":100,
      "volumes":[{"name":"cfg","configMap":{"name":"c","items":[{"key":"k","path":"p"}]}},{"name":"sec","secret":{"secretName":"s"}},
                 {"name":"host","hostPath":{"path":"/var/log","type":"Directory"}},{"name":"proj","projected":{"sources":[{"serviceAccountToken":{"path":"token"}},{"downwardAPI":{"items":[{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}}]}}]}}],
      "initContainers":[{"name":"init","image":"busybox","command":["true"],"restartPolicy":"Always","readinessProbe":{"exec":{"command":["true"]}}}],
      "containers":[{"name":"c","image":"app:v1","ports":[{"name":"http","containerPort":8080,"hostPort":8080}],
        "env":[{"name":"A","value":"b"},{"name":"N","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['a']"}}},{"name":"S","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}},
               {"name":"R","valueFrom":{"resourceFieldRef":{"resource":"limits.cpu","divisor":"1m"}}}],
        "envFrom":[{"configMapRef":{"name":"c"},"prefix":"P_"}],
        "volumeMounts":[{"name":"cfg","mountPath":"/etc/c","subPath":"x"},{"name":"host","mountPath":"/h","readOnly":true,"recursiveReadOnly":"IfPossible"}],
        "resources":{"limits":{"cpu":"1","memory":"1Gi","example.com/gpu":"1"},"requests":{"cpu":"500m","example.com/gpu":"1"}},
        "livenessProbe":{"tcpSocket":{"port":"http"}},"startupProbe":{"grpc":{"port":9090}},
        "lifecycle":{"preStop":{"sleep":{"seconds":5}},"postStart":{"httpGet":{"port":8080,"httpHeaders":[{"name":"X-A","value":"b"}]}}},
        "securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]},"appArmorProfile":{"type":"Localhost","localhostProfile":"p"}}}]}}
    """#

    @Test func richPodIsValid() throws {
        let pod = try S.created("Pod", "", Self.richPod)
        #expect(S.createErrors("Pod", "", pod) == [])
    }

    @Test func mutatedValidObjectsNeverCrash() throws {
        let seeds: [(String, String, String)] = [
            ("Pod", "", S.minimalPod), ("Deployment", "apps", S.minimalDeployment), ("Service", "", S.nodePortService),
            ("Pod", "", Self.richPod),
            ("Service", "", #"{"metadata":{"name":"s","namespace":"d","annotations":{"service.beta.kubernetes.io/load-balancer-source-ranges":"10.0.0.0/8"}},"spec":{"type":"LoadBalancer","externalTrafficPolicy":"Local","healthCheckNodePort":30001,"sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}},"clusterIP":"10.96.0.9","clusterIPs":["10.96.0.9"],"externalIPs":["192.168.1.5"],"loadBalancerSourceRanges":["10.0.0.0/8"],"ports":[{"name":"a","port":80,"targetPort":"http","nodePort":30080,"appProtocol":"http"},{"name":"b","port":443,"protocol":"TCP"}],"selector":{"app":"x"}}}"#),
            ("Deployment", "apps", #"{"metadata":{"name":"d","namespace":"d","ownerReferences":[{"apiVersion":"v1","kind":"X","name":"x","uid":"u","controller":true}],"finalizers":["a.io/b"]},"spec":{"selector":{"matchLabels":{"a":"b"},"matchExpressions":[{"key":"c","operator":"In","values":["d"]}]},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1,"maxUnavailable":"10%"}},"template":{"metadata":{"labels":{"a":"b","c":"d"}},"spec":{"containers":[{"name":"c","image":"x"}]}}}}"#),
            ("Node", "", #"{"metadata":{"name":"n"},"spec":{"podCIDRs":["10.244.0.0/24"],"taints":[{"key":"k","value":"v","effect":"NoSchedule"}]},"status":{"capacity":{"cpu":"2"}}}"#),
            ("Event", "", #"{"metadata":{"name":"e","namespace":"d"},"eventTime":"2026-01-01T00:00:00.000000Z","involvedObject":{"kind":"Pod","name":"p","namespace":"d"},"reportingComponent":"x","reportingInstance":"y","action":"a","reason":"r"}"#),
            ("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"data":{"k":"dg=="},"stringData":{"a":"b"}}"#),
            ("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"e","namespace":"default"},"addressType":"IPv4","endpoints":[{"addresses":["10.0.0.1"],"conditions":{"ready":true}}],"ports":[{"port":80}]}"#),
            ("Endpoints", "", #"{"metadata":{"name":"e","namespace":"default"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}"#),
        ]
        var r = Random(state: 42)
        for (kind, group, text) in seeds {
            let base = try S.created(kind, group, text)
            for _ in 0..<600 {
                var obj = base
                for _ in 0..<(1 + r.below(3)) { Self.mutate(&obj, &r) }
                var defaulted = obj
                Defaults.apply(kind: kind, group: group, to: &defaulted)
                _ = Validation.validateCreate(kind: kind, group: group, obj: defaulted, namespaced: true)
                var updated = obj
                Defaults.applyForUpdate(kind: kind, group: group, to: &updated, old: base)
                _ = Validation.validateUpdate(kind: kind, group: group, new: updated, old: base, namespaced: true)
            }
        }
    }
}
