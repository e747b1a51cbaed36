import APIMachinery
import Logging

/// Keeps the core/v1 Endpoints of every Service with a selector equal to its ready and
/// not-ready pods, as kube-controller-manager's endpoint controller does. Services without a
/// selector are left to their users (hand-written Endpoints); ExternalName services get none.
///
/// Work is keyed by service ("namespace/name"). Pod changes enqueue the services whose selector
/// matches the pod's old or new labels, immediately (no batching), so a readiness change
/// reaches the Endpoints within milliseconds.
public final class EndpointsController: Reconciler {
    public let name = "endpoint-controller"
    public let queue = WorkQueue()
    let context: ControllerContext
    let triggerTimes = TriggerTimeTracker()
    static let manager = "kube-controller-manager"

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let services = context.informers.services
        context.informers.services.onChange { event in
            queue.add(Informer.key(event.object))
        }
        context.informers.pods.onChange { event in
            for key in Self.servicesToSync(for: event, services: services) { queue.add(key) }
        }
        // A deleted Endpoints of a service with a selector is written again.
        context.informers.endpoints.onChange { event in
            if case .deleted(let ep) = event { queue.add(Informer.key(ep)) }
        }
        // Once the caches are filled, look at every Endpoints once: those whose service is gone
        // (deleted while the controller was down) are removed, as upstream does at start-up.
        let informers = context.informers
        Task {
            await informers.endpoints.waitSynced()
            await informers.services.waitSynced()
            for ep in informers.endpoints.list() {
                if EndpointsComputation.annotations(ep)[EndpointKeys.leaderElection] != nil { continue }
                queue.add(Informer.key(ep))
            }
        }
    }

    /// Keys of the services in the pod's namespace that select the pod before or after the change.
    /// Changes that cannot affect endpoints (e.g. an annotation) enqueue nothing.
    static func servicesToSync(for event: InformerEvent, services: Informer) -> Set<String> {
        var labelSets: [[String: String]] = []
        let namespace = event.object.namespace
        switch event {
        case .added(let pod), .deleted(let pod):
            labelSets = [pod.labels]
        case .updated(let old, let new):
            guard old.resourceVersion != new.resourceVersion, podChangeMatters(old, new) else { return [] }
            labelSets = old.labels == new.labels ? [new.labels] : [old.labels, new.labels]
        }
        var keys = Set<String>()
        for service in services.list(namespace: namespace) {
            guard let selector = EndpointsComputation.selector(of: service) else { continue }
            if labelSets.contains(where: { labels in selector.allSatisfy { labels[$0.key] == $0.value } }) {
                keys.insert(Informer.key(service))
            }
        }
        return keys
    }

    /// Whether a pod update can change any service's endpoints.
    static func podChangeMatters(_ old: JSON, _ new: JSON) -> Bool {
        if old.labels != new.labels { return true }
        if old.deletionTimestamp != new.deletionTimestamp { return true }
        if EndpointsComputation.isReady(old) != EndpointsComputation.isReady(new) { return true }
        if EndpointsComputation.podIPs(old) != EndpointsComputation.podIPs(new) { return true }
        for path in [["spec", "hostname"], ["spec", "subdomain"], ["spec", "nodeName"], ["status", "phase"]] {
            if old[path: path[...]] != new[path: path[...]] { return true }
        }
        // The Ready transition time feeds the trigger-time annotation.
        return EndpointsComputation.readyTransitionTime(old) != EndpointsComputation.readyTransitionTime(new)
    }

    public func reconcile(_ key: String) async throws {
        let (namespace, serviceName) = EndpointsComputation.split(key)
        let informers = context.informers
        guard let service = informers.services.get(key: key) else {
            // The service is gone: so are its Endpoints (upstream deletes whatever has the name).
            try await context.client.remove(Resources.endpoints, namespace: namespace, name: serviceName)
            triggerTimes.forget(key)
            return
        }
        if EndpointsComputation.isExternalName(service) { return }
        guard let selector = EndpointsComputation.selector(of: service) else { return }

        let pods = informers.pods.list(namespace: namespace, selector: LabelSelector.from(map: selector))
        // Computed on every sync so the tracker's memory of pod changes stays current even
        // when nothing is written.
        let triggerTime = triggerTimes.compute(key: key, service: service, pods: pods)
        var subsets = EndpointsComputation.subsets(service: service, pods: pods)

        let current = informers.endpoints.get(key: key)
        let serviceLabels = service.labels
        if let current {
            var currentLabels = current.labels
            currentLabels[EndpointKeys.headless] = nil
            let currentSubsets = EndpointsComputation.canonical(current["subsets"] ?? .array([]))
            let wanted = EndpointsComputation.canonical(.array(subsets.map(\.json)))
            if currentSubsets == wanted, currentLabels == serviceLabels, Self.capacityAnnotationCorrect(current) {
                return
            }
        }

        var labels = serviceLabels
        if EndpointsComputation.isServiceIPSet(service) {
            labels[EndpointKeys.headless] = nil
        } else {
            labels[EndpointKeys.headless] = ""
        }
        var annotations = current.map(EndpointsComputation.annotations) ?? [:]
        if let triggerTime {
            annotations[EndpointKeys.lastChangeTriggerTime] = TriggerTimeTracker.format(triggerTime)
        } else {
            annotations[EndpointKeys.lastChangeTriggerTime] = nil
        }
        if EndpointsComputation.truncate(&subsets) {
            annotations[EndpointKeys.overCapacity] = "truncated"
        } else {
            annotations[EndpointKeys.overCapacity] = nil
        }

        var endpoints: JSON = current ?? [
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": ["name": .string(serviceName), "namespace": .string(namespace)],
        ]
        endpoints[path: "metadata", "labels"] = labels.isEmpty ? nil : EndpointsComputation.stringMap(labels)
        endpoints[path: "metadata", "annotations"] = annotations.isEmpty ? nil : EndpointsComputation.stringMap(annotations)
        endpoints["subsets"] = subsets.isEmpty ? nil : .array(subsets.map(\.json))

        let written: JSON
        do throws(APIError) {
            if current == nil {
                written = try await context.client.create(Resources.endpoints, endpoints, manager: Self.manager)
            } else {
                written = try await context.client.update(Resources.endpoints, endpoints, manager: Self.manager)
            }
        } catch {
            if current == nil, error.reason == .forbidden, error.message.contains("is being terminated") {
                // The namespace is going away; creating will keep failing, so stop here.
                return
            }
            let reason = current == nil ? "FailedToCreateEndpoint" : "FailedToUpdateEndpoint"
            let message = current == nil
                ? "Failed to create endpoint for service \(namespace)/\(serviceName): \(error.message)"
                : "Failed to update endpoint \(namespace)/\(serviceName): \(error.message)"
            context.events.record(endpoints, component: name, type: "Warning", reason: reason, message: message)
            throw error
        }
        // The next sync of this service must see this write, or it would write again and conflict.
        await informers.endpoints.waitForRevision(Int64(written.resourceVersion ?? "") ?? 0)
    }

    /// True unless the Endpoints hold more than the capacity, or carry the over-capacity
    /// annotation without needing it.
    static func capacityAnnotationCorrect(_ endpoints: JSON) -> Bool {
        var count = 0
        for s in endpoints["subsets"]?.arrayValue ?? [] {
            count += (s["addresses"]?.arrayValue?.count ?? 0) + (s["notReadyAddresses"]?.arrayValue?.count ?? 0)
        }
        if count > EndpointsComputation.maxEndpointsCapacity { return false }
        return EndpointsComputation.annotations(endpoints)[EndpointKeys.overCapacity] == nil
    }
}
