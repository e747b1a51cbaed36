import Testing
@testable import APIMachinery

@Suite("Update validation: what may not change")
struct ValidationUpdateTests {
    typealias S = ValidationTestSupport

    @Test func deploymentSelectorIsImmutable() throws {
        let old = try S.stored("Deployment", "apps", S.minimalDeployment)
        let new = S.updated("Deployment", "apps", from: old) { d in
            d[path: "spec", "selector"] = ["matchLabels": ["app": "web2"]]
            d[path: "spec", "template", "metadata", "labels"] = ["app": "web2"]
        }
        #expect(S.updateErrors("Deployment", "apps", new: new, old: old) == [
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
        ])
    }

    @Test func deploymentScaleAndImageChangesAreFineAndBumpGeneration() throws {
        let old = try S.stored("Deployment", "apps", S.minimalDeployment)
        let new = S.updated("Deployment", "apps", from: old) { d in
            d[path: "spec", "replicas"] = 3
            d[path: "status"] = ["replicas": 99]
        }
        #expect(S.updateErrors("Deployment", "apps", new: new, old: old) == [])
        #expect(new[path: "metadata", "generation"] == 2)
        #expect(new["status"] == old["status"])
        let same = S.updated("Deployment", "apps", from: old) { _ in }
        #expect(same[path: "metadata", "generation"] == 1)
    }

    @Test func metadataIdentityIsImmutable() throws {
        let old = try S.stored("ConfigMap", "", #"{"metadata":{"name":"cfg","namespace":"default"},"data":{"k":"v"}}"#)
        let new = S.updated("ConfigMap", "", from: old) { $0[path: "metadata", "uid"] = "other-uid" }
        #expect(S.updateErrors("ConfigMap", "", new: new, old: old) == ["metadata.uid: Invalid value: \"other-uid\": field is immutable"])
        // A client that leaves uid and creationTimestamp out gets the stored ones.
        let partial = S.updated("ConfigMap", "", from: old) { cm in
            cm[path: "metadata", "uid"] = nil
            cm[path: "metadata", "creationTimestamp"] = nil
        }
        #expect(S.updateErrors("ConfigMap", "", new: partial, old: old) == [])
    }

    @Test func immutableConfigMapsAndSecrets() throws {
        let oldCM = try S.stored("ConfigMap", "", #"{"metadata":{"name":"cfg","namespace":"default"},"data":{"k":"v"},"immutable":true}"#)
        let newCM = S.updated("ConfigMap", "", from: oldCM) { $0[path: "data", "k"] = "w" }
        #expect(S.updateErrors("ConfigMap", "", new: newCM, old: oldCM) == ["data: Forbidden: field is immutable when `immutable` is set"])
        let unflagged = S.updated("ConfigMap", "", from: oldCM) { $0["immutable"] = false }
        #expect(S.updateErrors("ConfigMap", "", new: unflagged, old: oldCM) == ["immutable: Forbidden: field is immutable when `immutable` is set"])

        let oldSecret = try S.stored("Secret", "", #"{"metadata":{"name":"s","namespace":"default"},"data":{"k":"dg=="}}"#)
        let newSecret = S.updated("Secret", "", from: oldSecret) { $0["type"] = "kubernetes.io/basic-auth" }
        #expect(S.updateErrors("Secret", "", new: newSecret, old: oldSecret) == [
            "type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable",
            "data[username]: Required value",
            "data[password]: Required value",
        ])
    }

    @Test func serviceClusterIPCannotChangeButCarriesOver() throws {
        var old = try S.stored("Service", "", S.nodePortService)
        // What the allocators stored.
        old[path: "spec", "clusterIP"] = "10.96.0.10"
        old[path: "spec", "clusterIPs"] = ["10.96.0.10"]
        old[path: "spec", "ports"] = [["port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080]]

        // Re-applying the original YAML keeps the allocated values.
        let reapplied = S.updated("Service", "", from: old) { svc in
            svc["spec"] = ["type": "NodePort", "selector": ["app": "web"], "ports": [["port": 80]]]
        }
        #expect(S.updateErrors("Service", "", new: reapplied, old: old) == [])
        #expect(reapplied[path: "spec", "clusterIP"] == "10.96.0.10")
        #expect(reapplied[path: "spec", "ports"]?.arrayValue?.first?["nodePort"] == 30080)

        let moved = S.updated("Service", "", from: old) { $0[path: "spec", "clusterIP"] = "10.96.0.20" }
        #expect(S.updateErrors("Service", "", new: moved, old: old) == [
            "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.20\"}: may not change once set",
        ])
    }

    @Test func serviceMayBecomeExternalNameAndBack() throws {
        var old = try S.stored("Service", "", S.nodePortService)
        old[path: "spec", "clusterIP"] = "10.96.0.10"
        old[path: "spec", "clusterIPs"] = ["10.96.0.10"]
        let external = S.updated("Service", "", from: old) { svc in
            svc[path: "spec", "type"] = "ExternalName"
            svc[path: "spec", "externalName"] = "db.example.com"
        }
        #expect(S.updateErrors("Service", "", new: external, old: old) == [])
        #expect(external[path: "spec", "clusterIP"] == nil)
        #expect(external[path: "spec", "externalTrafficPolicy"] == nil)

        let back = S.updated("Service", "", from: external) { svc in
            svc[path: "spec", "type"] = "ClusterIP"
            svc[path: "spec", "externalName"] = nil
        }
        #expect(S.updateErrors("Service", "", new: back, old: external) == [])
    }

    @Test func nodePortToClusterIPDropsAllocatedFields() throws {
        var old = try S.stored("Service", "", S.nodePortService)
        old[path: "spec", "ports"] = [["port": 80, "protocol": "TCP", "targetPort": 80, "nodePort": 30080]]
        let new = S.updated("Service", "", from: old) { $0[path: "spec", "type"] = "ClusterIP" }
        #expect(S.updateErrors("Service", "", new: new, old: old) == [])
        #expect(new[path: "spec", "ports"]?.arrayValue?.first?["nodePort"] == nil)
        #expect(new[path: "spec", "externalTrafficPolicy"] == nil)
    }

    @Test func podSpecIsMostlyImmutable() throws {
        let old = try S.stored("Pod", "", S.minimalPod)
        let image = S.updated("Pod", "", from: old) { pod in
            pod[path: "spec", "containers"] = .array((pod[path: "spec", "containers"]?.arrayValue ?? []).map { c in
                var c = c
                c["image"] = "nginx:1.27"
                return c
            })
        }
        #expect(S.updateErrors("Pod", "", new: image, old: old) == [])

        let restart = S.updated("Pod", "", from: old) { $0[path: "spec", "restartPolicy"] = "Never" }
        let errors = S.updateErrors("Pod", "", new: restart, old: old)
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n") == true)
        #expect(errors.first?.contains("- \tRestartPolicy: \"Always\",\n+ \tRestartPolicy: \"Never\",") == true)

        let added = S.updated("Pod", "", from: old) { pod in
            var list = pod[path: "spec", "containers"]?.arrayValue ?? []
            list.append(["name": "sidecar", "image": "busybox"])
            pod[path: "spec", "containers"] = .array(list)
        }
        #expect(S.updateErrors("Pod", "", new: added, old: old) == ["spec.containers: Forbidden: pod updates may not add or remove containers"])

        let labels = S.updated("Pod", "", from: old) { $0[path: "metadata", "labels"] = ["version": "v2"] }
        #expect(S.updateErrors("Pod", "", new: labels, old: old) == [])
        #expect(labels["status"] == old["status"])
    }

    @Test func endpointSliceAddressTypeIsImmutable() throws {
        let old = try S.stored("EndpointSlice", "discovery.k8s.io", #"{"metadata":{"name":"web-abc","namespace":"default"},"addressType":"IPv4","endpoints":[]}"#)
        let new = S.updated("EndpointSlice", "discovery.k8s.io", from: old) { $0["addressType"] = "FQDN" }
        #expect(S.updateErrors("EndpointSlice", "discovery.k8s.io", new: new, old: old) == ["addressType: Invalid value: \"FQDN\": field is immutable"])
    }

    @Test func namespaceKeepsFinalizersAndStatusOnUpdate() throws {
        let old = try S.stored("Namespace", "", #"{"metadata":{"name":"dev"}}"#)
        let new = S.updated("Namespace", "", from: old) { ns in
            ns["spec"] = [:]
            ns["status"] = ["phase": "Terminating"]
            ns[path: "metadata", "labels", "team"] = "a"
        }
        #expect(new[path: "spec", "finalizers"] == ["kubernetes"])
        #expect(new[path: "status", "phase"] == "Active")
        #expect(S.updateErrors("Namespace", "", new: new, old: old, namespaced: false) == [])
    }
}
