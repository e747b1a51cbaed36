/// Which UDP conntrack entries to delete after a sync, as kube-proxy's conntrack cleanup does
/// (proxy-dns-spec.md A12). UDP has no connection to close: without this, a client that keeps
/// its source port (a resolver's long-lived socket) stays pinned by its conntrack entry to a
/// pod that is gone, or to the blackhole it met while the service had no endpoints, until the
/// entry times out. kube-dns is such a service.
///
/// The deletions are `conntrack -D` command lines (Debian's conntrack tool, which kube-proxy
/// also ran before it spoke netlink itself).
public enum ConntrackCleanup {
    /// - Parameters:
    ///   - old: the service ports as the previous sync programmed them, by `id`.
    ///   - new: the service ports of this sync, by `id`.
    public static func commands(old: [String: ProxyServicePort], new: [String: ProxyServicePort]) -> [[String]] {
        var out: [[String]] = []
        func delete(_ args: [String]) { out.append(["conntrack", "-D", "-p", "udp"] + args) }
        for (id, before) in old.sorted(by: { $0.key < $1.key }) where before.proto == "udp" {
            guard let after = new[id] else {
                // The service port is gone: whatever was DNATed for its addresses is stale.
                for ip in before.serviceIPs { delete(["--orig-dst", ip, "--dport", String(before.port)]) }
                if let np = before.nodePort { delete(["--dport", String(np)]) }
                continue
            }
            let gone = Set(before.clusterEndpoints.map(\.ip)).subtracting(after.clusterEndpoints.map(\.ip))
            for ep in gone.sorted() {
                for ip in after.serviceIPs { delete(["--orig-dst", ip, "--reply-src", ep]) }
                if let np = after.nodePort { delete(["--dport", String(np), "--reply-src", ep]) }
            }
        }
        for (id, after) in new.sorted(by: { $0.key < $1.key }) where after.proto == "udp" && !after.clusterEndpoints.isEmpty {
            // First endpoint: entries made while packets were rejected must go.
            guard old[id]?.clusterEndpoints.isEmpty ?? true else { continue }
            for ip in after.serviceIPs { delete(["--orig-dst", ip, "--dport", String(after.port)]) }
            if let np = after.nodePort { delete(["--dport", String(np)]) }
        }
        return out
    }
}

extension ProxyServicePort {
    /// Every address the service port is reached at: ClusterIP, external IPs, LoadBalancer IPs.
    var serviceIPs: [String] {
        ([clusterIP].compactMap { $0 } + externalIPs + loadBalancerIPs).filter { !$0.isEmpty && $0 != "None" }
    }
}
