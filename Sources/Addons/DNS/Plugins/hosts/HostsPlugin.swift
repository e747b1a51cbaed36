import Foundation
import Logging
import Synchronization

/// Answers from a hosts file and inline entries (`10.0.0.5 registry.lab`): A, AAAA and, unless
/// `no_reverse`, PTR. The file is re-read every `reload` interval when it changed.
public final class HostsPlugin: DNSPlugin {
    public let name = "hosts"

    public struct Table: Sendable, Equatable {
        var forward: [DNSName: [String]] = [:]
        var reverse: [String: [DNSName]] = [:]

        public init(parsing text: String, reverse withReverse: Bool = true) {
            for raw in text.split(separator: "\n") {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
                guard fields.count >= 2 else { continue }
                let address = String(fields[0].split(separator: "%").first ?? "")
                guard IPv4(address) != nil || IPv6.parse(address) != nil else { continue }
                for n in fields.dropFirst() {
                    guard let name = DNSName(n.hasSuffix(".") ? n : n + ".") else { continue }
                    if forward[name]?.contains(address) != true { forward[name, default: []].append(address) }
                    if withReverse { reverse[KubernetesIndex.normalized(address), default: []].append(name) }
                }
            }
        }
    }

    public struct Config: Sendable {
        public var path: String?
        public var inline: String = ""
        public var zones: [DNSName] = [.root]
        public var ttl: UInt32 = 3600
        public var reverse = true
        public var reload: Duration = .seconds(5)
        public var fallthroughZones: [DNSName]?
        public init() {}
    }

    public let config: Config
    let table: Mutex<Table>
    let readFile: @Sendable (String) throws -> String
    let logger: Logger
    let task = LockedBox<Task<Void, Never>?>(nil)

    public init(config: Config, readFile: @escaping @Sendable (String) throws -> String, logger: Logger) {
        self.config = config
        self.readFile = readFile
        self.logger = logger
        table = Mutex(Self.load(config, readFile: readFile, logger: logger))
    }

    static func load(_ c: Config, readFile: (String) throws -> String, logger: Logger) -> Table {
        var text = c.inline
        if let path = c.path {
            do { text = try readFile(path) + "\n" + text } catch {
                logger.warning("plugin/hosts: cannot read \(path): \(error)")
            }
        }
        return Table(parsing: text, reverse: c.reverse)
    }

    public static func setup(_ d: Corefile.Directive, _ s: PluginSetup) throws -> any DNSPlugin {
        var c = Config()
        c.path = d.args.first ?? "/etc/hosts"
        if d.args.count > 1 { c.zones = d.args.dropFirst().compactMap { DNSName($0) } } else { c.zones = s.zones }
        for sub in d.block {
            if IPv4(sub.name) != nil || IPv6.parse(sub.name) != nil {
                c.inline += ([sub.name] + sub.args).joined(separator: " ") + "\n"
                continue
            }
            switch sub.name {
            case "ttl":
                guard let v = sub.args.first.flatMap(UInt32.init) else { throw PluginSetupError("hosts", line: sub.line, "ttl needs seconds") }
                c.ttl = v
            case "no_reverse": c.reverse = false
            case "reload":
                guard let v = sub.args.first.flatMap(parseDuration) else { throw PluginSetupError("hosts", line: sub.line, "reload needs a duration") }
                c.reload = v
            case "fallthrough": c.fallthroughZones = sub.args.compactMap { DNSName($0) }
            default: throw PluginSetupError("hosts", line: sub.line, "unknown property '\(sub.name)'")
            }
        }
        return HostsPlugin(config: c, readFile: s.readFile, logger: s.logger)
    }

    public func start(_ context: PluginContext) async throws {
        guard config.path != nil, config.reload > .zero else { return }
        task.value = Task { [weak self] in
            while !Task.isCancelled {
                guard let interval = self?.config.reload else { return }
                try? await Task.sleep(for: interval)
                guard let self else { return }
                let fresh = Self.load(self.config, readFile: self.readFile, logger: self.logger)
                self.table.withLock { $0 = fresh }
            }
        }
    }

    public func stop() async { task.value?.cancel() }

    public func serve(_ request: DNSRequest, next: DNSNext) -> DNSResult {
        let q = request.question
        guard config.zones.contains(where: { q.name.isSubdomain(of: $0) }) else { return next(request) }
        let t = table.withLock { $0 }
        var answers: [DNSRecord] = []
        var exists = false
        if q.type == .ptr, let address = KubernetesPlugin.address(fromReverse: q.name), let names = t.reverse[address] {
            exists = true
            answers = names.map { DNSRecord(name: q.name, ttl: config.ttl, data: .ptr($0)) }
        } else if let addresses = t.forward[q.name] {
            exists = true
            for a in addresses {
                if q.type == .a, let v4 = IPv4(a) { answers.append(DNSRecord(name: q.name, ttl: config.ttl, data: .a(v4))) }
                if q.type == .aaaa, let v6 = IPv6.parse(a) { answers.append(DNSRecord(name: q.name, ttl: config.ttl, data: .aaaa(v6))) }
            }
        }
        if answers.isEmpty, let ft = config.fallthroughZones, ft.isEmpty || ft.contains(where: { q.name.isSubdomain(of: $0) }) {
            return next(request)
        }
        guard exists else {
            // As CoreDNS: without a SOA there is no proper NXDOMAIN, so an unknown name outside
            // `fallthrough` is SERVFAIL.
            return .done(DNSResponse(message: request.reply(.serverFailure), plugin: name))
        }
        var m = request.reply()
        m.authoritative = true
        m.answers = answers
        return .done(DNSResponse(message: m, plugin: name))
    }
}
