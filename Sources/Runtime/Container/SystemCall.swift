import CShims
import Glibc

/// A failed system call: which call, on what, and the errno it returned.
public struct RuntimeSyscallError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The call that failed, e.g. `mount` or `open`.
    public var call: String
    /// What it was applied to (a path, a pid, ...); empty when obvious.
    public var subject: String
    /// The errno value.
    public var errno: Int32

    public init(call: String, subject: String = "", errno: Int32) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    public var description: String {
        let target = subject.isEmpty ? "" : " \(subject)"
        return "\(call)\(target): \(Errno.name(errno)) (\(Errno.text(errno)))"
    }
}

/// Errno names and texts, used in error messages and the init's report lines.
enum Errno {
    /// `ENOENT` for 2; `ERRNO999` for numbers glibc has no name for (one word,
    /// so report lines stay parseable).
    static func name(_ value: Int32) -> String {
        guard value != 0, let cName = labnode_errno_name(value) else { return "ERRNO\(value)" }
        return String(cString: cName)
    }

    /// The C library's description, e.g. "No such file or directory".
    static func text(_ value: Int32) -> String {
        guard let cText = strerror(value) else { return "errno \(value)" }
        return String(cString: cText)
    }

    /// The number for a name such as `ENOENT`, or nil if unknown.
    static func value(named name: String) -> Int32? {
        if name.hasPrefix("ERRNO") { return Int32(name.dropFirst(5)) }
        // glibc only offers number -> name, and errno numbers are small.
        for candidate in Int32(1)..<Int32(256) where labnode_errno_name(candidate).map({ String(cString: $0) }) == name {
            return candidate
        }
        return nil
    }
}

/// Runs a libc call that returns -1 and sets errno on failure, retrying EINTR.
@discardableResult
func sys<T: BinaryInteger>(_ call: String, _ subject: String = "", _ body: () -> T) throws(RuntimeSyscallError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = errno
        if code == EINTR { continue }
        throw RuntimeSyscallError(call: call, subject: subject, errno: code)
    }
}

/// Converts Swift strings to a NULL-terminated C string array that lives for the
/// duration of `body`.
func withCStringArray<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) throws -> R) rethrows -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return try body(pointers)
}

/// Small file helpers on raw descriptors, usable in the init where no Foundation
/// threading may run and in cgroup files where every write must be one write(2).
enum FileIO {
    static func readAll(_ path: String) throws(RuntimeSyscallError) -> [UInt8] {
        let fd = try sys("open", path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = try sys("read", path) { chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) } }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    static func readString(_ path: String) throws(RuntimeSyscallError) -> String {
        String(decoding: try readAll(path), as: UTF8.self)
    }

    /// Writes `text` with a single write(2): cgroup files take one value per write.
    static func write(_ text: String, to path: String, create: Bool = false) throws(RuntimeSyscallError) {
        let flags = O_WRONLY | O_CLOEXEC | (create ? (O_CREAT | O_TRUNC) : 0)
        let fd = try sys("open", path) { open(path, flags, 0o644) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        let count = try sys("write", path) { bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        if count != bytes.count {
            throw RuntimeSyscallError(call: "write", subject: "\(path) (short write)", errno: EIO)
        }
    }

    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir -p; existing directories are fine.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(RuntimeSyscallError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST {
                throw RuntimeSyscallError(call: "mkdir", subject: current, errno: errno)
            }
        }
    }
}
