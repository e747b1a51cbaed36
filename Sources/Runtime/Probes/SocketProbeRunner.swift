import Dispatch

/// The real ``ProbeRunner``: httpGet and tcpSocket over plain sockets from the node (the pod
/// network is reachable from labnode's own network namespace, as from the kubelet's), exec
/// through a closure the node agent supplies (it knows how to enter a container), gRPC not
/// supported.
public struct SocketProbeRunner: ProbeRunner {
    /// Runs a command inside a container within `timeout` seconds.
    public typealias ExecHandler = @Sendable (ExecProbeRequest, _ timeout: Double) async -> ExecProbeResult

    let execHandler: ExecHandler?

    /// - Parameter exec: how to run exec probes; without it they report an error (and so never
    ///   change a container's readiness or liveness).
    public init(exec: ExecHandler? = nil) {
        self.execHandler = exec
    }

    public func httpGet(_ request: HTTPProbeRequest, timeout: Double) async -> ProbeOutcome {
        await SocketProbeRunner.offload { HTTPProbeClient.probe(request, timeout: timeout) }
    }

    public func tcpSocket(host: String, port: Int, timeout: Double) async -> ProbeOutcome {
        await SocketProbeRunner.offload {
            let deadline = ProbeSocket.monotonicNow() + timeout
            switch ProbeSocket.dial(host: host, port: port, deadline: deadline) {
            case .success:
                // Connecting is the whole check; the connection closes when released.
                return .success(output: "")
            case .failure(let error):
                return .failure(output: error.goText)
            }
        }
    }

    public func exec(_ request: ExecProbeRequest, timeout: Double) async -> ProbeOutcome {
        guard let execHandler else {
            return .error(message: "exec probes are not available: the node agent gave the prober no way to run commands")
        }
        let result = await execHandler(request, timeout)
        return ProbeExecution.outcome(of: result, command: request.command)
    }

    public func grpc(host: String, port: Int, service: String?, timeout: Double) async -> ProbeOutcome {
        .error(message: "gRPC probes are not supported by labnode")
    }

    /// Runs blocking socket work on a dispatch thread, keeping the cooperative pool free while
    /// a probe waits out its timeout.
    static func offload<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }
}
