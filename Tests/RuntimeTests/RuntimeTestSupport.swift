import Foundation

/// A scratch directory removed when the test is done, even if it throws.
func withScratchDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
    let path = try makeScratchDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await body(path)
}

func makeScratchDirectory(_ prefix: String = "labnode-runtime-test") throws -> String {
    var directory = NSTemporaryDirectory()
    while directory.hasSuffix("/") { directory.removeLast() }
    var template = Array((directory + "/\(prefix)-XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { buffer -> Bool in
        guard let base = buffer.baseAddress else { return false }
        return mkdtemp(base) != nil
    }
    guard made else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
    return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func writeTestFile(_ path: String, _ text: String) throws {
    try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

func readTestFile(_ path: String) throws -> String {
    try String(decoding: Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
}
