import ArgumentParser
import Cluster
import Foundation

/// labnode: a whole single-node Kubernetes lab cluster in one binary.
@main
struct Labnode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "labnode",
        abstract: "A single-node Kubernetes cluster for labs and training, in one binary.",
        subcommands: [Up.self, Down.self, Status.self, LabCommand.self, ImageCommand.self, BenchCommand.self, DNSCommand.self]
    )

    /// `labnode init ...` (a container's first process) must run before anything starts a
    /// thread, because it forks; every other command goes through ArgumentParser as usual.
    static func main() async {
        InitEntry.runIfRequested()
        await main(nil)
    }

    /// Runs a command and turns any error into one sentence on stderr and a non-zero exit.
    static func guarded(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let e as ExitCode {
            throw e
        } catch let e as CleanExit {
            throw e
        } catch {
            FileHandle.standardError.write(Data("labnode: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

struct DataDirOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where the cluster keeps its state.")
    var dataDir: String = ClusterConfig.defaultDataDir
}

struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the cluster in the background and wait until the API answers.")

    @OptionGroup var dir: DataDirOption
    @Option(name: .customLong("kubeconfig"), help: "Write the kubeconfig here instead of merging it into ~/.kube/config.")
    var kubeconfig: String?
    @Flag(name: .customLong("foreground"), help: "Run in this process instead of as a background daemon.")
    var foreground = false
    @Option(name: .customLong("api-port"), help: "HTTPS port of the API server (default 6443).")
    var apiPort: Int?
    @Option(name: .customLong("node-ip"), help: "The node's address (default: the address of the default-route interface).")
    var nodeIP: String?
    @Option(name: .customLong("service-cluster-ip-range"), help: "CIDR for Service ClusterIPs (default 10.96.0.0/12).")
    var serviceCIDR: String?
    @Option(name: .customLong("service-node-port-range"), help: "Port range for NodePorts (default 30000-32767).")
    var nodePortRange: String?
    @Option(name: .customLong("cluster-cidr"), help: "CIDR for pod addresses (default 10.244.0.0/16).")
    var clusterCIDR: String?
    @Option(name: .customLong("cluster-domain"), help: "DNS domain of the cluster (default cluster.local).")
    var clusterDomain: String?
    @Option(name: .customLong("proxy-mode"), help: "Service proxy: iptables (default), nftables, userspace or ipvs.")
    var proxyMode: String?
    @Option(name: .customLong("lb-pool"), help: "Addresses for LoadBalancer Services, as a CIDR or FIRST-LAST (default: the node IP for all; \"\" to go back to that).")
    var lbPool: String?
    @Option(name: .customLong("disable"), help: "An add-on or component to leave out: dns, controllers, node-agent, kube-proxy (all four: the API server alone); repeat or separate with commas, or --disable \"\" to run them all.")
    var disable: [String] = []
    @Option(name: .customLong("resolv-conf"), help: "Resolver file for pods with dnsPolicy Default and the DNS add-on's upstreams (default: /etc/resolv.conf, or systemd-resolved's real one).")
    var resolvConf: String?
    @Flag(name: .customLong("localhost-nodeports"), inversion: .prefixedNo,
          help: "NodePorts also on 127.0.0.1 (iptables mode; sets route_localnet with kube-proxy's martian-drop rule). Off by default.")
    var localhostNodePorts: Bool?
    @Option(name: .customLong("progress-fd"), help: .hidden)
    var progressFD: Int32?

    func run() async throws {
        try await Labnode.guarded {
            if progressFD != nil {
                // The re-executed daemon: settings were resolved and saved by the parent.
                guard let config = try ClusterConfig.load(dataDir: dir.dataDir) else {
                    throw ClusterError.config("no configuration in \(dir.dataDir)")
                }
                try await Lifecycle.runForeground(config: config, progressFD: progressFD)
                return
            }
            var flags = Lifecycle.Flags()
            flags.apiPort = apiPort
            flags.nodeIP = nodeIP
            flags.serviceClusterIPRange = serviceCIDR
            flags.serviceNodePortRange = nodePortRange
            flags.clusterCIDR = clusterCIDR
            flags.clusterDomain = clusterDomain
            flags.proxyMode = proxyMode
            flags.loadBalancerPool = lbPool
            if !disable.isEmpty { flags.disabled = disable }
            flags.resolvConf = resolvConf
            flags.localhostNodePorts = localhostNodePorts
            let code = try await Lifecycle.up(dataDir: dir.dataDir, flags: flags, kubeconfig: kubeconfig, foreground: foreground)
            if code != 0 { throw ExitCode(code) }
        }
    }
}

struct Down: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop the cluster; its state is kept unless --purge is given.")

    @OptionGroup var dir: DataDirOption
    @Flag(name: .customLong("purge"), help: "Also delete the data directory and the kubeconfig entries.")
    var purge = false
    @Option(name: .customLong("kubeconfig"), help: "The kubeconfig `up` wrote to, if it was not the default.")
    var kubeconfig: String?

    func run() async throws {
        try await Labnode.guarded {
            try Lifecycle.down(dataDir: dir.dataDir, purge: purge, kubeconfig: kubeconfig)
        }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the API URL, node IP, ranges and each component's state.")

    @OptionGroup var dir: DataDirOption

    func run() async throws {
        try await Labnode.guarded {
            let code = try await Lifecycle.status(dataDir: dir.dataDir)
            if code != 0 { throw ExitCode(code) }
        }
    }
}
