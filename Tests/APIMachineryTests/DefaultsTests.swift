import Testing
@testable import APIMachinery

@Suite("Defaults match what a real cluster stores")
struct DefaultsTests {
    typealias S = ValidationTestSupport

    /// Object members sorted, so snapshots compare content rather than member order.
    static func sorted(_ v: JSON) -> JSON {
        switch v {
        case .object(let o):
            var out = JSONObject()
            for k in o.keys.sorted() { out[k] = sorted(o[k] ?? .null) }
            return .object(out)
        case .array(let a): return .array(a.map(sorted))
        default: return v
        }
    }

    static func expectSnapshot(_ kind: String, _ group: String, _ input: String, _ expected: String) throws {
        let actual = try S.created(kind, group, input)
        #expect(sorted(actual).text == sorted(try JSON.parse(expected)).text)
    }

    @Test func minimalPod() throws {
        try Self.expectSnapshot("Pod", "", S.minimalPod, #"""
        {"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},
         "spec":{"containers":[{"name":"nginx","image":"nginx","imagePullPolicy":"Always","resources":{},
                                "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],
                 "dnsPolicy":"ClusterFirst","enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority","priority":0,
                 "restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},
                 "serviceAccount":"default","serviceAccountName":"default","terminationGracePeriodSeconds":30},
         "status":{"phase":"Pending","qosClass":"BestEffort"}}
        """#)
    }

    @Test func nodePortService() throws {
        try Self.expectSnapshot("Service", "", S.nodePortService, #"""
        {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},
         "spec":{"externalTrafficPolicy":"Cluster","internalTrafficPolicy":"Cluster","ipFamilies":["IPv4"],"ipFamilyPolicy":"SingleStack",
                 "ports":[{"port":80,"protocol":"TCP","targetPort":80}],"selector":{"app":"web"},"sessionAffinity":"None","type":"NodePort"},
         "status":{"loadBalancer":{}}}
        """#)
    }

    @Test func deployment() throws {
        try Self.expectSnapshot("Deployment", "apps", S.minimalDeployment, #"""
        {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"generation":1,"labels":{"app":"web"},"name":"web","namespace":"default"},
         "spec":{"progressDeadlineSeconds":600,"replicas":1,"revisionHistoryLimit":10,"selector":{"matchLabels":{"app":"web"}},
                 "strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"},
                 "template":{"metadata":{"labels":{"app":"web"}},
                             "spec":{"containers":[{"image":"nginx:1.27","imagePullPolicy":"IfNotPresent","name":"nginx","resources":{},
                                                    "terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],
                                     "dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler",
                                     "securityContext":{},"terminationGracePeriodSeconds":30}}},
         "status":{}}
        """#)
    }

    @Test(arguments: [
        ("nginx", "Always"), ("nginx:latest", "Always"), ("nginx:1.25", "IfNotPresent"),
        ("localhost:5000/app", "Always"), ("localhost:5000/app:v1", "IfNotPresent"),
        ("nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "IfNotPresent"),
        ("registry.k8s.io/pause:3.10", "IfNotPresent"), ("Nginx", "IfNotPresent"), ("", "IfNotPresent"),
    ])
    func imagePullPolicy(image: String, policy: String) {
        #expect(Defaults.pullPolicy(forImage: image) == policy)
    }

    @Test func containerDetails() throws {
        let pod = try S.created("Pod", "", #"""
        {"metadata":{"name":"p","namespace":"default"},"spec":{"containers":[{"name":"c","image":"app:v1",
          "ports":[{"containerPort":8080}],
          "env":[{"name":"NODE","valueFrom":{"fieldRef":{"fieldPath":"spec.nodeName"}}}],
          "livenessProbe":{"httpGet":{"port":8080}},
          "readinessProbe":{"grpc":{"port":9000},"periodSeconds":5},
          "resources":{"limits":{"cpu":1,"memory":"128Mi"}}}],
          "volumes":[{"name":"scratch"},{"name":"cfg","configMap":{"name":"cfg"}}]}}
        """#)
        let c = pod[path: "spec", "containers"]?.arrayValue?.first ?? .null
        #expect(c["ports"] == [["containerPort": 8080, "protocol": "TCP"]])
        #expect(c[path: "env"]?.arrayValue?.first?[path: "valueFrom", "fieldRef", "apiVersion"] == "v1")
        #expect(c["livenessProbe"] == ["httpGet": ["port": 8080, "path": "/", "scheme": "HTTP"], "timeoutSeconds": 1, "periodSeconds": 10,
                                       "successThreshold": 1, "failureThreshold": 3])
        #expect(c[path: "readinessProbe", "periodSeconds"] == 5)
        #expect(c[path: "readinessProbe", "grpc", "service"] == "")
        // Numbers in quantities become strings; Pods get requests from limits.
        #expect(c[path: "resources", "limits", "cpu"] == "1")
        #expect(c[path: "resources", "requests"] == ["cpu": "1", "memory": "128Mi"])
        #expect(pod[path: "status", "qosClass"] == "Guaranteed")
        #expect(pod[path: "spec", "volumes"] == [["name": "scratch", "emptyDir": [:]], ["name": "cfg", "configMap": ["name": "cfg", "defaultMode": 420]]])
        #expect(S.createErrors("Pod", "", pod) == [])
    }

    @Test func explicitValuesAreKept() throws {
        let pod = try S.created("Pod", "", #"{"metadata":{"name":"p","namespace":"default"},"spec":{"restartPolicy":"Never","serviceAccountName":"builder","priority":5,"containers":[{"name":"c","image":"x","imagePullPolicy":"Never","resources":{"requests":{"cpu":"100m"}}}]}}"#)
        #expect(pod[path: "spec", "restartPolicy"] == "Never")
        #expect(pod[path: "spec", "serviceAccountName"] == "builder")
        #expect(pod[path: "spec", "serviceAccount"] == "builder")
        #expect(pod[path: "spec", "priority"] == 5)
        #expect(pod[path: "spec", "containers"]?.arrayValue?.first?["imagePullPolicy"] == "Never")
        #expect(pod[path: "status", "qosClass"] == "Burstable")
    }

    @Test func serviceVariants() throws {
        let clientIP = try S.created("Service", "", #"{"metadata":{"name":"s","namespace":"d"},"spec":{"sessionAffinity":"ClientIP","clusterIP":"10.96.0.50","ports":[{"port":53,"protocol":"UDP","targetPort":"dns"}]}}"#)
        #expect(clientIP[path: "spec", "sessionAffinityConfig"] == ["clientIP": ["timeoutSeconds": 10800]])
        #expect(clientIP[path: "spec", "clusterIPs"] == ["10.96.0.50"])
        #expect(clientIP[path: "spec", "ports"] == [["port": 53, "protocol": "UDP", "targetPort": "dns"]])
        #expect(clientIP[path: "spec", "externalTrafficPolicy"] == nil)

        let lb = try S.created("Service", "", #"{"metadata":{"name":"s","namespace":"d"},"spec":{"type":"LoadBalancer","ports":[{"port":443}]}}"#)
        #expect(lb[path: "spec", "allocateLoadBalancerNodePorts"] == true)
        #expect(lb[path: "spec", "externalTrafficPolicy"] == "Cluster")

        let headless = try S.created("Service", "", #"{"metadata":{"name":"s","namespace":"d"},"spec":{"clusterIP":"None"}}"#)
        #expect(headless[path: "spec", "ipFamilyPolicy"] == "RequireDualStack")
        #expect(headless[path: "spec", "ipFamilies"] == ["IPv4", "IPv6"])
        #expect(S.createErrors("Service", "", headless) == [])

        let external = try S.created("Service", "", #"{"metadata":{"name":"s","namespace":"d"},"spec":{"type":"ExternalName","externalName":"example.com"}}"#)
        #expect(external[path: "spec", "ipFamilies"] == nil)
        #expect(external[path: "spec", "internalTrafficPolicy"] == nil)
        #expect(S.createErrors("Service", "", external) == [])
    }

    @Test func otherKinds() throws {
        let ns = try S.created("Namespace", "", #"{"metadata":{"name":"dev"}}"#)
        #expect(ns[path: "metadata", "labels"] == ["kubernetes.io/metadata.name": "dev"])
        #expect(ns["spec"] == ["finalizers": ["kubernetes"]])
        #expect(ns["status"] == ["phase": "Active"])

        let secret = try S.created("Secret", "", #"{"metadata":{"name":"s","namespace":"d"},"data":{"a":"eA=="},"stringData":{"user":"admin"}}"#)
        #expect(secret["type"] == "Opaque")
        #expect(secret["data"] == ["a": "eA==", "user": "YWRtaW4="])
        #expect(secret["stringData"] == nil)

        let slice = try S.created("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"e","namespace":"d"},"addressType":"IPv4","endpoints":[],"ports":[{"port":80}]}"#)
        #expect(slice["ports"] == [["port": 80, "name": "", "protocol": "TCP"]])

        let eps = try S.created("Endpoints", "", #"{"metadata":{"name":"e","namespace":"d"},"subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]}"#)
        #expect(eps[path: "subsets"]?.arrayValue?.first?["ports"] == [["port": 80, "protocol": "TCP"]])

        let rs = try S.created("ReplicaSet", "apps", #"{"metadata":{"generateName":"web-","namespace":"d"},"spec":{"template":{"spec":{"containers":[{"name":"c","image":"x:1"}]}}}}"#)
        #expect(rs[path: "spec", "replicas"] == 1)
        #expect(rs["status"] == ["replicas": 0])
        #expect(rs[path: "metadata", "name"]?.stringValue?.hasPrefix("web-") == true)
        #expect(rs[path: "spec", "template", "spec", "enableServiceLinks"] == nil)
    }

    @Test func wrongTypesAreLeftAlone() throws {
        let odd = #"{"metadata":{"name":"p","namespace":"d"},"spec":{"containers":"nginx","volumes":[1,{"name":"v"}],"securityContext":"x"}}"#
        let pod = try S.created("Pod", "", odd)
        #expect(pod[path: "spec", "containers"] == "nginx")
        #expect(pod[path: "spec", "securityContext"] == "x")
        #expect(pod[path: "spec", "volumes"] == [1, ["name": "v", "emptyDir": [:]]])
    }
}
