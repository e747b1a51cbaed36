import Glibc

/// The fixed part of every container's filesystem, as data so tests can check
/// flags without mounting anything. Values follow runc's default spec
/// (libcontainer/specconv) and what containerd generates for Kubernetes.
enum RootfsPlan {
    struct MountStep: Equatable {
        var source: String
        /// In the container.
        var target: String
        var fstype: String
        var flags: UInt
        var data: String
    }

    struct Device: Equatable {
        var name: String
        var major: UInt32
        var minor: UInt32
    }

    static func flag(_ value: Int) -> UInt { UInt(value) }

    static let nosuid = flag(Int(MS_NOSUID))
    static let nodev = flag(Int(MS_NODEV))
    static let noexec = flag(Int(MS_NOEXEC))
    static let readOnly = flag(Int(MS_RDONLY))

    /// /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue and /sys, in mount order.
    /// /sys is read-only unless the container is privileged.
    static func standardMounts(privileged: Bool) -> [MountStep] {
        [
            MountStep(source: "proc", target: "/proc", fstype: "proc", flags: nosuid | nodev | noexec, data: ""),
            MountStep(source: "tmpfs", target: "/dev", fstype: "tmpfs", flags: nosuid | flag(Int(MS_STRICTATIME)),
                      data: "mode=755,size=65536k"),
            // newinstance: the container gets its own pty numbering, not the host's.
            MountStep(source: "devpts", target: "/dev/pts", fstype: "devpts", flags: nosuid | noexec,
                      data: "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            MountStep(source: "shm", target: "/dev/shm", fstype: "tmpfs", flags: nosuid | nodev | noexec,
                      data: "mode=1777,size=65536k"),
            MountStep(source: "mqueue", target: "/dev/mqueue", fstype: "mqueue", flags: nosuid | nodev | noexec, data: ""),
            MountStep(source: "sysfs", target: "/sys", fstype: "sysfs",
                      flags: nosuid | nodev | noexec | (privileged ? 0 : readOnly), data: ""),
        ]
    }

    /// Character devices every container gets, mode 0666 (the OCI default set).
    static let devices = [
        Device(name: "null", major: 1, minor: 3),
        Device(name: "zero", major: 1, minor: 5),
        Device(name: "full", major: 1, minor: 7),
        Device(name: "random", major: 1, minor: 8),
        Device(name: "urandom", major: 1, minor: 9),
        Device(name: "tty", major: 5, minor: 0),
    ]

    /// (link in /dev, target)
    static let symlinks: [(name: String, target: String)] = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ]

    /// The mount(2) data for an overlay root. overlayfs splits options on ","
    /// and lowerdir on ":", so paths containing them cannot be expressed.
    static func overlayOptions(lower: [String], upper: String, work: String) throws(RuntimeSyscallError) -> String {
        for path in lower + [upper, work] where path.contains(",") || path.contains(":") {
            throw RuntimeSyscallError(call: "overlay", subject: "\(path) contains ',' or ':'", errno: EINVAL)
        }
        guard !lower.isEmpty else { throw RuntimeSyscallError(call: "overlay", subject: "no lower directory", errno: EINVAL) }
        let options = "lowerdir=\(lower.joined(separator: ":")),upperdir=\(upper),workdir=\(work)"
        // mount(2) copies at most one page of data.
        if options.utf8.count >= 4096 {
            throw RuntimeSyscallError(call: "overlay", subject: "options are \(options.utf8.count) bytes, over one page", errno: E2BIG)
        }
        return options
    }
}

/// PATH lookup done by the init before exec, in the container's filesystem.
enum ExecutableLookup {
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// The value of `name` in "NAME=value" strings.
    static func value(of name: String, in env: [String]) -> String? {
        let prefix = name + "="
        return env.last { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }

    /// `command` itself if it contains "/", else the first executable regular
    /// file named `command` in `path` (an empty entry means the current directory,
    /// as in execvp).
    static func find(_ command: String, path: String?, root: String = "") -> String? {
        if command.contains("/") { return command }
        for directory in (path ?? defaultPath).split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + command
            var info = stat()
            guard stat(root + candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                  access(root + candidate, X_OK) == 0 else { continue }
            return candidate
        }
        return nil
    }
}
