import Foundation
import Testing
@testable import Runtime

/// A scratch directory removed when the test's reference to it goes away, even on failure.
final class ImageScratchDirectory {
    let path: String

    init(_ label: String = "test") throws {
        path = try ImageFileSystem.makeTemporaryDirectory(in: NSTemporaryDirectory(), prefix: "labnode-\(label)-")
    }

    deinit {
        try? ImageFileSystem.removeTree(path)
    }

    func write(_ relative: String, _ text: String, mode: Int = 0o644) throws {
        let file = path + "/" + relative
        try ImageFileSystem.makeDirectories((file as NSString).deletingLastPathComponent)
        try Data(text.utf8).write(to: URL(fileURLWithPath: file))
        chmod(file, mode_t(mode))
    }

    func read(_ relative: String) throws -> String {
        String(decoding: try ImageFileSystem.read(path + "/" + relative), as: UTF8.self)
    }
}

/// What the image tests need from the host, kept in one namespace so other Runtime tests
/// can have helpers of their own.
enum ImageTestHost {
    struct Result {
        let status: Int32
        /// Standard output and standard error together, in the order they were written.
        let output: String
    }

    /// Runs a host command to completion (tests use tar, ldd, python3, unshare, chroot).
    @discardableResult
    static func run(_ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        // One pipe for both streams: nothing can stall on a full second pipe.
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    static let isRoot = geteuid() == 0

    /// Says loudly that a root-only check did not run, so a green run without root is not
    /// mistaken for a full one.
    static func skipped(_ what: String) {
        print("SKIPPED (needs root): \(what)")
    }

    static func fileType(_ path: String) -> mode_t? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return info.st_mode & S_IFMT
    }

    /// The repository's `images/` folder, found from this file's location.
    static let recipesDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("images").path

    static let hasBusybox = FileManager.default.isExecutableFile(atPath: "/bin/busybox")
    static let hasNginx = FileManager.default.isExecutableFile(atPath: "/usr/sbin/nginx")

    /// This test process's own executable: a dynamically linked Swift program like labnode.
    static let testExecutable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
}
