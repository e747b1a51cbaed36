import Synchronization

/// A ``ProbeRunner`` for tests: answers from a replaceable responder and records every call,
/// so tests can script a container going healthy, unhealthy and back without any network.
public final class FakeProbeRunner: ProbeRunner {
    /// One probe attempt as the runner received it.
    public enum Call: Sendable, Equatable {
        case httpGet(HTTPProbeRequest, timeout: Double)
        case tcpSocket(host: String, port: Int, timeout: Double)
        case exec(ExecProbeRequest, timeout: Double)
        case grpc(host: String, port: Int, service: String?, timeout: Double)
    }

    public typealias Responder = @Sendable (Call) -> ProbeOutcome

    struct State {
        var responder: Responder
        var calls: [Call] = []
    }

    let state: Mutex<State>

    /// - Parameter responder: the outcome for each call; by default every probe passes.
    public init(_ responder: @escaping Responder = { _ in .success(output: "") }) {
        state = Mutex(State(responder: responder))
    }

    /// Replaces the responder for later calls.
    public func respond(with responder: @escaping Responder) {
        state.withLock { $0.responder = responder }
    }

    /// Every call so far, oldest first.
    public var calls: [Call] { state.withLock { $0.calls } }

    func answer(_ call: Call) -> ProbeOutcome {
        state.withLock { s in
            s.calls.append(call)
            return s.responder(call)
        }
    }

    public func httpGet(_ request: HTTPProbeRequest, timeout: Double) async -> ProbeOutcome {
        answer(.httpGet(request, timeout: timeout))
    }

    public func tcpSocket(host: String, port: Int, timeout: Double) async -> ProbeOutcome {
        answer(.tcpSocket(host: host, port: port, timeout: timeout))
    }

    public func exec(_ request: ExecProbeRequest, timeout: Double) async -> ProbeOutcome {
        answer(.exec(request, timeout: timeout))
    }

    public func grpc(host: String, port: Int, service: String?, timeout: Double) async -> ProbeOutcome {
        answer(.grpc(host: host, port: port, service: service, timeout: timeout))
    }
}
