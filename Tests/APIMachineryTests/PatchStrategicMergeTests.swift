import Testing
@testable import APIMachinery

@Suite("Strategic merge patch")
struct PatchStrategicMergeTests {
    let registry = PatchTestTypes.registry

    func smp(_ patch: String, _ doc: JSON, _ schema: Schema = PatchTestTypes.deployment) throws(APIError) -> JSON {
        try StrategicMergePatch.apply(patchJSON(patch), to: doc, schema: schema, registry: registry)
    }

    // MARK: Bodies kubectl sends (transcripts 15, 18, 19, 40)

    @Test("apply: Service port 80 -> 8080 with $setElementOrder and $patch delete")
    func applyServicePorts() throws {
        let lastApplied = #"{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"web\"},\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"ports\":[{\"name\":\"http\",\"port\":8080,\"targetPort\":80}],\"selector\":{\"app\":\"v2\"},\"type\":\"NodePort\"}}\n"#
        let patch = #"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":""# + lastApplied
            + #""}},"spec":{"$setElementOrder/ports":[{"port":8080}],"ports":[{"name":"http","port":8080,"targetPort":80},{"$patch":"delete","port":80}],"selector":{"app":"v2"}}}"#
        let out = try smp(patch, PatchTestTypes.webService, PatchTestTypes.service)
        #expect(out[path: "spec", "ports"] == patchJSON(#"[{"name":"http","port":8080,"targetPort":80}]"#))
        #expect(out[path: "spec", "selector"] == patchJSON(#"{"app":"v2"}"#))
        #expect(out[path: "spec", "type"] == "NodePort")
        #expect(out[path: "spec", "clusterIP"] == "10.96.0.20")
        let annotation = out[path: "metadata", "annotations", "kubectl.kubernetes.io/last-applied-configuration"]
        #expect(annotation?.stringValue?.contains(#""port":8080"#) == true)
        #expect(out[path: "metadata", "labels"] == patchJSON(#"{"app":"web"}"#))
    }

    @Test("set image: containers merge by name and keep their other fields")
    func setImage() throws {
        let out = try smp(#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"image":"nginx:1.27","name":"nginx"}]}}}}"#,
                          PatchTestTypes.nginxDeployment)
        #expect(out[path: "spec", "template", "spec", "containers"]
            == patchJSON(#"[{"name":"nginx","image":"nginx:1.27","resources":{}}]"#))
        #expect(out[path: "spec", "replicas"] == 1)
        #expect(out[path: "spec", "template", "metadata"] == patchJSON(#"{"creationTimestamp":null,"labels":{"app":"nginx"}}"#))
    }

    @Test("set selector, edit and rollout restart merge maps member by member")
    func mapMerges() throws {
        let svc = try smp(#"{"spec":{"selector":{"app":"v2"}}}"#, PatchTestTypes.webService, PatchTestTypes.service)
        #expect(svc[path: "spec", "selector"] == patchJSON(#"{"app":"v2"}"#))
        #expect(svc[path: "spec", "ports"] == PatchTestTypes.webService[path: "spec", "ports"])

        let edited = try smp(#"{"metadata":{"labels":{"edited":"yes"}},"spec":{"selector":{"app":"edited"}}}"#,
                             PatchTestTypes.webService, PatchTestTypes.service)
        #expect(edited[path: "metadata", "labels"] == patchJSON(#"{"app":"web","edited":"yes"}"#))
        #expect(edited[path: "spec", "selector"] == patchJSON(#"{"app":"edited"}"#))

        let restarted = try smp(#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T03:30:14Z"}}}}}"#,
                                PatchTestTypes.nginxDeployment)
        #expect(restarted[path: "spec", "template", "metadata"]
            == patchJSON(#"{"creationTimestamp":null,"labels":{"app":"nginx"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T03:30:14Z"}}"#))
    }

    // MARK: Semantics, table-driven

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let schema: Schema
        let doc: String
        let patch: String
        let expected: String
        var testDescription: String { name }
    }

    static let deploymentBase = #"{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}]},{"name":"b","image":"b:1"}]}}}}"#

    static let cases: [Case] = [
        Case(name: "null deletes a member, other members stay",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"labels":{"a":"1","b":"2"}}}"#,
             patch: #"{"metadata":{"labels":{"a":null}}}"#,
             expected: #"{"metadata":{"labels":{"b":"2"}}}"#),
        Case(name: "null for a missing member is ignored",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"name":"x"}}"#,
             patch: #"{"metadata":{"labels":null}}"#,
             expected: #"{"metadata":{"name":"x"}}"#),
        Case(name: "new element appended; existing env var merged by name",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","env":[{"name":"Y","value":"3"}]},{"name":"c","image":"c:1"}]}}}}"#,
             // Upstream's interleaving puts patch elements unknown to the server before the
             // server-only ones that follow a patched element (checked with kubectl patch --local).
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"3"}]},{"name":"c","image":"c:1"},{"name":"b","image":"b:1"}]}}}}"#),
        Case(name: "$patch delete removes a container by name",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete","name":"a"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:1"}]}}}}"#),
        Case(name: "$patch replace in a merge list replaces the list",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"z","image":"z"},{"$patch":"replace"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"z","image":"z"}]}}}}"#),
        Case(name: "$setElementOrder reorders merged elements",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:1"},{"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}]}]}}}}"#),
        Case(name: "$setElementOrder with a changed and an added element",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"},{"name":"b"}],"containers":[{"name":"c","image":"c:1"},{"name":"b","image":"b:2"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:1"},{"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}]},{"name":"b","image":"b:2"}]}}}}"#),
        Case(name: "env deletion inside a merged container, with its order list",
             schema: PatchTestTypes.deployment,
             doc: deploymentBase,
             patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}],"containers":[{"$setElementOrder/env":[{"name":"Y"}],"env":[{"$patch":"delete","name":"X"}],"name":"a"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"Y","value":"2"}]},{"name":"b","image":"b:1"}]}}}}"#),
        Case(name: "atomic list (args) is replaced",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","args":["x","y"]}]}}}}"#,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","args":["z"]}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","args":["z"]}]}}}}"#),
        Case(name: "finalizers merge as a set",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"finalizers":["a","b"]}}"#,
             patch: #"{"metadata":{"finalizers":["b","c"]}}"#,
             expected: #"{"metadata":{"finalizers":["a","b","c"]}}"#),
        Case(name: "$deleteFromPrimitiveList removes from a set",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"finalizers":["a","b","c"]}}"#,
             patch: #"{"metadata":{"$deleteFromPrimitiveList/finalizers":["b","x"]}}"#,
             expected: #"{"metadata":{"finalizers":["a","c"]}}"#),
        Case(name: "$setElementOrder on a primitive set",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"finalizers":["a","b"]}}"#,
             patch: #"{"metadata":{"$setElementOrder/finalizers":["c","b","a"],"finalizers":["c"]}}"#,
             expected: #"{"metadata":{"finalizers":["c","b","a"]}}"#),
        Case(name: "ownerReferences merge by uid",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"ownerReferences":[{"uid":"1","kind":"ReplicaSet","name":"rs","controller":true}]}}"#,
             patch: #"{"metadata":{"ownerReferences":[{"uid":"1","controller":false},{"uid":"2","kind":"Job","name":"j"}]}}"#,
             expected: #"{"metadata":{"ownerReferences":[{"uid":"1","kind":"ReplicaSet","name":"rs","controller":false},{"uid":"2","kind":"Job","name":"j"}]}}"#),
        Case(name: "$patch replace on a map",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"labels":{"a":"1","b":"2"}}}"#,
             patch: #"{"metadata":{"labels":{"$patch":"replace","c":"3"}}}"#,
             expected: #"{"metadata":{"labels":{"c":"3"}}}"#),
        Case(name: "$patch delete on an existing map leaves it empty",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"labels":{"a":"1"}}}"#,
             patch: #"{"metadata":{"labels":{"$patch":"delete"}}}"#,
             expected: #"{"metadata":{"labels":{}}}"#),
        Case(name: "$patch on a map that does not exist adds nothing",
             schema: PatchTestTypes.service,
             doc: #"{"metadata":{"name":"x"}}"#,
             patch: #"{"metadata":{"labels":{"$patch":"replace","a":"1"}}}"#,
             expected: #"{"metadata":{"name":"x"}}"#),
        Case(name: "$retainKeys switches a volume from emptyDir to configMap",
             schema: PatchTestTypes.pod,
             doc: #"{"spec":{"volumes":[{"name":"v","emptyDir":{}},{"name":"w","secret":{"secretName":"s"}}]}}"#,
             patch: #"{"spec":{"$setElementOrder/volumes":[{"name":"v"},{"name":"w"}],"volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"emptyDir":null,"name":"v"}]}}"#,
             expected: #"{"spec":{"volumes":[{"name":"v","configMap":{"name":"cm"}},{"name":"w","secret":{"secretName":"s"}}]}}"#),
        Case(name: "$retainKeys on the deployment strategy (switch to Recreate)",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}}"#,
             patch: #"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}"#,
             expected: #"{"spec":{"strategy":{"type":"Recreate"}}}"#),
        Case(name: "a value of another type replaces, nulls inside dropped",
             schema: PatchTestTypes.deployment,
             doc: #"{"status":{"x":"str"}}"#,
             patch: #"{"status":{"x":{"a":1,"b":null}}}"#,
             expected: #"{"status":{"x":{"a":1}}}"#),
        Case(name: "unknown fields merge like a JSON merge patch",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"foo":{"a":1,"b":{"c":2},"l":[1,2]}}}"#,
             patch: #"{"spec":{"foo":{"a":null,"b":{"d":3},"l":[3]}}}"#,
             expected: #"{"spec":{"foo":{"b":{"c":2,"d":3},"l":[3]}}}"#),
        Case(name: "service ports merge by port; an added port lands at the end",
             schema: PatchTestTypes.service,
             doc: #"{"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080}]}}"#,
             patch: #"{"spec":{"ports":[{"port":80,"targetPort":"web"},{"name":"https","port":443}]}}"#,
             expected: #"{"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":"web"},{"name":"https","port":443}]}}"#),
        Case(name: "apply renaming a port keeps a port added by hand in front (upstream's shared-slice order)",
             schema: PatchTestTypes.service,
             doc: #"{"spec":{"ports":[{"name":"http","port":80},{"name":"https","port":443}]}}"#,
             patch: #"{"spec":{"$setElementOrder/ports":[{"port":8080}],"ports":[{"name":"http","port":8080},{"$patch":"delete","port":80}]}}"#,
             expected: #"{"spec":{"ports":[{"name":"https","port":443},{"name":"http","port":8080}]}}"#),
        Case(name: "an empty $setElementOrder sorts with Go's algorithm and upstream's comparator",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}}}}"#,
             patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[],"containers":[{"name":"b","image":"x"},{"name":"d"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"d"},{"name":"a"},{"name":"b","image":"x"},{"name":"c"}]}}}}"#),
        Case(name: "a patch element named earlier than the server's goes first",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"template":{"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}}}}"#,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"d"},{"name":"a","image":"x"}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"d"},{"name":"a","image":"x"},{"name":"b"},{"name":"c"}]}}}}"#),
        Case(name: "list created from nothing drops directive elements",
             schema: PatchTestTypes.service,
             doc: #"{"spec":{}}"#,
             patch: #"{"spec":{"ports":[{"port":1},{"$patch":"delete","port":2}]}}"#,
             expected: #"{"spec":{"ports":[{"port":1}]}}"#),
        Case(name: "an added element without $setElementOrder goes first; its nulls are dropped",
             schema: PatchTestTypes.deployment,
             doc: #"{"spec":{"template":{"spec":{"containers":[{"name":"a"}]}}}}"#,
             patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":null}]}}}}"#,
             expected: #"{"spec":{"template":{"spec":{"containers":[{"name":"b"},{"name":"a"}]}}}}"#),
    ]

    @Test(arguments: cases)
    func merges(_ c: Case) throws {
        let out = try StrategicMergePatch.apply(patchJSON(c.patch), to: patchJSON(c.doc), schema: c.schema, registry: registry)
        #expect(out.sameValue(as: patchJSON(c.expected)), "got \(out.text)")
    }

    @Test("a null body changes nothing")
    func nullBody() throws {
        let out = try StrategicMergePatch.apply(.null, to: PatchTestTypes.nginxDeployment,
                                                schema: PatchTestTypes.deployment, registry: registry)
        #expect(out == PatchTestTypes.nginxDeployment)
    }

    @Test("members keep their place; new members go last")
    func memberOrder() throws {
        let out = try smp(#"{"spec":{"replicas":3,"paused":true}}"#, PatchTestTypes.nginxDeployment)
        let keys = out[path: "spec"]?.objectValue.map { Array($0.keys) }
        #expect(keys == ["replicas", "selector", "template", "strategy", "revisionHistoryLimit", "progressDeadlineSeconds", "paused"])
    }

    // MARK: Errors, worded and coded as kube-apiserver

    struct ErrorCase: CustomTestStringConvertible, Sendable {
        let name: String
        let patch: String
        let code: Int
        let reason: APIError.Reason
        let message: String
        var testDescription: String { name }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(name: "body is a list", patch: #"[{"a":1}]"#, code: 400, reason: .badRequest,
                  message: "json: cannot unmarshal array into Go value of type map[string]interface {}"),
        ErrorCase(name: "body is a string", patch: #""x""#, code: 400, reason: .badRequest,
                  message: "json: cannot unmarshal string into Go value of type map[string]interface {}"),
        ErrorCase(name: "container without merge key",
                  patch: #"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#, code: 500, reason: .unknown,
                  message: "map: map[image:x] does not contain declared merge key: name"),
        ErrorCase(name: "$patch delete without merge key",
                  patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}"#, code: 500, reason: .unknown,
                  message: "map: map[$patch:delete] does not contain declared merge key: name"),
        ErrorCase(name: "$patch merge on a map",
                  patch: #"{"metadata":{"labels":{"$patch":"merge","a":"b"}}}"#, code: 500, reason: .unknown,
                  message: "unknown patch type: merge in map: map[$patch:merge a:b]"),
        ErrorCase(name: "$patch merge in a list",
                  patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge","name":"nginx"}]}}}}"#, code: 500, reason: .unknown,
                  message: "merging lists cannot yet be specified in the patch"),
        ErrorCase(name: "$patch with a number",
                  patch: #"{"metadata":{"labels":{"$patch":5}}}"#, code: 500, reason: .unknown,
                  message: "unknown patch type: %!s(int64=5) in map: map[$patch:5]"),
        ErrorCase(name: "$retainKeys not a list",
                  patch: #"{"spec":{"strategy":{"$retainKeys":"type","type":"Recreate"}}}"#, code: 400, reason: .badRequest,
                  message: "invalid patch format of retainKeys"),
        ErrorCase(name: "patch sets a member $retainKeys does not list",
                  patch: #"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":{}}}}"#, code: 400, reason: .badRequest,
                  message: "invalid patch format of retainKeys"),
        ErrorCase(name: "$setElementOrder without a list name",
                  patch: #"{"spec":{"$setElementOrderfoo":[]}}"#, code: 400, reason: .badRequest,
                  message: "invalid patch format of setElementOrder list"),
        ErrorCase(name: "$setElementOrder that is not a list",
                  patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":{"name":"a"}}}}}"#, code: 500, reason: .unknown,
                  message: "expected a []interface {}, but received a map[string]interface {}"),
        ErrorCase(name: "$deleteFromPrimitiveList without a list name",
                  patch: #"{"metadata":{"$deleteFromPrimitiveList":["a"]}}"#, code: 400, reason: .badRequest,
                  message: "invalid patch format of primitive list"),
        ErrorCase(name: "patch list contradicts $setElementOrder",
                  patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"name":"other","image":"x"}]}}}}"#,
                  code: 500, reason: .unknown,
                  message: "The order in patch list:\n[map[image:x name:other]]\n doesn't match $setElementOrder list:\n[map[name:nginx]]\n"),
        ErrorCase(name: "list of lists",
                  patch: #"{"spec":{"template":{"spec":{"containers":[["a"]]}}}}"#, code: 500, reason: .unknown,
                  message: "list element types are not identical: [[map[image:nginx name:nginx resources:map[]]] [[a]]]"),
        ErrorCase(name: "a list of lists for a string list is a type error",
                  patch: #"{"metadata":{"finalizers":[["a"]]}}"#, code: 422, reason: .invalid,
                  message: #" "" is invalid: patch: Invalid value: "map[metadata:map[finalizers:[[a]]]]": unrecognized type: string"#),
        ErrorCase(name: "mixed element types in a merge list",
                  patch: #"{"spec":{"template":{"spec":{"containers":["nginx"]}}}}"#, code: 500, reason: .unknown,
                  message: "list element types are not identical: [[map[image:nginx name:nginx resources:map[]]] [nginx]]"),
        ErrorCase(name: "an object where a list belongs",
                  patch: #"{"spec":{"template":{"spec":{"containers":{"name":"nginx"}}}}}"#, code: 422, reason: .invalid,
                  message: #" "" is invalid: patch: Invalid value: "map[spec:map[template:map[spec:map[containers:map[name:nginx]]]]]": cannot restore slice from map"#),
        ErrorCase(name: "a list where an object belongs",
                  patch: #"{"spec":{"template":[1]}}"#, code: 422, reason: .invalid,
                  message: #" "" is invalid: patch: Invalid value: "map[spec:map[template:[1]]]": cannot restore struct from: slice"#),
        ErrorCase(name: "a string for an integer",
                  patch: #"{"spec":{"replicas":"3"}}"#, code: 422, reason: .invalid,
                  message: #" "" is invalid: patch: Invalid value: "map[spec:map[replicas:3]]": unrecognized type: int32"#),
        ErrorCase(name: "a number for a string label",
                  patch: #"{"metadata":{"labels":{"a":1}}}"#, code: 422, reason: .invalid,
                  message: #" "" is invalid: patch: Invalid value: "map[metadata:map[labels:map[a:1]]]": cannot convert int64 to string"#),
    ]

    @Test(arguments: errorCases)
    func errors(_ c: ErrorCase) {
        let error = #expect(throws: APIError.self) {
            _ = try smp(c.patch, PatchTestTypes.nginxDeployment)
        }
        #expect(error?.code == c.code)
        #expect(error?.reason == c.reason)
        #expect(error?.message == c.message)
    }

    @Test("a type error is reported on field `patch`, as kubectl expects from a 422")
    func typeErrorCause() {
        do {
            _ = try smp(#"{"spec":{"replicas":true}}"#, PatchTestTypes.nginxDeployment)
            Issue.record("expected an error")
        } catch {
            #expect(error.causes == [APIError.Cause(reason: "FieldValueInvalid",
                                                    message: #"Invalid value: "map[spec:map[replicas:true]]": unrecognized type: int32"#,
                                                    field: "patch")])
        }
    }
}

@Suite("Strategic merge patch: lists of lists")
struct PatchStrategicListOfListsTests {
    @Test("a list of lists merged into an existing empty merge list is 422 with the generic text")
    func listOfLists() {
        let error = #expect(throws: APIError.self) {
            _ = try StrategicMergePatch.apply(patchJSON(#"{"metadata":{"finalizers":[["a"]]}}"#),
                                              to: patchJSON(#"{"metadata":{"finalizers":[]}}"#),
                                              schema: PatchTestTypes.service, registry: PatchTestTypes.registry)
        }
        #expect(error?.code == 422)
        #expect(error?.reason == .invalid)
        #expect(error?.message == "the server rejected our request due to an error in our request")
    }
}
