import APIMachinery
import Logging
import NIOCore
import NIOHTTP1

/// The pod and container a stream request (exec, attach, port-forward) is about, after the
/// checks kube-apiserver makes before it connects to the kubelet.
struct StreamTarget: Sendable {
    var namespace: String
    var pod: String
    var uid: String
    /// Empty for port-forward.
    var container: String
    var options: PodExecOptions
    var ports: [Int]
}

extension APIService {
    /// Validates `pods/NAME/{exec,attach,portforward}` and finds its pod, or throws the Status
    /// kube-apiserver answers (404 for a missing pod, 400 for a bad container or a finished pod).
    func streamTarget(subresource: String, namespace: String, name: String, query: Query) async throws(APIError) -> StreamTarget {
        let pod = try await get(Resources.pods, namespace: namespace, name: name)
        let phase = pod[path: "status", "phase"]?.stringValue ?? ""
        if pod[path: "spec", "nodeName"]?.stringValue?.isEmpty ?? true {
            throw APIError.badRequest("pod \(name) does not have a host assigned")
        }
        var options = PodExecOptions(query: query)
        var container = ""
        var ports: [Int] = []
        switch subresource {
        case "exec", "attach":
            if phase == "Succeeded" || phase == "Failed" {
                let verb = subresource == "exec" ? "exec into" : "attach to"
                throw APIError.badRequest("cannot \(verb) a container in a completed pod; current phase is \(phase)")
            }
            if subresource == "attach" { options.command = [] } else if options.command.isEmpty {
                throw APIError.badRequest("you must specify at least 1 command")
            }
            if !options.stdin && !options.stdout && !options.stderr {
                throw APIError.badRequest("you must specify at least 1 of stdin, stdout, stderr")
            }
            if options.tty && options.stderr {
                // kubectl never asks for both; a terminal has one output stream.
                options.stderr = false
            }
            container = try Self.execContainerName(options.container, pod: pod)
        case "portforward":
            for value in query.all("ports") {
                for part in value.split(separator: ",") {
                    guard let port = Int(part.trimmingCharacters(in: .whitespaces)), (1...65535).contains(port) else {
                        throw APIError.badRequest("invalid port \(part)")
                    }
                    ports.append(port)
                }
            }
        default:
            throw APIError.notFound("pods", name: name)
        }
        return StreamTarget(namespace: namespace, pod: name, uid: pod.uid ?? "", container: container, options: options, ports: ports)
    }
}

extension APIHandler {
    /// Decides an upgrade for exec, attach or port-forward, or the Status that refuses it.
    func planStream(_ head: HTTPRequestHead, kind: StreamUpgradeKind, channel: any Channel,
                    logger: Logger) async -> Result<StreamPlan, APIError> {
        do throws(APIError) {
            return .success(try await streamPlan(head, kind: kind, channel: channel, logger: logger))
        } catch {
            return .failure(error)
        }
    }

    private func streamPlan(_ head: HTTPRequestHead, kind: StreamUpgradeKind, channel: any Channel,
                            logger: Logger) async throws(APIError) -> StreamPlan {
        let split = head.uri.split(separator: "?", maxSplits: 1)
        let query = Query(split.dropFirst().first.map(String.init))
        guard let info = RequestInfo.parse(method: head.method.rawValue, path: String(split.first ?? ""), query: query),
              info.group.isEmpty, info.resource == "pods", let sub = info.subresource,
              sub == "exec" || sub == "attach" || sub == "portforward",
              let namespace = info.namespace, let name = info.name
        else { throw APIError.badRequest("only pods/exec, pods/attach and pods/portforward can be upgraded") }
        _ = try await authenticate(authorization: head.headers["Authorization"].first, channel: channel)
        guard let source = api.podStreamSource.source.withLock({ $0 }) else {
            throw APIError(code: 503, reason: .serviceUnavailable, message: "pods/\(sub) is not available: the node agent is not running")
        }
        let target = try await api.streamTarget(subresource: sub, namespace: namespace, name: name, query: query)
        func unsupported(_ offered: [String], _ supported: [String]) -> APIError {
            APIError.badRequest("unable to upgrade: no supported stream protocol among \(offered) (supported: \(supported.joined(separator: ", ")))")
        }
        if sub == "portforward" {
            let run: @Sendable (StreamTransport) async -> Void = { transport in
                guard case .spdy(let connection) = transport else { return }
                await PortForwardSession.run(connection: connection, target: target, source: source, logger: logger)
            }
            switch kind {
            case .webSocket(let offered):
                guard offered.contains(PortForwardSession.webSocketProtocol) else {
                    throw unsupported(offered, [PortForwardSession.webSocketProtocol])
                }
                return StreamPlan(chosenProtocol: PortForwardSession.webSocketProtocol, spdyInWebSocket: true, run: run)
            case .spdy(let offered):
                guard offered.contains(PortForwardSession.spdyProtocol) else { throw unsupported(offered, [PortForwardSession.spdyProtocol]) }
                return StreamPlan(chosenProtocol: PortForwardSession.spdyProtocol, run: run)
            }
        }
        let body: ExecBody = { streams throws(APIError) in
            if sub == "attach" {
                try await source.attach(namespace: target.namespace, pod: target.pod, uid: target.uid, container: target.container,
                                        options: target.options, streams: streams)
                return 0
            }
            return try await source.exec(namespace: target.namespace, pod: target.pod, uid: target.uid, container: target.container,
                                         options: target.options, streams: streams)
        }
        switch kind {
        case .webSocket(let offered):
            guard let chosen = ExecWebSocket.negotiate(offered) else { throw unsupported(offered, ExecWebSocket.protocols) }
            // kubectl 1.30 registers its channels only after the upgrade and drops what arrives
            // before; a command that fails at once would lose its Status (and exit code).
            let settle = (head.headers["User-Agent"].first ?? "").contains("/v1.30.")
            return StreamPlan(chosenProtocol: chosen) { transport in
                guard case .channels(let messages, let writer) = transport else { return }
                if settle { try? await Task.sleep(for: .milliseconds(100)) }
                await ExecWebSocket.run(messages: messages, writer: writer, v5: chosen.hasPrefix("v5"),
                                        command: target.options.command, logger: logger, body: body)
            }
        case .spdy(let offered):
            guard offered.contains(ExecSPDY.version) else { throw unsupported(offered, [ExecSPDY.version]) }
            return StreamPlan(chosenProtocol: ExecSPDY.version) { transport in
                guard case .spdy(let connection) = transport else { return }
                await ExecSPDY.run(connection: connection, options: target.options, logger: logger, body: body)
            }
        }
    }

    /// A stream request that was not upgraded: the Status kube-apiserver would give.
    func refuseStream(_ info: RequestInfo, query: Query) async throws(APIError) -> Never {
        guard api.podStreamSource.source.withLock({ $0 }) != nil else {
            throw APIError(code: 503, reason: .serviceUnavailable,
                           message: "pods/\(info.subresource ?? "") is not available: the node agent is not running")
        }
        _ = try await api.streamTarget(subresource: info.subresource ?? "", namespace: info.namespace ?? "", name: info.name ?? "",
                                       query: query)
        throw APIError.badRequest("Upgrade request required")
    }
}
