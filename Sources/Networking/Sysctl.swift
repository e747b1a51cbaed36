import Glibc
import Foundation
import Synchronization

/// Kernel parameters under /proc/sys, named by their path below it with slashes
/// ("net/ipv4/ip_forward", "net/ipv4/conf/cni0/route_localnet"). Slashes, not the dotted
/// `sysctl` form, because interface names may contain dots.
public protocol Sysctl: Sendable {
    /// The current value without the trailing newline; nil when the key does not exist here
    /// (a module not loaded, an interface that is gone).
    func read(_ key: String) throws -> String?
    /// Writes a value. Throws when the key does not exist.
    func write(_ key: String, value: String) throws
}

/// Reads and writes sysctls as files under `root`.
///
/// With the default root this is the real /proc/sys; tests point `root` at a temporary
/// directory whose files stand in for the keys that "exist".
///
/// Everything under /proc/sys/net belongs to the network namespace of the *thread* that opens
/// the file. Given `networkNamespacePath`, each access happens on a short-lived thread inside
/// that namespace (see `NetworkNamespace`), so the caller's thread is never moved.
public struct ProcSysctl: Sysctl {
    public let root: String
    public let networkNamespacePath: String?

    public init(root: String = "/proc/sys", networkNamespacePath: String? = nil) {
        self.root = root
        self.networkNamespacePath = networkNamespacePath
    }

    public func read(_ key: String) throws -> String? {
        let file = try path(key)
        return try inNamespace {
            let fd = open(file, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                let code = errno
                if code == ENOENT { return nil }
                throw SystemCallError(call: "open", errno: code, subject: "sysctl \(file)")
            }
            defer { close(fd) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard count >= 0 else {
                throw SystemCallError(call: "read", errno: errno, subject: "sysctl \(file)")
            }
            return String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    public func write(_ key: String, value: String) throws {
        let file = try path(key)
        try inNamespace {
            // No O_CREAT: a sysctl that does not exist cannot be created, and the stand-in
            // directory in tests must behave the same.
            let fd = open(file, O_WRONLY | O_TRUNC | O_CLOEXEC)
            guard fd >= 0 else {
                throw SystemCallError(call: "open", errno: errno, subject: "sysctl \(file)")
            }
            defer { close(fd) }
            let bytes = Array((value + "\n").utf8)
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == bytes.count else {
                throw SystemCallError(call: "write", errno: written < 0 ? errno : EIO, subject: "sysctl \(file) = \(value)")
            }
        }
    }

    private func path(_ key: String) throws -> String {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !parts.contains(where: { $0.isEmpty || $0 == "." || $0 == ".." }) else {
            throw SystemCallError(call: "sysctl", errno: EINVAL, subject: "key \"\(key)\" (expected a path like net/ipv4/ip_forward)")
        }
        return root + "/" + key
    }

    private func inNamespace<T>(_ body: () throws -> T) throws -> T {
        guard let networkNamespacePath else { return try body() }
        return try NetworkNamespace.run(inNamespaceAt: networkNamespacePath, body)
    }
}

/// Sets sysctls while remembering what they were, so `labnode down` can put them back.
///
/// Only the value seen before *our first* change of a key is kept: after a restart the current
/// value is our own, so the originals are also saved to `recordPath` and reloaded from there.
public final class SysctlJournal: Sendable {
    public let sysctl: any Sysctl
    /// Where originals survive restarts; nil keeps them in memory only.
    public let recordPath: String?
    private let originals: Mutex<[String: String]>

    public init(sysctl: any Sysctl, recordPath: String? = nil) throws {
        self.sysctl = sysctl
        self.recordPath = recordPath
        var loaded: [String: String] = [:]
        if let recordPath, FileManager.default.fileExists(atPath: recordPath) {
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: recordPath))
                loaded = try JSONDecoder().decode([String: String].self, from: data)
            } catch {
                throw SystemCallError(call: "read", errno: EIO, subject: "sysctl record \(recordPath): \(error)")
            }
        }
        originals = Mutex(loaded)
    }

    /// The values before our first change, by key.
    public var originalValues: [String: String] { originals.withLock { $0 } }

    /// Sets `key` to `value`, recording the previous value the first time.
    ///
    /// - Parameter required: when false, a key that does not exist here is skipped (returns
    ///   false) instead of being an error; for example bridge-nf-call-iptables exists only
    ///   when br_netfilter is loaded.
    /// - Returns: true when the key exists (whether or not its value had to change).
    @discardableResult
    public func set(_ key: String, to value: String, required: Bool = true) throws -> Bool {
        try originals.withLock { originals in
            guard let current = try sysctl.read(key) else {
                if required {
                    throw SystemCallError(call: "sysctl", errno: ENOENT, subject: "\(key) does not exist in this kernel or namespace")
                }
                return false
            }
            if current == value { return true }
            if originals[key] == nil {
                originals[key] = current
                try save(originals)
            }
            try sysctl.write(key, value: value)
            return true
        }
    }

    /// Writes every recorded original back and forgets it. Keys that no longer exist (the
    /// bridge they belonged to is gone) are dropped silently; the first real failure is thrown
    /// after trying all of them.
    public func restoreAll() throws {
        try originals.withLock { originals in
            var firstError: (any Error)?
            for (key, value) in originals.sorted(by: { $0.key < $1.key }) {
                do {
                    if try sysctl.read(key) != nil {
                        try sysctl.write(key, value: value)
                    }
                    originals[key] = nil
                } catch {
                    if firstError == nil { firstError = error }
                }
            }
            try save(originals)
            if let firstError { throw firstError }
        }
    }

    private func save(_ originals: [String: String]) throws {
        guard let recordPath else { return }
        do {
            if originals.isEmpty {
                if FileManager.default.fileExists(atPath: recordPath) {
                    try FileManager.default.removeItem(atPath: recordPath)
                }
                return
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try encoder.encode(originals).write(to: URL(fileURLWithPath: recordPath), options: .atomic)
        } catch {
            throw SystemCallError(call: "write", errno: EIO, subject: "sysctl record \(recordPath): \(error)")
        }
    }
}
