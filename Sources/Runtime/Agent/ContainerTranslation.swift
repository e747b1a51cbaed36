import APIMachinery
import Foundation

/// What the pod-level setup produced, which every container of the pod shares.
public struct PodContext: Sendable, Equatable {
    public var sandbox: SandboxNamespaces
    /// The pod's hostname (`spec.hostname`, else its name), set once in the UTS namespace.
    public var hostname: String
    public var hostsFile: String
    public var hostnameFile: String
    public var resolvConfFile: String
    /// The directory holding `token`, `ca.crt` and `namespace`; nil when the pod opts out
    /// (`automountServiceAccountToken: false`).
    public var serviceAccountDirectory: String?
    /// Host path of each volume by name (a directory, or a file for a file hostPath).
    public var volumes: [String: String]
    /// Volumes that are read-only whatever the mount says (configMap, secret, projected, downwardAPI).
    public var readOnlyVolumes: Set<String>

    public init(sandbox: SandboxNamespaces, hostname: String, hostsFile: String, hostnameFile: String,
                resolvConfFile: String, serviceAccountDirectory: String?, volumes: [String: String] = [:],
                readOnlyVolumes: Set<String> = []) {
        self.sandbox = sandbox
        self.hostname = hostname
        self.hostsFile = hostsFile
        self.hostnameFile = hostnameFile
        self.resolvConfFile = resolvConfFile
        self.serviceAccountDirectory = serviceAccountDirectory
        self.volumes = volumes
        self.readOnlyVolumes = readOnlyVolumes
    }
}

/// The host directories of one run of one container (a restart gets a fresh writable layer,
/// as a new container does under containerd).
public struct ContainerRunDirectories: Sendable, Equatable {
    public var base: String
    public init(base: String) { self.base = base }
    public var upper: String { base + "/upper" }
    public var work: String { base + "/work" }
    public var rootfs: String { base + "/rootfs" }
    public var spec: String { base + "/spec.json" }
    public var exitStatus: String { base + "/exit" }
    public var terminationLog: String { base + "/termination-log" }
}

/// Turns one container of a pod, its image and its environment into the runtime's
/// `ContainerSpec`, following the kubelet's container config generation. Pure: it reads no
/// files and touches no host state, so every rule here is unit-tested without root.
public enum ContainerTranslation {
    /// A spec the runtime cannot run (reported as `CreateContainerConfigError` or a start error).
    public struct ConfigError: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public init(_ message: String) { self.message = message }
        public var description: String { message }
    }

    public static let serviceAccountMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
    static let defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// argv by the Kubernetes rules: `command` replaces the image's ENTRYPOINT, `args` its CMD,
    /// and `$(VAR)` references in both expand against the container's environment.
    public static func arguments(container: JSON, image: ImageConfig, env: [(String, String)]) throws(ConfigError) -> [String] {
        var values: [String: String] = [:]
        for (k, v) in env { values[k] = v }
        let expand: (String) -> String = { PodEnvironment.expand($0) { values[$0] } }
        let command = container["command"]?.arrayValue?.compactMap(\.stringValue).map(expand) ?? []
        let args = container["args"]?.arrayValue?.compactMap(\.stringValue).map(expand) ?? []
        let argv: [String]
        if !command.isEmpty {
            argv = command + args
        } else if !args.isEmpty {
            argv = (image.entrypoint ?? []) + args
        } else {
            argv = (image.entrypoint ?? []) + (image.cmd ?? [])
        }
        guard let first = argv.first, !first.isEmpty else { throw ConfigError("no command specified") }
        return argv
    }

    /// The process environment: the image's, then HOSTNAME (as containerd sets it), then the
    /// container's own variables, a later name replacing an earlier one in place.
    public static func environment(image: ImageConfig, hostname: String, container env: [(String, String)]) -> [String] {
        var order: [String] = []
        var values: [String: String] = [:]
        func set(_ name: String, _ value: String) {
            if values[name] == nil { order.append(name) }
            values[name] = value
        }
        for entry in image.env {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            set(String(parts[0]), parts.count > 1 ? String(parts[1]) : "")
        }
        if values["PATH"] == nil { set("PATH", String(defaultPath.dropFirst(5))) }
        set("HOSTNAME", hostname)
        for (k, v) in env { set(k, v) }
        return order.map { "\($0)=\(values[$0] ?? "")" }
    }

    /// cgroup limits from `resources`; a missing cpu request takes the limit, as API defaulting does.
    public static func resources(container: JSON) -> CgroupResources {
        func millis(_ text: String?) -> Int64? {
            guard let text, let value = Quantity.parse(text) else { return nil }
            return Int64((value * 1000).rounded(.up))
        }
        func bytes(_ text: String?) -> Int64? {
            guard let text, let value = Quantity.parse(text) else { return nil }
            return Int64(value.rounded(.up))
        }
        let limits = container[path: "resources", "limits"]
        let requests = container[path: "resources", "requests"]
        let cpuLimit = millis(limits?["cpu"]?.stringValue)
        return CgroupResources(cpuRequestMillis: millis(requests?["cpu"]?.stringValue) ?? cpuLimit,
                               cpuLimitMillis: cpuLimit,
                               memoryLimitBytes: bytes(limits?["memory"]?.stringValue))
    }

    /// runAsUser/runAsGroup (container over pod over the image's numeric USER), and the pod's
    /// supplementalGroups. A named image user is not looked up (labnode's images run as root).
    public static func user(pod: JSON, container: JSON, image: ImageConfig) -> ContainerSpec.User {
        let podContext = pod[path: "spec", "securityContext"]
        let context = container["securityContext"]
        let imageParts = image.user.split(separator: ":", maxSplits: 1).map(String.init)
        let imageUID = imageParts.first.flatMap { UInt32($0) }
        let imageGID = imageParts.count > 1 ? UInt32(imageParts[1]) : nil
        let uid = (context?["runAsUser"]?.intValue ?? podContext?["runAsUser"]?.intValue).map { UInt32(clamping: $0) } ?? imageUID ?? 0
        let gid = (context?["runAsGroup"]?.intValue ?? podContext?["runAsGroup"]?.intValue).map { UInt32(clamping: $0) } ?? imageGID ?? 0
        var groups = (podContext?["supplementalGroups"]?.arrayValue ?? []).compactMap(\.intValue).map { UInt32(clamping: $0) }
        if let fsGroup = podContext?["fsGroup"]?.intValue { groups.append(UInt32(clamping: fsGroup)) }
        return ContainerSpec.User(uid: uid, gid: gid, additionalGids: groups)
    }

    /// The seccomp mode: the container's profile, else the pod's, else RuntimeDefault (the
    /// kubelet's behaviour with `seccompDefault: true`, which labnode always has); privileged
    /// containers run unconfined, as upstream.
    public static func seccomp(pod: JSON, container: JSON) -> SeccompMode {
        if container[path: "securityContext", "privileged"]?.boolValue == true { return .unconfined }
        let type = container[path: "securityContext", "seccompProfile", "type"]?.stringValue
            ?? pod[path: "spec", "securityContext", "seccompProfile", "type"]?.stringValue
        return type == "Unconfined" ? .unconfined : .runtimeDefault
    }

    /// The whole runtime spec for one run of `container`.
    ///
    /// - Parameters:
    ///   - layers: the image's unpacked layer directories, lowest first.
    ///   - env: the container's variables from `PodEnvironment.make`.
    public static func spec(pod: JSON, container: JSON, image: ImageConfig, layers: [String], env: [(String, String)],
                            context: PodContext, run: ContainerRunDirectories,
                            cgroupPaths: [String]) throws(ConfigError) -> ContainerSpec {
        let name = container["name"]?.stringValue ?? ""
        let security = container["securityContext"]
        let privileged = security?["privileged"]?.boolValue == true
        let hostNetwork = pod[path: "spec", "hostNetwork"]?.boolValue == true
        let hostIPC = pod[path: "spec", "hostIPC"]?.boolValue == true
        var namespaces = ContainerSpec.Namespaces.sandbox(context.sandbox)
        if hostNetwork { namespaces.network = .host; namespaces.uts = .host }
        if hostIPC { namespaces.ipc = .host }

        var mounts: [ContainerSpec.Mount] = []
        // The files the kubelet manages; a hostNetwork pod keeps its hosts and hostname files too.
        mounts.append(.init(source: context.hostsFile, destination: "/etc/hosts"))
        mounts.append(.init(source: context.hostnameFile, destination: "/etc/hostname"))
        mounts.append(.init(source: context.resolvConfFile, destination: "/etc/resolv.conf"))
        let terminationPath = container["terminationMessagePath"]?.stringValue ?? "/dev/termination-log"
        mounts.append(.init(source: run.terminationLog, destination: terminationPath))
        var mountedPaths = Set(mounts.map(\.destination))
        for mount in container["volumeMounts"]?.arrayValue ?? [] {
            guard let volume = mount["name"]?.stringValue, let path = mount["mountPath"]?.stringValue else { continue }
            guard var source = context.volumes[volume] else {
                throw ConfigError("cannot find volume \(GoQuote.quote(volume)) to mount into container \(GoQuote.quote(name))")
            }
            if let sub = mount["subPath"]?.stringValue, !sub.isEmpty {
                if sub.hasPrefix("/") || sub.split(separator: "/").contains("..") {
                    throw ConfigError("subPath \(GoQuote.quote(sub)) must be a relative path without '..'")
                }
                source += "/" + sub
            }
            let readOnly = mount["readOnly"]?.boolValue == true || context.readOnlyVolumes.contains(volume)
            mounts.append(.init(source: source, destination: path, readOnly: readOnly))
            mountedPaths.insert(path)
        }
        let automount = container["volumeMounts"]?.arrayValue?.contains { $0["mountPath"]?.stringValue == serviceAccountMountPath } != true
        if let sa = context.serviceAccountDirectory, automount, !mountedPaths.contains(serviceAccountMountPath) {
            mounts.append(.init(source: sa, destination: serviceAccountMountPath, readOnly: true))
        }

        let capabilities = security?["capabilities"]
        let process = ContainerSpec.Process(
            args: try arguments(container: container, image: image, env: env),
            env: environment(image: image, hostname: context.hostname, container: env),
            cwd: container["workingDir"]?.stringValue ?? (image.workingDir.isEmpty ? "/" : image.workingDir),
            user: user(pod: pod, container: container, image: image),
            capabilities: CapabilityConfig(add: (capabilities?["add"]?.arrayValue ?? []).compactMap(\.stringValue),
                                           drop: (capabilities?["drop"]?.arrayValue ?? []).compactMap(\.stringValue),
                                           privileged: privileged),
            noNewPrivileges: security?["allowPrivilegeEscalation"]?.boolValue == false && !privileged,
            seccomp: seccomp(pod: pod, container: container))

        let lower = layers.reversed().map { $0 }
        guard !lower.isEmpty else { throw ConfigError("the image of container \(GoQuote.quote(name)) has no layers") }
        return ContainerSpec(
            id: "\(pod.namespace ?? "default")/\(pod.name ?? "")/\(name)",
            rootfs: .overlay(lower: lower, upper: run.upper, work: run.work, target: run.rootfs),
            readonlyRootfs: security?["readOnlyRootFilesystem"]?.boolValue == true,
            hostname: nil,
            namespaces: namespaces,
            mounts: mounts,
            process: process,
            maskedPaths: privileged ? [] : ContainerSpec.defaultMaskedPaths,
            readonlyPaths: privileged ? [] : ContainerSpec.defaultReadonlyPaths,
            output: .inherit,
            cgroupPaths: cgroupPaths,
            exitStatusPath: run.exitStatus)
    }
}
