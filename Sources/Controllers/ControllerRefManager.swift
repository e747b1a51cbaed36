import APIMachinery
import Foundation
import Synchronization

/// The `controller: true` owner reference of an object: who manages it.
struct ControllerRef: Sendable, Equatable {
    var apiVersion: String
    var kind: String
    var name: String
    var uid: String

    init(apiVersion: String, kind: String, name: String, uid: String) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
    }

    /// The controller reference of `obj`, if it has one.
    init?(of obj: JSON) {
        guard let refs = obj[path: "metadata", "ownerReferences"]?.arrayValue,
              let ref = refs.first(where: { $0["controller"]?.boolValue == true })
        else { return nil }
        apiVersion = ref["apiVersion"]?.stringValue ?? ""
        kind = ref["kind"]?.stringValue ?? ""
        name = ref["name"]?.stringValue ?? ""
        uid = ref["uid"]?.stringValue ?? ""
    }

    /// The reference a controller puts on what it creates; blockOwnerDeletion makes a
    /// foreground deletion of the owner wait for the dependent.
    var json: JSON {
        ["apiVersion": .string(apiVersion), "kind": .string(kind), "name": .string(name), "uid": .string(uid),
         "controller": true, "blockOwnerDeletion": true]
    }
}

/// Upstream's ControllerRefManager: decides which candidate objects a controller manages,
/// adopting matching orphans and releasing owned objects that no longer match.
///
/// Adoption and release are strategic-merge patches of `metadata.ownerReferences` pinned to
/// the resourceVersion the decision was made on, so a concurrent change makes the patch fail
/// with 409 and the whole reconcile is retried on fresh data.
struct ControllerRefClaimer {
    let client: any APIClient
    /// The dependents' resource (pods for a ReplicaSet, replicasets for a Deployment).
    let resource: ResourceInfo
    /// The controller itself, as read from the cache.
    let owner: JSON
    let ownerResource: ResourceInfo
    let manager: String
    /// The highest resourceVersion written, for `Informer.waitForRevision`.
    private(set) var revision: Int64 = 0
    private var adoptionChecked = false

    init(client: any APIClient, resource: ResourceInfo, owner: JSON, ownerResource: ResourceInfo, manager: String) {
        self.client = client
        self.resource = resource
        self.owner = owner
        self.ownerResource = ownerResource
        self.manager = manager
    }

    var ownerRef: ControllerRef {
        ControllerRef(apiVersion: ownerResource.group.isEmpty ? ownerResource.version : "\(ownerResource.group)/\(ownerResource.version)",
                      kind: ownerResource.kind, name: owner.name ?? "", uid: owner.uid ?? "")
    }

    /// The candidates this controller manages after adoption and release.
    mutating func claim(_ candidates: [JSON], matches: (JSON) -> Bool) async throws(APIError) -> [JSON] {
        let ownerUID = owner.uid ?? ""
        let ownerDeleting = owner.deletionTimestamp != nil
        var claimed: [JSON] = []
        for obj in candidates {
            if let ref = ControllerRef(of: obj) {
                guard ref.uid == ownerUID else { continue }
                if matches(obj) {
                    claimed.append(obj)
                    continue
                }
                // A controller being deleted keeps what it has, so the garbage collector can
                // find the dependents by owner.
                if ownerDeleting { continue }
                try await release(obj)
                continue
            }
            guard !ownerDeleting, matches(obj), obj.deletionTimestamp == nil, obj.namespace == owner.namespace else { continue }
            if let adopted = try await adopt(obj) { claimed.append(adopted) }
        }
        return claimed
    }

    /// Adds our controller reference; nil when the object vanished meanwhile.
    private mutating func adopt(_ obj: JSON) async throws(APIError) -> JSON? {
        try await checkCanAdopt()
        let patch: JSON = ["metadata": [
            "ownerReferences": [ownerRef.json],
            "uid": .string(obj.uid ?? ""),
            "resourceVersion": .string(obj.resourceVersion ?? ""),
        ]]
        do {
            let adopted = try await client.patch(resource, namespace: obj.namespace, name: obj.name ?? "", type: .strategic,
                                                 body: patch.serialized(), subresource: nil,
                                                 options: WriteOptions(fieldManager: manager)).object
            note(adopted)
            return adopted
        } catch where error.reason == .notFound {
            return nil
        }
    }

    /// Removes our controller reference from an object we no longer select.
    private mutating func release(_ obj: JSON) async throws(APIError) {
        let patch: JSON = ["metadata": [
            "ownerReferences": [["$patch": "delete", "uid": .string(owner.uid ?? "")]],
            "uid": .string(obj.uid ?? ""),
            "resourceVersion": .string(obj.resourceVersion ?? ""),
        ]]
        do {
            let released = try await client.patch(resource, namespace: obj.namespace, name: obj.name ?? "", type: .strategic,
                                                  body: patch.serialized(), subresource: nil,
                                                  options: WriteOptions(fieldManager: manager)).object
            note(released)
        } catch where error.reason == .notFound || error.reason == .invalid {
            // Gone, or replaced by a new object of the same name: nothing of ours to release.
        }
    }

    /// Before the first adoption, reads the controller afresh (not from the cache): a
    /// controller that is being deleted, or was replaced, must not adopt anything.
    private mutating func checkCanAdopt() async throws(APIError) {
        guard !adoptionChecked else { return }
        let fresh = try await client.get(ownerResource, namespace: owner.namespace, name: owner.name ?? "", subresource: nil)
        let key = "\(owner.namespace ?? "")/\(owner.name ?? "")"
        if fresh.uid != owner.uid {
            throw APIError.conflict(ownerResource.resource, group: ownerResource.group, name: owner.name ?? "",
                                    why: "original \(ownerResource.kind) \(key) is gone: got uid \(fresh.uid ?? ""), wanted \(owner.uid ?? "")")
        }
        if let deleted = fresh.deletionTimestamp {
            throw APIError.conflict(ownerResource.resource, group: ownerResource.group, name: owner.name ?? "",
                                    why: "\(key) has just been deleted at \(deleted)")
        }
        adoptionChecked = true
    }

    private mutating func note(_ written: JSON) {
        revision = max(revision, Int64(written.resourceVersion ?? "") ?? 0)
    }
}

/// Time-based requeues (minReadySeconds, progress deadlines) without piling up timers: a key
/// already due at or before the requested time is not scheduled again, as client-go's
/// delaying queue keeps only the earliest time per key.
final class DelayedRequeue: Sendable {
    let queue: WorkQueue
    let due = Mutex<[String: ContinuousClock.Instant]>([:])

    init(_ queue: WorkQueue) { self.queue = queue }

    func add(_ key: String, after delay: Duration) {
        let now = ContinuousClock.now
        let target = now + delay
        let schedule = due.withLock { due -> Bool in
            if let existing = due[key], existing > now, existing <= target { return false }
            due[key] = target
            if due.count > 4096 { due = due.filter { $0.value > now } }
            return true
        }
        if schedule { queue.add(key, after: delay) }
    }
}
