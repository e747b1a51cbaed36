import APIMachinery
import Testing

@Suite("Server-side apply")
struct ApplyServerSideTests {
    typealias F = ApplyFixtures
    let fm = FieldManager()

    func apply(_ patch: String, to live: JSON?, manager: String = "kubectl", force: Bool = false,
               schema: Schema = F.service, now: String = F.t0) throws(APIError) -> JSON {
        try fm.apply(patch: F.json(patch), to: live, manager: manager, force: force, schema: schema,
                     registry: F.registry, now: now)
    }

    func update(_ new: JSON, from old: JSON?, manager: String, schema: Schema = F.deployment,
                now: String = F.t0, subresource: String = "") -> JSON {
        fm.recordUpdate(old: old, new: new, manager: manager, schema: schema, registry: F.registry, now: now,
                        subresource: subresource)
    }

    /// What `kubectl apply --server-side -f svc.yaml` sends in transcript 16.
    static let svc = #"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"ports":[{"name":"http","port":80,"targetPort":80}],"selector":{"app":"nginx"},"type":"NodePort"}}"#
    static let svc2 = #"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"ports":[{"name":"http","port":8080,"targetPort":80}],"selector":{"app":"v2"},"type":"NodePort"}}"#

    static func deployment(replicas: Int = 1, image: String = "nginx", extra: String = "") -> String {
        #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","namespace":"default"},"spec":{"#
            + #""replicas":\#(replicas),"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},"#
            + #""spec":{"containers":[{"name":"nginx","image":"\#(image)"\#(extra)}]}}}}"#
    }

    /// What the REST layer adds after apply: defaults and server-owned metadata (nobody owns them).
    func serverDefaults(_ svc: JSON) -> JSON {
        var s = svc
        s[path: "metadata", "uid"] = "6f212978-f2f8-4270-adbc-5f2bc7cbf6a5"
        s[path: "spec", "clusterIP"] = "10.96.0.20"
        s[path: "spec", "sessionAffinity"] = "None"
        if case .array(var ports)? = s[path: "spec", "ports"] {
            for i in ports.indices where ports[i]["protocol"] == nil { ports[i]["protocol"] = "TCP" }
            s[path: "spec", "ports"] = .array(ports)
        }
        s["status"] = ["loadBalancer": [:]]
        return s
    }

    // MARK: Create and re-apply

    @Test("create by apply: the object and one Apply entry, as apiserver records it")
    func createByApply() throws {
        let created = try apply(Self.svc, to: nil, now: F.t0)
        #expect(created[path: "spec", "ports"] == F.json(#"[{"name":"http","port":80,"targetPort":80}]"#))
        #expect(created[path: "metadata", "labels"] == ["app": "web"])
        #expect(created[path: "metadata", "managedFields"] == F.json(#"""
            [{"manager":"kubectl","operation":"Apply","apiVersion":"v1","time":"2026-11-30T03:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:targetPort":{}}},"f:selector":{},"f:type":{}}}}]
            """#))
        #expect(created["status"] == nil)
        // managedFields is the last member of metadata, as in Go's ObjectMeta.
        #expect(created["metadata"]?.objectValue?.keys.last == "managedFields")
    }

    @Test("re-apply of svc2 replaces the port and selector; defaulted fields nobody owns stay")
    func reapplyChangesPortAndSelector() throws {
        let live = serverDefaults(try apply(Self.svc, to: nil, now: F.t0))
        let updated = try apply(Self.svc2, to: live, now: F.t1)
        #expect(updated[path: "spec", "ports"] == F.json(#"[{"name":"http","port":8080,"targetPort":80}]"#))
        #expect(updated[path: "spec", "selector"] == ["app": "v2"])
        #expect(updated[path: "spec", "clusterIP"] == "10.96.0.20")
        #expect(updated[path: "metadata", "uid"] == "6f212978-f2f8-4270-adbc-5f2bc7cbf6a5")
        #expect(updated["status"] == ["loadBalancer": [:]])
        #expect(updated.ssaOwned("kubectl") == #"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":8080,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:targetPort":{}}},"f:selector":{},"f:type":{}}}"#)
        #expect(updated.ssaEntry("kubectl")?["time"] == .string(F.t1))
    }

    @Test("a field left out of the next apply is removed")
    func reapplyWithoutFieldRemovesIt() throws {
        let first = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web","tier":"fe"}},"spec":{"type":"ClusterIP","externalTrafficPolicy":"Local"}}"#, to: nil)
        let second = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"type":"ClusterIP"}}"#, to: first, now: F.t1)
        #expect(second[path: "metadata", "labels"] == ["app": "web"])
        #expect(second[path: "spec", "externalTrafficPolicy"] == nil)
        #expect(second.ssaOwned("kubectl") == #"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:type":{}}}"#)
    }

    @Test("dropping every label removes the labels map")
    func emptiedMapDisappears() throws {
        let first = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","labels":{"app":"web"}},"spec":{"type":"ClusterIP"}}"#, to: nil)
        let second = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"type":"ClusterIP"}}"#, to: first, now: F.t1)
        #expect(second[path: "metadata", "labels"] == nil)
        #expect(second[path: "metadata", "name"] == "web")
    }

    @Test("applying the same configuration again changes nothing, not even the timestamp")
    func noopApply() throws {
        let first = try apply(Self.svc, to: nil, now: F.t0)
        let second = try apply(Self.svc, to: first, now: F.t2)
        #expect(second == first)
    }

    // MARK: Shared ownership

    @Test("two appliers setting the same value share the field; it goes when both let go")
    func sharedField() throws {
        let d = F.deployment
        let base = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x"}"#
        let a1 = try apply(base + #","spec":{"replicas":3}}"#, to: nil, manager: "a", schema: d)
        let b1 = try apply(base + #","spec":{"replicas":3}}"#, to: a1, manager: "b", schema: d, now: F.t1)
        #expect(b1.ssaOwned("a") == #"{"f:spec":{"f:replicas":{}}}"#)
        #expect(b1.ssaOwned("b") == #"{"f:spec":{"f:replicas":{}}}"#)

        let a2 = try apply(base + "}", to: b1, manager: "a", schema: d, now: F.t2)
        #expect(a2[path: "spec", "replicas"] == 3)
        #expect(a2.ssaEntry("a") == nil)
        let b2 = try apply(base + "}", to: a2, manager: "b", schema: d, now: F.t3)
        #expect(b2[path: "spec", "replicas"] == nil)
        #expect(b2[path: "metadata", "managedFields"] == nil)
    }

    // MARK: Conflicts

    func clientSideCreated(replicas: Int = 1) -> JSON {
        update(F.json(Self.deployment(replicas: replicas)), from: nil, manager: "kubectl-client-side-apply")
    }

    @Test("a different value for a field another manager owns is a 409 worded like apiserver's")
    func conflictWithoutForce() throws {
        let live = clientSideCreated()
        let error = #expect(throws: APIError.self) {
            try apply(Self.deployment(replicas: 3), to: live, schema: F.deployment)
        }
        #expect(error?.code == 409)
        #expect(error?.reason == .conflict)
        #expect(error?.message == #"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas"#)
        #expect(error?.causes == [APIError.Cause(reason: "FieldManagerConflict",
                                                  message: #"conflict with "kubectl-client-side-apply" using apps/v1"#,
                                                  field: ".spec.replicas")])
        #expect(error?.status["details"] == F.json(#"{"causes":[{"reason":"FieldManagerConflict","message":"conflict with \"kubectl-client-side-apply\" using apps/v1","field":".spec.replicas"}]}"#))
    }

    @Test("several conflicts are listed per manager, managers sorted")
    func manyConflicts() throws {
        var live = clientSideCreated()
        var edited = live
        edited[path: "metadata", "labels"] = ["team": "a"]
        live = update(edited, from: live, manager: "kubectl-label", now: F.t1)
        let error = #expect(throws: APIError.self) {
            try apply(#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","labels":{"team":"b"}},"spec":{"replicas":2,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:2"}]}}}}"#,
                      to: live, manager: "ci", schema: F.deployment)
        }
        #expect(error?.message == """
            Apply failed with 3 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:
            - .spec.replicas
            - .spec.template.spec.containers[name="nginx"].image
            conflicts with "kubectl-label" using apps/v1:
            - .metadata.labels.team
            """)
        #expect(error?.causes.map(\.field) == [".spec.replicas", #".spec.template.spec.containers[name="nginx"].image"#, ".metadata.labels.team"])
    }

    @Test("force takes the field over: the other manager no longer owns it")
    func forceMovesOwnership() throws {
        let live = clientSideCreated()
        let forced = try apply(Self.deployment(replicas: 3), to: live, manager: "ci", force: true, schema: F.deployment, now: F.t1)
        #expect(forced[path: "spec", "replicas"] == 3)
        let csa = try #require(forced.ssaOwned("kubectl-client-side-apply", "Update"))
        #expect(!csa.contains("f:replicas"))
        #expect(csa.contains("f:image"))
        #expect(forced.ssaOwned("ci")?.contains(#""f:replicas":{}"#) == true)
        // Once moved, applying again without force does not conflict.
        _ = try apply(Self.deployment(replicas: 4), to: forced, manager: "ci", schema: F.deployment, now: F.t2)
    }

    @Test("an object written before anyone applied belongs to before-first-apply")
    func beforeFirstApply() throws {
        let untracked = F.json(Self.deployment(replicas: 1))
        let error = #expect(throws: APIError.self) {
            try apply(Self.deployment(replicas: 2), to: untracked, manager: "ci", schema: F.deployment)
        }
        #expect(error?.message == #"Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas"#)

        let agreed = try apply(Self.deployment(replicas: 1), to: untracked, manager: "ci", schema: F.deployment, now: F.t1)
        #expect(agreed.ssaManagers == ["ci/Apply", "before-first-apply/Update"])
        #expect(agreed.ssaEntry("before-first-apply", "Update")?["time"] == .string(F.t1))
    }

    // MARK: Lists

    @Test("Service ports merge by (port, protocol); each applier prunes only its own")
    func servicePortsListMap() throws {
        let a = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dns"},"spec":{"ports":[{"name":"dns","port":53,"protocol":"UDP"},{"name":"metrics","port":9153}]}}"#, to: nil, manager: "a")
        let b = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dns"},"spec":{"ports":[{"name":"dns-tcp","port":53,"protocol":"TCP"}]}}"#, to: a, manager: "b", now: F.t1)
        #expect(b[path: "spec", "ports"] == F.json(#"[{"name":"dns","port":53,"protocol":"UDP"},{"name":"metrics","port":9153},{"name":"dns-tcp","port":53,"protocol":"TCP"}]"#))
        #expect(b.ssaOwned("b") == #"{"f:spec":{"f:ports":{"k:{\"port\":53,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{}}}}}"#)

        let a2 = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"dns"},"spec":{"ports":[{"name":"dns","port":53,"protocol":"UDP"}]}}"#, to: b, manager: "a", now: F.t2)
        #expect(a2[path: "spec", "ports"] == F.json(#"[{"name":"dns","port":53,"protocol":"UDP"},{"name":"dns-tcp","port":53,"protocol":"TCP"}]"#))
    }

    @Test("a port without protocol is the TCP port: its key uses the default")
    func keyDefault() throws {
        var live = try apply(Self.svc, to: nil)
        live = serverDefaults(live)
        let again = try apply(Self.svc, to: live, now: F.t1)
        #expect(again[path: "spec", "ports"] == F.json(#"[{"name":"http","port":80,"targetPort":80,"protocol":"TCP"}]"#))
    }

    @Test("containers merge by name, keep live order, and are pruned per applier")
    func containersByName() throws {
        let d = F.deployment
        func body(_ containers: String) -> String {
            #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":\#(containers)}}}}"#
        }
        let x = try apply(body(#"[{"name":"a","image":"a:1","env":[{"name":"E","value":"1"}]},{"name":"b","image":"b:1"}]"#), to: nil, manager: "x", schema: d)
        let y = try apply(body(#"[{"name":"c","image":"c:1"}]"#), to: x, manager: "y", schema: d, now: F.t1)
        #expect(y[path: "spec", "template", "spec", "containers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["a", "b", "c"])

        let x2 = try apply(body(#"[{"name":"a","image":"a:2"}]"#), to: y, manager: "x", schema: d, now: F.t2)
        #expect(x2[path: "spec", "template", "spec", "containers"] == F.json(#"[{"name":"a","image":"a:2"},{"name":"c","image":"c:1"}]"#))

        let error = #expect(throws: APIError.self) {
            try apply(body(#"[{"name":"a","image":"a:3"}]"#), to: x2, manager: "y", schema: d, now: F.t3)
        }
        #expect(error?.message == #"Apply failed with 1 conflict: conflict with "x": .spec.template.spec.containers[name="a"].image"#)
    }

    @Test("shared elements follow the applied order; live-only ones keep their place among them")
    func sharedElementOrder() throws {
        let d = F.deployment
        func body(_ names: [String]) -> String {
            let cs = names.map { #"{"name":"\#($0)"}"# }.joined(separator: ",")
            return #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},"spec":{"template":{"spec":{"containers":[\#(cs)]}}}}"#
        }
        let first = try apply(body(["a", "b", "c"]), to: nil, manager: "x", schema: d)
        let other = try apply(body(["z"]), to: first, manager: "y", schema: d)
        let reordered = try apply(body(["c", "b", "a"]), to: other, manager: "x", schema: d, now: F.t1)
        #expect(reordered[path: "spec", "template", "spec", "containers"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["c", "z", "b", "a"])
    }

    @Test("set lists merge by value and prune per applier")
    func finalizersSet() throws {
        let base = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s""#
        let a = try apply(base + #","finalizers":["example.com/x"]}}"#, to: nil, manager: "a")
        let b = try apply(base + #","finalizers":["example.com/y","example.com/x"]}}"#, to: a, manager: "b", now: F.t1)
        // Upstream's list merge puts new applied elements before the shared ones that follow them.
        #expect(b[path: "metadata", "finalizers"] == ["example.com/y", "example.com/x"])
        #expect(b.ssaOwned("a") == #"{"f:metadata":{"f:finalizers":{"v:\"example.com/x\"":{}}}}"#)
        let a2 = try apply(base + "}}", to: b, manager: "a", now: F.t2)
        #expect(a2[path: "metadata", "finalizers"] == ["example.com/y", "example.com/x"])
        let b2 = try apply(base + #","finalizers":["example.com/x"]}}"#, to: a2, manager: "b", now: F.t3)
        #expect(b2[path: "metadata", "finalizers"] == ["example.com/x"])
    }

    @Test("atomic lists, atomic maps and atomic structs are replaced and owned whole")
    func atomicValues() throws {
        let d = F.deployment
        let first = try apply(Self.deployment(extra: #","command":["sh","-c","sleep 1"]"#), to: nil, manager: "x", schema: d)
        let second = try apply(Self.deployment(extra: #","command":["sleep"]"#), to: first, manager: "x", schema: d, now: F.t1)
        #expect(second[path: "spec", "template", "spec", "containers"]?.arrayValue?.first?["command"] == ["sleep"])
        let owned = try #require(second.ssaOwned("x"))
        #expect(owned.contains(#""f:command":{}"#))
        #expect(owned.contains(#""f:selector":{}"#))

        let svc1 = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"selector":{"app":"web","tier":"fe"}}}"#, to: nil)
        let svc2 = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"selector":{"app":"api"}}}"#, to: svc1, manager: "other", force: true)
        #expect(svc2[path: "spec", "selector"] == ["app": "api"])
        #expect(svc2.ssaEntry("kubectl") == nil)
    }

    // MARK: Status and identity

    @Test("status in an apply body is ignored on the main resource")
    func statusIgnored() throws {
        let body = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"type":"ClusterIP"},"status":{"loadBalancer":{"ingress":[{"ip":"1.2.3.4"}]}}}"#
        let created = try apply(body, to: nil)
        #expect(created["status"] == nil)
        #expect(created.ssaOwned("kubectl") == #"{"f:spec":{"f:type":{}}}"#)

        var live = created
        live["status"] = ["loadBalancer": [:]]
        let again = try apply(body, to: live, now: F.t1)
        #expect(again["status"] == ["loadBalancer": [:]])
    }

    @Test("apiVersion, kind, name and namespace are never owned")
    func identityNotOwned() throws {
        let created = try apply(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"default"}}"#, to: nil)
        #expect(created[path: "metadata", "managedFields"] == nil)
        #expect(created[path: "metadata", "name"] == "s")
    }

    // MARK: Refused bodies

    static let refused: [(body: String, code: Int, message: String)] = [
        (#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"s"}}"#, 400, "invalid object type: apps/v1, Kind=Deployment"),
        (#"{"metadata":{"name":"s"}}"#, 400, "invalid object type: /, Kind="),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","managedFields":[]}}"#, 400, "metadata.managedFields must be nil"),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},"spec":{"ports":[{"port":80},{"port":80,"protocol":"TCP"}]}}"#, 500,
         #"failed to create typed patch object (default/web; /v1, Kind=Service): .spec.ports: duplicate entries for key [port=80,protocol="TCP"]"#),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","ownerReferences":[{"name":"x"}]}}"#, 500,
         #"failed to create typed patch object (/web; /v1, Kind=Service): .metadata.ownerReferences: element 0: associative list with keys has an element that omits all key fields ["uid"] (and doesn't have default values for any key fields)"#),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","finalizers":[{"a":1}]}}"#, 500,
         #"failed to create typed patch object (/web; /v1, Kind=Service): .metadata.finalizers: element 0: associative list without keys has an element that's a map type"#),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"replica":1}}"#, 500,
         #"failed to create typed patch object (/web; /v1, Kind=Service): .spec.replica: field not declared in schema"#),
        (#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"replica":1},"extra":true}"#, 500,
         "failed to create typed patch object (/web; /v1, Kind=Service): errors:\n  .spec.replica: field not declared in schema\n  .extra: field not declared in schema"),
    ]

    @Test("bodies apiserver refuses are refused with its words", arguments: refused)
    func refusedBodies(body: String, code: Int, message: String) {
        let error = #expect(throws: APIError.self) { try apply(body, to: nil) }
        #expect(error?.code == code)
        #expect(error?.message == message)
    }

    // MARK: Client-side apply upgrade (manager "kubectl")

    func clientSideApplied(_ config: String, replicas: Int) -> JSON {
        var object = F.json(Self.deployment(replicas: replicas))
        object[path: "metadata", "annotations"] = [FieldManager.lastAppliedAnnotation: .string(config + "\n")]
        return update(object, from: nil, manager: "kubectl-client-side-apply")
    }

    @Test("kubectl may take over fields whose live value still matches the last-applied annotation")
    func lastAppliedAllowsTakeover() throws {
        let live = clientSideApplied(Self.deployment(replicas: 1), replicas: 1)
        let applied = try apply(Self.deployment(replicas: 3), to: live, manager: "kubectl", schema: F.deployment, now: F.t1)
        #expect(applied[path: "spec", "replicas"] == 3)
        #expect(applied.ssaOwned("kubectl-client-side-apply", "Update")?.contains("f:replicas") == false)
        // The annotation now records the server-side configuration: sorted keys, newline.
        let expected = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","namespace":"default"},"spec":{"replicas":3,"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"image":"nginx","name":"nginx"}]}}}}"# + "\n"
        #expect(applied[path: "metadata", "annotations", FieldManager.lastAppliedAnnotation] == .string(expected))

        // Another manager name gets no such leeway.
        let error = #expect(throws: APIError.self) {
            try apply(Self.deployment(replicas: 3), to: live, manager: "ci", schema: F.deployment)
        }
        #expect(error?.code == 409)
    }

    @Test("a field changed since the last client-side apply still conflicts")
    func lastAppliedStale() throws {
        let live = clientSideApplied(Self.deployment(replicas: 1), replicas: 1)
        var edited = live
        edited[path: "spec", "replicas"] = 2
        let afterEdit = update(edited, from: live, manager: "kubectl-edit", now: F.t1)
        let error = #expect(throws: APIError.self) {
            try apply(Self.deployment(replicas: 3), to: afterEdit, manager: "kubectl", schema: F.deployment, now: F.t2)
        }
        #expect(error?.message == #"Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas"#)
    }

    @Test("kubectl 1.27's follow-up apply of just the annotation succeeds")
    func kubectlLastAppliedManager() throws {
        let csaConfig = #"{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"ports":[{"name":"http","port":8080,"targetPort":80}],"selector":{"app":"v2"},"type":"NodePort"}}"#
        var object = F.json(Self.svc2)
        object[path: "metadata", "annotations"] = [FieldManager.lastAppliedAnnotation: .string(csaConfig + "\n")]
        let live = serverDefaults(update(object, from: nil, manager: "kubectl-client-side-apply", schema: F.service))

        let ssa = try apply(Self.svc2, to: live, manager: "kubectl", now: F.t1)
        let annotation = try #require(ssa[path: "metadata", "annotations", FieldManager.lastAppliedAnnotation]?.stringValue)
        var body = F.json(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"}}"#)
        body[path: "metadata", "annotations"] = [FieldManager.lastAppliedAnnotation: .string(annotation)]
        let saved = try fm.apply(patch: body, to: ssa, manager: "kubectl-last-applied", force: false, schema: F.service,
                                 registry: F.registry, now: F.t2)
        #expect(saved.ssaOwned("kubectl-last-applied") == #"{"f:metadata":{"f:annotations":{"f:kubectl.kubernetes.io/last-applied-configuration":{}}}}"#)
        #expect(saved.ssaManagers.first == "kubectl/Apply")
    }

    /// The managedFields kubectl 1.32 (its own structured-merge-diff) wrote back in its
    /// client-side → server-side migration JSON patch, after reading ours: byte for byte the
    /// union our FieldSet computes.
    static let kubectlMigrated = #"[{"manager":"kubectl","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:kubectl.kubernetes.io/last-applied-configuration":{}},"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:clusterIP":{},"f:ports":{".":{},"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:name":{},"f:port":{},"f:protocol":{},"f:targetPort":{}}},"f:selector":{},"f:sessionAffinity":{},"f:type":{}}}},{"manager":"kubectl-last-applied","operation":"Apply","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{"f:kubectl.kubernetes.io/last-applied-configuration":{}}}}}]"#

    @Test("kubectl's client-side to server-side migration, as kubectl 1.32 drives it")
    func kubectlMigration() throws {
        let csa = #"{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"labels":{"app":"web"},"name":"web","namespace":"default"},"spec":{"ports":[{"name":"http","port":80,"targetPort":80}],"selector":{"app":"nginx"},"type":"NodePort"}}"#
        var object = F.json(#"{"apiVersion":"v1","kind":"Service","metadata":{"labels":{"app":"web"},"name":"web","namespace":"default","uid":"u1","resourceVersion":"5"},"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":80}],"selector":{"app":"nginx"},"type":"NodePort","clusterIP":"10.96.0.20","sessionAffinity":"None"},"status":{"loadBalancer":{}}}"#)
        object[path: "metadata", "annotations"] = [FieldManager.lastAppliedAnnotation: .string(csa + "\n")]
        let created = update(object, from: nil, manager: "kubectl-client-side-apply", schema: F.service)

        // 1. apply --server-side: same values, so no conflict; the annotation follows the apply.
        let r1 = try apply(Self.svc, to: created, now: F.t1)
        // 2. kubectl re-sends the annotation under its own manager.
        var only = F.json(#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"}}"#)
        only[path: "metadata", "annotations"] = [FieldManager.lastAppliedAnnotation: r1[path: "metadata", "annotations", FieldManager.lastAppliedAnnotation] ?? ""]
        let r2 = try fm.apply(patch: only, to: r1, manager: "kubectl-last-applied", force: false, schema: F.service,
                              registry: F.registry, now: F.t2)
        let mine = try FieldSet(fieldsV1: r2.ssaEntry("kubectl")?["fieldsV1"] ?? .null)
        let csaSet = try FieldSet(fieldsV1: r2.ssaEntry("kubectl-client-side-apply", "Update")?["fieldsV1"] ?? .null)
        let migrated = F.json(Self.kubectlMigrated)
        #expect(mine.union(csaSet).fieldsV1 == migrated.arrayValue?.first?["fieldsV1"])

        // 3. kubectl's JSON patch replaces managedFields; the write itself changes nothing else.
        var patched = r2
        patched[path: "metadata", "managedFields"] = migrated
        let r3 = update(patched, from: r2, manager: "kubectl", schema: F.service, now: F.t3)
        #expect(r3[path: "metadata", "managedFields"] == migrated)

        // 4. The re-apply now prunes what client-side apply had set and the file does not.
        let r4 = try apply(Self.svc, to: r3, now: F.t3)
        #expect(r4[path: "spec", "sessionAffinity"] == nil)
        #expect(r4[path: "spec", "ports"] == F.json(#"[{"name":"http","port":80,"targetPort":80}]"#))
        #expect(r4[path: "metadata", "annotations", FieldManager.lastAppliedAnnotation] != nil)
    }
}
