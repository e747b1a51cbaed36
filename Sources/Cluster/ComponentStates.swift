import Foundation
import NIOConcurrencyHelpers

/// What each component of the running daemon is doing, kept in `<data-dir>/status.json` so that
/// `labnode status` (another process) can print it. The daemon rewrites the file at every change
/// and removes it when it stops; a file left by a crash is ignored because the pid is gone.
public final class ComponentStates: Sendable {
    /// The components in the order they start, which is the order `status` prints them.
    public static let order = ["store", "pki", "api-server", "controllers", "node-agent", "kube-proxy", "dns"]

    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        /// starting, ready, failed or disabled.
        public var state: String
        public var detail: String
    }

    let path: String?
    let entries: NIOLockedValueBox<[Entry]>

    public init(path: String?, config: ClusterConfig) {
        self.path = path
        entries = NIOLockedValueBox(Self.order.map { name in
            if let why = config.whyNotRunning(name) { return Entry(name: name, state: "disabled", detail: why) }
            return Entry(name: name, state: "starting", detail: "")
        })
        save()
    }

    /// Records a change; names outside `order` (the foreground's "kubeconfig" line) are not components.
    public func set(_ name: String, _ state: String, _ detail: String = "") {
        let known = entries.withLockedValue { list -> Bool in
            guard let i = list.firstIndex(where: { $0.name == name }) else { return false }
            list[i] = Entry(name: name, state: state, detail: detail)
            return true
        }
        if known { save() }
    }

    func save() {
        guard let path else { return }
        // Written under the lock, so that two changes at once cannot leave the older one on disk.
        entries.withLockedValue { list in
            guard let data = try? JSONEncoder().encode(list) else { return }
            try? data.write(to: URL(fileURLWithPath: path), options: .atomic)
        }
    }

    public func remove() {
        guard let path else { return }
        try? FileManager.default.removeItem(atPath: path)
    }

    /// What the daemon last wrote; nil when there is no readable file.
    public static func load(path: String) -> [Entry]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode([Entry].self, from: data)
    }
}
