import Foundation

/// The settings of one labnode cluster, named after the kube-apiserver/kube-proxy flags they mirror.
///
/// The first `labnode up` writes them to `<data-dir>/config.json`; later runs start from that file
/// and only flags given on the command line change it, so a cluster keeps its addresses.
public struct ClusterConfig: Codable, Sendable, Equatable {
    public var dataDir: String
    public var apiPort: Int
    public var nodeIP: String
    public var serviceClusterIPRange: String
    public var serviceNodePortRange: String
    public var clusterCIDR: String
    public var clusterDomain: String
    public var proxyMode: String
    public var nodeName: String
    /// `--lb-pool`: addresses for LoadBalancer Services (nil: the node IP for all).
    public var loadBalancerPool: String?
    /// `--disable`: add-ons and components not to run (`disabledComponents`); nil or empty runs
    /// them all.
    public var disabled: [String]?
    /// `--resolv-conf` (the kubelet's flag): the resolver file pods with dnsPolicy Default get,
    /// and so the DNS add-on's upstreams. Nil: detected (`effectiveResolvConf`).
    public var resolvConf: String?
    /// `--localhost-nodeports`: NodePorts answer on 127.0.0.1 too (iptables mode; sets
    /// route_localnet). Nil or false: off, as the proxy spec wants it opt-in.
    public var localhostNodePorts: Bool?

    /// `disabled` keeps the key it had when it held only add-ons, so saved settings still load.
    enum CodingKeys: String, CodingKey {
        case dataDir, apiPort, nodeIP, serviceClusterIPRange, serviceNodePortRange, clusterCIDR, clusterDomain, proxyMode
        case nodeName, loadBalancerPool, resolvConf, localhostNodePorts
        case disabled = "disabledAddons"
    }

    public static let defaultDataDir = "/var/lib/labnode"
    /// What `--disable` takes: the DNS add-on, and the components around the API server, as
    /// k3s's `--disable-controller-manager`, `--disable-kube-proxy` and `--disable-agent` leave
    /// them out. With all four disabled the daemon is the API server and its store alone.
    public static let disabledComponents = ["dns", "controllers", "node-agent", "kube-proxy"]
    public static let proxyModes = ["iptables", "nftables", "userspace", "ipvs"]

    public init(dataDir: String = ClusterConfig.defaultDataDir, apiPort: Int = 6443, nodeIP: String = "",
                serviceClusterIPRange: String = "10.96.0.0/12", serviceNodePortRange: String = "30000-32767",
                clusterCIDR: String = "10.244.0.0/16", clusterDomain: String = "cluster.local", proxyMode: String = "iptables",
                nodeName: String = "") {
        self.dataDir = dataDir
        self.apiPort = apiPort
        self.nodeIP = nodeIP
        self.serviceClusterIPRange = serviceClusterIPRange
        self.serviceNodePortRange = serviceNodePortRange
        self.clusterCIDR = clusterCIDR
        self.clusterDomain = clusterDomain
        self.proxyMode = proxyMode
        self.nodeName = nodeName
    }

    // MARK: Files in the data dir

    public var configPath: String { dataDir + "/config.json" }
    public var pidPath: String { dataDir + "/labnode.pid" }
    public var logPath: String { dataDir + "/labnode.log" }
    public var storePath: String { dataDir + "/state.db" }
    public var pkiDir: String { dataDir + "/pki" }
    public var statusPath: String { dataDir + "/status.json" }

    public var apiURL: String { "https://\(nodeIP):\(apiPort)" }

    /// The first address of the service range: the `kubernetes` Service's ClusterIP.
    public var firstServiceIP: String {
        (try? IPv4CIDR(parsing: serviceClusterIPRange))?.nth(1)?.description ?? ""
    }

    /// The tenth address of the service range: the `kube-dns` Service's ClusterIP, which pods
    /// get as their nameserver.
    /// The resolver file for pods with dnsPolicy Default. When /etc/resolv.conf names only
    /// systemd-resolved's stub (127.0.0.53, unreachable from a pod), its real upstreams in
    /// /run/systemd/resolve/resolv.conf are used, as kubeadm configures the kubelet; this is
    /// what otherwise makes CoreDNS crash-loop on kind and k3s.
    public var effectiveResolvConf: String {
        if let resolvConf, !resolvConf.isEmpty { return resolvConf }
        let standard = "/etc/resolv.conf", resolved = "/run/systemd/resolve/resolv.conf"
        let text = (try? String(contentsOfFile: standard, encoding: .utf8)) ?? ""
        let servers = text.split(separator: "\n").compactMap { line -> Substring? in
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            return f.count >= 2 && f[0] == "nameserver" ? f[1] : nil
        }
        if !servers.isEmpty, servers.allSatisfy({ $0.hasPrefix("127.") }), FileManager.default.fileExists(atPath: resolved) {
            return resolved
        }
        return standard
    }

    /// Nil when the component runs; otherwise why not, as `labnode status` says it. The proxy
    /// routes through the node's bridge and the DNS add-on is a pod, so both need the node agent,
    /// and DNS needs the controllers that make its pod.
    public func whyNotRunning(_ component: String) -> String? {
        if (disabled ?? []).contains(component) { return "--disable \(component)" }
        let needs: [String] = switch component {
        case "kube-proxy": ["node-agent"]
        case "dns": ["controllers", "node-agent"]
        default: []
        }
        return needs.first { whyNotRunning($0) != nil }.map { "needs \($0), which is disabled" }
    }

    public func runs(_ component: String) -> Bool { whyNotRunning(component) == nil }

    public var clusterDNSIP: String {
        (try? IPv4CIDR(parsing: serviceClusterIPRange))?.nth(10)?.description ?? ""
    }

    public static func load(dataDir: String) throws -> ClusterConfig? {
        let path = dataDir + "/config.json"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try JSONDecoder().decode(ClusterConfig.self, from: data)
        } catch {
            throw ClusterError.config("cannot read \(path): \(error.localizedDescription)")
        }
    }

    public func save() throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(self)
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        try data.write(to: URL(fileURLWithPath: configPath), options: .atomic)
    }

    /// Checks every value, with one sentence per problem naming the flag.
    public func validate() throws {
        guard (1...65535).contains(apiPort) else {
            throw ClusterError.config("--api-port \(apiPort) is not a TCP port (1-65535)")
        }
        for name in disabled ?? [] where !Self.disabledComponents.contains(name) {
            throw ClusterError.config("--disable \(name): no such add-on or component (known: \(Self.disabledComponents.joined(separator: ", ")))")
        }
        let svc: IPv4CIDR
        let pods: IPv4CIDR
        do { svc = try IPv4CIDR(parsing: serviceClusterIPRange) } catch {
            throw ClusterError.config("--service-cluster-ip-range: \(error)")
        }
        do { pods = try IPv4CIDR(parsing: clusterCIDR) } catch {
            throw ClusterError.config("--cluster-cidr: \(error)")
        }
        if svc.prefixLength > 28 {
            throw ClusterError.config("--service-cluster-ip-range \(serviceClusterIPRange) is too small: it needs at least 16 addresses (a /28)")
        }
        if svc.prefixLength < 12 {
            throw ClusterError.config("--service-cluster-ip-range \(serviceClusterIPRange) is too large: the largest allowed is a /12")
        }
        if pods.prefixLength > 24 {
            throw ClusterError.config("--cluster-cidr \(clusterCIDR) is too small: the node needs a /24 for its pods")
        }
        if svc.overlaps(pods) {
            throw ClusterError.config("--service-cluster-ip-range \(serviceClusterIPRange) overlaps --cluster-cidr \(clusterCIDR)")
        }
        do { _ = try PortRange(parsing: serviceNodePortRange) } catch {
            throw ClusterError.config("--service-node-port-range: \(error)")
        }
        if !nodeIP.isEmpty {
            guard let ip = try? IPv4Address(parsing: nodeIP) else {
                throw ClusterError.config("--node-ip \"\(nodeIP)\" is not an IPv4 address")
            }
            if svc.contains(ip) || pods.contains(ip) {
                throw ClusterError.config("--node-ip \(nodeIP) lies inside a cluster range; pick the machine's own address")
            }
        }
        guard !clusterDomain.isEmpty, clusterDomain.split(separator: ".").allSatisfy({ label in
            !label.isEmpty && label.count <= 63 && label.allSatisfy { $0.isLetter && $0.isLowercase || $0.isNumber || $0 == "-" }
                && label.first != "-" && label.last != "-"
        }) else {
            throw ClusterError.config("--cluster-domain \"\(clusterDomain)\" is not a DNS domain (lower-case labels separated by dots)")
        }
        guard Self.proxyModes.contains(proxyMode) else {
            throw ClusterError.config("--proxy-mode \"\(proxyMode)\" is not one of \(Self.proxyModes.joined(separator: ", "))")
        }
        if proxyMode == "ipvs", let missing = Self.missingIPVS() {
            throw ClusterError.config("--proxy-mode ipvs needs the kernel's IP Virtual Server (CONFIG_IP_VS, module ip_vs), "
                                      + "and this kernel has none (\(missing)); use --proxy-mode iptables or nftables")
        }
        if proxyMode == "nftables", !["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"].contains(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            throw ClusterError.config("--proxy-mode nftables needs the nft command (apt-get install nftables)")
        }
        if localhostNodePorts == true, proxyMode != "iptables" {
            throw ClusterError.config("--localhost-nodeports works only with --proxy-mode iptables (kube-proxy's \(proxyMode) mode has no localhost NodePorts)")
        }
        for address in try loadBalancerAddresses() {
            guard let ip = try? IPv4Address(parsing: address) else { continue }
            if svc.contains(ip) || pods.contains(ip) {
                throw ClusterError.config("--lb-pool \(loadBalancerPool ?? "") lies inside a cluster range; use addresses of the node's network")
            }
        }
    }

    /// The `--lb-pool` addresses: every host address of a CIDR (network and broadcast left
    /// out from a /30 up) or every address of FIRST-LAST; at most 1024.
    public func loadBalancerAddresses() throws -> [String] {
        guard let text = loadBalancerPool?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return [] }
        let first: UInt32
        let last: UInt32
        if text.contains("/") {
            let cidr: IPv4CIDR
            do { cidr = try IPv4CIDR(parsing: text, allowHostBits: false) } catch {
                throw ClusterError.config("--lb-pool: \(error)")
            }
            let hostsOnly = cidr.prefixLength <= 30
            first = cidr.network.value + (hostsOnly ? 1 : 0)
            last = cidr.lastAddress.value - (hostsOnly ? 1 : 0)
        } else {
            let ends = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard ends.count == 2, let a = try? IPv4Address(parsing: ends[0]), let b = try? IPv4Address(parsing: ends[1]) else {
                throw ClusterError.config("--lb-pool \"\(text)\" is neither a CIDR (192.168.1.240/28) nor a range (192.168.1.240-192.168.1.250)")
            }
            guard a <= b else { throw ClusterError.config("--lb-pool \"\(text)\": the first address is after the last") }
            first = a.value
            last = b.value
        }
        guard last - first < 1024 else {
            throw ClusterError.config("--lb-pool \(text) has more than 1024 addresses; a lab needs far fewer")
        }
        return (first...last).map { IPv4Address($0).description }
    }
}

public enum ClusterError: Error, CustomStringConvertible, Sendable {
    case config(String)
    case host(String)
    case daemon(String)

    public var description: String {
        switch self {
        case .config(let s), .host(let s), .daemon(let s): return s
        }
    }
}

extension ClusterConfig {
    /// Why IPVS is unavailable, or nil when the kernel has it: built in (/proc/net/ip_vs), or
    /// as a module that can be loaded.
    static func missingIPVS(procRoot: String = "/proc", modulesRoot: String = "/lib/modules") -> String? {
        if FileManager.default.fileExists(atPath: procRoot + "/net/ip_vs") { return nil }
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let module = "\(modulesRoot)/\(release)/kernel/net/netfilter/ipvs/ip_vs.ko"
        for suffix in ["", ".xz", ".zst", ".gz"] where FileManager.default.fileExists(atPath: module + suffix) { return nil }
        return "no \(procRoot)/net/ip_vs, and no ip_vs module for kernel \(release)"
    }
}
