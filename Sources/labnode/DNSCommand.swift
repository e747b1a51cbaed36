import Addons
import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle

/// `labnode dns -conf /etc/coredns/Corefile`: the cluster DNS add-on, as the kube-dns pods run
/// it (CoreDNS's flag spelling, so the Deployment reads like a real cluster's).
struct DNSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "Run the CoreDNS-compatible DNS server (the kube-dns add-on) from a Corefile.")

    @Option(name: .customLong("conf", withSingleDash: true), help: "The Corefile to load.")
    var conf = "Corefile"
    @Option(name: .customLong("dns.port", withSingleDash: true), help: "Default port (unused: the Corefile's keys say).")
    var port: Int?
    @Option(name: .customLong("listen"), help: "Address to listen on.")
    var listen = "0.0.0.0"
    @Flag(name: .customLong("print-corefile"), help: "Print the add-on's Corefile (as `labnode up` applies it) and exit.")
    var printCorefile = false
    @Option(name: .customLong("cluster-domain"), help: "Cluster domain for --print-corefile.")
    var clusterDomain = "cluster.local"
    @Option(name: .customLong("service-account-dir"), help: .hidden)
    var serviceAccountDir = InClusterConfig.serviceAccountDirectory

    func run() async throws {
        if printCorefile {
            print(DNSManifests.corefile(clusterDomain: clusterDomain), terminator: "")
            return
        }
        try await Labnode.guarded {
            let sink = LineSink.standardOutput
            LoggingSystem.bootstrap { label in CoreDNSLogHandler(sink: sink) }
            let logger = Logger(label: "dns")
            let directory = serviceAccountDir
            let addon = DNSAddon(path: conf, host: listen, sink: sink, logger: logger, trimMemory: true) {
                // In-cluster configuration, read when the kubernetes plugin starts. Benchmarks
                // run the server on the node with a service account directory of their own.
                try RemoteAPIClient(config: try InClusterConfig.load(directory: directory), logger: logger)
            }
            let group = ServiceGroup(configuration: .init(
                services: [.init(service: DNSService(addon: addon))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: Logger(label: "dns.lifecycle")))
            try await group.run()
        }
    }
}

/// Serves until SIGTERM/SIGINT, then stops gracefully (lameduck included).
struct DNSService: Service {
    let addon: DNSAddon

    func run() async throws {
        try await addon.start()
        let reloader = Task { await addon.run() }
        try? await gracefulShutdown()
        reloader.cancel()
        await addon.stop()
    }
}

/// swift-log lines in CoreDNS's shape: `[INFO] plugin/...`, `[WARNING] ...`, `[ERROR] ...`.
struct CoreDNSLogHandler: LogHandler {
    let sink: LineSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let tag: String
        switch event.level {
        case .trace, .debug: tag = "DEBUG"
        case .info, .notice: tag = "INFO"
        case .warning: tag = "WARNING"
        case .error: tag = "ERROR"
        case .critical: tag = "FATAL"
        }
        sink.write("[\(tag)] \(event.message)")
    }
}
