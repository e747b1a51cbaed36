import APIMachinery
import Logging
import Synchronization

/// A change an informer saw.
public enum InformerEvent: Sendable {
    case added(JSON)
    case updated(old: JSON, new: JSON)
    case deleted(JSON)

    /// The object as it is now (or was, for a delete).
    public var object: JSON {
        switch self {
        case .added(let o), .deleted(let o): o
        case .updated(_, let o): o
        }
    }
}

/// A local copy of one resource kept current by list + watch, with handlers told of each change.
///
/// Controllers read from the copy instead of asking the API server on every reconcile, as
/// client-go's shared informers do. After writing, a controller can `waitForRevision` so
/// its next reconcile sees its own writes (this replaces client-go's "expectations").
public final class Informer: Sendable {
    public typealias Handler = @Sendable (InformerEvent) -> Void

    public let resource: ResourceInfo
    struct State {
        var objects: [String: JSON] = [:]
        var handlers: [Handler] = []
        var revision: Int64 = 0
        var synced = false
        var revisionWaiters: [(Int64, CheckedContinuation<Void, Never>)] = []
        var syncWaiters: [CheckedContinuation<Void, Never>] = []
    }
    let state = Mutex(State())

    /// Applied to each object before it is kept (client-go's SetTransform): a reader that needs
    /// a few fields keeps only those, which is most of the DNS add-on's memory.
    let transform: (@Sendable (JSON) -> JSON)?

    public init(_ resource: ResourceInfo, transform: (@Sendable (JSON) -> JSON)? = nil) {
        self.resource = resource
        self.transform = transform
    }

    /// Adds a handler; register before `run` so no event is missed.
    public func onChange(_ handler: @escaping Handler) {
        state.withLock { $0.handlers.append(handler) }
    }

    public static func key(namespace: String?, name: String) -> String {
        guard let namespace, !namespace.isEmpty else { return name }
        return namespace + "/" + name
    }

    public static func key(_ obj: JSON) -> String { key(namespace: obj.namespace, name: obj.name ?? "") }

    public func get(namespace: String?, name: String) -> JSON? {
        state.withLock { $0.objects[Self.key(namespace: namespace, name: name)] }
    }

    public func get(key: String) -> JSON? {
        state.withLock { $0.objects[key] }
    }

    /// Objects in `namespace` (all namespaces when nil) whose labels match `selector`.
    public func list(namespace: String? = nil, selector: LabelSelector = .everything) -> [JSON] {
        state.withLock { s in
            s.objects.values.filter { obj in
                (namespace == nil || obj.namespace == namespace) && selector.matches(obj.labels)
            }
        }
    }

    public var count: Int { state.withLock { $0.objects.count } }

    /// Whether the first list has arrived.
    public var isSynced: Bool { state.withLock { $0.synced } }

    /// Returns once the first list is in the copy.
    public func waitSynced() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { s in
                if s.synced { return true }
                s.syncWaiters.append(c)
                return false
            }
            if ready { c.resume() }
        }
    }

    /// Returns once the copy reflects every write up to `revision` of this resource (or after
    /// `timeout`, so a lost watch cannot wedge a controller).
    public func waitForRevision(_ revision: Int64, timeout: Duration = .seconds(5)) async {
        guard revision > 0 else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let ready = self.state.withLock { s in
                        if s.revision >= revision { return true }
                        s.revisionWaiters.append((revision, c))
                        return false
                    }
                    if ready { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
            // Release a waiter left behind by the timeout.
            let stale = self.state.withLock { s -> [CheckedContinuation<Void, Never>] in
                let gone = s.revisionWaiters.filter { $0.0 == revision }.map(\.1)
                s.revisionWaiters.removeAll { $0.0 == revision }
                return gone
            }
            for c in stale { c.resume() }
            await group.waitForAll()
        }
    }

    /// Lists, then watches from the list's revision; relists when the watch ends or falls too
    /// far behind. Runs until the task is cancelled.
    public func run(client: any APIClient, logger: Logger) async {
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled {
            do {
                let listed = try await client.list(resource, namespace: nil, options: ListOptions())
                replace(with: listed.items, revision: listed.resourceVersion)
                let events = try await client.watch(resource, namespace: nil,
                                                    options: ListOptions(resourceVersion: String(listed.resourceVersion)))
                backoff = .milliseconds(50)
                for await event in events {
                    if Task.isCancelled { break }
                    if event.type == .error {
                        logger.info("watch of \(resource.qualifiedResource) ended: \(event.object["message"]?.stringValue ?? ""); listing again")
                        break
                    }
                    apply(event)
                }
            } catch {
                logger.warning("list/watch of \(resource.qualifiedResource) failed: \(error.message); retrying")
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    func replace(with items: [JSON], revision: Int64) {
        var fresh: [String: JSON] = [:]
        for obj in items { fresh[Self.key(obj)] = transform?(obj) ?? obj }
        let (handlers, events, waiters) = state.withLock { s -> ([Handler], [InformerEvent], [CheckedContinuation<Void, Never>]) in
            var events: [InformerEvent] = []
            for (key, obj) in fresh {
                if let old = s.objects[key] {
                    if old.resourceVersion != obj.resourceVersion { events.append(.updated(old: old, new: obj)) }
                } else {
                    events.append(.added(obj))
                }
            }
            for (key, old) in s.objects where fresh[key] == nil { events.append(.deleted(old)) }
            s.objects = fresh
            var waiters = s.syncWaiters
            s.syncWaiters = []
            s.synced = true
            waiters += advance(&s, to: revision)
            return (s.handlers, events, waiters)
        }
        for event in events { for h in handlers { h(event) } }
        for w in waiters { w.resume() }
    }

    func apply(_ event: APIWatchEvent) {
        let obj = transform?(event.object) ?? event.object
        let key = Self.key(obj)
        let rv = Int64(obj.resourceVersion ?? "") ?? 0
        let (handlers, change, waiters) = state.withLock { s -> ([Handler], InformerEvent?, [CheckedContinuation<Void, Never>]) in
            var change: InformerEvent?
            switch event.type {
            case .added, .modified:
                if let old = s.objects[key] { change = .updated(old: old, new: obj) } else { change = .added(obj) }
                s.objects[key] = obj
            case .deleted:
                s.objects[key] = nil
                change = .deleted(obj)
            case .bookmark, .error:
                break
            }
            return (s.handlers, change, advance(&s, to: rv))
        }
        if let change { for h in handlers { h(change) } }
        for w in waiters { w.resume() }
    }

    private func advance(_ s: inout State, to revision: Int64) -> [CheckedContinuation<Void, Never>] {
        if revision > s.revision { s.revision = revision }
        let current = s.revision
        let ready = s.revisionWaiters.filter { $0.0 <= current }.map(\.1)
        s.revisionWaiters.removeAll { $0.0 <= current }
        return ready
    }
}
