import Foundation

/// The part of an image config that decides how a container starts: the `config` object of
/// the OCI image config blob, with Docker's capitalised JSON keys.
public struct ImageConfig: Codable, Hashable, Sendable {
    /// Prepended to the container's command (`ENTRYPOINT`).
    public var entrypoint: [String]?
    /// Default arguments, or the command when there is no entrypoint (`CMD`).
    public var cmd: [String]?
    /// `NAME=value` pairs.
    public var env: [String]
    /// Working directory; empty means `/`.
    public var workingDir: String
    /// `user`, `uid`, `user:group` or `uid:gid`; empty means root.
    public var user: String
    /// `80/tcp`-style ports, sorted; informational, as in Kubernetes.
    public var exposedPorts: [String]
    public var labels: [String: String]
    /// Signal that asks the main process to stop (`SIGQUIT` for nginx), if not SIGTERM.
    public var stopSignal: String?

    public init(
        entrypoint: [String]? = nil, cmd: [String]? = nil, env: [String] = [], workingDir: String = "",
        user: String = "", exposedPorts: [String] = [], labels: [String: String] = [:], stopSignal: String? = nil
    ) {
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.env = env
        self.workingDir = workingDir
        self.user = user
        self.exposedPorts = exposedPorts.sorted()
        self.labels = labels
        self.stopSignal = stopSignal
    }

    enum CodingKeys: String, CodingKey {
        case entrypoint = "Entrypoint"
        case cmd = "Cmd"
        case env = "Env"
        case workingDir = "WorkingDir"
        case user = "User"
        case exposedPorts = "ExposedPorts"
        case labels = "Labels"
        case stopSignal = "StopSignal"
    }

    /// Docker writes an empty object as the value of each exposed port.
    private struct Empty: Codable {}

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        entrypoint = try container.decodeIfPresent([String].self, forKey: .entrypoint)
        cmd = try container.decodeIfPresent([String].self, forKey: .cmd)
        env = try container.decodeIfPresent([String].self, forKey: .env) ?? []
        workingDir = try container.decodeIfPresent(String.self, forKey: .workingDir) ?? ""
        user = try container.decodeIfPresent(String.self, forKey: .user) ?? ""
        exposedPorts = (try container.decodeIfPresent([String: Empty].self, forKey: .exposedPorts) ?? [:]).keys.sorted()
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        stopSignal = try container.decodeIfPresent(String.self, forKey: .stopSignal)
    }

    public func encode(to encoder: Encoder) throws {
        // Empty fields are left out, as Docker does, so built configs stay small and stable.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeIfPresent(entrypoint, forKey: .entrypoint)
        try container.encodeIfPresent(cmd, forKey: .cmd)
        if !env.isEmpty { try container.encode(env, forKey: .env) }
        if !workingDir.isEmpty { try container.encode(workingDir, forKey: .workingDir) }
        if !user.isEmpty { try container.encode(user, forKey: .user) }
        if !exposedPorts.isEmpty {
            try container.encode(Dictionary(exposedPorts.map { ($0, Empty()) }, uniquingKeysWith: { first, _ in first }), forKey: .exposedPorts)
        }
        if !labels.isEmpty { try container.encode(labels, forKey: .labels) }
        try container.encodeIfPresent(stopSignal, forKey: .stopSignal)
    }
}
