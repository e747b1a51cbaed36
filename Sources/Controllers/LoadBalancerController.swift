import APIMachinery

/// Gives LoadBalancer Services an address in `status.loadBalancer.ingress`, as a cloud
/// provider would: the node IP by default, or one address per Service from `--lb-pool`.
///
/// On the shared node IP two Services cannot both listen on the same port; k3s's ServiceLB
/// leaves the second one pending silently. Here it stays pending with a Warning event that
/// names the Service holding the port and suggests `--lb-pool`. Services that ask for another
/// `loadBalancerClass` are left to whoever implements that class.
public final class LoadBalancerController: Reconciler {
    public let name = "service-lb-controller"
    public let queue = WorkQueue()
    public var workers: Int { 1 }
    let context: ControllerContext

    public init(_ context: ControllerContext) {
        self.context = context
        let queue = self.queue
        let informer = context.informers.services
        context.informers.services.onChange { event in
            let s = event.object
            if case .deleted = event {} else if Self.isLoadBalancer(s) || !Self.ingress(s).isEmpty {
                queue.add(Informer.key(s))
            }
            // An address or port given back (deleted, or no longer a LoadBalancer) may unblock a pending Service.
            let freed: Bool
            switch event {
            case .deleted(let old): freed = !Self.ingress(old).isEmpty
            case .updated(let old, let new): freed = !Self.ingress(old).isEmpty && Self.ingress(new).isEmpty
            case .added: freed = false
            }
            if freed {
                for other in informer.list() where Self.isLoadBalancer(other) && Self.ingress(other).isEmpty {
                    queue.add(Informer.key(other))
                }
            }
        }
    }

    static func isLoadBalancer(_ s: JSON) -> Bool {
        s[path: "spec", "type"]?.stringValue == "LoadBalancer" && (s[path: "spec", "loadBalancerClass"]?.stringValue ?? "").isEmpty
    }

    static func ingress(_ s: JSON) -> [String] {
        (s[path: "status", "loadBalancer", "ingress"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }
    }

    /// "80/TCP"-style keys of the ports a Service listens on.
    static func portKeys(_ s: JSON) -> Set<String> {
        Set((s[path: "spec", "ports"]?.arrayValue ?? []).map {
            "\($0["port"]?.intValue ?? 0)/\($0["protocol"]?.stringValue ?? "TCP")"
        })
    }

    public func reconcile(_ key: String) async throws {
        guard let svc = context.informers.services.get(key: key) else { return }
        let current = Self.ingress(svc)
        guard Self.isLoadBalancer(svc), svc.deletionTimestamp == nil else {
            if !current.isEmpty, (svc[path: "spec", "loadBalancerClass"]?.stringValue ?? "").isEmpty {
                try await setIngress(svc, nil)
            }
            return
        }
        let others = context.informers.services.list().filter { Self.isLoadBalancer($0) && Informer.key($0) != key }
        switch choose(svc, others: others) {
        case .success(let ip):
            guard current != [ip] else { return }
            context.events.record(svc, component: name, reason: "EnsuringLoadBalancer", message: "Ensuring load balancer")
            try await setIngress(svc, ip)
            context.events.record(svc, component: name, reason: "EnsuredLoadBalancer", message: "Ensured load balancer")
        case .failure(let why):
            if !current.isEmpty { try await setIngress(svc, nil) }
            context.events.record(svc, component: name, type: "Warning", reason: "SyncLoadBalancerFailed",
                                  message: "Error syncing load balancer: \(why.message)")
        }
    }

    struct Refusal: Error { var message: String }

    /// The address for `svc`: its current or requested one when still valid, else a free one.
    func choose(_ svc: JSON, others: [JSON]) -> Result<String, Refusal> {
        let pool = context.settings.loadBalancerPool
        let requested = svc[path: "spec", "loadBalancerIP"]?.stringValue ?? ""
        let mine = Self.portKeys(svc)
        func clash(on ip: String) -> JSON? {
            others.first { Self.ingress($0).contains(ip) && !Self.portKeys($0).isDisjoint(with: mine) }
        }
        if pool.isEmpty {
            let ip = context.settings.nodeIP
            if !requested.isEmpty && requested != ip {
                return .failure(Refusal(message: "requested loadBalancerIP \(requested) is not available: without --lb-pool every LoadBalancer uses the node address \(ip)"))
            }
            if let other = clash(on: ip) {
                let ports = Self.portKeys(svc).intersection(Self.portKeys(other)).sorted().joined(separator: ", ")
                return .failure(Refusal(message: "port \(ports) on \(ip) is already used by LoadBalancer \(other.namespace ?? "")/\(other.name ?? ""); start labnode with --lb-pool to give each LoadBalancer its own address"))
            }
            return .success(ip)
        }
        let taken = Set(others.flatMap(Self.ingress))
        if !requested.isEmpty {
            guard pool.contains(requested) else {
                return .failure(Refusal(message: "requested loadBalancerIP \(requested) is not in the --lb-pool"))
            }
            guard !taken.contains(requested) else {
                return .failure(Refusal(message: "requested loadBalancerIP \(requested) is already in use"))
            }
            return .success(requested)
        }
        if let ip = Self.ingress(svc).first, pool.contains(ip), !taken.contains(ip) { return .success(ip) }
        guard let free = pool.first(where: { !taken.contains($0) }) else {
            return .failure(Refusal(message: "no address left in --lb-pool (\(pool.count) addresses, all in use)"))
        }
        return .success(free)
    }

    func setIngress(_ svc: JSON, _ ip: String?) async throws {
        var updated = svc
        updated[path: "status", "loadBalancer"] = ip.map { ["ingress": [["ip": .string($0)]]] } ?? [:]
        let written = try await context.client.update(Resources.services, updated, subresource: "status", manager: name)
        await context.informers.services.waitForRevision(Int64(written.resourceVersion ?? "") ?? 0)
    }
}
