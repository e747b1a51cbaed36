import APIMachinery
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// What a plugin's setup may use, beyond its own directive.
public struct PluginSetup: Sendable {
    public var logger: Logger
    public var metrics: DNSMetrics
    /// The server block's zones, and the listen key's label (`dns://:53`).
    public var zones: [DNSName]
    public var serverLabel: String
    /// The API client for the kubernetes plugin (in-cluster configuration, made on demand).
    public var apiClient: @Sendable () throws -> any APIClient
    /// Reads a file named in the Corefile (hosts, resolv.conf, certificates).
    public var readFile: @Sendable (String) throws -> String
    /// Shared state of process-wide plugins (health, ready and metrics listeners).
    public var shared: SharedPlugins

    public init(logger: Logger, metrics: DNSMetrics, zones: [DNSName] = [.root], serverLabel: String = "dns://:53",
                apiClient: @escaping @Sendable () throws -> any APIClient, readFile: @escaping @Sendable (String) throws -> String,
                shared: SharedPlugins) {
        self.logger = logger
        self.metrics = metrics
        self.zones = zones
        self.serverLabel = serverLabel
        self.apiClient = apiClient
        self.readFile = readFile
        self.shared = shared
    }
}

/// A Corefile directive that is wrong: CoreDNS's `plugin/NAME: message` wording.
public struct PluginSetupError: Error, Sendable, CustomStringConvertible {
    public var plugin: String
    public var line: Int
    public var message: String
    public init(_ plugin: String, line: Int = 0, _ message: String) {
        self.plugin = plugin
        self.line = line
        self.message = message
    }
    public var description: String { "Corefile:\(line) - Error during parsing: plugin/\(plugin): \(message)" }
}

/// The plugins labnode knows and the order they run in, whatever order the Corefile lists
/// them: CoreDNS's plugin.cfg, restricted to what is built here. The order is data, so a new
/// plugin is one line here and one setup function.
public struct PluginRegistry: Sendable {
    public typealias Setup = @Sendable (Corefile.Directive, PluginSetup) throws -> any DNSPlugin

    public var order: [String]
    public var setups: [String: Setup]

    public init(order: [String], setups: [String: Setup]) {
        self.order = order
        self.setups = setups
    }

    /// Builds one server block's chain, in registry order.
    public func chain(for block: Corefile.ServerBlock, setup: PluginSetup) throws -> [any DNSPlugin] {
        for d in block.directives where setups[d.name] == nil {
            throw PluginSetupError(d.name, line: d.line, "unknown directive '\(d.name)'")
        }
        var plugins: [any DNSPlugin] = []
        for name in order {
            let uses = block.directives.filter { $0.name == name }
            guard let first = uses.first, let make = setups[name] else { continue }
            if uses.count > 1 { throw PluginSetupError(name, line: uses[1].line, "this plugin can only be used once per Server Block") }
            plugins.append(try make(first, setup))
        }
        return plugins
    }
}

/// The DNS server a Corefile describes: one listener per distinct scheme and port, each
/// routing queries to the block with the longest matching zone.
public final class DNSServer: Sendable {
    public let corefile: Corefile
    public let dispatchers: [Corefile.ServerKey: DNSDispatcher]
    let host: String
    let group: any EventLoopGroup
    let logger: Logger
    let metrics: DNSMetrics
    let listenerBox = LockedBox<[DNSListener]>([])

    public init(corefile: Corefile, registry: PluginRegistry, setup: PluginSetup, host: String = "0.0.0.0",
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        self.corefile = corefile
        self.host = host
        self.group = group
        self.logger = setup.logger
        self.metrics = setup.metrics
        // Blocks that share a scheme and port share a listener.
        var byKey: [Corefile.ServerKey: [ServerBlockChain]] = [:]
        var seenZones: Set<String> = []
        for block in corefile.blocks {
            var s = setup
            s.zones = block.keys.map(\.zone)
            guard let firstKey = block.keys.first else { continue }
            s.serverLabel = firstKey.serverLabel
            let chain = ServerBlockChain(zones: s.zones, plugins: try registry.chain(for: block, setup: s),
                                         serverLabel: firstKey.serverLabel)
            for key in block.keys {
                let id = "\(key.scheme.rawValue)://\(key.zone.lowercased):\(key.port)"
                guard seenZones.insert(id).inserted else {
                    throw PluginSetupError("server", "cannot serve \(id) - it is already defined")
                }
                let listenKey = Corefile.ServerKey(scheme: key.scheme, zone: .root, port: key.port)
                if byKey[listenKey]?.contains(where: { $0 === chain }) != true {
                    byKey[listenKey, default: []].append(chain)
                }
            }
        }
        dispatchers = byKey.mapValues { chains in
            // A chain serves only its own keys' zones on this port.
            DNSDispatcher(chains: chains, accepting: false)
        }
    }

    public var listeners: [DNSListener] { listenerBox.value }

    /// The bound address of the listener for `scheme` and Corefile `port` (port 0 resolves to
    /// the one picked).
    public func boundPort(scheme: Corefile.ServerKey.Scheme = .dns, port: Int) -> Int? {
        let keys = dispatchers.keys.sorted { $0.port < $1.port }
        guard let i = keys.firstIndex(where: { $0.scheme == scheme && $0.port == port }), i < listeners.count else { return nil }
        return listeners[i].addresses.first?.port
    }

    /// Starts every plugin, then listens.
    public func start() async throws {
        var bound: [DNSListener] = []
        var started: Set<ObjectIdentifier> = []
        var contexts: [(ServerBlockChain, PluginContext)] = []
        do {
            for key in dispatchers.keys.sorted(by: { $0.port < $1.port }) {
                guard let dispatcher = dispatchers[key] else { continue }
                let tls = dispatcher.chains.lazy.compactMap { $0.plugins.lazy.compactMap { $0 as? TLSPlugin }.first }.first?.context
                if key.scheme == .tls && tls == nil {
                    throw PluginSetupError("tls", "server block \(key.serverLabel) needs a tls directive with a certificate and key")
                }
                let listener = try await DNSListener.bind(host: host, port: key.port, dispatcher: dispatcher,
                                                          tls: key.scheme == .tls ? tls : nil, group: group)
                bound.append(listener)
                listenerBox.value = bound
                for chain in dispatcher.chains {
                    let context = PluginContext(logger: logger, metrics: metrics, eventLoopGroup: group,
                                                listenAddresses: listener.addresses, zones: chain.zones)
                    for plugin in chain.plugins where started.insert(ObjectIdentifier(plugin)).inserted {
                        try await plugin.start(context)
                    }
                    contexts.append((chain, context))
                }
            }
            for dispatcher in dispatchers.values { dispatcher.open() }
            for (chain, context) in contexts {
                for plugin in chain.plugins { plugin.serverStarted(context) }
            }
        } catch {
            for l in bound { await l.close() }
            throw error
        }
    }

    /// Every plugin, once.
    public var plugins: [any DNSPlugin] {
        var seen: Set<ObjectIdentifier> = []
        var out: [any DNSPlugin] = []
        for d in dispatchers.values {
            for chain in d.chains {
                for p in chain.plugins where seen.insert(ObjectIdentifier(p)).inserted { out.append(p) }
            }
        }
        return out
    }

    public func stop() async {
        for l in listeners { await l.close() }
        for p in plugins { await p.stop() }
    }
}

/// A small lock-protected value box for Sendable classes.
final class LockedBox<Value: Sendable>: Sendable {
    private let lock: Mutex<Value>
    init(_ value: Value) { lock = Mutex(value) }
    var value: Value {
        get { lock.withLock { $0 } }
        set { lock.withLock { $0 = newValue } }
    }
    func update<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&$0) } }
}
