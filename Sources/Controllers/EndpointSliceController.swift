import APIMachinery
import Logging
import Synchronization

/// Keeps the discovery/v1 EndpointSlices of every Service with a selector, as
/// kube-controller-manager's endpointslice controller does: at most 100 endpoints per slice,
/// one group of slices per set of ports, endpoints updated in place where they already are
/// (minimal churn), terminating pods kept with their serving/terminating conditions, and one
/// empty placeholder slice while a service has no endpoints.
///
/// Slices are labelled `kubernetes.io/service-name` and managed-by
/// `endpointslice-controller.k8s.io`, and owned by their Service.
public final class EndpointSliceController: Reconciler {
    public let name = "endpointslice-controller"
    public let queue = WorkQueue()
    let context: ControllerContext
    let triggerTimes = TriggerTimeTracker()
    let ownWrites = SliceWriteTracker()
    static let manager = "kube-controller-manager"
    static let maxEndpointsPerSlice = 100
    /// Changes made to our slices by someone else are repaired after this delay (upstream's
    /// minimum sync delay for slice-triggered syncs), so a burst of edits costs one sync.
    static let sliceChangeDelay = Duration.seconds(1)

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let services = context.informers.services
        let ownWrites = self.ownWrites
        context.informers.services.onChange { event in
            queue.add(Informer.key(event.object))
        }
        context.informers.pods.onChange { event in
            for key in EndpointsController.servicesToSync(for: event, services: services) { queue.add(key) }
        }
        context.informers.endpointSlices.onChange { event in
            for key in Self.servicesToRepair(for: event, ownWrites: ownWrites, managedBy: EndpointKeys.sliceControllerName) {
                queue.add(key, after: Self.sliceChangeDelay)
            }
        }
    }

    /// Owner keys ("namespace/<service-name label>") of slices of ours changed by someone else.
    static func servicesToRepair(for event: InformerEvent, ownWrites: SliceWriteTracker, managedBy: String) -> Set<String> {
        func key(_ slice: JSON) -> String? {
            guard let service = slice.labels[EndpointKeys.serviceName], !service.isEmpty else { return nil }
            return Informer.key(namespace: slice.namespace, name: service)
        }
        func ours(_ slice: JSON) -> Bool { slice.labels[EndpointKeys.managedBy] == managedBy }
        switch event {
        case .added(let s):
            guard ours(s), !ownWrites.isOwn(s) else { return [] }
            return Set([key(s)].compactMap { $0 })
        case .updated(let old, let new):
            if key(old) != key(new) || ours(old) != ours(new) { return Set([key(old), key(new)].compactMap { $0 }) }
            guard ours(new), !ownWrites.isOwn(new) else { return [] }
            return Set([key(new)].compactMap { $0 })
        case .deleted(let s):
            guard ours(s), !ownWrites.wasDeletedByUs(s) else { return [] }
            return Set([key(s)].compactMap { $0 })
        }
    }

    public func reconcile(_ key: String) async throws {
        let (namespace, serviceName) = EndpointsComputation.split(key)
        let informers = context.informers
        let existing = informers.endpointSlices.list(namespace: namespace, selector: LabelSelector.from(map: [
            EndpointKeys.serviceName: serviceName, EndpointKeys.managedBy: EndpointKeys.sliceControllerName,
        ])).filter { $0.deletionTimestamp == nil }

        guard let service = informers.services.get(key: key),
              !EndpointsComputation.isExternalName(service),
              let selector = EndpointsComputation.selector(of: service)
        else {
            // Upstream leaves this to the garbage collector (the slices are owned by the
            // service) and keeps stale slices when a selector is removed; labnode removes them
            // here so consumers never route to pods a service no longer selects.
            if informers.services.get(key: key) == nil { triggerTimes.forget(key) }
            try await apply(SlicePlan(delete: existing), service: nil)
            return
        }

        let pods = informers.pods.list(namespace: namespace, selector: LabelSelector.from(map: selector))
        let triggerTime = triggerTimes.compute(key: key, service: service, pods: pods)
        var plan = EndpointSlicePlanner.plan(service: service, pods: pods, existing: existing,
                                             maxEndpoints: Self.maxEndpointsPerSlice)
        for i in plan.create.indices { Self.setTriggerTime(&plan.create[i], triggerTime) }
        for i in plan.update.indices { Self.setTriggerTime(&plan.update[i], triggerTime) }
        do {
            try await apply(plan, service: service)
        } catch {
            context.events.record(service, component: name, type: "Warning", reason: "FailedToUpdateEndpointSlices",
                                  message: "Error updating Endpoint Slices for Service \(namespace)/\(serviceName): \(error)")
            throw error
        }
    }

    static func setTriggerTime(_ slice: inout JSON, _ time: Double?) {
        var annotations = EndpointsComputation.annotations(slice)
        annotations[EndpointKeys.lastChangeTriggerTime] = time.map(TriggerTimeTracker.format)
        slice[path: "metadata", "annotations"] = annotations.isEmpty ? nil : EndpointsComputation.stringMap(annotations)
    }

    func apply(_ plan: SlicePlan, service: JSON?) async throws(APIError) {
        // No new slices for a service on its way out: they would race its garbage collection.
        try await plan.apply(context: context, tracker: ownWrites, manager: Self.manager,
                             createNew: service?.deletionTimestamp == nil)
    }
}

struct SlicePlan: Sendable {
    var create: [JSON] = []
    var update: [JSON] = []
    var delete: [JSON] = []

    var isEmpty: Bool { create.isEmpty && update.isEmpty && delete.isEmpty }
}

/// Remembers the slice versions this controller wrote and the slices it deleted, so the
/// informer events they cause do not trigger another sync (upstream's slice tracker).
final class SliceWriteTracker: Sendable {
    struct State {
        var written: [String: String] = [:]
        var deleted: Set<String> = []
    }
    let state = Mutex(State())

    func wrote(_ slice: JSON) {
        state.withLock { $0.written[Informer.key(slice)] = slice.resourceVersion ?? "" }
    }

    func deleting(_ slice: JSON) {
        state.withLock { s in
            s.deleted.insert(Informer.key(slice))
            s.written[Informer.key(slice)] = nil
        }
    }

    func isOwn(_ slice: JSON) -> Bool {
        state.withLock { $0.written[Informer.key(slice)] == slice.resourceVersion }
    }

    func wasDeletedByUs(_ slice: JSON) -> Bool {
        state.withLock { $0.deleted.remove(Informer.key(slice)) != nil }
    }
}

/// The endpointslice controller's reconciliation, as a pure function of the service, its pods
/// and the slices that exist: which slices to create, update and delete.
enum EndpointSlicePlanner {
    static func plan(service: JSON, pods: [JSON], existing: [JSON], maxEndpoints: Int) -> SlicePlan {
        let types = EndpointsComputation.addressTypes(of: service)
        var plan = SlicePlan()
        var byType: [String: [JSON]] = [:]
        for slice in existing {
            let type = slice["addressType"]?.stringValue ?? ""
            if types.contains(type) { byType[type, default: []].append(slice) } else { plan.delete.append(slice) }
        }
        for type in types {
            let groups = EndpointsComputation.sliceGroups(service: service, pods: pods, addressType: type)
            let p = planAddressType(service: service, groups: groups, existing: byType[type] ?? [], addressType: type,
                                    maxEndpoints: maxEndpoints)
            plan.create += p.create
            plan.update += p.update
            plan.delete += p.delete
        }
        return plan
    }

    static func ownedBy(_ slice: JSON, _ service: JSON) -> Bool {
        (slice[path: "metadata", "ownerReferences"]?.arrayValue ?? []).contains { ref in
            ref["uid"]?.stringValue == service.uid && ref["kind"]?.stringValue == "Service"
                && ref["apiVersion"]?.stringValue == "v1"
        }
    }

    static func portsKey(_ slice: JSON) -> String {
        EndpointPortSpec.key((slice["ports"]?.arrayValue ?? []).map(EndpointPortSpec.init(json:)))
    }

    /// The slice labels: the service's own labels (the reserved keys aside), the headless
    /// marker, the service name and the manager. `changed` says whether the copied service
    /// labels differ from the slice's (changes of the reserved keys alone do not count).
    static func labels(existing: [String: String], service: JSON, manager: String) -> (labels: [String: String], changed: Bool) {
        let reserved: Set<String> = [EndpointKeys.serviceName, EndpointKeys.managedBy, EndpointKeys.headless]
        let current = existing.filter { !reserved.contains($0.key) }
        var labels = service.labels.filter { !reserved.contains($0.key) }
        let changed = current != labels
        if !EndpointsComputation.isServiceIPSet(service) { labels[EndpointKeys.headless] = "" }
        labels[EndpointKeys.serviceName] = service.name ?? ""
        labels[EndpointKeys.managedBy] = manager
        return (labels, changed)
    }

    static func newSlice(service: JSON, ports: [EndpointPortSpec], addressType: String) -> JSON {
        let labels = Self.labels(existing: [:], service: service, manager: EndpointKeys.sliceControllerName).labels
        return [
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": [
                "generateName": .string((service.name ?? "") + "-"),
                "namespace": .string(service.namespace ?? ""),
                "labels": EndpointsComputation.stringMap(labels),
                "ownerReferences": [EndpointsComputation.controllerRef(to: service, apiVersion: "v1", kind: "Service")],
            ],
            "addressType": .string(addressType),
            // Empty lists read back as null from the real API server (protobuf storage).
            "endpoints": .null,
            "ports": ports.isEmpty ? .null : .array(ports.map(\.sliceJSON)),
        ]
    }

    /// A slice being worked on: its object and its endpoints as they will be written.
    struct Working {
        var json: JSON
        var endpoints: [JSON]

        var output: JSON {
            var out = json
            out["endpoints"] = endpoints.isEmpty ? .null : .array(endpoints)
            return out
        }
    }

    static func planAddressType(service: JSON, groups: [SliceGroup], existing: [JSON], addressType: String,
                                maxEndpoints: Int) -> SlicePlan {
        var toCreate: [JSON] = []
        var toUpdate: [JSON] = []
        var toDelete: [JSON] = []

        // Slices of another owner (e.g. a deleted service of the same name) are replaced.
        var existingByKey: [String: [JSON]] = [:]
        var keyOrder: [String] = []
        for slice in existing {
            guard ownedBy(slice, service) else {
                toDelete.append(slice)
                continue
            }
            let key = portsKey(slice)
            if existingByKey[key] == nil { keyOrder.append(key) }
            existingByKey[key, default: []].append(slice)
        }

        let desiredKeys = Set(groups.map(\.key))
        for group in groups {
            let p = planPortGroup(service: service, existing: existingByKey[group.key] ?? [], group: group,
                                  addressType: addressType, maxEndpoints: maxEndpoints)
            toCreate += p.create
            toUpdate += p.update
            toDelete += p.delete
        }
        for key in keyOrder where !desiredKeys.contains(key) {
            toDelete += existingByKey[key] ?? []
        }

        // A service with no endpoints keeps one empty slice, so consumers can tell "no
        // endpoints" from "not synced yet".
        if existing.count == toDelete.count && toCreate.isEmpty {
            let placeholder = newSlice(service: service, ports: [], addressType: addressType)
            if toDelete.count == 1 && isSamePlaceholder(toDelete[0], placeholder) {
                toDelete = []
            } else {
                toCreate.append(placeholder)
            }
        }

        // Rather than delete one slice and create another, rewrite the one to be deleted.
        var i = 0
        while i < toDelete.count, var slice = toCreate.last {
            let victim = toDelete[i]
            guard victim["addressType"]?.stringValue == addressType, ownedBy(victim, service) else {
                i += 1
                continue
            }
            toCreate.removeLast()
            slice[path: "metadata", "name"] = .string(victim.name ?? "")
            slice[path: "metadata", "resourceVersion"] = victim[path: "metadata", "resourceVersion"]
            toUpdate.append(slice)
            toDelete.remove(at: i)
        }
        return SlicePlan(create: toCreate, update: toUpdate, delete: toDelete)
    }

    /// Upstream compares placeholders by namespace, labels, address type and (empty) contents only.
    static func isSamePlaceholder(_ a: JSON, _ b: JSON) -> Bool {
        a.namespace == b.namespace && a.labels == b.labels
            && a["addressType"] == b["addressType"]
            && (a["endpoints"]?.arrayValue ?? []).isEmpty && (b["endpoints"]?.arrayValue ?? []).isEmpty
            && (a["ports"]?.arrayValue ?? []).isEmpty && (b["ports"]?.arrayValue ?? []).isEmpty
    }

    /// One group of slices sharing a port set: keep endpoints where they are, update changed
    /// ones in place, drop gone ones, then place new endpoints into slices already being
    /// updated, then into the unchanged slice closest to full, then into new slices.
    static func planPortGroup(service: JSON, existing: [JSON], group: SliceGroup, addressType: String,
                              maxEndpoints: Int) -> SlicePlan {
        var desired: [SliceEndpointSpec.Identity: SliceEndpointSpec] = [:]
        for e in group.endpoints { desired[e.identity] = e }

        var slices: [String: Working] = [:]
        var unchanged: [String] = []
        var toUpdate: [String] = []
        var toDelete: [JSON] = []

        for slice in existing {
            let name = slice.name ?? ""
            let current = slice["endpoints"]?.arrayValue ?? []
            var kept: [JSON] = []
            var endpointChanged = false
            for raw in current {
                let endpoint = SliceEndpointSpec(json: raw)
                guard let wanted = desired[endpoint.identity] else { continue }
                kept.append(wanted.json)
                if !wanted.sameBeyondIdentity(endpoint) { endpointChanged = true }
                desired[endpoint.identity] = nil
            }
            let (labels, labelsChanged) = Self.labels(existing: slice.labels, service: service,
                                                 manager: EndpointKeys.sliceControllerName)
            var copy = slice
            copy[path: "metadata", "labels"] = EndpointsComputation.stringMap(labels)
            if endpointChanged || kept.count != current.count {
                if kept.isEmpty {
                    toDelete.append(slice)
                } else {
                    slices[name] = Working(json: copy, endpoints: kept)
                    toUpdate.append(name)
                }
            } else if labelsChanged {
                slices[name] = Working(json: copy, endpoints: current)
                toUpdate.append(name)
            } else {
                slices[name] = Working(json: slice, endpoints: current)
                unchanged.append(name)
            }
        }

        // New endpoints go in a fixed order so syncs are reproducible.
        var pending = desired.values.sorted { $0.identity < $1.identity }[...]

        // Fill the slices that are written anyway, fullest first.
        if !pending.isEmpty && !toUpdate.isEmpty {
            let order = toUpdate.sorted { (slices[$0]?.endpoints.count ?? 0) > (slices[$1]?.endpoints.count ?? 0) }
            for name in order {
                while let next = pending.first, (slices[name]?.endpoints.count ?? maxEndpoints) < maxEndpoints {
                    slices[name]?.endpoints.append(next.json)
                    pending = pending.dropFirst()
                }
            }
        }

        var toCreate: [JSON] = []
        while !pending.isEmpty {
            var target: String?
            // What is left fits in one slice: prefer the unchanged slice it fills most.
            if pending.count < maxEndpoints && !unchanged.isEmpty {
                var closest = maxEndpoints
                for name in unchanged {
                    let diff = maxEndpoints - (pending.count + (slices[name]?.endpoints.count ?? 0))
                    if diff >= 0 && diff < closest {
                        closest = diff
                        target = name
                        if diff == 0 { break }
                    }
                }
            }
            var working = target.flatMap { slices[$0] }
                ?? Working(json: newSlice(service: service, ports: group.ports, addressType: addressType), endpoints: [])
            while let next = pending.first, working.endpoints.count < maxEndpoints {
                working.endpoints.append(next.json)
                pending = pending.dropFirst()
            }
            if let target {
                slices[target] = working
                unchanged.removeAll { $0 == target }
                toUpdate.append(target)
            } else {
                toCreate.append(working.output)
            }
        }

        return SlicePlan(create: toCreate, update: toUpdate.compactMap { slices[$0]?.output }, delete: toDelete)
    }
}

extension SlicePlan {
    /// Creates, updates (with the resourceVersion read, so a concurrent writer makes it fail with
    /// 409 and the key is retried), then deletes; waits until the cache holds the result. Both
    /// slice controllers write this way; `tracker` remembers our writes so their watch events
    /// are not mistaken for someone else's edit.
    func apply(context: ControllerContext, tracker: SliceWriteTracker, manager: String, createNew: Bool) async throws(APIError) {
        var revision: Int64 = 0
        func note(_ obj: JSON) {
            tracker.wrote(obj)
            revision = max(revision, Int64(obj.resourceVersion ?? "") ?? 0)
        }
        if createNew {
            for slice in create {
                do throws(APIError) {
                    note(try await context.client.create(Resources.endpointSlices, slice, manager: manager))
                } catch where error.reason == .forbidden && error.message.contains("is being terminated") {
                    return
                }
            }
        }
        for slice in update {
            note(try await context.client.update(Resources.endpointSlices, slice, manager: manager))
        }
        for slice in delete {
            tracker.deleting(slice)
            if let result = try await context.client.remove(Resources.endpointSlices, namespace: slice.namespace,
                                                             name: slice.name ?? "") {
                revision = max(revision, Int64(result.object.resourceVersion ?? "") ?? 0)
            }
        }
        await context.informers.endpointSlices.waitForRevision(revision)
    }
}
