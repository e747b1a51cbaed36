import APIMachinery

/// What one probe attempt found, with the text the kubelet puts in its events.
public enum ProbeOutcome: Sendable, Equatable {
    /// Passed; `output` is the HTTP body or command output (not shown anywhere by the kubelet).
    case success(output: String)
    /// Passed, but worth a Warning `ProbeWarning` event (an HTTP redirect to another host).
    case warning(output: String)
    /// Failed; `output` is what follows "Liveness probe failed: " in the event.
    case failure(output: String)
    /// Could not probe at all (bad port name, unsupported kind, a response cut off while its
    /// body was read); the attempt does not count towards any threshold, it only produces the
    /// event "... probe errored and resulted in `resultedIn` state: `message`".
    case error(message: String, resultedIn: String = "unknown")
}

/// A fully resolved HTTP probe request.
public struct HTTPProbeRequest: Sendable, Equatable {
    /// `http` or `https`.
    public var scheme: String
    public var host: String
    public var port: Int
    /// The declared path (and query); may be empty.
    public var path: String
    /// Headers to send besides Host, in order, with the kubelet's User-Agent and Accept defaults.
    public var headers: [HTTPHeader]
    /// The Host header value (the URL's host:port unless a `Host` header was declared).
    public var hostHeader: String

    public struct HTTPHeader: Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(scheme: String, host: String, port: Int, path: String, headers: [HTTPHeader], hostHeader: String? = nil) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.headers = headers
        self.hostHeader = hostHeader ?? HTTPProbeRequest.joinHostPort(host, port)
    }

    /// The request line's target: the path with a leading `/`, or `/` when none was declared.
    public var target: String { path.hasPrefix("/") ? path : "/" + path }

    /// The URL as Go prints it in errors (`Get "http://10.244.0.5:8080/healthz": ...`); an empty
    /// path stays empty there, as in Go's url.URL.
    public var url: String {
        "\(scheme)://\(HTTPProbeRequest.joinHostPort(host, port))\(path.isEmpty ? "" : target)"
    }

    /// `net.JoinHostPort`: IPv6 literals in brackets.
    public static func joinHostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// Builds the request the kubelet sends for `action` of `container`: host defaults to the pod
    /// IP, a named port is resolved from the container's ports, declared headers are sent with
    /// Go's canonical capitalisation, then `User-Agent: kube-probe/<major.minor>` and
    /// `Accept: */*` unless declared (a declared empty Accept removes it).
    public static func make(action: HTTPGetAction, container: JSON, podIP: String,
                            kubeVersion: String) throws(ProbeConfigurationError) -> HTTPProbeRequest {
        let port = try action.port.resolve(in: container)
        let host = action.host.isEmpty ? podIP : action.host
        var headers: [HTTPHeader] = []
        var hostHeader: String?
        for (name, value) in action.headers {
            let canonical = canonicalHeaderName(name)
            if canonical == "Host" {
                hostHeader = value
                continue
            }
            headers.append(HTTPHeader(name: canonical, value: value))
        }
        if !headers.contains(where: { $0.name == "User-Agent" }) {
            headers.insert(HTTPHeader(name: "User-Agent", value: "kube-probe/\(kubeVersion)"), at: 0)
        }
        if let accept = headers.firstIndex(where: { $0.name == "Accept" }) {
            if headers[accept].value.isEmpty { headers.removeAll { $0.name == "Accept" } }
        } else {
            headers.append(HTTPHeader(name: "Accept", value: "*/*"))
        }
        return HTTPProbeRequest(scheme: action.scheme.lowercased(), host: host, port: port,
                                path: action.path, headers: headers,
                                hostHeader: hostHeader.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Go's `textproto.CanonicalMIMEHeaderKey`: `x-custom-header` -> `X-Custom-Header`.
    public static func canonicalHeaderName(_ name: String) -> String {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return name }
        var out = ""
        var upper = true
        for c in name {
            out.append(upper ? Character(c.uppercased()) : Character(c.lowercased()))
            upper = c == "-"
        }
        return out
    }
}

/// An exec probe to run inside a container; the node agent supplies the means.
public struct ExecProbeRequest: Sendable, Equatable {
    public var podUID: String
    public var containerName: String
    /// The running container's ID (without scheme).
    public var containerID: String
    /// The command with `$(VAR)` references to the container's literal `env` values expanded,
    /// as the kubelet does (no downward API, no secrets).
    public var command: [String]

    public init(podUID: String, containerName: String, containerID: String, command: [String]) {
        self.podUID = podUID
        self.containerName = containerName
        self.containerID = containerID
        self.command = command
    }
}

/// How an exec probe's command ended.
public enum ExecProbeResult: Sendable, Equatable {
    /// The command ran; combined stdout and stderr.
    case exited(code: Int32, output: String)
    /// The command did not finish within the probe's timeout.
    case timedOut
    /// The command could not be started (no such container, no such binary).
    case couldNotRun(message: String)
}

/// Runs one probe attempt of each kind. The real implementation is ``SocketProbeRunner``;
/// tests use ``FakeProbeRunner``. Timeouts are in seconds.
public protocol ProbeRunner: Sendable {
    func httpGet(_ request: HTTPProbeRequest, timeout: Double) async -> ProbeOutcome
    func tcpSocket(host: String, port: Int, timeout: Double) async -> ProbeOutcome
    func exec(_ request: ExecProbeRequest, timeout: Double) async -> ProbeOutcome
    func grpc(host: String, port: Int, service: String?, timeout: Double) async -> ProbeOutcome
}

/// Everything a probe attempt needs to know about its target.
public struct ProbeTarget: Sendable {
    public var podUID: String
    public var podIP: String
    /// The container object from the pod spec (ports, env).
    public var container: JSON
    public var containerID: String

    public init(podUID: String, podIP: String, container: JSON, containerID: String) {
        self.podUID = podUID
        self.podIP = podIP
        self.container = container
        self.containerID = containerID
    }
}

/// Turns a probe declaration into one attempt on a runner, as the kubelet's `prober.runProbe`.
public enum ProbeExecution {
    /// The kubelet retries an attempt that errored (not one that failed) up to this many times.
    static let maxRetries = 3

    /// Output kept from a command or response body (the kubelet's 10 KiB cap).
    public static let maxOutputBytes = 10 * 1024

    public static func run(_ spec: ProbeSpec, target: ProbeTarget, runner: any ProbeRunner,
                           kubeVersion: String) async -> ProbeOutcome {
        var outcome = ProbeOutcome.error(message: "probe not attempted")
        for _ in 0..<maxRetries {
            outcome = await attempt(spec, target: target, runner: runner, kubeVersion: kubeVersion)
            if case .error = outcome { continue }
            return outcome
        }
        return outcome
    }

    static func attempt(_ spec: ProbeSpec, target: ProbeTarget, runner: any ProbeRunner,
                        kubeVersion: String) async -> ProbeOutcome {
        let timeout = Double(spec.timeoutSeconds)
        switch spec.action {
        case .httpGet(let action):
            do {
                let request = try HTTPProbeRequest.make(action: action, container: target.container,
                                                        podIP: target.podIP, kubeVersion: kubeVersion)
                return await runner.httpGet(request, timeout: timeout)
            } catch {
                return .error(message: error.message)
            }
        case .tcpSocket(let host, let port):
            do {
                let number = try port.resolve(in: target.container)
                return await runner.tcpSocket(host: host ?? target.podIP, port: number, timeout: timeout)
            } catch {
                return .error(message: error.message)
            }
        case .exec(let command):
            let expanded = command.map { expand($0, env: literalEnv(of: target.container)) }
            let request = ExecProbeRequest(podUID: target.podUID, containerName: target.container["name"]?.stringValue ?? "",
                                           containerID: target.containerID, command: expanded)
            return await runner.exec(request, timeout: timeout)
        case .grpc(let port, let service):
            return await runner.grpc(host: target.podIP, port: port, service: service, timeout: timeout)
        }
    }

    /// The container's `env` entries that have a literal value (what the kubelet expands
    /// probe commands with; `valueFrom` entries are not resolved for probes).
    static func literalEnv(of container: JSON) -> [String: String] {
        var env: [String: String] = [:]
        for item in container["env"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            if let value = item["value"]?.stringValue {
                env[name] = expand(value, env: env)
            } else if item["valueFrom"] == nil {
                env[name] = ""
            }
        }
        return env
    }

    /// `$(VAR)` -> its value when defined (else left as written); `$$` -> `$`, as for env values.
    static func expand(_ text: String, env: [String: String]) -> String {
        PodEnvironment.expand(text) { env[$0] }
    }

    /// What an exec result means for the probe.
    public static func outcome(of result: ExecProbeResult, command: [String]) -> ProbeOutcome {
        switch result {
        case .exited(let code, let output):
            let kept = truncated(output)
            return code == 0 ? .success(output: kept) : .failure(output: kept)
        case .timedOut:
            return .failure(output: "command \(GoQuote.quote(command.joined(separator: " "))) timed out")
        case .couldNotRun(let message):
            return .error(message: message)
        }
    }

    /// At most ``maxOutputBytes`` of `text`, cut on a character boundary.
    static func truncated(_ text: String) -> String {
        guard text.utf8.count > maxOutputBytes else { return text }
        var out = ""
        var used = 0
        for c in text {
            used += c.utf8.count
            if used > maxOutputBytes { break }
            out.append(c)
        }
        return out
    }
}
