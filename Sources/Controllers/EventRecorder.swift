import APIMachinery
import Foundation
import Logging
import Synchronization

/// Writes core/v1 Events as upstream components do, for `kubectl describe` and `kubectl get events`.
///
/// The same (object, type, reason, message, component) again within ten minutes bumps `count`
/// and `lastTimestamp` of the existing Event instead of adding one (client-go's event
/// correlator), so describe shows "x3 over 2m". Recording never blocks a controller: events
/// go through one ordered stream written by `run`.
public final class EventRecorder: Sendable {
    struct Pending: Sendable {
        var involved: JSON
        var component: String
        var type: String
        var reason: String
        var message: String
        var time: Date
    }
    struct Seen {
        var namespace: String
        var name: String
        var count: Int64
        var first: String
        var last: Date
    }

    let client: any APIClient
    let stream: AsyncStream<Pending>
    let continuation: AsyncStream<Pending>.Continuation
    let seen = Mutex<[String: Seen]>([:])
    static let dedupWindow: TimeInterval = 600

    public init(client: any APIClient) {
        self.client = client
        (stream, continuation) = AsyncStream<Pending>.makeStream()
    }

    /// Records an event about `object` (any API object with kind, namespace, name, uid).
    public func record(_ object: JSON, component: String, type: String = "Normal", reason: String, message: String) {
        let involved: JSON = [
            "kind": .string(object.kind ?? ""),
            "namespace": object.namespace.map { .string($0) } ?? .null,
            "name": .string(object.name ?? ""),
            "uid": .string(object.uid ?? ""),
            "apiVersion": .string(object.apiVersion ?? ""),
            "resourceVersion": .string(object.resourceVersion ?? ""),
        ]
        continuation.yield(Pending(involved: involved, component: component, type: type, reason: reason,
                                   message: message, time: Date()))
    }

    /// Writes recorded events in order until cancelled.
    public func run(logger: Logger) async {
        await withTaskCancellationHandler {
            for await event in stream {
                do throws(APIError) {
                    try await write(event)
                } catch {
                    logger.debug("could not record event \(event.reason) for \(event.involved["name"]?.stringValue ?? ""): \(error.message)")
                }
            }
        } onCancel: {
            continuation.finish()
        }
    }

    func write(_ e: Pending) async throws(APIError) {
        let namespace = e.involved["namespace"]?.stringValue ?? "default"
        let objectName = e.involved["name"]?.stringValue ?? ""
        let aggregate = [e.component, e.involved["uid"]?.stringValue ?? objectName, e.type, e.reason, e.message]
            .joined(separator: "\u{0}")
        let stamp = Timestamp.rfc3339(e.time)
        let previous = seen.withLock { $0[aggregate] }
        if let previous, e.time.timeIntervalSince(previous.last) < Self.dedupWindow {
            let patch: JSON = ["count": .int(previous.count + 1), "lastTimestamp": .string(stamp)]
            do {
                _ = try await client.mergePatch(Resources.events, namespace: previous.namespace, name: previous.name,
                                                patch, manager: e.component)
                seen.withLock { $0[aggregate] = Seen(namespace: previous.namespace, name: previous.name,
                                                     count: previous.count + 1, first: previous.first, last: e.time) }
                return
            } catch where error.reason == .notFound {
                // Expired or deleted: start a new one.
            }
        }
        // Upstream names events <object>.<hex nanoseconds>, which keeps them unique and sortable.
        let nanos = UInt64(max(0, e.time.timeIntervalSince1970) * 1_000_000_000)
        let name = objectName + "." + String(nanos, radix: 16)
        let event: JSON = [
            "apiVersion": "v1", "kind": "Event",
            "metadata": ["name": .string(name), "namespace": .string(namespace)],
            "involvedObject": e.involved,
            "reason": .string(e.reason),
            "message": .string(e.message),
            "source": ["component": .string(e.component)],
            "firstTimestamp": .string(stamp),
            "lastTimestamp": .string(stamp),
            "count": 1,
            "type": .string(e.type),
            "eventTime": .null,
            "reportingComponent": .string(e.component),
            "reportingInstance": "",
        ]
        _ = try await client.create(Resources.events, event, manager: e.component)
        seen.withLock { s in
            s[aggregate] = Seen(namespace: namespace, name: name, count: 1, first: stamp, last: e.time)
            // Forget aggregates past the window so the map stays small on a long-lived cluster.
            if s.count > 4096 { s = s.filter { e.time.timeIntervalSince($0.value.last) < Self.dedupWindow } }
        }
    }
}
