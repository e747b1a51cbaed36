import Testing
@testable import APIMachinery

/// The patch tests' small registry copies upstream's patch metadata by hand; these run the
/// same bodies against labnode's real type registry, so a wrong merge key or strategy there
/// shows up here.
@Suite("Strategic merge patch with TypeRegistry.kubernetes")
struct PatchKubernetesRegistryTests {
    let registry = TypeRegistry.kubernetes

    static func schema(_ kind: String) -> Schema {
        let gvk: GroupVersionKind
        switch kind {
        case "Deployment": gvk = GroupVersionKind(group: "apps", version: "v1", kind: kind)
        default: gvk = GroupVersionKind(group: "", version: "v1", kind: kind)
        }
        return .ref(TypeRegistry.kubernetes.definition(for: gvk)?.name ?? "missing definition for \(kind)")
    }

    @Test("the root definitions exist")
    func roots() {
        for kind in ["Deployment", "Service", "Pod"] {
            guard case .ref(let name) = Self.schema(kind) else { continue }
            #expect(registry[name] != nil, "no definition for \(kind)")
        }
    }

    @Test("kubectl apply on the Service of transcript 15")
    func applyService() throws {
        let patch = patchJSON(#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},"spec":{"$setElementOrder/ports":[{"port":8080}],"ports":[{"name":"http","port":8080,"targetPort":80},{"$patch":"delete","port":80}],"selector":{"app":"v2"}}}"#)
        let out = try StrategicMergePatch.apply(patch, to: PatchTestTypes.webService, schema: Self.schema("Service"), registry: registry)
        #expect(out[path: "spec", "ports"] == patchJSON(#"[{"name":"http","port":8080,"targetPort":80}]"#))
        #expect(out[path: "spec", "selector"] == patchJSON(#"{"app":"v2"}"#))
    }

    @Test("kubectl set image on a Deployment")
    func setImage() throws {
        let patch = patchJSON(#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"image":"nginx:1.27","name":"nginx"}]}}}}"#)
        let out = try StrategicMergePatch.apply(patch, to: PatchTestTypes.nginxDeployment, schema: Self.schema("Deployment"), registry: registry)
        #expect(out[path: "spec", "template", "spec", "containers"] == patchJSON(#"[{"name":"nginx","image":"nginx:1.27","resources":{}}]"#))
    }

    @Test("a string for spec.replicas is refused as the apiserver refuses it")
    func typeError() {
        let error = #expect(throws: APIError.self) {
            _ = try StrategicMergePatch.apply(patchJSON(#"{"spec":{"replicas":"3"}}"#), to: PatchTestTypes.nginxDeployment,
                                              schema: Self.schema("Deployment"), registry: registry)
        }
        #expect(error?.code == 422)
        #expect(error?.message == #" "" is invalid: patch: Invalid value: "map[spec:map[replicas:3]]": unrecognized type: int32"#)
    }

    @Test("the kubectl oracle cases agree with kubectl under the real registry",
          .enabled(if: KubectlOracle.available, "needs kubectl on PATH"),
          arguments: PatchKubectlOracleTests.cases.filter { $0.type == .strategic })
    func oracle(_ c: PatchKubectlOracleTests.Case) throws {
        try PatchKubectlOracleTests.check(c, registry: registry, schema: Self.schema)
    }

    @Test("random patches never crash under the real registry")
    func fuzz() {
        var fuzz = PatchFuzzer(rng: PatchRandom(seed: 0x5eed_0005))
        for i in 0..<2_000 {
            let kind = ["Deployment", "Service", "Pod"][i % 3]
            let doc = i % 2 == 0 ? PatchTestTypes.nginxDeployment : fuzz.object(depth: 4)
            do {
                _ = try StrategicMergePatch.apply(fuzz.object(depth: 4), to: doc, schema: Self.schema(kind), registry: registry)
            } catch {
                #expect([400, 422, 500].contains(error.code), "\(error)")
            }
        }
    }
}
