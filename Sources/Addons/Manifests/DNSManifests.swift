import APIMachinery

/// The kube-dns add-on's objects, as kubeadm installs CoreDNS, with labnode's binary as the
/// image and the `log` plugin on so trainees see their queries in the pod's log.
public enum DNSManifests {
    /// Marks objects the add-on manager re-creates when deleted but never overwrites, so an
    /// edited Corefile stays edited (the addon-manager's EnsureExists mode).
    public static let modeLabel = "addonmanager.kubernetes.io/mode"

    /// kubeadm's Corefile plus `log`, with `reload 15s` instead of 30 s ± 15 s so an edited
    /// ConfigMap is live within 30 s (the agent refreshes the volume at once; the plugin then
    /// notices within 7.5-22.5 s).
    public static func corefile(clusterDomain: String) -> String {
        """
        .:53 {
            errors
            log
            health {
               lameduck 5s
            }
            ready
            kubernetes \(clusterDomain) in-addr.arpa ip6.arpa {
               pods insecure
               fallthrough in-addr.arpa ip6.arpa
               ttl 30
            }
            prometheus :9153
            forward . /etc/resolv.conf {
               max_concurrent 1000
            }
            cache 30
            loop
            reload 15s
            loadbalance
        }

        """
    }

    /// (resource, object) pairs in creation order.
    public static func objects(clusterDNSIP: String, clusterDomain: String) -> [(ResourceInfo, JSON)] {
        let labels: JSON = ["k8s-app": "kube-dns", "addonmanager.kubernetes.io/mode": "EnsureExists"]
        let serviceAccount: JSON = [
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": ["name": "coredns", "namespace": "kube-system", "labels": ["addonmanager.kubernetes.io/mode": "EnsureExists"]],
        ]
        let configMap: JSON = [
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": ["name": "coredns", "namespace": "kube-system", "labels": ["addonmanager.kubernetes.io/mode": "EnsureExists"]],
            "data": ["Corefile": .string(corefile(clusterDomain: clusterDomain))],
        ]
        let container: JSON = [
            "name": "coredns",
            "image": "labnode",
            "imagePullPolicy": "IfNotPresent",
            "command": ["labnode", "dns", "-conf", "/etc/coredns/Corefile"],
            "ports": [
                ["name": "dns", "containerPort": 53, "protocol": "UDP"],
                ["name": "dns-tcp", "containerPort": 53, "protocol": "TCP"],
                ["name": "metrics", "containerPort": 9153, "protocol": "TCP"],
            ],
            "resources": ["limits": ["memory": "170Mi"], "requests": ["cpu": "100m", "memory": "70Mi"]],
            "volumeMounts": [["name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true]],
            "livenessProbe": [
                "httpGet": ["path": "/health", "port": 8080, "scheme": "HTTP"],
                "initialDelaySeconds": 60, "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5,
            ],
            "readinessProbe": [
                "httpGet": ["path": "/ready", "port": 8181, "scheme": "HTTP"],
                "periodSeconds": 1, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3,
            ],
            "securityContext": [
                "allowPrivilegeEscalation": false,
                "capabilities": ["add": ["NET_BIND_SERVICE"], "drop": ["ALL"]],
                "readOnlyRootFilesystem": true,
            ],
        ]
        let deployment: JSON = [
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": ["name": "coredns", "namespace": "kube-system", "labels": labels],
            "spec": [
                // kubeadm runs two; one node gains nothing from a second copy but memory.
                "replicas": 1,
                "selector": ["matchLabels": ["k8s-app": "kube-dns"]],
                "strategy": ["type": "RollingUpdate", "rollingUpdate": ["maxUnavailable": 1]],
                "template": [
                    "metadata": ["labels": ["k8s-app": "kube-dns"]],
                    "spec": [
                        "serviceAccountName": "coredns",
                        // The node's resolv.conf, so `forward . /etc/resolv.conf` reaches real upstreams.
                        "dnsPolicy": "Default",
                        "containers": [container],
                        "volumes": [[
                            "name": "config-volume",
                            "configMap": ["name": "coredns", "items": [["key": "Corefile", "path": "Corefile"]]],
                        ]],
                    ],
                ],
            ],
        ]
        let service: JSON = [
            "apiVersion": "v1", "kind": "Service",
            "metadata": [
                "name": "kube-dns", "namespace": "kube-system",
                "labels": ["k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS",
                           "addonmanager.kubernetes.io/mode": "EnsureExists"],
                "annotations": ["prometheus.io/port": "9153", "prometheus.io/scrape": "true"],
            ],
            "spec": [
                "selector": ["k8s-app": "kube-dns"],
                "clusterIP": .string(clusterDNSIP),
                "ports": [
                    ["name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53],
                    ["name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53],
                    ["name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153],
                ],
            ],
        ]
        return [(Resources.serviceAccounts, serviceAccount), (Resources.configMaps, configMap),
                (Resources.services, service), (Resources.deployments, deployment)]
    }
}
