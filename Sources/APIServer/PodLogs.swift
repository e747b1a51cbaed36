import APIMachinery
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The query of `GET /api/v1/namespaces/NS/pods/NAME/log` (core/v1 PodLogOptions).
public struct PodLogOptions: Sendable, Equatable {
    /// The container; nil lets the server pick the pod's only one.
    public var container: String?
    public var follow: Bool
    /// The run before the current one (`kubectl logs --previous`).
    public var previous: Bool
    public var timestamps: Bool
    public var sinceSeconds: Int64?
    /// Whole seconds: kube-apiserver passes it on to the kubelet in RFC 3339 without fractions.
    public var sinceTime: Date?
    public var tailLines: Int64?
    public var limitBytes: Int64?
    /// Accepted and ignored: there is no separate kubelet connection to verify.
    public var insecureSkipTLSVerifyBackend: Bool

    public init(container: String? = nil, follow: Bool = false, previous: Bool = false, timestamps: Bool = false,
                sinceSeconds: Int64? = nil, sinceTime: Date? = nil, tailLines: Int64? = nil, limitBytes: Int64? = nil,
                insecureSkipTLSVerifyBackend: Bool = false) {
        self.container = container
        self.follow = follow
        self.previous = previous
        self.timestamps = timestamps
        self.sinceSeconds = sinceSeconds
        self.sinceTime = sinceTime
        self.tailLines = tailLines
        self.limitBytes = limitBytes
        self.insecureSkipTLSVerifyBackend = insecureSkipTLSVerifyBackend
    }

    /// Decodes the query as apiserver's parameter codec does: booleans are true unless absent,
    /// "false" or "0"; numbers and times that do not parse are a 400 with Go's parser message.
    public init(query: Query) throws(APIError) {
        func flag(_ key: String) -> Bool {
            guard let v = query[key] else { return false }
            return !(v == "0" || v.lowercased() == "false")
        }
        func int(_ key: String) throws(APIError) -> Int64? {
            guard let v = query[key] else { return nil }
            guard let n = Int64(v) else {
                let digits = v.first == "-" || v.first == "+" ? v.dropFirst() : v[...]
                let why = !digits.isEmpty && digits.allSatisfy({ $0.isASCII && $0.isNumber }) ? "value out of range" : "invalid syntax"
                throw APIError.badRequest("strconv.ParseInt: parsing \"\(v)\": \(why)")
            }
            return n
        }
        var sinceTime: Date?
        if let v = query["sinceTime"] {
            guard let seconds = Timestamp.parse(v) else {
                throw APIError.badRequest("parsing time \"\(v)\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"\(v)\" as \"2006\"")
            }
            sinceTime = Date(timeIntervalSince1970: seconds.rounded(.down))
        }
        let container = query["container"] ?? ""
        self.init(container: container.isEmpty ? nil : container, follow: flag("follow"), previous: flag("previous"),
                  timestamps: flag("timestamps"), sinceSeconds: try int("sinceSeconds"), sinceTime: sinceTime,
                  tailLines: try int("tailLines"), limitBytes: try int("limitBytes"),
                  insecureSkipTLSVerifyBackend: flag("insecureSkipTLSVerifyBackend"))
    }

    /// ValidatePodLogOptions: a 422 naming every bad field.
    func validate(pod: String) throws(APIError) {
        var causes: [APIError.Cause] = []
        if let n = tailLines, n < 0 {
            causes.append(.init(reason: "FieldValueInvalid", message: "Invalid value: \(n): must be greater than or equal to 0", field: "tailLines"))
        }
        if let n = limitBytes, n < 1 {
            causes.append(.init(reason: "FieldValueInvalid", message: "Invalid value: \(n): must be greater than 0", field: "limitBytes"))
        }
        if sinceSeconds != nil && sinceTime != nil {
            // Upstream reports this on the empty field path, which its message prints as ": Forbidden".
            causes.append(.init(reason: "FieldValueForbidden", message: "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified", field: ""))
        } else if let n = sinceSeconds, n < 1 {
            causes.append(.init(reason: "FieldValueInvalid", message: "Invalid value: \(n): must be greater than 0", field: "sinceSeconds"))
        }
        guard !causes.isEmpty else { return }
        let list = causes.map { "\($0.field): \($0.message)" }
        let joined = list.count == 1 ? list[0] : "[" + list.joined(separator: ", ") + "]"
        throw APIError(code: 422, reason: .invalid, message: "PodLogOptions \"\(pod)\" is invalid: \(joined)",
                       name: pod, kind: "PodLogOptions", causes: causes)
    }
}

/// The run of a container whose log is wanted, resolved from the pod's status the way the kubelet
/// does before it opens a log file.
public struct PodLogContainer: Sendable, Equatable {
    public var name: String
    /// That run's ID as the status gives it (`containerID` of the running or terminated state,
    /// or of `lastState.terminated` for the previous run); "" if the status names none.
    public var containerID: String
    /// That run's restart count, which names its log file (`<restartCount>.log`). The current run
    /// has the status's `restartCount`; the previous run has one less, except while the container
    /// waits to be restarted, when the last terminated run is the newest one.
    public var restartCount: Int

    public init(name: String, containerID: String, restartCount: Int) {
        self.name = name
        self.containerID = containerID
        self.restartCount = restartCount
    }
}

/// Where container logs come from: the node agent, injected by the cluster (APIServer does not
/// know about the runtime).
public protocol PodLogSource: Sendable {
    /// The log of one run of a container, shaped by `options` (follow, tail, since, timestamps,
    /// limitBytes). Errors thrown here (before the stream starts) reach the client as a Status;
    /// a stream that fails later just ends the reply, as a broken kubelet connection would.
    func logs(namespace: String, pod: String, uid: String, container: PodLogContainer,
              options: PodLogOptions) async throws(APIError) -> AsyncThrowingStream<[UInt8], any Error>
}

/// The source, set once the node agent runs (after the API server has started).
final class PodLogSourceSlot: Sendable {
    let source = Mutex<(any PodLogSource)?>(nil)
}

extension APIService {
    /// Connects (or, with nil, disconnects) the node agent's container logs.
    public func setPodLogSource(_ source: (any PodLogSource)?) {
        podLogSource.source.withLock { $0 = source }
    }

    /// `pods/log`, checked in kube-apiserver's order: the options (422), the pod (404), the
    /// container name (400), scheduling (an unscheduled pod has an empty log), then, as the kubelet
    /// does, the container's state (400 while it has no run to read).
    public func podLogs(namespace: String, name: String,
                        options: PodLogOptions) async throws(APIError) -> AsyncThrowingStream<[UInt8], any Error> {
        try options.validate(pod: name)
        let pod = try await storage.mustGet(Resources.pods, namespace: namespace, name: name)
        let container = try Self.logContainerName(options.container, pod: pod)
        guard let node = pod[path: "spec", "nodeName"]?.stringValue, !node.isEmpty else {
            return AsyncThrowingStream { $0.finish() }
        }
        guard let source = podLogSource.source.withLock({ $0 }) else {
            throw APIError(code: 503, reason: .serviceUnavailable,
                           message: "container logs are not available: the node agent is not running")
        }
        let run = try Self.logRun(container, pod: pod, previous: options.previous)
        var resolved = options
        resolved.container = container
        return try await source.logs(namespace: namespace, pod: name, uid: pod.uid ?? "", container: run, options: resolved)
    }

    /// Every container name of the pod in upstream's visiting order: init, regular, ephemeral.
    static func containerNames(_ pod: JSON) -> (all: [String], regular: [String]) {
        func names(_ field: String) -> [String] {
            (pod[path: "spec", field]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
        }
        let regular = names("containers")
        return (names("initContainers") + regular + names("ephemeralContainers"), regular)
    }

    /// The container a log request means (apiserver's validateContainer).
    static func logContainerName(_ requested: String?, pod: JSON) throws(APIError) -> String {
        let podName = pod.name ?? ""
        let (all, regular) = containerNames(pod)
        guard let requested else {
            switch regular.count {
            case 1:
                return regular[0]
            case 0:
                throw APIError.badRequest("a container name must be specified for pod \(podName)")
            default:
                // Go's %s of a []string: "[a b c]".
                throw APIError.badRequest("a container name must be specified for pod \(podName), choose one of: [\(all.joined(separator: " "))]")
            }
        }
        guard all.contains(requested) else {
            throw APIError.badRequest("container \(requested) is not valid for pod \(podName)")
        }
        return requested
    }

    /// Which run of the container to read, or why there is none (the kubelet's
    /// validateContainerLogStatus, whose errors apiserver relays as 400 with the same text).
    static func logRun(_ container: String, pod: JSON, previous: Bool) throws(APIError) -> PodLogContainer {
        let podName = pod.name ?? ""
        let who = "container \(GoQuote.quote(container)) in pod \(GoQuote.quote(podName))"
        let statuses = ["containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"]
            .flatMap { pod[path: "status", $0]?.arrayValue ?? [] }
        guard let status = statuses.first(where: { $0["name"]?.stringValue == container }) else {
            // The kubelet starts every container of a new pod as waiting (ContainerCreating, or
            // PodInitializing behind init containers) before it reports anything; a node agent
            // that has not written the pod's status yet is in that moment too.
            let phase = pod[path: "status", "phase"]?.stringValue ?? ""
            if phase.isEmpty || phase == "Pending" {
                let (_, regular) = containerNames(pod)
                let hasInit = !(pod[path: "spec", "initContainers"]?.arrayValue ?? []).isEmpty
                let reason = hasInit && regular.contains(container) ? "PodInitializing" : "ContainerCreating"
                throw APIError.badRequest("\(who) is waiting to start: \(reason)")
            }
            throw APIError.badRequest("\(who) is not available")
        }
        let restartCount = status["restartCount"]?.intValue.map { Int($0) } ?? 0
        let state = status["state"]
        let lastTerminated = status[path: "lastState", "terminated"]
        let lastID = lastTerminated?["containerID"]?.stringValue ?? ""
        // While waiting to be restarted, the last terminated run is the newest one.
        let lastRun = state?["waiting"] != nil ? restartCount : max(0, restartCount - 1)

        if previous {
            guard lastTerminated != nil, !lastID.isEmpty else {
                throw APIError.badRequest("previous terminated \(who) not found")
            }
            return PodLogContainer(name: container, containerID: lastID, restartCount: lastRun)
        }
        if state?["running"] != nil {
            return PodLogContainer(name: container, containerID: status["containerID"]?.stringValue ?? "",
                                   restartCount: restartCount)
        }
        if let terminated = state?["terminated"] {
            if let id = terminated["containerID"]?.stringValue, !id.isEmpty {
                return PodLogContainer(name: container, containerID: id, restartCount: restartCount)
            }
            // The next run never started: its predecessor's log is the one there is.
            guard lastTerminated != nil, !lastID.isEmpty else { throw APIError.badRequest("\(who) is terminated") }
            return PodLogContainer(name: container, containerID: lastID, restartCount: max(0, restartCount - 1))
        }
        if lastTerminated != nil {
            guard !lastID.isEmpty else { throw APIError.badRequest("\(who) is terminated") }
            return PodLogContainer(name: container, containerID: lastID, restartCount: lastRun)
        }
        if let waiting = state?["waiting"] {
            switch waiting["reason"]?.stringValue ?? "" {
            case "ErrImagePull":
                throw APIError.badRequest("\(who) is waiting to start: image can't be pulled")
            case "ImagePullBackOff":
                throw APIError.badRequest("\(who) is waiting to start: trying and failing to pull image")
            case let reason:
                throw APIError.badRequest("\(who) is waiting to start: \(reason)")
            }
        }
        throw APIError.badRequest("\(who) is waiting to start - no logs yet")
    }
}

extension APIHandler {
    /// Serves `pods/log` as text/plain, streaming chunks as the source yields them.
    ///
    /// The log is read in a separate task that reads one chunk ahead of what the client has
    /// taken, so a slow client holds back reading instead of letting the log pile up in memory.
    /// That task ends when the client goes away (the connection's close, not a failed write: an
    /// idle follow writes nothing) or the server shuts down, as watches do.
    func podLog(namespace: String, name: String, query: Query, channel: any Channel) async throws(APIError) -> Response {
        let options = try PodLogOptions(query: query)
        let logs = try await api.podLogs(namespace: namespace, name: name, options: options)
        let openStreams = api.openWatches
        let logger = self.logger
        let body = ResponseBody { writer in
            let (relay, feed) = AsyncThrowingStream<[UInt8], any Error>.makeStream()
            let (demand, ask) = AsyncStream<Void>.makeStream()
            let pump = Task {
                var chunks = logs.makeAsyncIterator()
                do {
                    for await _ in demand {
                        guard let chunk = try await chunks.next() else { break }
                        feed.yield(chunk)
                    }
                    feed.finish()
                } catch {
                    feed.finish(throwing: error)
                }
            }
            let id = openStreams.register { feed.finish() }
            channel.closeFuture.whenComplete { _ in feed.finish() }
            defer {
                openStreams.remove(id)
                ask.finish()
                pump.cancel()
            }
            ask.yield()
            var chunks = relay.makeAsyncIterator()
            while true {
                let chunk: [UInt8]?
                do {
                    chunk = try await chunks.next()
                } catch {
                    // A log that fails halfway ends the reply; the status line went out long ago.
                    logger.warning("pod log stream failed", metadata: ["namespace": "\(namespace)", "pod": "\(name)",
                                                                       "error": "\(error)"])
                    break
                }
                guard let chunk else { break }
                try await writer.write(ByteBuffer(bytes: chunk))
                ask.yield()
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain", .cacheControl: "no-cache, private"], body: body)
    }
}
