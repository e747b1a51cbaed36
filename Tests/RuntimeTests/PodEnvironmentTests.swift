import APIMachinery
import Testing
@testable import Runtime

@Suite struct PodEnvironmentTests {
    static let nginxService: JSON = [
        "metadata": ["name": "nginx", "namespace": "default"],
        "spec": ["clusterIP": "10.0.0.112", "ports": [["name": "http", "port": 80, "protocol": "TCP"]]],
    ]
    static let kubernetes: JSON = [
        "metadata": ["name": "kubernetes", "namespace": "default"],
        "spec": ["clusterIP": "10.0.0.1", "ports": [["name": "https", "port": 443, "protocol": "TCP"]]],
    ]
    static let headless: JSON = ["metadata": ["name": "db", "namespace": "default"], "spec": ["clusterIP": "None", "ports": [["port": 5432]]]]
    static let otherNamespace: JSON = ["metadata": ["name": "web", "namespace": "team"], "spec": ["clusterIP": "10.0.0.5", "ports": [["port": 80]]]]

    static func pod(_ container: JSON, serviceLinks: Bool? = nil) -> JSON {
        var spec: JSON = ["containers": [container], "nodeName": "labnode", "serviceAccountName": "default"]
        if let serviceLinks { spec["enableServiceLinks"] = .bool(serviceLinks) }
        return ["metadata": ["name": "busybox", "namespace": "default", "uid": "u-1", "labels": ["app": "web"]],
                "spec": spec, "status": ["podIP": "10.244.0.7", "hostIP": "192.168.77.10"]]
    }

    func env(_ container: JSON, serviceLinks: Bool? = nil, sources: PodEnvironment.Sources? = nil) throws -> [String: String] {
        let s = sources ?? PodEnvironment.Sources(services: [Self.nginxService, Self.kubernetes, Self.headless, Self.otherNamespace])
        let pairs = try PodEnvironment.make(pod: Self.pod(container, serviceLinks: serviceLinks), container: container, sources: s)
        return Dictionary(pairs, uniquingKeysWith: { _, b in b })
    }

    @Test func serviceVariablesAsTheKubeletSetsThem() throws {
        let e = try env(["name": "c"])
        #expect(e["NGINX_SERVICE_HOST"] == "10.0.0.112")
        #expect(e["NGINX_SERVICE_PORT"] == "80")
        #expect(e["NGINX_SERVICE_PORT_HTTP"] == "80")
        #expect(e["NGINX_PORT"] == "tcp://10.0.0.112:80")
        #expect(e["NGINX_PORT_80_TCP"] == "tcp://10.0.0.112:80")
        #expect(e["NGINX_PORT_80_TCP_PROTO"] == "tcp")
        #expect(e["NGINX_PORT_80_TCP_PORT"] == "80")
        #expect(e["NGINX_PORT_80_TCP_ADDR"] == "10.0.0.112")
        #expect(e["KUBERNETES_SERVICE_HOST"] == "10.0.0.1")
        #expect(e["KUBERNETES_SERVICE_PORT_HTTPS"] == "443")
        #expect(e["DB_SERVICE_HOST"] == nil, "headless services get no variables")
        #expect(e["WEB_SERVICE_HOST"] == nil, "only the pod's namespace")
    }

    @Test func serviceLinksOffKeepsOnlyTheKubernetesService() throws {
        let e = try env(["name": "c"], serviceLinks: false)
        #expect(e["NGINX_SERVICE_HOST"] == nil)
        #expect(e["KUBERNETES_SERVICE_HOST"] == "10.0.0.1")
    }

    @Test func downwardAPIAndExpansion() throws {
        let e = try env(["name": "c", "resources": ["limits": ["memory": "64Mi", "cpu": "250m"]], "env": [
            ["name": "POD", "valueFrom": ["fieldRef": ["fieldPath": "metadata.name"]]],
            ["name": "IP", "valueFrom": ["fieldRef": ["fieldPath": "status.podIP"]]],
            ["name": "APP", "valueFrom": ["fieldRef": ["fieldPath": "metadata.labels['app']"]]],
            ["name": "MEM", "valueFrom": ["resourceFieldRef": ["resource": "limits.memory", "divisor": "1Mi"]]],
            ["name": "CPU", "valueFrom": ["resourceFieldRef": ["resource": "limits.cpu"]]],
            ["name": "URL", "value": "http://$(NGINX_SERVICE_HOST):$(NGINX_SERVICE_PORT)/$(POD)"],
            ["name": "KEEP", "value": "$(UNDEFINED) costs $$5"],
        ]])
        #expect(e["POD"] == "busybox")
        #expect(e["IP"] == "10.244.0.7")
        #expect(e["APP"] == "web")
        #expect(e["MEM"] == "64")
        #expect(e["CPU"] == "1", "CPU limits round up to whole cores without a divisor")
        #expect(e["URL"] == "http://10.0.0.112:80/busybox")
        #expect(e["KEEP"] == "$(UNDEFINED) costs $5")
    }

    @Test func configMapsAndSecrets() throws {
        let sources = PodEnvironment.Sources(
            configMaps: ["settings": ["metadata": ["name": "settings", "namespace": "default"],
                                      "data": ["color": "blue", "bad key": "x"]]],
            secrets: ["creds": ["metadata": ["name": "creds"], "data": ["password": "czNjcjN0"]]])
        let e = try env(["name": "c",
                         "envFrom": [["configMapRef": ["name": "settings"], "prefix": "CFG_"]],
                         "env": [["name": "PASS", "valueFrom": ["secretKeyRef": ["name": "creds", "key": "password"]]],
                                 ["name": "OPT", "valueFrom": ["configMapKeyRef": ["name": "absent", "key": "k", "optional": true]]]]],
                        sources: sources)
        #expect(e["CFG_color"] == "blue")
        #expect(e["CFG_bad key"] == nil, "invalid names from envFrom are skipped")
        #expect(e["PASS"] == "s3cr3t")
        #expect(e["OPT"] == nil)
        #expect(throws: PodEnvironment.ConfigError(message: "configmap \"absent\" not found")) {
            _ = try env(["name": "c", "env": [["name": "X", "valueFrom": ["configMapKeyRef": ["name": "absent", "key": "k"]]]]],
                        sources: sources)
        }
    }

    @Test(arguments: [("100m", 0.1), ("64Mi", 67_108_864.0), ("1G", 1e9), ("2", 2.0), ("1.5", 1.5)])
    func quantities(text: String, value: Double) {
        #expect(Quantity.parse(text) == value)
    }
}
