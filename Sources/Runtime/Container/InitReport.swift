import Glibc

/// Why a container did not start: the init step that failed and its errno.
public struct ContainerStartError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The init step, e.g. "mount-rootfs", "pivot_root", "exec".
    public var step: String
    /// The errno, 0 when the failure was not a system call.
    public var errno: Int32
    /// Details, e.g. `executable file not found in $PATH: "nginx"`.
    public var message: String

    public init(step: String, errno: Int32, message: String) {
        self.step = step
        self.errno = errno
        self.message = message
    }

    public var description: String { "\(step): \(Errno.name(errno)) (\(message))" }
}

/// The line protocol on the report pipe between the init and the launcher.
///
/// The shim writes `pid <host pid of the container's PID 1>` once it has forked.
/// A failing step writes `<step>: <ERRNO NAME> (<details>)` and exits 127. The
/// write end is close-on-exec, so a successful exec(2) of the entrypoint is seen
/// by the launcher as end-of-file with no failure line. Lines are short enough
/// (< PIPE_BUF) for each write to be atomic although two processes write.
enum InitReport {
    static let pidPrefix = "pid "

    static func failureLine(step: String, errno: Int32, message: String) -> String {
        "\(step): \(Errno.name(errno)) (\(message.replacingNewlines()))\n"
    }

    /// What the launcher learned from everything read up to end-of-file.
    struct Outcome: Equatable {
        var pid: Int32?
        var failure: ContainerStartError?
    }

    static func parse(_ text: String) -> Outcome {
        var outcome = Outcome()
        for line in text.split(separator: "\n") {
            if line.hasPrefix(pidPrefix), let pid = Int32(line.dropFirst(pidPrefix.count)) {
                outcome.pid = pid
            } else if outcome.failure == nil {
                outcome.failure = parseFailure(String(line))
            }
        }
        return outcome
    }

    static func parseFailure(_ line: String) -> ContainerStartError {
        guard let colon = line.range(of: ": ") else {
            return ContainerStartError(step: "init", errno: 0, message: line)
        }
        let step = String(line[..<colon.lowerBound])
        let rest = line[colon.upperBound...]
        let name = rest.prefix { $0 != " " }
        var message = rest.dropFirst(name.count).drop { $0 == " " }
        if message.hasPrefix("("), message.hasSuffix(")") { message = message.dropFirst().dropLast() }
        let number = Errno.value(named: String(name)) ?? 0
        return ContainerStartError(step: step, errno: number, message: String(message))
    }
}

extension String {
    func replacingNewlines() -> String {
        String(map { $0 == "\n" ? " " : $0 })
    }
}
