import APIMachinery
import CShims
import Foundation
import Glibc
import Synchronization

/// Why a command could not be run in a container.
public struct ContainerExecError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Runs a command in a container to completion with a deadline, collecting its combined
/// output (exec probes; `kubectl exec` streams instead).
enum ContainerExec {
    static func run(_ spec: ExecSpec, specPath: String, launcher: ContainerLauncher, timeout: Double) async -> ExecProbeResult {
        var fds: [Int32] = [-1, -1]
        guard labnode_pipe_cloexec(&fds) == 0 else { return .couldNotRun(message: "pipe: \(String(cString: strerror(errno)))") }
        let process: ContainerLauncher.ExecProcess
        do {
            process = try await launcher.exec(spec, specPath: specPath, stdio: .init(stdout: fds[1], stderr: fds[1]))
        } catch {
            close(fds[0])
            close(fds[1])
            return .couldNotRun(message: "\(error)")
        }
        close(fds[1])
        let readEnd = fds[0]
        let pid = process.pid
        return await ContainerLauncher.onDedicatedThread {
            defer { close(readEnd) }
            let deadline = Date().addingTimeInterval(timeout)
            var output: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let left = deadline.timeIntervalSinceNow
                if left <= 0 {
                    _ = Glibc.kill(process.command, SIGKILL)
                    _ = ContainerInit.waitForExit(pid)
                    return .timedOut
                }
                var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, Int32(min(left * 1000, 1000)) + 1) <= 0 { continue }
                let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
                if n <= 0 { break }
                if output.count < ProbeExecution.maxOutputBytes { output += buffer[0..<n] }
            }
            let code = ContainerInit.waitForExit(pid)
            return .exited(code: code, output: String(decoding: output, as: UTF8.self))
        }
    }

    /// Runs a command with its streams relayed: `input` to its stdin (when `stdin`), its output
    /// to `output` (1 stdout, 2 stderr; a terminal's output is all on 1), terminal sizes from
    /// `resize`. Returns the exit status once the command ended and its output was sent.
    static func stream(_ spec: ExecSpec, specPath: String, launcher: ContainerLauncher, stdin: Bool,
                       input: AsyncStream<[UInt8]>, resize: AsyncStream<(rows: UInt16, columns: UInt16)>,
                       output: @escaping @Sendable (UInt8, [UInt8]) async -> Void) async throws(ContainerExecError) -> Int32 {
        // Descriptors: what the command gets, and our ends (write to stdin, read from out/err).
        var childEnds: [Int32] = []
        var stdinWrite: Int32 = -1
        var readers: [(fd: Int32, channel: UInt8)] = []
        var terminal: Int32 = -1
        var stdio = ContainerLauncher.Stdio()
        func pipePair() throws(ContainerExecError) -> (Int32, Int32) {
            // Close-on-exec from the start: a container started meanwhile must not inherit them.
            var fds: [Int32] = [-1, -1]
            guard labnode_pipe_cloexec(&fds) == 0 else { throw ContainerExecError(message: "pipe: \(String(cString: strerror(errno)))") }
            return (fds[0], fds[1])
        }
        // The common case (no terminal, no stdin) runs on a standby init, with its pipes.
        if !spec.tty && !stdin {
            let started: (process: ContainerLauncher.ExecProcess, stdout: Int32, stderr: Int32)
            do {
                started = try await launcher.execPiped(spec, specPath: specPath)
            } catch {
                throw ContainerExecError(message: "\(error)")
            }
            return await relay(started.process, readers: [(started.stdout, 1), (started.stderr, 2)], writeFD: -1, stdinWrite: -1,
                               terminal: -1, launcher: launcher, input: input, resize: resize, output: output)
        }
        if spec.tty {
            var master: Int32 = -1, slave: Int32 = -1
            guard labnode_open_pty(&master, &slave) == 0 else {
                throw ContainerExecError(message: "opening a terminal: \(String(cString: strerror(errno)))")
            }
            terminal = master
            childEnds = [slave]
            stdio = .init(stdin: slave, stdout: slave, stderr: slave)
            readers = [(master, 1)]
        } else {
            if stdin {
                let (r, w) = try pipePair()
                childEnds.append(r)
                stdinWrite = w
                stdio.stdin = r
            }
            let (outR, outW) = try pipePair()
            let (errR, errW) = try pipePair()
            childEnds += [outW, errW]
            stdio.stdout = outW
            stdio.stderr = errW
            readers = [(outR, 1), (errR, 2)]
        }
        let process: ContainerLauncher.ExecProcess
        do {
            process = try await launcher.exec(spec, specPath: specPath, stdio: stdio)
        } catch {
            for fd in childEnds + readers.map(\.fd) { close(fd) }
            if stdinWrite >= 0 { close(stdinWrite) }
            throw ContainerExecError(message: "\(error)")
        }
        // Only the command may hold its ends now, or its output would never reach end-of-file.
        for fd in childEnds { close(fd) }
        return await relay(process, readers: readers, writeFD: spec.tty ? terminal : stdinWrite, stdinWrite: stdinWrite,
                           terminal: terminal, launcher: launcher, input: input, resize: resize, output: output)
    }

    /// Copies the streams of a started command until it ends; returns its exit status.
    static func relay(_ process: ContainerLauncher.ExecProcess, readers: [(fd: Int32, channel: UInt8)], writeFD: Int32,
                      stdinWrite: Int32, terminal: Int32, launcher: ContainerLauncher, input: AsyncStream<[UInt8]>,
                      resize: AsyncStream<(rows: UInt16, columns: UInt16)>,
                      output: @escaping @Sendable (UInt8, [UInt8]) async -> Void) async -> Int32 {
        let pid = process.pid
        let pump = Task {
            for await chunk in input {
                guard writeFD >= 0 else { continue }
                var offset = 0
                while offset < chunk.count {
                    let n = chunk[offset...].withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    offset += n
                }
            }
            // End of stdin: the command reads end-of-file (a terminal keeps going until it exits).
            if stdinWrite >= 0 { close(stdinWrite) }
        }
        let resizer = Task {
            for await size in resize where terminal >= 0 {
                _ = labnode_set_window_size(terminal, size.rows, size.columns)
            }
        }
        // A client that goes away cancels this task: the command is killed rather than left
        // running unattended; its init then reaps it and exits.
        let reaped = Mutex(false)
        let state = await withTaskCancellationHandler {
            await withTaskGroup(of: Void.self) { group in
                for reader in readers {
                    let (chunks, sink) = AsyncStream.makeStream(of: [UInt8].self)
                    Thread {
                        var buffer = [UInt8](repeating: 0, count: 32 * 1024)
                        while true {
                            let n = buffer.withUnsafeMutableBytes { read(reader.fd, $0.baseAddress, $0.count) }
                            if n > 0 {
                                sink.yield(Array(buffer[0..<n]))
                            } else if n == 0 || errno != EINTR {
                                // EIO from a terminal whose last user closed it is its end-of-file.
                                break
                            }
                        }
                        sink.finish()
                    }.start()
                    group.addTask {
                        for await chunk in chunks { await output(reader.channel, chunk) }
                    }
                }
            }
            let state = await launcher.wait(pid: pid)
            reaped.withLock { $0 = true }
            return state
        } onCancel: {
            if !reaped.withLock({ $0 }) { _ = kill(process.command, SIGKILL) }
        }
        for reader in readers { close(reader.fd) }
        pump.cancel()
        resizer.cancel()
        if case .exited(let code) = state { return code }
        return 1
    }
}
