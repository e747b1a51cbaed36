import APIMachinery
import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix

extension PluginRegistry {
    /// CoreDNS's plugin.cfg order for the plugins built here.
    public static func standard(sink: LineSink) -> PluginRegistry {
        PluginRegistry(
            order: ["tls", "reload", "ready", "health", "prometheus", "errors", "log", "loadbalance", "cache", "hosts",
                    "kubernetes", "loop", "forward"],
            setups: [
                "tls": TLSPlugin.setup,
                "reload": ReloadPlugin.setup,
                "ready": ReadyPlugin.setup,
                "health": HealthPlugin.setup,
                "prometheus": PrometheusPlugin.setup,
                "errors": { d, s in try ErrorsPlugin.setup(d, s, sink: sink) },
                "log": { d, s in try LogPlugin.setup(d, s, sink: sink) },
                "loadbalance": LoadBalancePlugin.setup,
                "cache": CachePlugin.setup,
                "hosts": HostsPlugin.setup,
                "kubernetes": KubernetesPlugin.setup,
                "loop": LoopPlugin.setup,
                "forward": ForwardPlugin.setup,
            ])
    }
}

/// The `labnode dns` process: reads the Corefile, runs the server it describes, swaps in a
/// new server when a `reload`-enabled Corefile changes, and stops gracefully (lameduck).
public final class DNSAddon: Sendable {
    public let path: String
    let logger: Logger
    let sink: LineSink
    let metrics = DNSMetrics()
    let shared: SharedPlugins
    let host: String
    let group: any EventLoopGroup
    let apiClient: @Sendable () throws -> any APIClient
    let current = LockedBox<(server: DNSServer, hash: String, text: String)?>(nil)
    /// The Corefile as last read: an unchanged file is not hashed again (the reload check runs
    /// every interval and should not bring SHA-512's code back into memory each time).
    let lastRead = LockedBox<String?>(nil)
    /// Configurations loaded since start (a reload swaps the server and its rebuild counts).
    let reloads = LockedBox(0)
    /// Trims done by `trimWhenSettled` (tests read it).
    let settledTrims = LockedBox(0)
    /// Whether start-up's memory is given back once the server answers (`MemoryTrim`): the
    /// `labnode dns` process does; a server inside another process (tests) does not.
    let trimMemory: Bool

    /// - Parameters:
    ///   - apiClient: how the kubernetes plugin reaches the API (in-cluster configuration).
    public init(path: String, host: String = "0.0.0.0", sink: LineSink = .standardOutput, logger: Logger,
                group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, trimMemory: Bool = false,
                apiClient: @escaping @Sendable () throws -> any APIClient) {
        self.trimMemory = trimMemory
        self.path = path
        self.host = host
        self.sink = sink
        self.logger = logger
        self.group = group
        self.apiClient = apiClient
        self.shared = SharedPlugins(group: group)
    }

    public var server: DNSServer? { current.value?.server }
    public var sharedListeners: SharedPlugins { shared }

    static func sha512(_ text: String) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in SHA512.hash(data: Array(text.utf8)) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0xf)])
        }
        return String(decoding: hex, as: UTF8.self)
    }

    func build(_ text: String) throws -> DNSServer {
        let corefile = try Corefile(parsing: text, environment: ProcessInfo.processInfo.environment)
        let factory = apiClient
        let setup = PluginSetup(
            logger: logger, metrics: metrics, apiClient: factory,
            readFile: { try String(contentsOfFile: $0, encoding: .utf8) }, shared: shared)
        let server = try DNSServer(corefile: corefile, registry: .standard(sink: sink), setup: setup, host: host, group: group)
        let all = server.plugins
        for case let ready as ReadyPlugin in all { ready.watch(all) }
        return server
    }

    /// Starts the server and prints CoreDNS's start-up lines (the keys it serves, the
    /// configuration hash, the version).
    public func start() async throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let server = try build(text)
        try await server.start()
        let hash = Self.sha512(text)
        current.value = (server, hash, text)
        lastRead.value = text
        for block in server.corefile.blocks {
            for key in block.keys {
                let zone = key.zone.isRoot ? "." : key.zone.description
                sink.write(key.scheme == .dns ? "\(zone):\(key.port)" : "\(key.scheme.rawValue)://\(zone):\(key.port)")
            }
        }
        if reloadSettings != nil { sink.write("[INFO] plugin/reload: Running configuration SHA512 = \(hash)") }
        sink.write("CoreDNS-\(DNSVersion.coreDNSCompatible) (labnode dns)")
        sink.write("linux/\(Self.machine), \(DNSVersion.runtime), \(DNSVersion.revision)")
        if trimMemory { MemoryTrim.afterStartUp() }
    }

    static var machine: String {
        #if arch(x86_64)
        "amd64"
        #elseif arch(arm64)
        "arm64"
        #else
        "unknown"
        #endif
    }

    var reloadSettings: ReloadPlugin? {
        current.value?.server.plugins.lazy.compactMap { $0 as? ReloadPlugin }.first
    }

    /// Re-reads the Corefile; when it changed, stops the old server and starts the new one.
    /// A broken new Corefile is reported and the old server keeps running, as CoreDNS does.
    @discardableResult
    public func reloadIfChanged() async -> Bool {
        guard let text = FileText.contents(of: path), text != lastRead.value, let old = current.value else { return false }
        lastRead.value = text
        let hash = Self.sha512(text)
        guard hash != old.hash else { return false }
        let fresh: DNSServer
        do {
            fresh = try build(text)
        } catch {
            sink.write("[ERROR] Restart failed: \(error)")
            current.value = (old.server, hash, old.text)
            return false
        }
        await old.server.stop()
        await shared.closeAll()
        do {
            try await fresh.start()
            current.value = (fresh, hash, text)
            reloads.update { $0 += 1 }
            if trimMemory { MemoryTrim.afterStartUp() }
            sink.write("[INFO] Reloading complete")
            sink.write("[INFO] plugin/reload: Running configuration SHA512 = \(hash)")
            return true
        } catch {
            sink.write("[ERROR] Restart failed: \(error); keeping the previous configuration")
            do {
                let again = try build(old.text)
                try await again.start()
                current.value = (again, hash, old.text)
            } catch {
                sink.write("[ERROR] could not restore the previous configuration: \(error)")
            }
            return false
        }
    }

    /// Runs until cancelled, checking for Corefile changes when `reload` is on, and giving
    /// memory back once things settle (`trimWhenSettled`).
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            if trimMemory { group.addTask { await self.trimWhenSettled() } }
            group.addTask { await self.reloadWhenChanged() }
        }
    }

    /// What changed the add-on's work: index rebuilds, informer lists and watches, and reloads.
    /// Start-up counts too.
    var activity: Int {
        let kubernetes = current.value?.server.plugins.lazy.compactMap { $0 as? KubernetesPlugin } ?? []
        return kubernetes.reduce(0) { $0 + $1.rebuilds + $1.informerRequests } + reloads.value
    }

    /// Trims (`MemoryTrim.whileIdle`) once `settle` has passed without `activity`: once after
    /// start-up, then once after each batch of changes, relist or new watch. What runs just after the
    /// start-up trim (loop detection, the first probes, the first queries) and each batch's
    /// decoding and indexing bring code and heap back that answering does not need: a
    /// restarted container, whose page cache reads back in small pages mapped 64 kB at a time,
    /// kept 5 MB more of them than the first. Queries do not count: their code comes back on
    /// the next one, as minor faults.
    ///
    /// 3 s: start-up maps the TLS handshake's and the list decoding's code, which takes a
    /// restarted container with 1,000 Services to 20-21 MB until this trim (15-16 MB after it);
    /// with a 10 s settle it stayed there 12 s, and each new watch's handshake did the same.
    ///
    /// Work that is not activity trims too, through `MemoryTrim.GrowthWatch`, once it has mapped
    /// `growth` bytes more than serving settled at (nil: only activity): the first liveness
    /// probe, 60 s after start, and the first burst of queries took an idle restarted container
    /// from 15 to 18-19.6 MB, where it stayed.
    func trimWhenSettled(settle: Duration = .seconds(3), look: Duration = .seconds(1), growth: Int? = 1 << 20,
                         reading: @Sendable () -> MemoryTrim.Reading? = MemoryTrim.reading) async {
        var spell = MemoryTrim.QuietSpell(quiet: settle, count: activity, at: .now)
        var watch = growth.flatMap { g in reading().map { MemoryTrim.GrowthWatch(quiet: settle, growth: g, faults: $0.faults, at: .now) } }
        while !Task.isCancelled {
            try? await Task.sleep(for: look)
            let now = ContinuousClock.now
            let settled = spell.look(count: activity, at: now)
            var grown = false
            if var w = watch, let r = reading() {
                grown = w.look(r, at: now)
                watch = w
            }
            if settled || grown {
                MemoryTrim.whileIdle()
                settledTrims.update { $0 += 1 }
                watch?.trimmed(at: .now)
            }
        }
    }

    func reloadWhenChanged() async {
        while !Task.isCancelled {
            let wait: Duration
            if let r = reloadSettings {
                let jitter = Double(r.jitter.components.seconds) * Double.random(in: -1...1)
                wait = r.interval + .milliseconds(Int64(jitter * 1000))
            } else {
                wait = .seconds(5)
            }
            try? await Task.sleep(for: max(wait, .milliseconds(500)))
            if Task.isCancelled { break }
            if reloadSettings != nil { await reloadIfChanged() }
        }
    }

    /// Stops: during lameduck the health endpoint still says OK and DNS still answers, but
    /// /ready says no, so traffic drains first.
    public func stop() async {
        guard let server = current.value?.server else { return }
        let lameduck = server.plugins.compactMap { ($0 as? HealthPlugin)?.lameduck }.max() ?? .zero
        if lameduck > .zero {
            for case let ready as ReadyPlugin in server.plugins { ready.markStopping() }
            sink.write("[INFO] plugin/health: Going into lameduck mode for \(LogPlugin.seconds(lameduck))s")
            try? await Task.sleep(for: lameduck)
        }
        await server.stop()
        await shared.closeAll()
        current.value = nil
    }
}

