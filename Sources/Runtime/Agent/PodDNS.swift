import APIMachinery

/// The /etc/resolv.conf a container gets, by the pod's `dnsPolicy` and `dnsConfig`, as the
/// kubelet writes it (pkg/kubelet/network/dns):
///
/// - ClusterFirst (the default): the cluster DNS service, the search list
///   `<ns>.svc.<domain> svc.<domain> <domain>` followed by the node's own search domains,
///   and `options ndots:5`. A hostNetwork pod with ClusterFirst gets the node's file instead.
/// - ClusterFirstWithHostNet: ClusterFirst, also for hostNetwork pods.
/// - Default: the node's resolv.conf.
/// - None: only what `dnsConfig` says.
///
/// `dnsConfig` then adds nameservers (at most 3 in all), search domains (duplicates dropped,
/// at most 32) and options (a later value of the same option wins).
public struct PodDNS: Sendable, Equatable {
    public var nameservers: [String] = []
    public var searches: [String] = []
    public var options: [String] = []

    public static let maxNameservers = 3
    public static let maxSearches = 32

    public init(nameservers: [String] = [], searches: [String] = [], options: [String] = []) {
        self.nameservers = nameservers
        self.searches = searches
        self.options = options
    }

    /// - Parameters:
    ///   - clusterDNS: the kube-dns Service address (the tenth of the service range).
    ///   - host: the node's resolv.conf, parsed.
    public static func forPod(_ pod: JSON, clusterDNS: String, clusterDomain: String, host: PodDNS) -> PodDNS {
        let policy = pod[path: "spec", "dnsPolicy"]?.stringValue ?? "ClusterFirst"
        let hostNetwork = pod[path: "spec", "hostNetwork"]?.boolValue == true
        let namespace = pod.namespace ?? "default"
        var dns: PodDNS
        switch policy {
        case "None":
            dns = PodDNS()
        case "Default":
            dns = host
        case "ClusterFirst" where hostNetwork:
            dns = host
        default:
            dns = PodDNS(nameservers: [clusterDNS],
                         searches: ["\(namespace).svc.\(clusterDomain)", "svc.\(clusterDomain)", clusterDomain] + host.searches,
                         options: ["ndots:5"])
        }
        if let config = pod[path: "spec", "dnsConfig"] {
            dns.nameservers += (config["nameservers"]?.arrayValue ?? []).compactMap(\.stringValue)
            dns.searches += (config["searches"]?.arrayValue ?? []).compactMap(\.stringValue)
            var options = dns.options
            for option in config["options"]?.arrayValue ?? [] {
                guard let name = option["name"]?.stringValue else { continue }
                let rendered = option["value"]?.stringValue.map { "\(name):\($0)" } ?? name
                options.removeAll { $0 == name || $0.hasPrefix(name + ":") }
                options.append(rendered)
            }
            dns.options = options
        }
        dns.nameservers = Array(dns.nameservers.prefix(maxNameservers))
        var seen = Set<String>()
        dns.searches = Array(dns.searches.filter { !$0.isEmpty && seen.insert($0).inserted }.prefix(maxSearches))
        return dns
    }

    /// Reads a resolv.conf (the node's): nameserver, search/domain and options lines.
    public static func parse(_ text: String) -> PodDNS {
        var dns = PodDNS()
        for raw in text.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = fields.first else { continue }
            let values = Array(fields.dropFirst())
            switch key {
            case "nameserver": dns.nameservers += values.prefix(1)
            // The last search or domain line wins, as in the resolver.
            case "search", "domain": dns.searches = values
            case "options": dns.options += values
            default: break
            }
        }
        return dns
    }

    /// The file's text, in the kubelet's order.
    public var rendered: String {
        var lines: [String] = []
        if !searches.isEmpty { lines.append("search " + searches.joined(separator: " ")) }
        for ns in nameservers { lines.append("nameserver " + ns) }
        if !options.isEmpty { lines.append("options " + options.joined(separator: " ")) }
        return lines.joined(separator: "\n") + "\n"
    }
}
