import Glibc

/// A netlink request the kernel refused, or a failure talking to the netlink socket.
///
/// `operation` names what we were doing in our own words ("create veth veth1a2b3c4d with peer
/// eth0 in /run/netns/x"), `errno` is the kernel's answer and `kernelMessage` the extended-ack
/// text, when the kernel gave one ("Unknown device type", "Nexthop has invalid gateway").
public struct NetlinkError: Error, Equatable, CustomStringConvertible, Sendable {
    public let operation: String
    /// A positive errno value (the kernel sends it negated; we flip it).
    public let errno: Int32
    /// The kernel's extended-ack message, or our own detail for local failures.
    public let detail: String?

    public init(operation: String, errno: Int32, detail: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// Symbolic errno name, such as "EEXIST".
    public var errnoName: String { ErrnoName.name(errno) }

    /// The C library's text for the errno, such as "File exists".
    public var errnoText: String { ErrnoName.text(errno) }

    public var description: String {
        var text = "\(operation): \(errnoName) (\(errnoText))"
        if let detail, !detail.isEmpty { text += ": \(detail)" }
        return text
    }
}

/// A system call other than netlink I/O failed: opening or entering a namespace, starting a
/// helper thread, reading or writing a file.
public struct SystemCallError: Error, Equatable, CustomStringConvertible, Sendable {
    public let call: String
    public let errno: Int32
    /// What the call was about: a path, a namespace, an interface.
    public let subject: String

    public init(call: String, errno: Int32, subject: String) {
        self.call = call
        self.errno = errno
        self.subject = subject
    }

    public var errnoName: String { ErrnoName.name(errno) }

    public var description: String {
        "\(call) \(subject): \(errnoName) (\(ErrnoName.text(errno)))"
    }
}

/// Names for the errno values that networking code meets. An operator reading
/// "EADDRNOTAVAIL" can search for it; "errno 99" tells them little.
enum ErrnoName {
    static func name(_ value: Int32) -> String {
        switch value {
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case ESRCH: "ESRCH"
        case EINTR: "EINTR"
        case EIO: "EIO"
        case EBADF: "EBADF"
        case EAGAIN: "EAGAIN"
        case ENOMEM: "ENOMEM"
        case EACCES: "EACCES"
        case EBUSY: "EBUSY"
        case EEXIST: "EEXIST"
        case ENODEV: "ENODEV"
        case ENOTDIR: "ENOTDIR"
        case EISDIR: "EISDIR"
        case EINVAL: "EINVAL"
        case ENFILE: "ENFILE"
        case EMFILE: "EMFILE"
        case ENOSPC: "ENOSPC"
        case EROFS: "EROFS"
        case ERANGE: "ERANGE"
        case ENAMETOOLONG: "ENAMETOOLONG"
        case ENOSYS: "ENOSYS"
        case ELOOP: "ELOOP"
        case EBADMSG_VALUE: "EBADMSG"
        case EPROTO: "EPROTO"
        case EMSGSIZE: "EMSGSIZE"
        case EPROTONOSUPPORT: "EPROTONOSUPPORT"
        case EOPNOTSUPP: "EOPNOTSUPP"
        case EAFNOSUPPORT: "EAFNOSUPPORT"
        case EADDRINUSE: "EADDRINUSE"
        case EADDRNOTAVAIL: "EADDRNOTAVAIL"
        case ENETDOWN: "ENETDOWN"
        case ENETUNREACH: "ENETUNREACH"
        case ENOBUFS: "ENOBUFS"
        case ENOTCONN: "ENOTCONN"
        case ETIMEDOUT: "ETIMEDOUT"
        case ECONNREFUSED: "ECONNREFUSED"
        case EHOSTUNREACH: "EHOSTUNREACH"
        default: "errno \(value)"
        }
    }

    static func text(_ value: Int32) -> String {
        guard let message = strerror(value) else { return "unknown error" }
        return String(cString: message)
    }
}
