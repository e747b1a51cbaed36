import Glibc

/// The resource fields of a Kubernetes container that become cgroup limits.
public struct CgroupResources: Codable, Equatable, Sendable {
    /// resources.requests.cpu in millicores; nil when not requested.
    public var cpuRequestMillis: Int64?
    /// resources.limits.cpu in millicores; nil for no limit.
    public var cpuLimitMillis: Int64?
    /// resources.limits.memory in bytes; nil for no limit.
    public var memoryLimitBytes: Int64?
    /// Pod pids limit; nil for no limit.
    public var pidsLimit: Int64?

    public init(cpuRequestMillis: Int64? = nil, cpuLimitMillis: Int64? = nil, memoryLimitBytes: Int64? = nil, pidsLimit: Int64? = nil) {
        self.cpuRequestMillis = cpuRequestMillis
        self.cpuLimitMillis = cpuLimitMillis
        self.memoryLimitBytes = memoryLimitBytes
        self.pidsLimit = pidsLimit
    }
}

/// The kubelet's CPU arithmetic (pkg/kubelet/cm/helpers_linux.go) and the OCI
/// runtimes' v1 -> v2 conversion.
public enum CPUMath {
    public static let minShares: Int64 = 2
    public static let maxShares: Int64 = 262_144
    public static let sharesPerCPU: Int64 = 1024
    /// cpu.cfs_period_us the kubelet uses.
    public static let quotaPeriod: Int64 = 100_000
    /// The kernel refuses quotas below 1 ms.
    public static let minQuota: Int64 = 1000

    /// cpu.shares for a CPU request: millicores * 1024 / 1000, at least 2 (also
    /// for no request), at most 262144.
    public static func shares(requestMillis: Int64?) -> Int64 {
        guard let millis = requestMillis, millis > 0 else { return minShares }
        return min(max(millis * sharesPerCPU / 1000, minShares), maxShares)
    }

    /// cpu.cfs_quota_us for a CPU limit, nil (unlimited, written as -1 / "max")
    /// when there is no limit.
    public static func quota(limitMillis: Int64?, period: Int64 = quotaPeriod) -> Int64? {
        guard let millis = limitMillis, millis > 0 else { return nil }
        return max(millis * period / 1000, minQuota)
    }

    /// cpu.weight (1...10000) for cgroup v2 from cpu.shares. This is the
    /// conversion runc 1.3.2+/crun 1.23+ use (kubernetes#131216): a quadratic in
    /// log2(shares) that maps 2 -> 1, 1024 -> 100 (both defaults) and
    /// 262144 -> 10000. The older linear formula mapped 1024 to 39.
    public static func weight(shares: Int64) -> Int64 {
        if shares <= 2 { return 1 }
        if shares >= maxShares { return 10_000 }
        let l = log2(Double(shares))
        let exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0
        return Int64(ceil(pow(10, exponent)))
    }
}

/// Which device nodes a container may open (the v1 devices controller).
///
/// Without it, CAP_MKNOD (in the default set) lets a container create and open
/// any host device, e.g. /dev/cpu_dma_latency (measured on these machines).
public enum DeviceAccess: Sendable {
    /// runc's default allow-list: mknod of anything, but read/write only of
    /// null, zero, full, random, urandom, tty, console, ptmx, the pts and tun.
    case runtimeDefault
    /// Every device (privileged containers).
    case all

    /// The rules written, in order, to devices.deny / devices.allow.
    var rules: [(file: String, rule: String)] {
        switch self {
        case .all:
            return [("devices.allow", "a")]
        case .runtimeDefault:
            return [("devices.deny", "a")] + [
                "c *:* m", "b *:* m",
                "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
                "c 5:1 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm",
            ].map { ("devices.allow", $0) }
        }
    }
}

/// Usage and events of one container's cgroup.
public struct CgroupStats: Equatable, Sendable {
    public var memoryUsageBytes: Int64
    /// nil when unlimited.
    public var memoryLimitBytes: Int64?
    public var cpuUsageNanoseconds: Int64
    /// nil when the pids controller is not available.
    public var pids: Int64?
    /// Processes the kernel's OOM killer killed in this cgroup.
    public var oomKills: Int64
}

/// Creates, configures, reads and removes `<parent>/<pod>/<container>` cgroups.
///
/// Works on hosts with cgroup v1 controllers (including hybrid hosts such as
/// these lab machines, where a cgroup2 mount sits at /sys/fs/cgroup/unified
/// with no controllers, a layout crun refuses) and on pure cgroup v2. The root
/// directory is a parameter so a temporary directory can stand in for
/// /sys/fs/cgroup in tests. Never touches rlimits.
public struct CgroupManager: Sendable {
    public enum Layout: Equatable, Sendable {
        /// Controllers in per-controller hierarchies; `hybrid` when a cgroup2
        /// mount also exists (it is ignored: it has no controllers).
        case v1(hybrid: Bool)
        case v2
    }

    public let root: String
    public let layout: Layout
    /// Base directory per controller ("cpu", "cpuacct", "memory", "pids"), v1;
    /// or one entry "" on v2.
    let bases: [String: String]
    /// True when `root` is a plain directory tree: files are created when
    /// written and removed before rmdir, which the kernel does itself on cgroupfs.
    let emulateKernelFiles: Bool

    static let v1Required = ["cpu", "memory"]
    static let v1Optional = ["cpuacct", "pids", "devices"]
    static let v2Controllers = ["cpu", "memory", "pids"]

    /// - Parameters:
    ///   - root: where the hierarchies are mounted.
    ///   - parent: the directory under each hierarchy that holds all pods.
    ///   - nestUnder: per hierarchy (as named in /proc/self/cgroup: "memory",
    ///     "cpu,cpuacct", or "" on v2), a path to put `parent` under instead of
    ///     the hierarchy root; `currentCgroups()` gives labnode's own, which
    ///     keeps containers inside whatever limits labnode itself runs under.
    ///   - emulateKernelFiles: for tests on a plain directory.
    public init(root: String = "/sys/fs/cgroup", parent: String = "labnode", nestUnder: [String: String] = [:],
                emulateKernelFiles: Bool = false) throws(RuntimeSyscallError) {
        self.root = root
        self.emulateKernelFiles = emulateKernelFiles
        try Self.validateName(parent, allowSlash: true)
        func nest(_ controller: String) -> String {
            let key = nestUnder.keys.first { $0.split(separator: ",").contains(Substring(controller)) || $0 == controller }
            let path = key.flatMap { nestUnder[$0] } ?? "/"
            return path == "/" ? "" : path
        }
        if FileIO.exists(root + "/cgroup.controllers") {
            layout = .v2
            bases = ["": root + nest("") + "/" + parent]
        } else if FileIO.isDirectory(root + "/memory") || FileIO.isDirectory(root + "/cpu") {
            layout = .v1(hybrid: FileIO.isDirectory(root + "/unified"))
            var bases: [String: String] = [:]
            for controller in Self.v1Required + Self.v1Optional {
                let mount = root + "/" + controller
                guard FileIO.isDirectory(mount) else {
                    if Self.v1Required.contains(controller) {
                        throw RuntimeSyscallError(call: "cgroup", subject: "no \(controller) hierarchy at \(mount)", errno: ENOENT)
                    }
                    continue
                }
                // "cpu" and "cpuacct" are often symlinks to one "cpu,cpuacct" mount.
                bases[controller] = Self.realPath(mount) + nest(controller) + "/" + parent
            }
            self.bases = bases
        } else {
            throw RuntimeSyscallError(call: "cgroup", subject: "no cgroup v1 or v2 hierarchy under \(root)", errno: ENOENT)
        }
    }

    /// labnode's own cgroups, parsed from /proc/self/cgroup ("4:memory:/a/b" ->
    /// ["memory": "/a/b"]), for `nestUnder`.
    public static func currentCgroups(_ text: String? = nil) -> [String: String] {
        let content = text ?? ((try? FileIO.readString("/proc/self/cgroup")) ?? "")
        var result: [String: String] = [:]
        for line in content.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            result[String(fields[1])] = String(fields[2])
        }
        return result
    }

    /// The container's cgroup directories, one per distinct hierarchy; these go
    /// into `ContainerSpec.cgroupPaths`.
    public func paths(pod: String, container: String) -> [String] {
        uniqueBases().map { $0 + "/" + pod + "/" + container }
    }

    /// Creates the pod and container cgroups and writes the limits and the
    /// device rules. Device rules are enforced on v1 only: v2 needs an eBPF
    /// program attached to the cgroup, which labnode does not have yet.
    @discardableResult
    public func create(pod: String, container: String, resources: CgroupResources,
                       devices: DeviceAccess = .runtimeDefault) throws(RuntimeSyscallError) -> [String] {
        try Self.validateName(pod)
        try Self.validateName(container)
        for base in uniqueBases() {
            if layout == .v2 {
                // A v2 child only gets the controllers its parent lists in
                // cgroup.subtree_control, at every level down to the pod.
                let parentOfBase = String(base[..<(base.lastIndex(of: "/") ?? base.startIndex)])
                try enableControllers(in: parentOfBase)
                try makeDirectory(base)
                try enableControllers(in: base)
                try makeDirectory(base + "/" + pod)
                try enableControllers(in: base + "/" + pod)
            } else {
                try makeDirectory(base)
                try makeDirectory(base + "/" + pod)
            }
            try makeDirectory(base + "/" + pod + "/" + container)
        }
        if layout != .v2, bases["devices"] != nil {
            let path = try dir("devices", pod, container)
            // The kernel takes one rule per write.
            for (file, rule) in devices.rules { try write(rule, path, file) }
        }
        try update(pod: pod, container: container, resources: resources)
        return paths(pod: pod, container: container)
    }

    /// Writes all limits, unlimited ones included, so it also serves resizes.
    public func update(pod: String, container: String, resources: CgroupResources) throws(RuntimeSyscallError) {
        let shares = CPUMath.shares(requestMillis: resources.cpuRequestMillis)
        let quota = CPUMath.quota(limitMillis: resources.cpuLimitMillis)
        switch layout {
        case .v1:
            let cpu = try dir("cpu", pod, container)
            try write("\(shares)", cpu, "cpu.shares")
            try write("\(CPUMath.quotaPeriod)", cpu, "cpu.cfs_period_us")
            try write("\(quota ?? -1)", cpu, "cpu.cfs_quota_us")
            let memory = try dir("memory", pod, container)
            try setV1MemoryLimit(resources.memoryLimitBytes.map(String.init) ?? "-1", in: memory)
            // Kubernetes nodes run without swap; where the kernel allows it, say so per cgroup.
            try writeIfPresent("0", memory, "memory.swappiness")
            if bases["pids"] != nil {
                try write(resources.pidsLimit.map(String.init) ?? "max", dir("pids", pod, container), "pids.max")
            }
        case .v2:
            let path = try dir("", pod, container)
            try write("\(CPUMath.weight(shares: shares))", path, "cpu.weight")
            try write("\(quota.map(String.init) ?? "max") \(CPUMath.quotaPeriod)", path, "cpu.max")
            try write(resources.memoryLimitBytes.map(String.init) ?? "max", path, "memory.max")
            try writeIfPresent("0", path, "memory.swap.max")
            try write(resources.pidsLimit.map(String.init) ?? "max", path, "pids.max")
        }
    }

    /// Moves a process (all its threads) into the container's cgroups. The init
    /// joins by itself through `ContainerSpec.cgroupPaths`; this is for others
    /// (e.g. an exec'd process).
    public func addProcess(_ pid: Int32, pod: String, container: String) throws(RuntimeSyscallError) {
        for path in paths(pod: pod, container: container) {
            // EINVAL can mean the task is still being created; runc retries too.
            var attempts = 0
            while true {
                do throws(RuntimeSyscallError) {
                    try write("\(pid)", path, "cgroup.procs")
                    break
                } catch where error.errno == EINVAL && attempts < 5 {
                    attempts += 1
                    usleep(10_000)
                }
            }
        }
    }

    public func stats(pod: String, container: String) throws(RuntimeSyscallError) -> CgroupStats {
        switch layout {
        case .v1:
            let memory = try dir("memory", pod, container)
            let limit = try readInt(memory, "memory.limit_in_bytes")
            let oomControl = try Self.keyValues(FileIO.readString(memory + "/memory.oom_control"))
            let cpuacct = bases["cpuacct"] != nil ? try readInt(dir("cpuacct", pod, container), "cpuacct.usage") : 0
            let pids = bases["pids"] != nil ? try readInt(dir("pids", pod, container), "pids.current") : nil
            return CgroupStats(
                memoryUsageBytes: try readInt(memory, "memory.usage_in_bytes"),
                // v1 reports "unlimited" as the largest page-aligned counter value.
                memoryLimitBytes: limit >= Int64(1) << 62 ? nil : limit,
                cpuUsageNanoseconds: cpuacct,
                pids: pids,
                // oom_kill appeared in Linux 4.13; older kernels only say under_oom.
                oomKills: oomControl["oom_kill"] ?? 0
            )
        case .v2:
            let path = try dir("", pod, container)
            let maxText = try FileIO.readString(path + "/memory.max").trimmingWhitespace()
            let cpu = try Self.keyValues(FileIO.readString(path + "/cpu.stat"))
            let events = try Self.keyValues(FileIO.readString(path + "/memory.events"))
            return CgroupStats(
                memoryUsageBytes: try readInt(path, "memory.current"),
                memoryLimitBytes: Int64(maxText),
                cpuUsageNanoseconds: (cpu["usage_usec"] ?? 0) * 1000,
                pids: FileIO.exists(path + "/pids.current") ? try readInt(path, "pids.current") : nil,
                oomKills: events["oom_kill"] ?? 0
            )
        }
    }

    /// Removes the container's cgroups. Call it after the container's processes
    /// are gone; ENOENT is fine (idempotent).
    public func remove(pod: String, container: String) throws(RuntimeSyscallError) {
        try Self.validateName(pod)
        try Self.validateName(container)
        for path in paths(pod: pod, container: container) { try removeDirectory(path) }
    }

    /// Removes the pod's cgroups (its containers' must be gone already).
    public func removePod(_ pod: String) throws(RuntimeSyscallError) {
        try Self.validateName(pod)
        for base in uniqueBases() { try removeDirectory(base + "/" + pod) }
    }

    /// Removes the `parent` directory itself (`labnode down`); every pod's
    /// cgroups must be gone already.
    public func removeParent() throws(RuntimeSyscallError) {
        for base in uniqueBases() { try removeDirectory(base) }
    }

    // MARK: - Helpers

    func uniqueBases() -> [String] {
        var seen = Set<String>()
        return bases.keys.sorted().compactMap { key in
            guard let base = bases[key], seen.insert(base).inserted else { return nil }
            return base
        }
    }

    func dir(_ controller: String, _ pod: String, _ container: String) throws(RuntimeSyscallError) -> String {
        guard let base = bases[controller] else {
            throw RuntimeSyscallError(call: "cgroup", subject: "no \(controller) controller", errno: ENOENT)
        }
        return base + "/" + pod + "/" + container
    }

    /// memory.memsw.limit_in_bytes (present when swap accounting is on) must
    /// stay >= memory.limit_in_bytes, so the order of the two writes depends on
    /// the direction of the change: try memory first, and on EINVAL raise memsw first.
    func setV1MemoryLimit(_ value: String, in path: String) throws(RuntimeSyscallError) {
        let memsw = FileIO.exists(path + "/memory.memsw.limit_in_bytes")
        do {
            try write(value, path, "memory.limit_in_bytes")
        } catch where error.errno == EINVAL && memsw {
            try write(value, path, "memory.memsw.limit_in_bytes")
            try write(value, path, "memory.limit_in_bytes")
        }
        if memsw { try write(value, path, "memory.memsw.limit_in_bytes") }
    }

    func enableControllers(in path: String) throws(RuntimeSyscallError) {
        let available = (try? FileIO.readString(path + "/cgroup.controllers"))
            .map { Set($0.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)) }
        let wanted = Self.v2Controllers.filter { available?.contains($0) ?? emulateKernelFiles }
        guard !wanted.isEmpty else { return }
        try write(wanted.map { "+" + $0 }.joined(separator: " "), path, "cgroup.subtree_control")
    }

    func makeDirectory(_ path: String) throws(RuntimeSyscallError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw RuntimeSyscallError(call: "mkdir", subject: path, errno: errno)
        }
        // Stand in for the kernel, which lists the parent's enabled controllers in each new child.
        if emulateKernelFiles, layout == .v2, !FileIO.exists(path + "/cgroup.controllers") {
            let parent = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            let inherited = (try? FileIO.readString(parent + "/cgroup.subtree_control")) ?? ""
            let names = inherited.split(separator: " ").map { $0.hasPrefix("+") ? String($0.dropFirst()) : String($0) }
            try FileIO.write(names.joined(separator: " "), to: path + "/cgroup.controllers", create: true)
        }
    }

    func removeDirectory(_ path: String) throws(RuntimeSyscallError) {
        // Right after the last process exits the kernel may still hold the
        // cgroup busy for a moment; give it up to ~100 ms.
        for attempt in 0..<50 {
            if rmdir(path) == 0 || errno == ENOENT { return }
            let code = errno
            if code == ENOTEMPTY && emulateKernelFiles {
                try removeRegularFiles(in: path)
                continue
            }
            guard code == EBUSY, attempt < 49 else { throw RuntimeSyscallError(call: "rmdir", subject: path, errno: code) }
            usleep(2000)
        }
    }

    func removeRegularFiles(in path: String) throws(RuntimeSyscallError) {
        guard let handle = opendir(path) else { throw RuntimeSyscallError(call: "opendir", subject: path, errno: errno) }
        defer { closedir(handle) }
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if entry.pointee.d_type == UInt8(DT_REG) { unlink(path + "/" + name) }
        }
    }

    func write(_ value: String, _ directory: String, _ file: String) throws(RuntimeSyscallError) {
        if emulateKernelFiles && file.hasPrefix("devices.") {
            // The stand-in keeps every rule (one per line) so tests can read the sequence.
            let previous = (try? FileIO.readString(directory + "/" + file)) ?? ""
            try FileIO.write(previous + value + "\n", to: directory + "/" + file, create: true)
            return
        }
        try FileIO.write(value, to: directory + "/" + file, create: emulateKernelFiles)
    }

    func writeIfPresent(_ value: String, _ directory: String, _ file: String) throws(RuntimeSyscallError) {
        guard emulateKernelFiles || FileIO.exists(directory + "/" + file) else { return }
        try write(value, directory, file)
    }

    func readInt(_ directory: String, _ file: String) throws(RuntimeSyscallError) -> Int64 {
        let text = try FileIO.readString(directory + "/" + file).trimmingWhitespace()
        guard let value = Int64(text) else {
            throw RuntimeSyscallError(call: "parse", subject: "\(directory)/\(file): \"\(text)\"", errno: EINVAL)
        }
        return value
    }

    /// "key value" lines (memory.events, memory.oom_control, cpu.stat).
    static func keyValues(_ text: String) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }

    static func validateName(_ name: String, allowSlash: Bool = false) throws(RuntimeSyscallError) {
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        if name.isEmpty || components.contains(where: { $0 == ".." || $0 == "." || $0.isEmpty }) || (!allowSlash && components.count > 1) {
            throw RuntimeSyscallError(call: "cgroup", subject: "invalid cgroup name \"\(name)\"", errno: EINVAL)
        }
    }

    static func realPath(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let characters = Array(self)
        guard let first = characters.firstIndex(where: { !$0.isWhitespace }),
              let last = characters.lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(characters[first...last])
    }
}
