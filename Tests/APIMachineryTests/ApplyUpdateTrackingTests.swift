import APIMachinery
import Testing

@Suite("managedFields of ordinary writes")
struct ApplyUpdateTrackingTests {
    typealias F = ApplyFixtures
    let fm = FieldManager()

    func update(_ new: JSON, from old: JSON?, manager: String, now: String = F.t0, subresource: String = "",
                schema: Schema = F.deployment) -> JSON {
        fm.recordUpdate(old: old, new: new, manager: manager, schema: schema, registry: F.registry, now: now,
                        subresource: subresource)
    }

    /// `kubectl create deployment nginx --image=nginx` after defaulting (the parts our schema knows).
    static let created = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","namespace":"default","uid":"u1","creationTimestamp":"2026-11-30T03:00:00Z","labels":{"app":"nginx"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},"template":{"metadata":{"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx","imagePullPolicy":"Always","resources":{}}],"restartPolicy":"Always"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#

    @Test("create: the creator owns what it set, with '.' on maps and list elements it added")
    func createRecordsEverything() {
        let object = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        #expect(object[path: "metadata", "managedFields"] == F.json(#"""
            [{"manager":"kubectl-create","operation":"Update","apiVersion":"apps/v1","time":"2026-11-30T03:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{}}},"f:restartPolicy":{}}}}}}]
            """#))
    }

    @Test("an update takes the changed fields from their previous owner")
    func updateTakesFields() throws {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var edited = created
        edited[path: "spec", "replicas"] = 3
        edited[path: "metadata", "labels", "tier"] = "web"
        let after = update(edited, from: created, manager: "kubectl-edit", now: F.t1)
        #expect(after.ssaOwned("kubectl-edit", "Update") == #"{"f:metadata":{"f:labels":{"f:tier":{}}},"f:spec":{"f:replicas":{}}}"#)
        let creator = try #require(after.ssaOwned("kubectl-create", "Update"))
        #expect(!creator.contains("f:replicas"))
        #expect(creator.contains("f:app"))
        #expect(after.ssaManagers == ["kubectl-create/Update", "kubectl-edit/Update"])

        // The same manager again: its entry grows and its time moves.
        var again = after
        again[path: "spec", "revisionHistoryLimit"] = 5
        let later = update(again, from: after, manager: "kubectl-edit", now: F.t2)
        #expect(later.ssaOwned("kubectl-edit", "Update") == #"{"f:metadata":{"f:labels":{"f:tier":{}}},"f:spec":{"f:replicas":{},"f:revisionHistoryLimit":{}}}"#)
        #expect(later.ssaEntry("kubectl-edit", "Update")?["time"] == .string(F.t2))
    }

    @Test("a removed field leaves every manager")
    func removalClearsOwnership() throws {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var edited = created
        edited[path: "spec", "revisionHistoryLimit"] = nil
        let after = update(edited, from: created, manager: "kubectl-edit", now: F.t1)
        #expect(after.ssaOwned("kubectl-create", "Update")?.contains("revisionHistoryLimit") == false)
        #expect(after.ssaEntry("kubectl-edit", "Update") == nil)
    }

    @Test("an apply later conflicts with what an update changed")
    func applyConflictsWithUpdate() throws {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var scaled = created
        scaled[path: "spec", "replicas"] = 5
        let live = update(scaled, from: created, manager: "kubectl", now: F.t1, subresource: "scale")
        #expect(live.ssaEntry("kubectl", "Update")?["subresource"] == "scale")
        let error = #expect(throws: APIError.self) {
            try fm.apply(patch: F.json(#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx"},"spec":{"replicas":2}}"#),
                         to: live, manager: "ci", force: false, schema: F.deployment, registry: F.registry, now: F.t2)
        }
        #expect(error?.message == #"Apply failed with 1 conflict: conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#)
    }

    @Test("an object that exists without managedFields stays untracked")
    func untrackedStaysUntracked() {
        let old = F.json(Self.created)
        var new = old
        new[path: "spec", "replicas"] = 2
        let after = update(new, from: old, manager: "kubectl-edit")
        #expect(after[path: "metadata", "managedFields"] == nil)
        #expect(after[path: "spec", "replicas"] == 2)
    }

    @Test("an empty managedFields list in the request resets tracking", arguments: ["[]", "[{}]"])
    func reset(list: String) {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var new = created
        new[path: "metadata", "managedFields"] = F.json(list)
        new[path: "spec", "replicas"] = 2
        let after = update(new, from: created, manager: "kubectl-replace", now: F.t1)
        #expect(after[path: "metadata", "managedFields"] == nil)
        #expect(after[path: "metadata"]?.objectValue?.keys.contains("managedFields") == false)
    }

    @Test("managedFields a client writes are the starting point")
    func clientWrittenManagedFields() {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var new = created
        new[path: "metadata", "managedFields"] = F.json(#"[{"manager":"kubectl","operation":"Apply","apiVersion":"apps/v1","time":"2026-11-30T03:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}}]"#)
        let after = update(new, from: created, manager: "kubectl", now: F.t1)
        #expect(after.ssaManagers == ["kubectl/Apply"])
        #expect(after.ssaOwned("kubectl") == #"{"f:spec":{"f:replicas":{}}}"#)
    }

    @Test("unreadable managedFields in the request fall back to the stored ones")
    func invalidRequestedManagedFields() {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var new = created
        new[path: "metadata", "managedFields"] = F.json(#"[{"manager":"x","operation":"Delete","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}}]"#)
        let after = update(new, from: created, manager: "kubectl-edit", now: F.t1)
        #expect(after[path: "metadata", "managedFields"] == created[path: "metadata", "managedFields"])
    }

    @Test("a write that changes nothing keeps managedFields exactly")
    func noopUpdate() {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        let after = update(created, from: created, manager: "kubectl-edit", now: F.t2)
        #expect(after == created)
    }

    @Test("status writes are owned per subresource; spec changes there are not tracked")
    func statusSubresource() {
        let created = update(F.json(Self.created), from: nil, manager: "kubectl-create")
        var new = created
        new["status"] = ["replicas": 1, "readyReplicas": 1]
        let after = update(new, from: created, manager: "deployment-controller", now: F.t1, subresource: "status")
        #expect(after.ssaEntry("deployment-controller", "Update")?["subresource"] == "status")
        #expect(after.ssaOwned("deployment-controller", "Update") == #"{"f:status":{"f:readyReplicas":{},"f:replicas":{}}}"#)

        // The same change through the main resource is not anyone's.
        let main = update(new, from: created, manager: "kubectl-edit", now: F.t1)
        #expect(main.ssaEntry("kubectl-edit", "Update") == nil)
    }

    @Test("more than ten updaters: the oldest fold into ancient-changes")
    func capManagers() {
        var object = update(F.json(Self.created), from: nil, manager: "kubectl-create", now: "2026-11-30T03:00:00Z")
        for i in 1...11 {
            var next = object
            next[path: "metadata", "labels", "l\(i)"] = .string("v")
            object = update(next, from: object, manager: "m\(i)", now: "2026-11-30T04:\(i < 10 ? "0" : "")\(i):00Z")
        }
        let managers = object.ssaManagers
        #expect(managers.count == 10)
        #expect(managers.first == "ancient-changes/Update")
        #expect(!managers.contains("kubectl-create/Update"))
        #expect(!managers.contains("m1/Update"))
        #expect(managers.last == "m11/Update")
        let ancient = object.ssaOwned("ancient-changes", "Update") ?? ""
        #expect(ancient.contains("f:l1") && ancient.contains("f:replicas"))
    }

    @Test("entries are listed Apply first, then by time")
    func entryOrder() throws {
        let created = update(F.json(Self.created), from: nil, manager: "z-creator", now: F.t0)
        let applied = try fm.apply(patch: F.json(#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","labels":{"x":"y"}}}"#),
                                   to: created, manager: "b-applier", force: false, schema: F.deployment, registry: F.registry, now: F.t1)
        var edited = applied
        edited[path: "spec", "replicas"] = 9
        let after = update(edited, from: applied, manager: "a-editor", now: F.t2)
        #expect(after.ssaManagers == ["b-applier/Apply", "z-creator/Update", "a-editor/Update"])
    }

    @Test("the default manager name comes from the User-Agent")
    func defaultManager() {
        #expect(FieldManager.defaultManager(userAgent: "kubectl.1.32/v1.32.5 (linux/amd64) kubernetes/9894294") == "kubectl.1.32")
        #expect(FieldManager.defaultManager(userAgent: "kubectl/v1.37.1 (linux/amd64) kubernetes/f78e722") == "kubectl")
        #expect(FieldManager.defaultManager(userAgent: "a\u{7}b") == "ab")
        #expect(FieldManager.defaultManager(userAgent: String(repeating: "x", count: 200)).utf8.count == 128)
    }
}
