import CArchive
import Foundation
import Testing
@testable import Runtime

@Suite("Layer unpacking")
struct LayerUnpackTests {
    static let cases: [(String, WhiteoutKind)] = [
        ("etc/hosts", .none),
        ("etc/.wh.hosts", .remove(path: "etc/hosts")),
        (".wh.top", .remove(path: "top")),
        ("a/b/.wh..hidden", .remove(path: "a/b/.hidden")),
        ("var/.wh..wh..opq", .opaque(directory: "var")),
        (".wh..wh..opq", .opaque(directory: "")),
        (".wh..wh.plnk", .reserved),
        ("dir/.wh.", .reserved),
        ("dir/x.wh.y", .none),
    ]

    @Test("OCI whiteout names map to overlayfs actions", arguments: cases)
    func classify(path: String, expected: WhiteoutKind) {
        #expect(WhiteoutKind.classify(path) == expected)
    }

    @Test("member paths are kept inside the layer")
    func sanitising() throws {
        #expect(try ArchiveEntry.sanitizedPath("./etc/passwd") == "etc/passwd")
        #expect(try ArchiveEntry.sanitizedPath("/etc//passwd") == "etc/passwd")
        #expect(try ArchiveEntry.sanitizedPath("./") == "")
        #expect(throws: ImageError.self) { try ArchiveEntry.sanitizedPath("../etc/passwd") }
        #expect(throws: ImageError.self) { try ArchiveEntry.sanitizedPath("a/../../b") }
        #expect(try ArchiveEntry.resolvedLinkTarget("a/../b/c") == "b/c")
        #expect(throws: ImageError.self) { try ArchiveEntry.resolvedLinkTarget("a/../../b") }
    }

    /// A layer with a file, a whiteout, an opaque directory and an AUFS marker, made by tar.
    static func whiteoutLayer(_ scratch: ImageScratchDirectory) throws -> String {
        try scratch.write("layer/etc/.wh.hosts", "")
        try scratch.write("layer/var/.wh..wh..opq", "")
        try scratch.write("layer/var/new.txt", "new\n")
        try scratch.write("layer/.wh..wh.plnk", "")
        let blob = scratch.path + "/layer.tar.gz"
        let result = try ImageTestHost.run(["tar", "-czf", blob, "-C", scratch.path + "/layer", "."])
        #expect(result.status == 0, "\(result.output)")
        return blob
    }

    @Test("whiteouts become overlayfs whiteouts and opaque xattrs (root)")
    func whiteouts() throws {
        guard ImageTestHost.isRoot else {
            ImageTestHost.skipped("whiteout conversion creates 0/0 character devices and trusted.* xattrs")
            return
        }
        let scratch = try ImageScratchDirectory("whiteout")
        let blob = try Self.whiteoutLayer(scratch)
        let upper = scratch.path + "/upper"
        try ImageFileSystem.makeDirectories(upper)
        try LayerUnpacker.unpack(blob: blob, into: upper)

        var info = stat()
        #expect(lstat(upper + "/etc/hosts", &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFCHR)
        #expect(info.st_rdev == 0)
        var value = [UInt8](repeating: 0, count: 8)
        let length = lgetxattr(upper + "/var", "trusted.overlay.opaque", &value, value.count)
        #expect(length == 1 && value[0] == UInt8(ascii: "y"))
        #expect(lgetxattr(upper + "/etc", "trusted.overlay.opaque", &value, value.count) < 0, "only var is opaque")
        #expect(try ImageFileSystem.entries(of: upper + "/etc") == ["hosts"])
        #expect(try ImageFileSystem.entries(of: upper + "/var") == ["new.txt"])
        #expect(try ImageFileSystem.entries(of: upper).sorted() == ["etc", "var"], "no .wh. file survives")

        // And overlayfs agrees: stacked on a lower layer, the hidden entries are gone.
        try scratch.write("lower/etc/hosts", "127.0.0.1 localhost\n")
        try scratch.write("lower/etc/keep", "kept\n")
        try scratch.write("lower/var/old.txt", "old\n")
        let merged = scratch.path + "/merged"
        try ImageFileSystem.makeDirectories(merged)
        let script = """
            set -e
            mount -t overlay overlay -o ro,lowerdir=\(upper):\(scratch.path)/lower \(merged)
            cd \(merged)
            find . | sort
            """
        let result = try ImageTestHost.run(["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output == ".\n./etc\n./etc/keep\n./var\n./var/new.txt\n")
    }

    @Test("without root, a layer with whiteouts fails with a reason, and leaves nothing behind")
    func whiteoutsWithoutRoot() throws {
        guard !ImageTestHost.isRoot else {
            print("SKIPPED (runs only without root): the non-root whiteout error")
            return
        }
        let scratch = try ImageScratchDirectory("whiteout")
        let blob = try Self.whiteoutLayer(scratch)
        let upper = scratch.path + "/upper"
        try ImageFileSystem.makeDirectories(upper)
        let error = #expect(throws: ImageError.self) { try LayerUnpacker.unpack(blob: blob, into: upper) }
        #expect(error?.message.contains("needs root") == true)
    }
}
