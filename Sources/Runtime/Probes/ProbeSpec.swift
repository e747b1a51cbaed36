import APIMachinery

/// The three probe kinds a container may declare.
public enum ProbeKind: String, Sendable, Hashable, CaseIterable {
    case startup, liveness, readiness

    /// The word that starts the kubelet's event messages ("Liveness probe failed: ...").
    public var title: String {
        switch self {
        case .startup: return "Startup"
        case .liveness: return "Liveness"
        case .readiness: return "Readiness"
        }
    }

    /// The container field that declares it.
    public var field: String { rawValue + "Probe" }

    /// The result a probe has for a new container before it has run enough to decide:
    /// readiness starts failed (no traffic before proof), liveness starts passed (no kill
    /// before proof), startup has none (the container is simply not started yet).
    public var initialResult: ProbeResult? {
        switch self {
        case .readiness: return .failure
        case .liveness: return .success
        case .startup: return nil
        }
    }
}

/// A probe's published verdict.
public enum ProbeResult: String, Sendable, Hashable {
    case success, failure
}

/// What a probe does.
public enum ProbeAction: Sendable, Equatable {
    case httpGet(HTTPGetAction)
    case tcpSocket(host: String?, port: PortReference)
    case exec(command: [String])
    case grpc(port: Int, service: String?)
}

/// A port given as a number or as the name of one of the container's ports.
public enum PortReference: Sendable, Equatable {
    case number(Int)
    case name(String)

    init?(json: JSON?) {
        guard let json else { return nil }
        if let n = json.intValue { self = .number(Int(n)); return }
        if let s = json.stringValue { self = .name(s); return }
        return nil
    }
}

/// `httpGet` of a probe, as declared.
public struct HTTPGetAction: Sendable, Equatable {
    /// `HTTP` or `HTTPS` (upstream lower-cases it for the URL).
    public var scheme: String
    /// Empty means the pod IP.
    public var host: String
    public var port: PortReference
    public var path: String
    /// In declaration order; duplicates allowed, as in the API.
    public var headers: [(name: String, value: String)]

    public init(scheme: String = "HTTP", host: String = "", port: PortReference, path: String = "",
                headers: [(name: String, value: String)] = []) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
        self.headers = headers
    }

    public static func == (a: HTTPGetAction, b: HTTPGetAction) -> Bool {
        a.scheme == b.scheme && a.host == b.host && a.port == b.port && a.path == b.path
            && a.headers.map(\.name) == b.headers.map(\.name) && a.headers.map(\.value) == b.headers.map(\.value)
    }
}

/// One declared probe with upstream's defaults filled in.
public struct ProbeSpec: Sendable, Equatable {
    public var action: ProbeAction
    public var initialDelaySeconds: Int
    public var periodSeconds: Int
    public var timeoutSeconds: Int
    public var successThreshold: Int
    public var failureThreshold: Int
    /// Grace period for the kill a failing liveness/startup probe causes; nil means the pod's.
    public var terminationGracePeriodSeconds: Int64?

    public init(action: ProbeAction, initialDelaySeconds: Int = 0, periodSeconds: Int = 10, timeoutSeconds: Int = 1,
                successThreshold: Int = 1, failureThreshold: Int = 3, terminationGracePeriodSeconds: Int64? = nil) {
        self.action = action
        self.initialDelaySeconds = initialDelaySeconds
        self.periodSeconds = periodSeconds
        self.timeoutSeconds = timeoutSeconds
        self.successThreshold = successThreshold
        self.failureThreshold = failureThreshold
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
    }

    /// Reads `container[kind.field]`; nil when the container declares no such probe or it has
    /// no handler (the API server rejects that, so it only happens with hand-made objects).
    public init?(container: JSON, kind: ProbeKind) {
        guard let probe = container[kind.field], probe.objectValue != nil else { return nil }
        self.init(json: probe)
    }

    /// Reads one probe object. Zero or missing numbers take the API defaults (the server
    /// normally fills them in; doing it again keeps hand-written objects working).
    public init?(json probe: JSON) {
        let action: ProbeAction
        if let http = probe["httpGet"], http.objectValue != nil, let port = PortReference(json: http["port"]) {
            let headers = (http["httpHeaders"]?.arrayValue ?? []).map {
                (name: $0["name"]?.stringValue ?? "", value: $0["value"]?.stringValue ?? "")
            }
            action = .httpGet(HTTPGetAction(scheme: http["scheme"]?.stringValue ?? "HTTP",
                                            host: http["host"]?.stringValue ?? "", port: port,
                                            path: http["path"]?.stringValue ?? "", headers: headers))
        } else if let tcp = probe["tcpSocket"], tcp.objectValue != nil, let port = PortReference(json: tcp["port"]) {
            let host = tcp["host"]?.stringValue
            action = .tcpSocket(host: host?.isEmpty == false ? host : nil, port: port)
        } else if let exec = probe["exec"], exec.objectValue != nil {
            action = .exec(command: (exec["command"]?.arrayValue ?? []).compactMap(\.stringValue))
        } else if let grpc = probe["grpc"], grpc.objectValue != nil, let port = grpc["port"]?.intValue {
            let service = grpc["service"]?.stringValue
            action = .grpc(port: Int(port), service: service)
        } else {
            return nil
        }
        func positive(_ key: String, _ fallback: Int) -> Int {
            guard let v = probe[key]?.intValue, v > 0 else { return fallback }
            return Int(v)
        }
        self.init(action: action,
                  initialDelaySeconds: Int(max(0, probe["initialDelaySeconds"]?.intValue ?? 0)),
                  periodSeconds: positive("periodSeconds", 10),
                  timeoutSeconds: positive("timeoutSeconds", 1),
                  successThreshold: positive("successThreshold", 1),
                  failureThreshold: positive("failureThreshold", 3),
                  terminationGracePeriodSeconds: probe["terminationGracePeriodSeconds"]?.intValue)
    }
}

/// Why a probe could not even be attempted (reported as "... probe errored and resulted in
/// unknown state: <text>", and the attempt does not count towards a threshold).
public struct ProbeConfigurationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension PortReference {
    /// The port number, resolving a name against the container's `ports` (then, as upstream's
    /// last resort, as digits). Errors carry Go's wording.
    public func resolve(in container: JSON) throws(ProbeConfigurationError) -> Int {
        let port: Int
        switch self {
        case .number(let n):
            port = n
        case .name(let name):
            if let match = (container["ports"]?.arrayValue ?? []).first(where: { $0["name"]?.stringValue == name }),
               let number = match["containerPort"]?.intValue {
                port = Int(number)
            } else if let number = Int(name) {
                port = number
            } else {
                throw ProbeConfigurationError(message: "strconv.Atoi: parsing \(GoQuote.quote(name)): invalid syntax")
            }
        }
        guard port > 0, port < 65536 else {
            throw ProbeConfigurationError(message: "invalid port number: \(port)")
        }
        return port
    }
}
