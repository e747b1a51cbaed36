import APIMachinery
import APIServer
import Foundation
import Logging
import Runtime
import ServiceLifecycle

/// Runs the node agent once the controllers are up, connects its container logs to the API
/// server, and on shutdown stops the pods and removes the bridge.
///
/// A node agent that cannot start (no root, no overlayfs, a bridge that cannot be made) is
/// reported on the progress stream and in the log; the API server keeps running, so the
/// trainee can still read objects and the error.
struct NodeAgentService: Service {
    let make: @Sendable () throws -> NodeAgent
    let api: APIService
    let startAfter: @Sendable () async -> Void
    let progress: ProgressReporter
    /// Told whether the agent came up (the service proxy starts after it, or not at all).
    let onStarted: @Sendable (Bool) -> Void
    /// Awaited before the agent starts any pod (see NodeAgent.run).
    let podsMayStart: @Sendable () async -> Void
    let logger: Logger

    func run() async throws {
        await startAfter()
        let agent: NodeAgent
        do {
            agent = try make()
        } catch {
            fail("\(error)")
            onStarted(false)
            try? await gracefulShutdown()
            return
        }
        api.setPodLogSource(AgentLogSource(agent: agent))
        api.setPodStreamSource(AgentStreamSource(agent: agent))
        do {
            try await cancelWhenGracefulShutdown {
                try await agent.run(onReady: {
                    progress.ready("node-agent")
                    onStarted(true)
                }, podsMayStart: podsMayStart)
            }
        } catch is CancellationError {
        } catch {
            fail("\(error)")
            onStarted(false)
            try? await gracefulShutdown()
        }
        api.setPodLogSource(nil)
        api.setPodStreamSource(nil)
        await agent.shutdown()
    }

    /// The proxy, told by `onStarted(false)`, ends the start-up progress in its place.
    func fail(_ message: String) {
        logger.error("the node agent stopped: \(message)")
        progress.fail("node-agent", "node agent: \(message)")
    }
}

/// `kubectl logs` reads the files the node agent writes.
struct AgentLogSource: PodLogSource {
    let agent: NodeAgent

    func logs(namespace: String, pod: String, uid: String, container: PodLogContainer,
              options: PodLogOptions) async throws(APIError) -> AsyncThrowingStream<[UInt8], any Error> {
        let readerOptions = ContainerLogOptions(tailLines: options.tailLines, sinceSeconds: options.sinceSeconds,
                                                sinceTime: options.sinceTime, timestamps: options.timestamps,
                                                limitBytes: options.limitBytes, follow: options.follow)
        do {
            return try await agent.logs(namespace: namespace, pod: pod, uid: uid, container: container.name,
                                        restartCount: container.restartCount, options: readerOptions)
        } catch {
            // The kubelet's words when the file is gone.
            if error.isMissing {
                throw APIError.badRequest("failed to try resolving symlinks in path \(GoQuote.quote(error.path)): lstat \(error.path): no such file or directory")
            }
            throw APIError.internalError("\(error)")
        }
    }
}

/// `kubectl exec`, `attach` and `port-forward` go through the node agent.
struct AgentStreamSource: PodStreamSource {
    let agent: NodeAgent

    func exec(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
              streams: ExecStreams) async throws(APIError) -> Int32 {
        let (sizes, sink) = AsyncStream.makeStream(of: (rows: UInt16, columns: UInt16).self)
        let relay = Task {
            for await size in streams.resize { sink.yield((size.height, size.width)) }
            sink.finish()
        }
        defer { relay.cancel() }
        do {
            return try await agent.exec(uid: uid, container: container, command: options.command, tty: options.tty,
                                        stdin: options.stdin, input: streams.stdin, resize: sizes, output: streams.output)
        } catch {
            throw APIError.internalError(error.message)
        }
    }

    func attach(namespace: String, pod: String, uid: String, container: String, options: PodExecOptions,
                streams: ExecStreams) async throws(APIError) {
        let (sizes, sink) = AsyncStream.makeStream(of: (rows: UInt16, columns: UInt16).self)
        let relay = Task {
            for await size in streams.resize { sink.yield((size.height, size.width)) }
            sink.finish()
        }
        defer { relay.cancel() }
        do {
            try await agent.attach(uid: uid, container: container, stdin: options.stdin, input: streams.stdin,
                                   resize: sizes, output: streams.output)
        } catch {
            throw APIError.badRequest(error.message)
        }
    }

    func connect(namespace: String, pod: String, uid: String, port: Int) async throws(APIError) -> Int32 {
        do {
            return try await agent.connect(uid: uid, port: port)
        } catch {
            // kubectl prints this after "error forwarding port N to pod P, uid U: ".
            throw APIError(code: 500, reason: .internalError, message: error.message)
        }
    }
}
