import Synchronization

/// Counts the HTTP requests the API server receives, so that the daemon can tell when nobody
/// has talked to it for a while (see the cluster's `IdleTrim`).
public final class RequestActivity: Sendable {
    let count = Atomic<Int>(0)

    public init() {}

    public func noteRequest() { count.add(1, ordering: .relaxed) }

    public var requests: Int { count.load(ordering: .relaxed) }
}
