import APIMachinery
import Foundation
import Store
import NIOConcurrencyHelpers

extension APIService {
    /// How often an idle watch that asked for bookmarks gets one.
    static let bookmarkInterval: Duration = .seconds(30)

    /// Starts a watch with kube-apiserver's resourceVersion semantics:
    /// - unset or "0": ADDED for every current object first, then changes;
    /// - "N": changes after revision N (an ERROR event with 410 Gone when N is no longer retained);
    /// - `sendInitialEvents=true` (watch-list): the current objects, then a BOOKMARK annotated
    ///   `k8s.io/initial-events-end`, then changes.
    public func watch(_ r: ResourceInfo, namespace: String?, options: ListOptions) async throws(APIError) -> AsyncStream<APIWatchEvent> {
        try Strategy.checkFieldSelector(r, options.fieldSelector)
        if options.sendInitialEvents == true {
            guard options.resourceVersionMatch == "NotOlderThan" else {
                throw APIError.invalid(kind: "ListOptions", group: "meta.k8s.io", name: "", causes: [
                    .init(reason: "FieldValueForbidden",
                          message: "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                          field: "sendInitialEvents")])
            }
        }
        let rv = options.resourceVersion.flatMap { Int64($0) } ?? 0
        let initialState = options.sendInitialEvents ?? (rv == 0)
        var initial: [JSON] = []
        var start = rv
        if initialState {
            var all = options
            all.limit = nil
            all.continueToken = nil
            let listed = try await list(r, namespace: namespace, options: all)
            initial = listed.items
            start = max(listed.resourceVersion, rv)
        } else if rv == 0 {
            start = await store.revision
        }

        let (stream, continuation) = AsyncStream<APIWatchEvent>.makeStream()
        let prefix = ObjectStorage.prefix(r, namespace: namespace)
        let storeEvents: AsyncStream<Store.WatchEvent>
        do {
            storeEvents = try await store.watch(prefix: prefix, afterRevision: start)
        } catch .compacted(let requested, let oldest) {
            let e = APIError.gone("too old resource version: \(requested) (\(oldest))")
            continuation.yield(APIWatchEvent(type: .error, object: e.status))
            continuation.finish()
            return stream
        } catch {
            throw storage.mapError(error, r, name: "")
        }

        let progress = NIOLockedValueBox<Int64>(start)
        let known = NIOLockedValueBox<Set<String>>([])
        let bookmarks = options.allowWatchBookmarks
        let sendInitialEnd = options.sendInitialEvents == true
        let apiVersion = r.apiVersion
        let kind = r.kind

        let pump = Task {
            for obj in initial {
                if let name = obj.name { known.withLockedValue { _ = $0.insert((obj.namespace ?? "") + "/" + name) } }
                continuation.yield(APIWatchEvent(type: .added, object: obj))
            }
            if sendInitialEnd { continuation.yield(Self.bookmark(kind: kind, apiVersion: apiVersion, start, initialEnd: true)) }
            for await ev in storeEvents {
                progress.withLockedValue { $0 = ev.kv.modRevision }
                guard let obj = try? self.storage.decodeCached(ev.kv) else { continue }
                let id = (obj.namespace ?? "") + "/" + (obj.name ?? "")
                let matches = self.matches(r, obj, options)
                let wasKnown = known.withLockedValue { $0.contains(id) }
                switch ev.kind {
                case .delete:
                    known.withLockedValue { _ = $0.remove(id) }
                    if matches || wasKnown { continuation.yield(APIWatchEvent(type: .deleted, object: obj)) }
                case .put:
                    if matches {
                        known.withLockedValue { _ = $0.insert(id) }
                        // Without selectors every update of an existing object is MODIFIED; with them,
                        // an object not seen matching before has just entered the selection.
                        let unfiltered = options.labelSelector.isEmpty && options.fieldSelector.isEmpty
                        let type: APIWatchEvent.EventType =
                            ev.isCreate ? .added : (wasKnown || unfiltered ? .modified : .added)
                        continuation.yield(APIWatchEvent(type: type, object: obj))
                    } else if wasKnown {
                        // The object left the selection: to this watcher it is gone.
                        known.withLockedValue { _ = $0.remove(id) }
                        continuation.yield(APIWatchEvent(type: .deleted, object: obj))
                    }
                }
            }
            continuation.finish()
        }
        let timeout = options.timeoutSeconds ?? 1800
        let timer = Task {
            let deadline = ContinuousClock.now + .seconds(timeout)
            while !Task.isCancelled {
                let next = ContinuousClock.now + Self.bookmarkInterval
                if next >= deadline {
                    try? await Task.sleep(until: deadline)
                    break
                }
                try? await Task.sleep(until: next)
                if Task.isCancelled { return }
                if bookmarks { continuation.yield(Self.bookmark(kind: kind, apiVersion: apiVersion, progress.withLockedValue { $0 }, initialEnd: false)) }
            }
            if !Task.isCancelled { continuation.finish() }
        }
        let id = openWatches.register { continuation.finish() }
        continuation.onTermination = { _ in
            pump.cancel()
            timer.cancel()
            self.openWatches.remove(id)
        }
        return stream
    }

    /// Ends every open watch and every later one at once: on shutdown a watch that has nothing
    /// to send would otherwise keep its connection, and the server's graceful stop, waiting.
    /// Clients reconnect to the next server, as they do when kube-apiserver restarts.
    public func endWatches() {
        openWatches.closeAll()
    }

    static func bookmark(kind: String, apiVersion: String, _ revision: Int64, initialEnd: Bool) -> APIWatchEvent {
        var meta: JSON = ["resourceVersion": .string(String(revision))]
        if initialEnd { meta["annotations"] = ["k8s.io/initial-events-end": "true"] }
        return APIWatchEvent(type: .bookmark, object: ["kind": .string(kind), "apiVersion": .string(apiVersion), "metadata": meta])
    }
}

/// The finish handles of the watches being served.
final class OpenWatches: Sendable {
    let state = NIOLockedValueBox<(closed: Bool, next: Int, finishers: [Int: @Sendable () -> Void])>((false, 0, [:]))

    /// Keeps `finish` until `remove`; calls it at once if watches are already closed.
    func register(_ finish: @escaping @Sendable () -> Void) -> Int {
        let (id, closed) = state.withLockedValue { s -> (Int, Bool) in
            s.next += 1
            if !s.closed { s.finishers[s.next] = finish }
            return (s.next, s.closed)
        }
        if closed { finish() }
        return id
    }

    func remove(_ id: Int) {
        state.withLockedValue { _ = $0.finishers.removeValue(forKey: id) }
    }

    func closeAll() {
        let all = state.withLockedValue { s -> [@Sendable () -> Void] in
            s.closed = true
            defer { s.finishers = [:] }
            return Array(s.finishers.values)
        }
        for finish in all { finish() }
    }
}
