import APIMachinery
import Logging

/// Mirrors hand-written Endpoints into EndpointSlices, as kube-controller-manager's
/// endpointslicemirroring controller does, so slice consumers (kube-proxy, DNS) also see
/// services without a selector, e.g. one pointing at a database outside the cluster.
///
/// Only Endpoints whose Service exists and has no selector are mirrored (the endpointslice
/// controller serves the others), and not those labelled `endpointslice.kubernetes.io/skip-mirror:
/// "true"` or carrying a leader-election record. Mirrored slices are owned by the Endpoints,
/// labelled with the service name and managed-by `endpointslicemirroring-controller.k8s.io`, one
/// slice per subset's port set and address family, at most 1000 addresses per subset.
public final class EndpointSliceMirroringController: Reconciler {
    public let name = "endpointslicemirroring-controller"
    public let queue = WorkQueue()
    let context: ControllerContext
    let ownWrites = SliceWriteTracker()
    static let manager = "kube-controller-manager"
    static let maxEndpointsPerSubset = 1000

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let ownWrites = self.ownWrites
        context.informers.endpoints.onChange { event in
            switch event {
            case .added(let ep), .deleted(let ep):
                if Self.shouldMirror(ep) { queue.add(Informer.key(ep)) }
            case .updated(let old, let new):
                if Self.shouldMirror(old) || Self.shouldMirror(new) { queue.add(Informer.key(new)) }
            }
        }
        context.informers.services.onChange { event in
            switch event {
            case .added(let svc), .deleted(let svc):
                if EndpointsComputation.selector(of: svc) == nil { queue.add(Informer.key(svc)) }
            case .updated(let old, let new):
                if (EndpointsComputation.selector(of: old) == nil) != (EndpointsComputation.selector(of: new) == nil) {
                    queue.add(Informer.key(new))
                }
            }
        }
        context.informers.endpointSlices.onChange { event in
            for key in EndpointSliceController.servicesToRepair(for: event, ownWrites: ownWrites,
                                                                managedBy: EndpointKeys.mirroringControllerName) {
                queue.add(key, after: EndpointSliceController.sliceChangeDelay)
            }
        }
    }

    static func shouldMirror(_ endpoints: JSON) -> Bool {
        if endpoints.labels[EndpointKeys.skipMirror] == "true" { return false }
        return EndpointsComputation.annotations(endpoints)[EndpointKeys.leaderElection] == nil
    }

    public func reconcile(_ key: String) async throws {
        let (namespace, endpointsName) = EndpointsComputation.split(key)
        let informers = context.informers
        let existing = informers.endpointSlices.list(namespace: namespace, selector: LabelSelector.from(map: [
            EndpointKeys.serviceName: endpointsName, EndpointKeys.managedBy: EndpointKeys.mirroringControllerName,
        ]))
        guard let endpoints = informers.endpoints.get(key: key), Self.shouldMirror(endpoints),
              let service = informers.services.get(key: key), EndpointsComputation.selector(of: service) == nil
        else {
            // Nothing (any more) to mirror: the Endpoints or the Service is gone, the service got
            // a selector, or mirroring was switched off for these Endpoints.
            try await apply(SlicePlan(delete: existing), deleting: false)
            return
        }
        let result = MirroringPlanner.plan(endpoints: endpoints, existing: existing, maxPerSubset: Self.maxEndpointsPerSubset)
        if result.invalid > 0 {
            context.events.record(endpoints, component: name, type: "Warning", reason: "InvalidIPAddress",
                                  message: "Skipped \(result.invalid) invalid IP addresses when mirroring to EndpointSlices")
        }
        if result.skipped > result.invalid {
            context.events.record(endpoints, component: name, type: "Warning", reason: "TooManyAddressesToMirror",
                                  message: "A max of \(Self.maxEndpointsPerSubset) addresses can be mirrored to EndpointSlices per Endpoints subset. \(result.skipped) addresses were skipped")
        }
        try await apply(result.plan, deleting: endpoints.deletionTimestamp != nil)
    }

    func apply(_ plan: SlicePlan, deleting: Bool) async throws(APIError) {
        try await plan.apply(context: context, tracker: ownWrites, manager: Self.manager, createNew: !deleting)
    }
}

/// The mirroring controller's reconciliation as a pure function of the Endpoints and the
/// slices mirrored so far.
enum MirroringPlanner {
    struct Result {
        var plan: SlicePlan
        /// Addresses that are not IPs.
        var invalid: Int
        /// Addresses not mirrored: the invalid ones and those past the per-subset maximum.
        var skipped: Int
    }

    /// A group of mirrored endpoints: one address family and one port set.
    struct Group {
        var addressType: String
        var ports: [EndpointPortSpec]
        var endpoints: [SliceEndpointSpec] = []
        var seen: Set<SliceEndpointSpec.Identity> = []

        mutating func insert(_ e: SliceEndpointSpec) {
            if seen.insert(e.identity).inserted {
                endpoints.append(e)
            } else if let i = endpoints.firstIndex(where: { $0.identity == e.identity }) {
                endpoints[i] = e
            }
        }
    }

    static func key(_ addressType: String, _ ports: [EndpointPortSpec]) -> String {
        addressType + "|" + EndpointPortSpec.key(ports)
    }

    static func plan(endpoints: JSON, existing: [JSON], maxPerSubset: Int) -> Result {
        var groups: [String: Group] = [:]
        var order: [String] = []
        var invalid = 0
        var skipped = 0
        for subset in endpoints["subsets"]?.arrayValue ?? [] {
            let ports = (subset["ports"]?.arrayValue ?? []).map(EndpointPortSpec.init(json:))
            for type in ["IPv4", "IPv6"] {
                let k = key(type, ports)
                if groups[k] == nil {
                    groups[k] = Group(addressType: type, ports: ports)
                    order.append(k)
                }
            }
            let ready = subset["addresses"]?.arrayValue ?? []
            let notReady = subset["notReadyAddresses"]?.arrayValue ?? []
            var added = 0
            for (address, isReady) in ready.map({ ($0, true) }) + notReady.map({ ($0, false) }) {
                if added >= maxPerSubset { break }
                guard let (endpoint, type) = mirrored(address, ready: isReady) else {
                    invalid += 1
                    continue
                }
                groups[key(type, ports)]?.insert(endpoint)
                added += 1
            }
            skipped += ready.count + notReady.count - added
        }

        var existingByKey: [String: [JSON]] = [:]
        var existingOrder: [String] = []
        for slice in existing {
            let k = key(slice["addressType"]?.stringValue ?? "", (slice["ports"]?.arrayValue ?? []).map(EndpointPortSpec.init(json:)))
            if existingByKey[k] == nil { existingOrder.append(k) }
            existingByKey[k, default: []].append(slice)
        }

        var plan = SlicePlan()
        for k in order {
            guard let group = groups[k] else { continue }
            let current = existingByKey[k] ?? []
            if group.endpoints.isEmpty {
                plan.delete += current
                continue
            }
            let endpointsJSON = group.endpoints.prefix(maxPerSubset).map(\.json)
            guard let first = current.first else {
                var slice = newSlice(endpoints, ports: group.ports, addressType: group.addressType, name: nil)
                slice["endpoints"] = .array(endpointsJSON)
                plan.create.append(slice)
                continue
            }
            plan.delete += current.dropFirst()
            var slice = newSlice(endpoints, ports: group.ports, addressType: group.addressType, name: first.name)
            slice["endpoints"] = .array(endpointsJSON)
            if !sameContent(first, slice) {
                slice[path: "metadata", "resourceVersion"] = first[path: "metadata", "resourceVersion"]
                plan.update.append(slice)
            }
        }
        for k in existingOrder where groups[k] == nil { plan.delete += existingByKey[k] ?? [] }

        // A slice to create and one to delete of the same family: rewrite the old one instead.
        for type in ["IPv4", "IPv6"] {
            while let c = plan.create.firstIndex(where: { $0["addressType"]?.stringValue == type }),
                  let d = plan.delete.firstIndex(where: { $0["addressType"]?.stringValue == type }) {
                var slice = plan.create.remove(at: c)
                let victim = plan.delete.remove(at: d)
                slice[path: "metadata", "name"] = .string(victim.name ?? "")
                slice[path: "metadata", "resourceVersion"] = victim[path: "metadata", "resourceVersion"]
                plan.update.append(slice)
            }
        }
        return Result(plan: plan, invalid: invalid, skipped: skipped)
    }

    /// Whether the stored slice already says what `wanted` says: the same endpoints (by
    /// identity and then in detail), labels, annotations and owner.
    static func sameContent(_ stored: JSON, _ wanted: JSON) -> Bool {
        let a = (stored["endpoints"]?.arrayValue ?? []).map(SliceEndpointSpec.init(json:))
        let b = (wanted["endpoints"]?.arrayValue ?? []).map(SliceEndpointSpec.init(json:))
        guard a.count == b.count else { return false }
        var byIdentity: [SliceEndpointSpec.Identity: SliceEndpointSpec] = [:]
        for e in b { byIdentity[e.identity] = e }
        for e in a {
            guard let w = byIdentity[e.identity], w.sameBeyondIdentity(e) else { return false }
        }
        return stored.labels == wanted.labels
            && EndpointsComputation.annotations(stored) == EndpointsComputation.annotations(wanted)
            && EndpointsComputation.canonical(stored[path: "metadata", "ownerReferences"] ?? .null)
                == EndpointsComputation.canonical(wanted[path: "metadata", "ownerReferences"] ?? .null)
    }

    /// An Endpoints address as a slice endpoint and its family; nil when it is not an IP.
    static func mirrored(_ address: JSON, ready: Bool) -> (SliceEndpointSpec, String)? {
        guard let ip = address["ip"]?.stringValue, let parsed = IP.parse(ip) else { return nil }
        let hostname = address["hostname"]?.stringValue ?? ""
        let endpoint = SliceEndpointSpec(
            addresses: [parsed.text],
            ready: ready,
            hostname: hostname.isEmpty ? nil : hostname,
            nodeName: address["nodeName"]?.stringValue,
            targetRef: address["targetRef"].flatMap { $0.isNull ? nil : $0 })
        return (endpoint, parsed.family)
    }

    static func newSlice(_ endpoints: JSON, ports: [EndpointPortSpec], addressType: String, name: String?) -> JSON {
        var labels = endpoints.labels
        labels[EndpointKeys.serviceName] = endpoints.name ?? ""
        labels[EndpointKeys.managedBy] = EndpointKeys.mirroringControllerName
        var annotations = EndpointsComputation.annotations(endpoints)
        annotations[EndpointKeys.lastChangeTriggerTime] = nil
        annotations[EndpointKeys.lastAppliedConfiguration] = nil
        var metadata: JSON = [:]
        if let name {
            metadata["name"] = .string(name)
        } else {
            metadata["generateName"] = .string((endpoints.name ?? "") + "-")
        }
        metadata["namespace"] = .string(endpoints.namespace ?? "")
        metadata["labels"] = EndpointsComputation.stringMap(labels)
        if !annotations.isEmpty { metadata["annotations"] = EndpointsComputation.stringMap(annotations) }
        metadata["ownerReferences"] = [EndpointsComputation.controllerRef(to: endpoints, apiVersion: "v1", kind: "Endpoints")]
        return [
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata,
            "addressType": .string(addressType),
            "endpoints": .null,
            "ports": ports.isEmpty ? .null : .array(ports.map(\.sliceJSON)),
        ]
    }
}
