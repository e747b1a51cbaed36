import Glibc

/// Resolves a path inside a container's root as the container would see it.
///
/// Image content is untrusted: "/etc/hosts" in an image may be a symlink to
/// "/../../../host/etc/shadow". Before the init mounts onto a path inside the
/// rootfs it resolves symlinks itself, treating `root` as "/", so ".." and
/// absolute link targets can never climb out (the idea behind runc's
/// filepath-securejoin). Components that do not exist yet are kept as written.
enum SecureJoin {
    static let maxSymlinks = 255

    /// The host path for `path` in the container whose root is `root`.
    static func resolve(root: String, path: String) throws(RuntimeSyscallError) -> String {
        let base = root.hasSuffix("/") ? String(root.dropLast()) : root
        var resolved: [Substring] = []
        var pending: [Substring] = path.split(separator: "/", omittingEmptySubsequences: true)
        pending.reverse() // a stack: the next component is last
        var followed = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = base + "/" + (resolved + [component]).joined(separator: "/")
            var info = stat()
            guard lstat(candidate, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK else {
                resolved.append(component)
                continue
            }
            followed += 1
            if followed > maxSymlinks { throw RuntimeSyscallError(call: "resolve", subject: path, errno: ELOOP) }
            let target = try readLink(candidate)
            if target.hasPrefix("/") { resolved.removeAll() }
            pending.append(contentsOf: target.split(separator: "/", omittingEmptySubsequences: true).reversed())
        }
        return base + "/" + resolved.joined(separator: "/")
    }

    static func readLink(_ path: String) throws(RuntimeSyscallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = try sys("readlink", path) {
            buffer.withUnsafeMutableBufferPointer { storage -> Int in
                guard let base = storage.baseAddress else { return -1 }
                return readlink(path, base, storage.count - 1)
            }
        }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
