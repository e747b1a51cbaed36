import CShims
import Glibc
import Synchronization

/// The agent's ends of an interactive container's stdin (`stdin: true`) and terminal
/// (`tty: true`), shared by the run and any attached clients. The descriptors close when
/// the last holder lets go, so a client still writing never hits a reused descriptor.
final class AttachableStdio: Sendable {
    private struct Descriptors {
        var input: Int32?
        var terminal: Int32?
    }
    private let fds: Mutex<Descriptors>
    /// Close stdin after the first attached client detaches (`stdinOnce`).
    let stdinOnce: Bool

    init(input: Int32?, terminal: Int32?, stdinOnce: Bool) {
        fds = Mutex(Descriptors(input: input, terminal: terminal))
        self.stdinOnce = stdinOnce
    }

    deinit {
        fds.withLock { d in
            for fd in Set([d.input, d.terminal].compactMap { $0 }) { close(fd) }
        }
    }

    /// Writes what the client typed; false once stdin is closed. Writes hold the lock, so
    /// a close waits for a write in progress rather than racing it.
    @discardableResult
    func write(_ bytes: [UInt8]) -> Bool {
        fds.withLock { d in
            guard let fd = d.input else { return false }
            var offset = 0
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
    }

    func resize(rows: UInt16, columns: UInt16) {
        fds.withLock { d in
            if let fd = d.terminal { _ = labnode_set_window_size(fd, rows, columns) }
        }
    }

    /// Ends the container's stdin. A pipe reads end-of-file; a terminal stays open (it is
    /// also the output) but takes no more input.
    func closeInput() {
        fds.withLock { d in
            guard let fd = d.input else { return }
            d.input = nil
            if fd != d.terminal { close(fd) }
        }
    }
}
