import Synchronization
import Foundation
import Testing
@testable import APIMachinery
@testable import APIServer
import Store

/// The API's semantics without HTTP: what kube-apiserver does on create, update, patch, delete and watch.
@Suite("APIService semantics")
struct APIServiceTests {
    static func resource(_ name: String, group: String = "") -> ResourceInfo {
        Resources.all.first { $0.resource == name && $0.group == group }!
    }

    let pods = resource("pods")
    let services = resource("services")
    let configmaps = resource("configmaps")
    let namespaces = resource("namespaces")
    let deployments = resource("deployments", group: "apps")

    func makeAPI() async throws -> APIService {
        let api = APIService(store: MemoryStore())
        for ns in ["default", "kube-system"] {
            _ = try await api.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        }
        return api
    }

    static let nginxService: JSON = ["apiVersion": "v1", "kind": "Service", "metadata": ["name": "nginx"],
                                     "spec": ["selector": ["app": "nginx"], "ports": [["port": 80]]]]

    @Test("create fills in system fields and upstream defaults")
    func createDefaults() async throws {
        let api = try await makeAPI()
        let svc = try await api.create(services, namespace: "default", body: Self.nginxService)
        #expect(svc.uid?.count == 36)
        #expect(svc[path: "metadata", "creationTimestamp"]?.stringValue?.hasSuffix("Z") == true)
        #expect(Int(svc.resourceVersion ?? "") ?? 0 > 0)
        #expect(svc.namespace == "default")
        #expect(svc[path: "spec", "type"] == "ClusterIP")
        #expect(svc[path: "spec", "sessionAffinity"] == "None")
        #expect(svc[path: "spec", "ports"]?.arrayValue?.first?["protocol"] == "TCP")
        #expect(svc[path: "spec", "ports"]?.arrayValue?.first?["targetPort"] == 80)
    }

    @Test("a generateName collision draws another name instead of answering 409")
    func generateNameRetriesCollisions() async throws {
        // The first two draws give the same name: the second create must not fail on it.
        let draws = Mutex(["cfg-same1", "cfg-same1", "cfg-other"])
        let api = APIService(store: MemoryStore(), generateName: { prefix in
            draws.withLock { $0.isEmpty ? prefix + "zzzzz" : $0.removeFirst() }
        })
        _ = try await api.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        let body: JSON = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["generateName": "cfg-"]]
        #expect(try await api.create(configmaps, namespace: "default", body: body).name == "cfg-same1")
        #expect(try await api.create(configmaps, namespace: "default", body: body).name == "cfg-other")
        // A name the client chose is never replaced: its collision is the client's 409.
        let named: JSON = ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "cfg-other", "generateName": "cfg-"]]
        await #expect(throws: APIError.alreadyExists("configmaps", name: "cfg-other")) {
            _ = try await api.create(configmaps, namespace: "default", body: named)
        }
    }

    @Test("generateName, AlreadyExists, NotFound namespace, namespace mismatch")
    func createErrors() async throws {
        let api = try await makeAPI()
        let generated = try await api.create(configmaps, namespace: "default",
                                             body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["generateName": "cfg-"]])
        #expect(generated.name?.hasPrefix("cfg-") == true && generated.name?.count == 9)
        _ = try await api.create(services, namespace: "default", body: Self.nginxService)
        await #expect(throws: APIError.alreadyExists("services", name: "nginx")) {
            _ = try await api.create(services, namespace: "default", body: Self.nginxService)
        }
        await #expect(throws: APIError.notFound("namespaces", name: "nope")) {
            _ = try await api.create(services, namespace: "nope", body: Self.nginxService)
        }
        var other = Self.nginxService
        other.namespace = "kube-system"
        do {
            _ = try await api.create(services, namespace: "default", body: other)
            Issue.record("a namespace mismatch must fail")
        } catch {
            #expect(error.code == 400)
        }
    }

    @Test("update needs the current resourceVersion when it sends one")
    func optimisticConcurrency() async throws {
        let api = try await makeAPI()
        let created = try await api.create(configmaps, namespace: "default",
                                           body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "c"], "data": ["a": "1"]])
        var next = created
        next[path: "data", "a"] = "2"
        let (updated, _) = try await api.update(configmaps, namespace: "default", name: "c", body: next)
        #expect(updated[path: "data", "a"] == "2")
        #expect(updated.resourceVersion != created.resourceVersion)
        // The same stale body again: 409 Conflict, worded as kubectl expects.
        do {
            _ = try await api.update(configmaps, namespace: "default", name: "c", body: next)
            Issue.record("a stale resourceVersion must conflict")
        } catch {
            #expect(error.code == 409 && error.reason == .conflict)
            #expect(error.message == "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; please apply your changes to the latest version and try again")
        }
        // An unchanged update writes nothing and keeps the resourceVersion.
        let (same, _) = try await api.update(configmaps, namespace: "default", name: "c", body: updated)
        #expect(same.resourceVersion == updated.resourceVersion)
    }

    @Test("status is owned by /status, spec changes bump generation")
    func statusAndGeneration() async throws {
        let api = try await makeAPI()
        let d: JSON = ["apiVersion": "apps/v1", "kind": "Deployment", "metadata": ["name": "web"],
                       "spec": ["replicas": 1, "selector": ["matchLabels": ["app": "web"]],
                                "template": ["metadata": ["labels": ["app": "web"]],
                                             "spec": ["containers": [["name": "web", "image": "nginx"]]]]]]
        var created = try await api.create(deployments, namespace: "default", body: d)
        #expect(created[path: "metadata", "generation"] == 1)
        created["status"] = ["replicas": 5]
        created[path: "spec", "replicas"] = 3
        let (updated, _) = try await api.update(deployments, namespace: "default", name: "web", body: created)
        #expect(updated[path: "metadata", "generation"] == 2)
        #expect(updated[path: "status", "replicas"] == nil, "the main resource cannot write status")
        var status = updated
        status["status"] = ["replicas": 3, "observedGeneration": 2]
        status[path: "spec", "replicas"] = 9
        let (afterStatus, _) = try await api.update(deployments, namespace: "default", name: "web", body: status, subresource: "status")
        #expect(afterStatus[path: "status", "replicas"] == 3)
        #expect(afterStatus[path: "spec", "replicas"] == 3, "/status cannot write spec")
        #expect(afterStatus[path: "metadata", "generation"] == 2)
        let scale = try await api.get(deployments, namespace: "default", name: "web", subresource: "scale")
        #expect(scale[path: "spec", "replicas"] == 3)
        #expect(scale[path: "status", "selector"] == "app=web")
        let (scaled, _) = try await api.patch(deployments, namespace: "default", name: "web", type: .merge,
                                              body: Array(#"{"spec":{"replicas":4}}"#.utf8), subresource: "scale")
        #expect(scaled.kind == "Scale" && scaled[path: "spec", "replicas"] == 4)
        #expect(try await api.get(deployments, namespace: "default", name: "web")[path: "spec", "replicas"] == 4)
    }

    @Test("a patch cannot rename an object or move it to another namespace (400, as kube-apiserver's checkName)")
    func patchKeepsNameAndNamespace() async throws {
        let api = try await makeAPI()
        _ = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "cm"]])
        let cases: [(PatchType, String, String)] = [
            (.merge, #"{"metadata":{"name":"other"}}"#, "the name of the object (other) does not match the name on the URL (cm)"),
            (.strategic, #"{"metadata":{"name":"other"}}"#, "the name of the object (other) does not match the name on the URL (cm)"),
            (.json, #"[{"op":"replace","path":"/metadata/name","value":"other"}]"#,
             "the name of the object (other) does not match the name on the URL (cm)"),
            (.merge, #"{"metadata":{"name":null}}"#, "the name of the object (cm based on URL) was undeterminable: name must be provided"),
            (.merge, #"{"metadata":{"namespace":"kube-system"}}"#,
             "the namespace of the object (kube-system) does not match the namespace on the request (default)"),
        ]
        for (type, body, message) in cases {
            let error = await #expect(throws: APIError.self) {
                _ = try await api.patch(configmaps, namespace: "default", name: "cm", type: type, body: Array(body.utf8))
            }
            #expect(error?.code == 400 && error?.reason == .badRequest && error?.message == message, "\(type) \(body)")
        }
        let (patched, _) = try await api.patch(configmaps, namespace: "default", name: "cm", type: .merge,
                                               body: Array(#"{"metadata":{"name":"cm","namespace":"default"},"data":{"a":"b"}}"#.utf8))
        #expect(patched[path: "data", "a"] == "b", "naming the object as it is is fine")
    }

    @Test("default, kube-system and kube-public cannot be deleted; a terminating namespace takes no new objects (403)")
    func namespaceLifecycle() async throws {
        let api = try await makeAPI()
        for ns in ["kube-public", "doomed", "kube-node-lease"] {
            _ = try await api.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(ns)]])
        }
        for ns in ["default", "kube-system", "kube-public"] {
            let error = await #expect(throws: APIError.self) { _ = try await api.delete(namespaces, namespace: nil, name: ns) }
            #expect(error?.code == 403 && error?.reason == .forbidden)
            #expect(error?.message == "namespaces \"\(ns)\" is forbidden: this namespace may not be deleted")
            #expect(try await api.get(namespaces, namespace: nil, name: ns).deletionTimestamp == nil)
        }
        _ = try await api.delete(namespaces, namespace: nil, name: "kube-node-lease")
        _ = try await api.create(configmaps, namespace: "doomed", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "keep"]])
        _ = try await api.delete(namespaces, namespace: nil, name: "doomed")
        let error = await #expect(throws: APIError.self) {
            _ = try await api.create(configmaps, namespace: "doomed", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "late"]])
        }
        #expect(error?.code == 403)
        #expect(error?.message == "configmaps \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated")
    }

    @Test("list with selectors, limit and continue")
    func listing() async throws {
        let api = try await makeAPI()
        for i in 0..<7 {
            _ = try await api.create(configmaps, namespace: "default", body: [
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": ["name": .string("c\(i)"), "labels": ["parity": i % 2 == 0 ? "even" : "odd"]]])
        }
        var options = ListOptions()
        options.labelSelector = try LabelSelector.parse("parity=even")
        #expect(try await api.list(configmaps, namespace: "default", options: options).items.count == 4)
        options = ListOptions()
        options.fieldSelector = try FieldSelector.parse("metadata.name=c3")
        #expect(try await api.list(configmaps, namespace: "default", options: options).items.map(\.name) == ["c3"])
        options = ListOptions()
        options.limit = 3
        var names: [String] = []
        while true {
            let page = try await api.list(configmaps, namespace: "default", options: options)
            names += page.items.compactMap(\.name)
            guard let token = page.continueToken else { break }
            options.continueToken = token
        }
        #expect(names == (0..<7).map { "c\($0)" })
        options = ListOptions()
        options.fieldSelector = try FieldSelector.parse("spec.bogus=1")
        await #expect(throws: APIError.badRequest("field label not supported: spec.bogus")) {
            _ = try await api.list(configmaps, namespace: "default", options: options)
        }
    }

    @Test("watch: initial events, bookmarks, live changes, selectors")
    func watching() async throws {
        let api = try await makeAPI()
        _ = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "old"]])
        var options = ListOptions()
        options.sendInitialEvents = true
        options.resourceVersionMatch = "NotOlderThan"
        options.allowWatchBookmarks = true
        let stream = try await api.watch(configmaps, namespace: "default", options: options)
        var it = stream.makeAsyncIterator()
        let first = await it.next()
        #expect(first?.type == .added && first?.object.name == "old")
        let bookmark = await it.next()
        #expect(bookmark?.type == .bookmark)
        #expect(bookmark?.object[path: "metadata", "annotations", "k8s.io/initial-events-end"] == "true")
        _ = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "new"]])
        let live = await it.next()
        #expect(live?.type == .added && live?.object.name == "new")
        _ = try await api.delete(configmaps, namespace: "default", name: "old")
        let gone = await it.next()
        #expect(gone?.type == .deleted && gone?.object.name == "old")
    }

    @Test("a watch from a resourceVersion replays what came after it")
    func watchFromRevision() async throws {
        let api = try await makeAPI()
        let a = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "a"]])
        var b = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "b"]])
        b[path: "data", "x"] = "1"
        _ = try await api.update(configmaps, namespace: "default", name: "b", body: b)
        var options = ListOptions()
        options.resourceVersion = a.resourceVersion
        let stream = try await api.watch(configmaps, namespace: "default", options: options)
        var it = stream.makeAsyncIterator()
        let e1 = await it.next()
        let e2 = await it.next()
        #expect(e1?.type == .added && e1?.object.name == "b")
        #expect(e2?.type == .modified && e2?.object[path: "data", "x"] == "1")
    }

    @Test("delete: finalizers hold an object; removing the last one completes the delete")
    func finalizers() async throws {
        let api = try await makeAPI()
        _ = try await api.create(configmaps, namespace: "default", body: [
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "held", "finalizers": ["example.com/hold"]]])
        guard case .pending(let pending) = try await api.delete(configmaps, namespace: "default", name: "held") else {
            Issue.record("a finalizer must keep the object")
            return
        }
        #expect(pending.deletionTimestamp != nil)
        var release = pending
        release[path: "metadata", "finalizers"] = []
        _ = try await api.update(configmaps, namespace: "default", name: "held", body: release)
        await #expect(throws: APIError.notFound("configmaps", name: "held")) {
            _ = try await api.get(configmaps, namespace: "default", name: "held")
        }
        // Foreground and Orphan are recorded as finalizers for the garbage collector.
        _ = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "fg"]])
        var opts = DeleteOptions()
        opts.propagationPolicy = "Foreground"
        guard case .pending(let fg) = try await api.delete(configmaps, namespace: "default", name: "fg", options: opts) else {
            Issue.record("Foreground deletion waits for dependents")
            return
        }
        #expect(fg.finalizers == ["foregroundDeletion"])
    }

    @Test("dryRun=All stores nothing")
    func dryRun() async throws {
        let api = try await makeAPI()
        var options = WriteOptions()
        options.dryRun = true
        let obj = try await api.create(configmaps, namespace: "default",
                                       body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": "dry"]], options: options)
        #expect(obj.name == "dry")
        await #expect(throws: APIError.notFound("configmaps", name: "dry")) {
            _ = try await api.get(configmaps, namespace: "default", name: "dry")
        }
    }

    @Test("a watch from a revision older than the history gets 410 Gone as an ERROR event")
    func watchTooOld() async throws {
        let api = APIService(store: MemoryStore(options: StoreOptions(historyLimit: 2)))
        _ = try await api.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        for i in 0..<5 {
            _ = try await api.create(configmaps, namespace: "default", body: ["apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string("c\(i)")]])
        }
        var options = ListOptions()
        options.resourceVersion = "1"
        var it = try await api.watch(configmaps, namespace: "default", options: options).makeAsyncIterator()
        let event = await it.next()
        #expect(event?.type == .error)
        #expect(event?.object["code"] == 410 && event?.object["reason"] == "Expired")
        #expect(await it.next() == nil, "the stream ends after the error")
    }

    @Test("deletecollection removes what the selector matches, and only that")
    func deleteCollection() async throws {
        let api = try await makeAPI()
        for (name, tier) in [("a", "web"), ("b", "web"), ("c", "db")] {
            _ = try await api.create(configmaps, namespace: "default", body: [
                "apiVersion": "v1", "kind": "ConfigMap", "metadata": ["name": .string(name), "labels": ["tier": .string(tier)]]])
        }
        var selector = ListOptions()
        selector.labelSelector = try LabelSelector.parse("tier=web")
        let deleted = try await api.deleteCollection(configmaps, namespace: "default", listOptions: selector, options: DeleteOptions())
        #expect(deleted.compactMap(\.name).sorted() == ["a", "b"])
        #expect(try await api.list(configmaps, namespace: "default").items.compactMap(\.name) == ["c"])
    }

    @Test("server-side apply creates, then conflicts with another manager unless forced")
    func serverSideApply() async throws {
        let api = try await makeAPI()
        let body = Array(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa"},"data":{"a":"1"}}"#.utf8)
        var first = WriteOptions()
        first.fieldManager = "alice"
        let (created, wasCreated) = try await api.patch(configmaps, namespace: "default", name: "ssa", type: .apply, body: body, options: first)
        #expect(wasCreated && created[path: "data", "a"] == "1")
        #expect(created[path: "metadata", "managedFields"]?.arrayValue?.first?["manager"] == "alice")
        var second = WriteOptions()
        second.fieldManager = "bob"
        let change = Array(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa"},"data":{"a":"2"}}"#.utf8)
        do {
            _ = try await api.patch(configmaps, namespace: "default", name: "ssa", type: .apply, body: change, options: second)
            Issue.record("bob must conflict with alice on data.a")
        } catch {
            #expect(error.code == 409 && error.message.contains("conflict with \"alice\""), "\(error)")
        }
        second.force = true
        let (forced, _) = try await api.patch(configmaps, namespace: "default", name: "ssa", type: .apply, body: change, options: second)
        #expect(forced[path: "data", "a"] == "2")
    }

    @Test("TokenRequest needs the service account and a sane duration")
    func tokens() async throws {
        struct FakeIssuer: TokenIssuing {
            func issue(namespace: String, serviceAccount: String, uid: String, audiences: [String], expirationSeconds: Int64,
                       boundPod: (name: String, uid: String)?) throws -> (token: String, expiration: Date) {
                ("token-for-\(namespace)/\(serviceAccount)/\(uid)", Date(timeIntervalSince1970: 0))
            }
        }
        let api = APIService(store: MemoryStore(), tokenIssuer: FakeIssuer())
        _ = try await api.create(namespaces, namespace: nil, body: ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": "default"]])
        let sas = Resources.serviceAccounts
        let request: JSON = ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": ["expirationSeconds": 3600]]
        await #expect(throws: APIError.notFound("serviceaccounts", name: "robot")) {
            _ = try await api.createSubresource(sas, namespace: "default", name: "robot", body: request, subresource: "token")
        }
        let sa = try await api.create(sas, namespace: "default", body: ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "robot"]])
        let reply = try await api.createSubresource(sas, namespace: "default", name: "robot", body: request, subresource: "token")
        #expect(reply[path: "status", "token"]?.stringValue == "token-for-default/robot/\(sa.uid ?? "")")
        var short = request
        short[path: "spec", "expirationSeconds"] = 60
        do {
            _ = try await api.createSubresource(sas, namespace: "default", name: "robot", body: short, subresource: "token")
            Issue.record("a 60 s token must be refused")
        } catch {
            #expect(error.code == 422)
        }
    }
}
