import Foundation
import Testing
@testable import Runtime

/// Archives are made here with the system's GNU tar, independently of the code under test.
@Suite("Image import")
struct ImageImportTests {
    /// Makes a layer tar (optionally gzipped) of `files` and returns its path.
    static func makeLayer(_ scratch: ImageScratchDirectory, _ name: String, files: [String: String], gzip: Bool) throws -> String {
        let directory = "src-\(name)"
        for (path, content) in files { try scratch.write(directory + "/" + path, content) }
        let output = scratch.path + "/\(name).tar" + (gzip ? ".gz" : "")
        let result = try ImageTestHost.run(["tar", gzip ? "-czf" : "-cf", output, "-C", scratch.path + "/" + directory, "."])
        #expect(result.status == 0, "\(result.output)")
        return output
    }

    static func json(_ object: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func digest(_ data: Data) -> String { ContentDigest.of(data).description }

    static func digest(ofFile path: String) throws -> String { digest(try ImageFileSystem.read(path)) }

    @Test("an OCI layout archive imports with its names, picking this machine from an index")
    func ociArchive() throws {
        let scratch = try ImageScratchDirectory("oci")
        let layout = "layout"
        try scratch.write(layout + "/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        func addBlob(_ data: Data) throws -> (String, Int) {
            let digest = Self.digest(data)
            try ImageFileSystem.makeDirectories(scratch.path + "/" + layout + "/blobs/sha256")
            try data.write(to: URL(fileURLWithPath: scratch.path + "/" + layout + "/blobs/sha256/" + digest.dropFirst(7)))
            return (digest, data.count)
        }
        let layerPath = try Self.makeLayer(scratch, "layer", files: ["app/hello.txt": "hello from oci\n"], gzip: true)
        let layerData = try ImageFileSystem.read(layerPath)
        let (layerDigest, layerSize) = try addBlob(layerData)
        let (configDigest, configSize) = try addBlob(try Self.json([
            "architecture": ImagePlatform.host.architecture, "os": "linux", "created": "2024-02-03T04:05:06Z",
            "config": ["Cmd": ["/app/run"], "WorkingDir": "/app", "ExposedPorts": ["9000/tcp": [:] as [String: Any]]],
            "rootfs": ["type": "layers", "diff_ids": ["sha256:" + String(repeating: "0", count: 64)]],
        ]))
        let (manifestDigest, manifestSize) = try addBlob(try Self.json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": configDigest, "size": configSize],
            "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layerDigest, "size": layerSize]],
        ]))
        // A multi-platform index whose other entry's blobs are absent: import must not need them.
        let (indexDigest, indexSize) = try addBlob(try Self.json([
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                [
                    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + String(repeating: "e", count: 64),
                    "size": 100, "platform": ["os": "linux", "architecture": "s390x"],
                ],
                [
                    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
                    "platform": ["os": "linux", "architecture": ImagePlatform.host.architecture],
                ],
            ],
        ]))
        try scratch.write(layout + "/index.json", String(decoding: try Self.json([
            "schemaVersion": 2,
            "manifests": [
                [
                    "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifestDigest, "size": manifestSize,
                    "annotations": ["org.opencontainers.image.ref.name": "example.com/team/app:v1"],
                ],
                [
                    "mediaType": "application/vnd.oci.image.index.v1+json", "digest": indexDigest, "size": indexSize,
                    "annotations": ["org.opencontainers.image.ref.name": "v2"],
                ],
            ],
        ]), as: UTF8.self))
        let archive = scratch.path + "/app-oci.tar"
        #expect(try ImageTestHost.run(["tar", "-cf", archive, "-C", scratch.path + "/" + layout, "."]).status == 0)

        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        // "v2" is only a tag: without a base name the archive cannot say whose.
        let needsName = #expect(throws: ImageError.self) { try store.importArchive(path: archive) }
        #expect(needsName?.message.contains("--base-name") == true)

        let imported = try store.importArchive(path: archive, baseName: "example.com/team/app")
        #expect(imported == ["example.com/team/app:v1", "example.com/team/app:v2"])
        let v1 = try store.resolve("example.com/team/app:v1")
        let v2 = try store.resolve("example.com/team/app:v2")
        #expect(v1.digest == manifestDigest)
        #expect(v2.digest == manifestDigest, "the index was reduced to this machine's manifest")
        #expect(v2.config.cmd == ["/app/run"])
        #expect(v2.config.workingDir == "/app")
        #expect(v2.config.exposedPorts == ["9000/tcp"])
        let layer = try #require(v2.layerDirectories.first)
        #expect(try String(decoding: ImageFileSystem.read(layer + "/app/hello.txt"), as: UTF8.self) == "hello from oci\n")
        #expect(try store.list().map(\.created) == [
            Date(timeIntervalSince1970: 1_706_933_106), Date(timeIntervalSince1970: 1_706_933_106),
        ])
    }

    @Test("a docker save tarball imports with its tags, as is and gzip-compressed")
    func dockerSave() throws {
        for compressed in [false, true] {
            let scratch = try ImageScratchDirectory("save")
            let root = "save"
            // Two images sharing a layer; the old docker save format links the duplicate.
            let one = try Self.makeLayer(scratch, "one", files: ["hello.txt": "layer one\n"], gzip: false)
            let two = try Self.makeLayer(scratch, "two", files: ["second.txt": "layer two\n"], gzip: false)
            let diffOne = try Self.digest(ofFile: one)
            let diffTwo = try Self.digest(ofFile: two)
            let idOne = String(repeating: "1", count: 64)
            let idTwo = String(repeating: "2", count: 64)
            let idShared = String(repeating: "3", count: 64)
            try ImageFileSystem.makeDirectories(scratch.path + "/\(root)/\(idOne)")
            try ImageFileSystem.makeDirectories(scratch.path + "/\(root)/\(idTwo)")
            try ImageFileSystem.makeDirectories(scratch.path + "/\(root)/\(idShared)")
            #expect(rename(one, scratch.path + "/\(root)/\(idOne)/layer.tar") == 0)
            #expect(rename(two, scratch.path + "/\(root)/\(idTwo)/layer.tar") == 0)
            #expect(symlink("../\(idOne)/layer.tar", scratch.path + "/\(root)/\(idShared)/layer.tar") == 0)

            let configA = try Self.json([
                "architecture": "amd64", "os": "linux", "created": "2023-05-19T20:19:22.751615844Z",
                "config": ["Cmd": ["/bin/true"], "Env": ["X=1"], "Entrypoint": NSNull()],
                "rootfs": ["type": "layers", "diff_ids": [diffOne, diffTwo]],
            ])
            let configB = try Self.json([
                "architecture": "amd64", "os": "linux", "config": ["User": "nobody"],
                "rootfs": ["type": "layers", "diff_ids": [diffOne]],
            ])
            let configAName = String(Self.digest(configA).dropFirst(7)) + ".json"
            let configBName = String(Self.digest(configB).dropFirst(7)) + ".json"
            try configA.write(to: URL(fileURLWithPath: scratch.path + "/\(root)/\(configAName)"))
            try configB.write(to: URL(fileURLWithPath: scratch.path + "/\(root)/\(configBName)"))
            try scratch.write(root + "/manifest.json", String(decoding: try Self.json([
                ["Config": configAName, "RepoTags": ["a:1", "a:latest"], "Layers": ["\(idOne)/layer.tar", "\(idTwo)/layer.tar"]],
                ["Config": configBName, "RepoTags": ["registry.local:5000/b:2"], "Layers": ["\(idShared)/layer.tar"]],
            ]), as: UTF8.self))
            try scratch.write(root + "/repositories", #"{"a":{"1":"\#(idTwo)","latest":"\#(idTwo)"}}"#)
            let archive = scratch.path + "/save.tar" + (compressed ? ".gz" : "")
            let tar = try ImageTestHost.run(["tar", compressed ? "-czf" : "-cf", archive, "-C", scratch.path + "/" + root, "."])
            #expect(tar.status == 0, "\(tar.output)")

            let storeDirectory = try ImageScratchDirectory("store")
            let store = try ImageStore(root: storeDirectory.path)
            let imported = try store.importArchive(path: archive)
            #expect(imported == ["docker.io/library/a:1", "docker.io/library/a:latest", "registry.local:5000/b:2"])

            let a = try store.resolve("a:1")
            #expect(a.imageID == Self.digest(configA), "the config is kept byte for byte, so Docker's image ID survives")
            #expect(a.config.cmd == ["/bin/true"])
            #expect(a.config.entrypoint == nil)
            #expect(a.config.env == ["X=1"])
            #expect(a.layerDirectories.count == 2)
            #expect(try String(decoding: ImageFileSystem.read(a.layerDirectories[0] + "/hello.txt"), as: UTF8.self) == "layer one\n")
            #expect(try String(decoding: ImageFileSystem.read(a.layerDirectories[1] + "/second.txt"), as: UTF8.self) == "layer two\n")
            #expect(try store.resolve("a").digest == a.digest)

            let b = try store.resolve("registry.local:5000/b:2")
            #expect(b.config.user == "nobody")
            #expect(b.layerDirectories == [a.layerDirectories[0]], "the shared layer is unpacked once")

            // Layers are stored gzip-compressed, as a push would.
            for directory in a.layerDirectories {
                let hex = (directory as NSString).lastPathComponent
                #expect(Array(try ImageFileSystem.read(store.root + "/blobs/sha256/" + hex).prefix(2)) == [0x1f, 0x8b])
            }
            let created = try #require(try store.list().first { $0.reference == "docker.io/library/a:1" }?.created)
            #expect(abs(created.timeIntervalSince1970 - 1_684_527_562.751615844) < 0.001)
        }
    }

    @Test("archives that are not images are refused clearly")
    func invalidArchives() throws {
        let scratch = try ImageScratchDirectory("bad")
        try scratch.write("content/readme.txt", "not an image\n")
        let archive = scratch.path + "/bad.tar"
        #expect(try ImageTestHost.run(["tar", "-cf", archive, "-C", scratch.path + "/content", "."]).status == 0)
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        let notImage = #expect(throws: ImageError.self) { try store.importArchive(path: archive) }
        #expect(notImage?.code == .invalidArchive)
        #expect(notImage?.message == "\(archive) is neither an OCI image layout (index.json) nor a docker save tarball (manifest.json)")

        let missing = #expect(throws: ImageError.self) { try store.importArchive(path: scratch.path + "/absent.tar") }
        #expect(missing?.message == "cannot import \(scratch.path)/absent.tar: no such file")

        // A link that leaves the archive must not pull a host file into the store.
        try scratch.write("escape/manifest.json", "[]")
        #expect(symlink("/etc/passwd", scratch.path + "/escape/passwd") == 0)
        #expect(symlink("../../../../etc/shadow", scratch.path + "/escape/shadow") == 0)
        let escape = scratch.path + "/escape.tar"
        #expect(try ImageTestHost.run(["tar", "-cf", escape, "-C", scratch.path + "/escape", "shadow"]).status == 0)
        let refused = #expect(throws: ImageError.self) { try store.importArchive(path: escape) }
        #expect(refused?.message.contains("outside the archive") == true)
        #expect(try ImageFileSystem.entries(of: store.root + "/tmp").isEmpty, "the scratch copy is cleaned up")
    }
}
