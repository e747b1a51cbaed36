import APIMachinery
import APIServer
import Controllers
import Addons
import Logging
import ServiceLifecycle

/// Applies the add-ons' objects at start and re-creates any that are deleted (the upstream
/// addon-manager's EnsureExists mode: existing objects, edited or not, are left alone).
struct AddonManager: Service {
    let config: ClusterConfig
    let api: APIService
    let startAfter: @Sendable () async -> Void
    let progress: ProgressReporter
    let logger: Logger

    var objects: [(ResourceInfo, JSON)] {
        guard config.runs("dns") else { return [] }
        return DNSManifests.objects(clusterDNSIP: config.clusterDNSIP, clusterDomain: config.clusterDomain)
    }

    func run() async throws {
        await startAfter()
        let wanted = objects
        guard !wanted.isEmpty else {
            try? await gracefulShutdown()
            return
        }
        _ = await ensure(wanted)
        await cancelWhenGracefulShutdown {
            // `labnode up` returns once DNS answers (the kube-dns endpoint is ready), or says why not.
            let since = ContinuousClock.now
            if await waitForReadyEndpoint(timeout: .seconds(60)), await waitForAnswer(until: since + .seconds(60)) {
                let ms = (ContinuousClock.now - since).components
                progress.ready("dns", "kube-dns \(config.clusterDNSIP):53 answers, \(ms.seconds * 1000 + ms.attoseconds / 1_000_000_000_000_000) ms after the add-on was applied")
            } else {
                // The pod's latest warning usually says why (an image that cannot be found,
                // a crash loop): worth one line, so nobody has to go looking first.
                let events = (try? await api.list(Resources.events, namespace: "kube-system", options: ListOptions()).items) ?? []
                let why = Self.latestWarning(events, objectPrefix: "coredns").map { " (\($0))" } ?? ""
                progress.fail("dns", "the DNS add-on is not ready after 60 s\(why): see kubectl -n kube-system get pods,events")
            }
            progress.finish()
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for resource in Set(wanted.map(\.0.resource)) {
                    let mine = wanted.filter { $0.0.resource == resource }
                    group.addTask { await watchDeletes(mine) }
                }
            }
        }
    }

    /// The message of the newest Warning event about an object whose name starts with
    /// `objectPrefix` (the add-on's Deployment, ReplicaSet and pods), by last occurrence.
    static func latestWarning(_ events: [JSON], objectPrefix: String) -> String? {
        events.filter { e in
            e["type"]?.stringValue == "Warning"
                && (e[path: "involvedObject", "name"]?.stringValue ?? "").hasPrefix(objectPrefix)
        }
        .max { a, b in
            // RFC 3339 timestamps in UTC order as text; within one second, the later write.
            let (ta, tb) = (a["lastTimestamp"]?.stringValue ?? "", b["lastTimestamp"]?.stringValue ?? "")
            return ta != tb ? ta < tb : (Int64(a.resourceVersion ?? "") ?? 0) < (Int64(b.resourceVersion ?? "") ?? 0)
        }?["message"]?.stringValue
    }

    /// Asks the kube-dns address for the `kubernetes` Service until it answers: an endpoint
    /// kept from the previous run looks ready before the restarted pod listens, so only an
    /// answer says DNS works. Like the kubelet's probes, this asks on a period.
    func waitForAnswer(until deadline: ContinuousClock.Instant) async -> Bool {
        let name = "kubernetes.default.svc.\(config.clusterDomain)"
        while ContinuousClock.now < deadline && !Task.isCancelled {
            if let m = await DNSProbe.ask(server: config.clusterDNSIP, name: name, timeout: .milliseconds(300)),
               m.rcode == .noError, !m.answers.isEmpty {
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Whether the kube-dns Service gets a ready endpoint within `timeout`.
    func waitForReadyEndpoint(timeout: Duration) async -> Bool {
        let selector = LabelSelector.from(map: ["kubernetes.io/service-name": "kube-dns"])
        @Sendable func ready(_ slice: JSON) -> Bool {
            (slice["endpoints"]?.arrayValue ?? []).contains { $0[path: "conditions", "ready"]?.boolValue != false }
        }
        return await withinDeadline(timeout) {
            while !Task.isCancelled {
                do {
                    let listed = try await api.list(Resources.endpointSlices, namespace: "kube-system",
                                                    options: ListOptions(labelSelector: selector))
                    if listed.items.contains(where: ready) { return true }
                    let events = try await api.watch(Resources.endpointSlices, namespace: "kube-system",
                                                     options: ListOptions(labelSelector: selector,
                                                                          resourceVersion: String(listed.resourceVersion)))
                    for await event in events where event.type != .deleted && ready(event.object) { return true }
                } catch {
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            return false
        }
    }

    /// Creates a deleted object again, retrying for a while: right after a delete its name or
    /// its cluster IP can still be held (the allocator frees the address after the delete).
    func recreate(_ objects: [(ResourceInfo, JSON)]) async {
        for _ in 0..<40 {
            _ = await ensure(objects)
            var present = true
            for (resource, object) in objects {
                let found = try? await api.find(resource, namespace: object.namespace, name: object.name ?? "")
                if found == nil { present = false }
            }
            if present || Task.isCancelled { return }
            try? await Task.sleep(for: .milliseconds(250))
        }
        logger.warning("add-on objects could not be re-created after 10 s: \(objects.map { $0.1.name ?? "" })")
    }

    /// Creates what is missing; returns what it created.
    func ensure(_ wanted: [(ResourceInfo, JSON)]) async -> [String] {
        var created: [String] = []
        for (resource, object) in wanted {
            let name = object.name ?? ""
            do {
                if try await api.find(resource, namespace: object.namespace, name: name) != nil { continue }
                _ = try await api.create(resource, object, manager: "labnode-addon-manager")
                created.append("\(resource.resource)/\(name)")
            } catch where error.reason == .alreadyExists {
                continue
            } catch {
                logger.warning("add-on \(resource.resource)/\(name) could not be applied: \(error.message)")
            }
        }
        return created
    }

    /// Watches one resource in kube-system and re-creates our objects of it when deleted.
    func watchDeletes(_ mine: [(ResourceInfo, JSON)]) async {
        guard let resource = mine.first?.0 else { return }
        let names = Set(mine.compactMap { $0.1.name })
        while !Task.isCancelled {
            do {
                let listed = try await api.list(resource, namespace: "kube-system", options: ListOptions())
                // Deleted while we were not watching.
                _ = await ensure(mine)
                let events = try await api.watch(resource, namespace: "kube-system",
                                                 options: ListOptions(resourceVersion: String(listed.resourceVersion)))
                for await event in events {
                    if Task.isCancelled { return }
                    if event.type == .error { break }
                    guard event.type == .deleted, let name = event.object.name, names.contains(name) else { continue }
                    logger.info("add-on \(resource.resource)/\(name) was deleted; re-creating it")
                    await recreate(mine.filter { $0.1.name == name })
                }
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }
}
