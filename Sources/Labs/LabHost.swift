import AsyncHTTPClient
import Foundation
import NIOCore
import Subprocess
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// What a command printed and how it ended.
public struct CommandOutput: Sendable {
    public var code: Int32
    public var out: String
    public var err: String

    public init(code: Int32, out: String, err: String = "") {
        self.code = code
        self.out = out
        self.err = err
    }
}

/// Everything the lab does to the world: kubectl, shell lines, HTTP. The real one runs
/// programs; tests substitute a scripted one.
public protocol LabHost: Sendable {
    func kubectl(_ arguments: [String]) async throws -> CommandOutput
    /// A shell line in the work directory, its output and errors merged. With `echo` they
    /// are also copied to the terminal as they come; with `terminal` the command reads
    /// the terminal (a trainee typing into `kubectl exec -ti`).
    func shell(_ line: String, echo: Bool, terminal: Bool) async throws -> CommandOutput
    func httpGet(_ url: String) async throws -> (status: Int, body: String)
    /// Starts a long-running command; it stops when the returned handle is stopped.
    func startBackground(_ line: String) async throws -> BackgroundCommand
    /// Whether this process is root (node steps read netfilter).
    var isRoot: Bool { get }
}

public protocol BackgroundCommand: Sendable {
    /// What it printed so far.
    func output() async -> String
    func stop() async
}

/// The machine the lab runs on: kubectl from PATH (or `kubectlPath`), `/bin/sh`, and an
/// HTTP client. `kubeconfig`, when given, is passed to every command through KUBECONFIG.
public struct LocalHost: LabHost {
    public let kubectlPath: String
    public let kubeconfig: String?
    public let workdir: String

    public init(kubectlPath: String = "kubectl", kubeconfig: String?, workdir: String) {
        self.kubectlPath = kubectlPath
        self.kubeconfig = kubeconfig
        self.workdir = workdir
    }

    public var isRoot: Bool { geteuid() == 0 }

    var environment: Environment {
        kubeconfig.map { Environment.inherit.updating(["KUBECONFIG": $0]) } ?? .inherit
    }

    static let outputLimit = 16 << 20

    /// How long a check's kubectl may take: a hung exec must not hang the lab.
    static let kubectlTimeout: Duration = .seconds(30)

    public func kubectl(_ arguments: [String]) async throws -> CommandOutput {
        try await withThrowingTaskGroup(of: CommandOutput?.self) { group in
            group.addTask { try await runKubectl(arguments) }
            group.addTask {
                try await Task.sleep(for: Self.kubectlTimeout)
                return nil
            }
            // Cancelling the run tears the child down (SIGKILL at the end of the sequence).
            defer { group.cancelAll() }
            if let first = try await group.next(), let result = first { return result }
            throw LabError("kubectl \(arguments.joined(separator: " ")) did not finish within \(Self.kubectlTimeout)")
        }
    }

    func runKubectl(_ arguments: [String]) async throws -> CommandOutput {
        let executable: Executable = kubectlPath.contains("/") ? .path(FilePath(kubectlPath)) : .name(kubectlPath)
        do {
            let result = try await Subprocess.run(executable, arguments: Arguments(arguments), environment: environment,
                                                  workingDirectory: FilePath(workdir),
                                                  output: .string(limit: Self.outputLimit), error: .string(limit: Self.outputLimit))
            return CommandOutput(code: Self.code(result.terminationStatus), out: result.standardOutput, err: result.standardError)
        } catch {
            throw LabError("could not run \(kubectlPath): \(error)")
        }
    }

    public func shell(_ line: String, echo: Bool, terminal: Bool) async throws -> CommandOutput {
        // `exec 2>&1` merges the streams in the order the command wrote them.
        let arguments: Arguments = ["-c", "exec 2>&1\n" + line]
        let body: (Execution<FileDescriptorInput, SequenceOutput, DiscardedOutput>) async throws -> String = { execution in
            var text = ""
            for try await chunk in execution.standardOutput {
                let piece = chunk.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
                if echo {
                    FileHandle.standardOutput.write(Data(piece.utf8))
                }
                text += piece
            }
            return text
        }
        do {
            let input: FileDescriptorInput
            if terminal {
                input = .currentStandardInput
            } else {
                input = .fileDescriptor(try FileDescriptor.open("/dev/null", .readOnly), closeAfterSpawningProcess: true)
            }
            let result = try await Subprocess.run(.path("/bin/sh"), arguments: arguments, environment: environment,
                                                  workingDirectory: FilePath(workdir), input: input, output: .sequence,
                                                  error: .discarded, body: body)
            return CommandOutput(code: Self.code(result.terminationStatus), out: result.closureResult)
        } catch {
            throw LabError("could not run /bin/sh for `\(line)`: \(error)")
        }
    }

    public func httpGet(_ url: String) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    public func startBackground(_ line: String) async throws -> BackgroundCommand {
        let handle = Background()
        let environment = self.environment
        let workdir = self.workdir
        var options = PlatformOptions()
        options.teardownSequence = [.send(signal: .terminate, allowedDurationToNextStep: .seconds(2))]
        let platformOptions = options
        let task = Task {
            _ = try? await Subprocess.run(.path("/bin/sh"), arguments: ["-c", "exec 2>&1\nexec " + line], environment: environment,
                                          workingDirectory: FilePath(workdir), platformOptions: platformOptions,
                                          input: .none, output: .sequence, error: .discarded) { execution in
                for try await chunk in execution.standardOutput {
                    await handle.append(chunk.withUnsafeBytes { String(decoding: $0, as: UTF8.self) })
                }
            }
        }
        await handle.setTask(task)
        return handle
    }

    static func code(_ status: TerminationStatus) -> Int32 {
        switch status {
        case .exited(let code): return Int32(code)
        case .signaled(let signal): return 128 + Int32(signal)
        }
    }

    actor Background: BackgroundCommand {
        private var text = ""
        private var task: Task<Void, Never>?

        func append(_ piece: String) { text += piece }
        func setTask(_ task: Task<Void, Never>) { self.task = task }
        func output() -> String { text }

        func stop() async {
            task?.cancel()
            await task?.value
        }
    }
}
