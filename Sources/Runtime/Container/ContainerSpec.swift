import Foundation

/// Everything `labnode init container` needs to turn itself into a container.
///
/// The daemon writes it as JSON to a file and re-executes labnode with its path;
/// the init reads it back before it does anything else. All paths are host paths
/// unless a field says "in the container".
public struct ContainerSpec: Codable, Equatable, Sendable {
    /// Used in messages only (e.g. "default/web/nginx").
    public var id: String
    public var rootfs: Rootfs
    /// Remount the root read-only once every mount is in place
    /// (securityContext.readOnlyRootFilesystem).
    public var readonlyRootfs: Bool
    /// Set only when the UTS namespace is created rather than joined; a pod's
    /// containers share the sandbox's hostname.
    public var hostname: String?
    public var namespaces: Namespaces
    /// Volumes and the files the node agent provides (/etc/hosts, /etc/hostname,
    /// /etc/resolv.conf, the service-account token directory, /dev/termination-log).
    public var mounts: [Mount]
    public var process: Process
    /// In the container; directories get an empty read-only tmpfs, files get /dev/null.
    public var maskedPaths: [String]
    /// In the container; bind-mounted read-only onto themselves.
    public var readonlyPaths: [String]
    public var output: Output
    /// Cgroup directories (one per v1 hierarchy, or one on v2) the container
    /// joins before it starts; see `CgroupManager.paths(pod:container:)`.
    public var cgroupPaths: [String]
    /// Where the shim writes PID 1's exit status ("0", "137", ...) once it is
    /// gone, so a restarted daemon can still learn it.
    public var exitStatusPath: String?
    /// The shim exits as soon as the command runs, instead of staying as PID 1's parent:
    /// the daemon, a child subreaper, adopts PID 1 and waits for it itself, so no process per
    /// container stays behind (a shim holds ≈ 3 MB of private memory). PID 1 then has no
    /// parent-death signal; the daemon stops it directly. Decoded as false when absent.
    public var detach: Bool

    public init(
        id: String,
        rootfs: Rootfs,
        readonlyRootfs: Bool = false,
        hostname: String? = nil,
        namespaces: Namespaces = Namespaces(),
        mounts: [Mount] = [],
        process: Process,
        maskedPaths: [String] = ContainerSpec.defaultMaskedPaths,
        readonlyPaths: [String] = ContainerSpec.defaultReadonlyPaths,
        output: Output = .inherit,
        cgroupPaths: [String] = [],
        exitStatusPath: String? = nil,
        detach: Bool = false
    ) {
        self.id = id
        self.rootfs = rootfs
        self.readonlyRootfs = readonlyRootfs
        self.hostname = hostname
        self.namespaces = namespaces
        self.mounts = mounts
        self.process = process
        self.maskedPaths = maskedPaths
        self.readonlyPaths = readonlyPaths
        self.output = output
        self.cgroupPaths = cgroupPaths
        self.exitStatusPath = exitStatusPath
        self.detach = detach
    }

    enum CodingKeys: String, CodingKey {
        case id, rootfs, readonlyRootfs, hostname, namespaces, mounts, process, maskedPaths, readonlyPaths, output,
             cgroupPaths, exitStatusPath, detach
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        rootfs = try c.decode(Rootfs.self, forKey: .rootfs)
        readonlyRootfs = try c.decode(Bool.self, forKey: .readonlyRootfs)
        hostname = try c.decodeIfPresent(String.self, forKey: .hostname)
        namespaces = try c.decode(Namespaces.self, forKey: .namespaces)
        mounts = try c.decode([Mount].self, forKey: .mounts)
        process = try c.decode(Process.self, forKey: .process)
        maskedPaths = try c.decode([String].self, forKey: .maskedPaths)
        readonlyPaths = try c.decode([String].self, forKey: .readonlyPaths)
        output = try c.decode(Output.self, forKey: .output)
        cgroupPaths = try c.decode([String].self, forKey: .cgroupPaths)
        exitStatusPath = try c.decodeIfPresent(String.self, forKey: .exitStatusPath)
        detach = try c.decodeIfPresent(Bool.self, forKey: .detach) ?? false
    }

    /// The paths containerd and moby mask today. /proc/asound moved from the
    /// read-only list to this one, and /sys/devices/virtual/powercap was added
    /// in 2023 (its energy counters leak host activity).
    public static let defaultMaskedPaths = [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
        "/sys/firmware", "/sys/devices/virtual/powercap",
    ]

    public static let defaultReadonlyPaths = [
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    ]

    /// The container's root filesystem.
    public enum Rootfs: Codable, Equatable, Sendable {
        /// An overlay mounted by the init on `target`. `lower` is ordered top
        /// layer first, as overlayfs's lowerdir= option expects.
        case overlay(lower: [String], upper: String, work: String, target: String)
        /// A directory prepared by someone else; the init bind-mounts it onto
        /// itself so it can become the root.
        case directory(String)

        /// The host path that becomes "/".
        public var path: String {
            switch self {
            case .overlay(_, _, _, let target): return target
            case .directory(let path): return path
            }
        }
    }

    /// How the container gets each namespace. Mount and PID namespaces are always
    /// new, per container.
    public struct Namespaces: Codable, Equatable, Sendable {
        public var network: Mode
        public var uts: Mode
        public var ipc: Mode
        /// A cgroup namespace rooted at the container's cgroup, so it sees "/"
        /// in /proc/self/cgroup.
        public var newCgroup: Bool

        public init(network: Mode = .new, uts: Mode = .new, ipc: Mode = .new, newCgroup: Bool = true) {
            self.network = network
            self.uts = uts
            self.ipc = ipc
            self.newCgroup = newCgroup
        }

        /// Joins the three namespaces a `SandboxSetup` created.
        public static func sandbox(_ sandbox: SandboxNamespaces) -> Namespaces {
            Namespaces(network: .join(sandbox.network), uts: .join(sandbox.uts), ipc: .join(sandbox.ipc))
        }

        public enum Mode: Codable, Equatable, Sendable {
            /// A fresh namespace for this container alone.
            case new
            /// setns() into the namespace file at this path (a bind-mounted nsfs file).
            case join(String)
            /// Stay in labnode's own namespace (hostNetwork, hostIPC).
            case host
        }
    }

    /// A mount the spec adds inside the container, after /proc, /dev and /sys.
    public struct Mount: Codable, Equatable, Sendable {
        public enum Kind: String, Codable, Sendable {
            /// A recursive bind mount of `source`.
            case bind
            /// A fresh tmpfs (emptyDir with medium Memory); `source` is ignored.
            case tmpfs
        }

        public var kind: Kind
        /// Host path for a bind mount.
        public var source: String
        /// In the container.
        public var destination: String
        public var readOnly: Bool
        /// Extra mount(2) data for tmpfs, e.g. "size=64m".
        public var data: String?

        public init(kind: Kind = .bind, source: String, destination: String, readOnly: Bool = false, data: String? = nil) {
            self.kind = kind
            self.source = source
            self.destination = destination
            self.readOnly = readOnly
            self.data = data
        }
    }

    /// What runs, as whom, with which privileges.
    public struct Process: Codable, Equatable, Sendable {
        /// argv; args[0] is looked up in the container's PATH unless it has a "/".
        public var args: [String]
        /// "NAME=value" strings.
        public var env: [String]
        /// In the container.
        public var cwd: String
        public var user: User
        public var capabilities: CapabilityConfig
        /// PR_SET_NO_NEW_PRIVS; Kubernetes sets it when allowPrivilegeEscalation is false.
        public var noNewPrivileges: Bool
        public var seccomp: SeccompMode
        /// The RuntimeDefault filter compiled to classic BPF (struct sock_filter
        /// array). `ContainerLauncher` fills it from a cache, which saves the
        /// init ~2 ms of libseccomp work per container; when absent, the init
        /// compiles the filter itself.
        public var seccompProgram: Data?
        /// Stdin is a terminal that becomes the command's controlling tty (`tty: true`);
        /// optional so that specs written before it still decode.
        public var terminal: Bool?

        public init(
            args: [String],
            env: [String] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            cwd: String = "/",
            user: User = User(),
            capabilities: CapabilityConfig = CapabilityConfig(),
            noNewPrivileges: Bool = false,
            seccomp: SeccompMode = .runtimeDefault,
            seccompProgram: Data? = nil
        ) {
            self.args = args
            self.env = env
            self.cwd = cwd
            self.user = user
            self.capabilities = capabilities
            self.noNewPrivileges = noNewPrivileges
            self.seccomp = seccomp
            self.seccompProgram = seccompProgram
        }
    }

    /// Numeric identity (Kubernetes' runAsUser/runAsGroup/supplementalGroups).
    public struct User: Codable, Equatable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public var additionalGids: [UInt32]

        public init(uid: UInt32 = 0, gid: UInt32 = 0, additionalGids: [UInt32] = []) {
            self.uid = uid
            self.gid = gid
            self.additionalGids = additionalGids
        }
    }

    /// Where the container's stdout and stderr go.
    public enum Output: Codable, Equatable, Sendable {
        /// Descriptors 1 and 2 the launcher gave the init (e.g. pipes the node
        /// agent reads to write CRI-format logs).
        case inherit
        /// Both streams appended to this host file, opened before pivot_root.
        case file(String)
    }
}

/// The seccomp profile kinds Kubernetes offers without a Localhost file.
public enum SeccompMode: String, Codable, Sendable {
    case runtimeDefault = "RuntimeDefault"
    case unconfined = "Unconfined"
}
