import Foundation
import Testing
@testable import Runtime

/// A recipe whose host files live in a scratch directory, so the store can be exercised
/// without depending on what is installed.
struct ImageFixtureRecipe {
    let scratch: ImageScratchDirectory
    let recipe: ImageRecipe
    let hostRoot: String

    /// The mtime given to every host file, so `created` is predictable.
    static let hostFileTime: time_t = 1_704_164_645  // 2024-01-02T03:04:05Z

    init(reference: String? = nil) throws {
        scratch = try ImageScratchDirectory("fixture")
        hostRoot = scratch.path + "/host"
        try scratch.write("host/bin/tool", "#!/bin/sh\necho tool\n", mode: 0o755)
        try scratch.write("host/share/doc/readme.txt", "read me\n")
        try scratch.write("recipe/config.txt", "from the recipe folder\n")
        symlink("readme.txt", hostRoot + "/share/doc/link")
        for file in ["/bin/tool", "/share/doc/readme.txt"] {
            var times = [timespec(tv_sec: Self.hostFileTime, tv_nsec: 0), timespec(tv_sec: Self.hostFileTime, tv_nsec: 0)]
            utimensat(AT_FDCWD, hostRoot + file, &times, 0)
        }
        recipe = ImageRecipe(
            reference: reference,
            copy: [
                .init(from: hostRoot + "/bin/tool", to: "/usr/bin/tool"),
                .init(from: hostRoot + "/share", to: "/usr/share/fixture"),
            ],
            linksFromCommand: [
                .init(command: ["/bin/sh", "-c", "printf 'bin/alpha\\nusr/bin/tool\\nsbin/beta\\n'"], target: "/usr/bin/tool")
            ],
            directories: [.init(path: "/tmp", mode: "1777"), .init(path: "/data", mode: "0700", uid: 1000, gid: 1000)],
            symlinks: [.init(path: "/etc/motd.link", target: "/etc/motd")],
            files: [
                .init(path: "/etc/motd", content: "hello\n"),
                .init(path: "/etc/config.txt", source: "config.txt", mode: "0600"),
            ],
            config: ImageConfig(
                entrypoint: ["/usr/bin/tool"], cmd: ["--help"], env: ["A=1", "PATH=/usr/bin:/bin"], workingDir: "/data",
                user: "1000:1000", exposedPorts: ["8080/tcp", "53/udp"], stopSignal: "SIGQUIT"))
    }

    @discardableResult
    func build(into store: ImageStore, name: String = "fixture") throws -> ImageBuilder.BuiltImage {
        try ImageBuilder(recipesDirectory: scratch.path)
            .build(recipe: recipe, name: name, directory: scratch.path + "/recipe", into: store)
    }
}

@Suite("Image store")
struct ImageStoreTests {
    @Test("a built image resolves to its config and an unpacked layer with the recipe's files")
    func roundTrip() throws {
        let fixture = try ImageFixtureRecipe()
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path + "/images")
        let built = try fixture.build(into: store)
        #expect(built.reference == "docker.io/library/fixture:latest")

        // The layout is an OCI image layout.
        #expect(try storeDirectory.read("images/oci-layout") == #"{"imageLayoutVersion":"1.0.0"}"#)
        let index = try JSONSerialization.jsonObject(with: ImageFileSystem.read(store.root + "/index.json")) as? [String: Any]
        let manifests = index?["manifests"] as? [[String: Any]]
        #expect(manifests?.count == 1)
        #expect((manifests?.first?["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == built.reference)

        let image = try store.resolve("fixture")
        #expect(image.reference == "docker.io/library/fixture:latest")
        #expect(image.digest == built.digest)
        #expect(image.repoDigest == "docker.io/library/fixture@\(built.digest)")
        #expect(image.config.entrypoint == ["/usr/bin/tool"])
        #expect(image.config.cmd == ["--help"])
        #expect(image.config.env == ["A=1", "PATH=/usr/bin:/bin"])
        #expect(image.config.workingDir == "/data")
        #expect(image.config.user == "1000:1000")
        #expect(image.config.exposedPorts == ["53/udp", "8080/tcp"])
        #expect(image.config.stopSignal == "SIGQUIT")
        #expect(image.layerDirectories == [store.root + "/unpacked/" + built.layerDigest.dropFirst("sha256:".count)])

        let layer = try #require(image.layerDirectories.first)
        #expect(try String(decoding: ImageFileSystem.read(layer + "/usr/bin/tool"), as: UTF8.self) == "#!/bin/sh\necho tool\n")
        #expect(try ImageFileSystem.readLink(layer + "/usr/share/fixture/doc/link") == "readme.txt")
        #expect(try ImageFileSystem.readLink(layer + "/bin/alpha") == "/usr/bin/tool")
        #expect(try ImageFileSystem.readLink(layer + "/sbin/beta") == "/usr/bin/tool")
        #expect(ImageTestHost.fileType(layer + "/usr/bin/tool") == S_IFREG, "the link target itself stays a file")
        #expect(try ImageFileSystem.readLink(layer + "/etc/motd.link") == "/etc/motd")
        #expect(try String(decoding: ImageFileSystem.read(layer + "/etc/motd"), as: UTF8.self) == "hello\n")
        #expect(try String(decoding: ImageFileSystem.read(layer + "/etc/config.txt"), as: UTF8.self) == "from the recipe folder\n")
        var info = stat()
        #expect(stat(layer + "/usr/bin/tool", &info) == 0 && info.st_mode & 0o7777 == 0o755)
        #expect(stat(layer + "/etc/config.txt", &info) == 0 && info.st_mode & 0o7777 == 0o600)
        #expect(stat(layer + "/tmp", &info) == 0 && info.st_mode & 0o7777 == 0o1777)
        #expect(stat(layer, &info) == 0 && info.st_mode & 0o7777 == 0o755)
        if ImageTestHost.isRoot {
            #expect(stat(layer + "/data", &info) == 0 && info.st_uid == 1000 && info.st_gid == 1000)
        }

        // Other spellings find the same image, and a second resolve reuses the unpacked layer.
        try Data("marker".utf8).write(to: URL(fileURLWithPath: layer + "/.marker"))
        for spelling in ["docker.io/library/fixture:latest", "library/fixture", "fixture@\(built.digest)", built.digest, built.imageID] {
            let again = try store.resolve(spelling)
            #expect(again.digest == built.digest, "\(spelling)")
            #expect(again.layerDirectories == image.layerDirectories)
        }
        #expect(ImageFileSystem.exists(layer + "/.marker"))
        #expect(try store.resolve(built.digest).reference == built.reference, "a digest resolves to the image's name")
    }

    @Test("list reports reference, digest, content size and created time")
    func listing() throws {
        let fixture = try ImageFixtureRecipe()
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        #expect(try store.list().isEmpty)
        let built = try fixture.build(into: store)
        let summaries = try store.list()
        #expect(summaries.count == 1)
        let summary = try #require(summaries.first)
        #expect(summary.reference == built.reference)
        #expect(summary.digest == built.digest)
        #expect(summary.imageID == built.imageID)
        var expectedSize: Int64 = 0
        for digest in [built.digest, built.imageID, built.layerDigest] {
            var info = stat()
            #expect(stat(store.blobPath(try ContentDigest(parsing: digest)), &info) == 0)
            expectedSize += Int64(info.st_size)
        }
        #expect(summary.size == expectedSize)
        // The newest host file's mtime, not the time of the build.
        #expect(summary.created == Date(timeIntervalSince1970: Double(ImageFixtureRecipe.hostFileTime)))
        #expect(store.contains("fixture:latest"))
        #expect(!store.contains("fixture:other"))
    }

    @Test("remove deletes the reference, its blobs and its unpacked layers")
    func removal() throws {
        let fixture = try ImageFixtureRecipe()
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        try fixture.build(into: store)
        try fixture.build(into: store, name: "copy")
        let layer = try #require(try store.resolve("fixture").layerDirectories.first)

        #expect(try store.remove("docker.io/library/fixture") == "docker.io/library/fixture:latest")
        // "copy" shares the layer, so the layer stays.
        #expect(ImageFileSystem.isDirectory(layer))
        #expect(try store.list().map(\.reference) == ["docker.io/library/copy:latest"])

        try store.remove("copy")
        #expect(try store.list().isEmpty)
        #expect(!ImageFileSystem.exists(layer))
        #expect(try ImageFileSystem.entries(of: store.root + "/blobs/sha256").isEmpty)
        #expect(try ImageFileSystem.entries(of: store.root + "/unpacked").isEmpty)
        #expect(throws: ImageError.self) { try store.remove("copy") }

        // By digest, every name of the image goes (an alias built from the same recipe).
        let original = try fixture.build(into: store)
        let alias = try ImageFixtureRecipe(reference: "example.com/alias:1").build(into: store, name: "fixture")
        #expect(alias.digest == original.digest)
        #expect(try store.list().count == 2)
        try store.remove(original.digest)
        #expect(try store.list().isEmpty)
    }

    @Test("a missing image fails like an upstream pull, and says what labnode has")
    func missingImage() throws {
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        let empty = #expect(throws: ImageError.self) { try store.resolve("foo") }
        #expect(empty?.code == .notFound)
        #expect(
            empty?.message == "failed to resolve reference \"docker.io/library/foo:latest\": not found in the local image store "
                + "(labnode works offline; images: none; load others with labnode image import)")

        for name in ["busybox", "nginx", "labnode"] {
            try ImageFixtureRecipe(reference: name).build(into: store, name: name)
        }
        let error = #expect(throws: ImageError.self) { try store.resolve("foo") }
        #expect(
            error?.message == "failed to resolve reference \"docker.io/library/foo:latest\": not found in the local image store "
                + "(labnode works offline; images: busybox, labnode, nginx; load others with labnode image import)")
        let tagged = #expect(throws: ImageError.self) { try store.resolve("registry.k8s.io/pause:3.9") }
        #expect(tagged?.message.hasPrefix("failed to resolve reference \"registry.k8s.io/pause:3.9\": not found") == true)
        let invalid = #expect(throws: ImageError.self) { try store.resolve("Foo") }
        #expect(invalid?.code == .invalidReference)
    }

    @Test("builds are reproducible: same inputs, same layer and manifest digests")
    func determinism() throws {
        let fixture = try ImageFixtureRecipe()
        let first = try ImageScratchDirectory("store")
        let second = try ImageScratchDirectory("store")
        let a = try fixture.build(into: try ImageStore(root: first.path))
        let b = try fixture.build(into: try ImageStore(root: second.path))
        #expect(a == b)

        // No timestamp in the gzip header (bytes 4-7 are MTIME).
        let blob = try ImageFileSystem.read(try ImageStore(root: first.path).blobPath(try ContentDigest(parsing: a.layerDigest)))
        #expect(Array(blob.prefix(8)) == [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0])

        // Touching a host file changes `created` (so the manifest) but not the layer.
        var times = [timespec(tv_sec: ImageFixtureRecipe.hostFileTime + 60, tv_nsec: 0), timespec(tv_sec: ImageFixtureRecipe.hostFileTime + 60, tv_nsec: 0)]
        utimensat(AT_FDCWD, fixture.hostRoot + "/bin/tool", &times, 0)
        let touched = try fixture.build(into: try ImageStore(root: first.path))
        #expect(touched.layerDigest == a.layerDigest)
        #expect(touched.digest != a.digest)

        // Changing content changes the layer.
        try fixture.scratch.write("host/share/doc/readme.txt", "changed\n")
        let changed = try fixture.build(into: try ImageStore(root: first.path))
        #expect(changed.layerDigest != a.layerDigest)
        // Rebuilding replaced the tag and dropped the blobs only the old image used.
        let blobs = try ImageFileSystem.entries(of: first.path + "/blobs/sha256")
        #expect(blobs.count == 3)
    }

    @Test("recipe mistakes are reported with the recipe's name and the path")
    func recipeErrors() throws {
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        let builder = ImageBuilder(recipesDirectory: storeDirectory.path)
        let twice = ImageRecipe(
            symlinks: [.init(path: "/etc/x", target: "/y")], files: [.init(path: "/etc/x", content: "z")])
        let conflict = #expect(throws: ImageError.self) {
            try builder.build(recipe: twice, name: "broken", directory: storeDirectory.path, into: store)
        }
        #expect(conflict?.message == "recipe broken: /etc/x is defined twice: as a symlink to /y and as an inline file")

        let missing = ImageRecipe(copy: [.init(from: "/nonexistent/labnode-test-file")])
        let notInstalled = #expect(throws: ImageError.self) {
            try builder.build(recipe: missing, name: "broken", directory: storeDirectory.path, into: store)
        }
        #expect(notInstalled?.message.contains("/nonexistent/labnode-test-file, which is not on this machine") == true)

        let variable = ImageRecipe(copy: [.init(from: "${labnode}", to: "/x")])
        let unknown = #expect(throws: ImageError.self) {
            try builder.build(recipe: variable, name: "broken", directory: storeDirectory.path, into: store)
        }
        #expect(unknown?.message == "recipe broken: copy[0] uses ${labnode}, which this build was not given")

        let badMode = ImageRecipe(directories: [.init(path: "/tmp", mode: "999")])
        #expect(throws: ImageError.self) {
            try builder.build(recipe: badMode, name: "broken", directory: storeDirectory.path, into: store)
        }
        #expect(try store.list().isEmpty)

        let json = Data(#"{"copy": [{"to": "/x"}]}"#.utf8)
        let decoding = #expect(throws: ImageError.self) { try ImageRecipe.decode(json, file: "images/x/recipe.json") }
        #expect(decoding?.message.contains("missing \"from\"") == true)
    }

    @Test("a stripped copy is made in the store's scratch folder and removed, also when the build fails")
    func strippedCopyIsRemoved() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/strip") else {
            Issue.record("/usr/bin/strip (binutils) is missing: stripDebug copies cannot be tested here")
            return
        }
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path + "/images")
        let builder = ImageBuilder(recipesDirectory: storeDirectory.path)
        let elf = try #require(["/usr/bin/true", "/bin/true"].first { FileManager.default.isExecutableFile(atPath: $0) })
        let tmpBefore = try ImageFileSystem.entries(of: NSTemporaryDirectory()).filter { $0.hasPrefix("labnode-strip-") }

        let fine = ImageRecipe(copy: [.init(from: elf, to: "/bin/true", stripDebug: true)])
        try builder.build(recipe: fine, name: "stripped", directory: storeDirectory.path, into: store)
        #expect(try ImageFileSystem.entries(of: store.temporaryDirectory).isEmpty)

        // The copy is stripped before the conflicting file is reached.
        let broken = ImageRecipe(
            copy: [.init(from: elf, to: "/bin/true", stripDebug: true)], files: [.init(path: "/bin/true", content: "x")])
        #expect(throws: ImageError.self) {
            try builder.build(recipe: broken, name: "broken", directory: storeDirectory.path, into: store)
        }
        #expect(try ImageFileSystem.entries(of: store.temporaryDirectory).isEmpty)
        let tmpAfter = try ImageFileSystem.entries(of: NSTemporaryDirectory()).filter { $0.hasPrefix("labnode-strip-") }
        #expect(Set(tmpAfter).subtracting(tmpBefore).isEmpty)
    }

    @Test("the sweep removes scratch files whose maker died and keeps those of running processes")
    func sweepAbandonedScratch() throws {
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path + "/images")
        let finished = Process()
        finished.executableURL = URL(fileURLWithPath: "/bin/true")
        try finished.run()
        finished.waitUntilExit()
        let dead = finished.processIdentifier
        let names = ["strip-\(dead)-1", "blob-\(dead)-2", "import-\(dead)-abcdef", "strip-\(getpid())-3", "notes"]
        for name in names {
            #expect(FileManager.default.createFile(atPath: store.temporaryDirectory + "/" + name, contents: Data("x".utf8)))
        }
        try ImageFileSystem.makeDirectories(store.temporaryDirectory + "/import-\(dead)-dir/sub")

        let removed = store.sweepAbandonedScratch()
        #expect(Set(removed) == ["strip-\(dead)-1", "blob-\(dead)-2", "import-\(dead)-abcdef", "import-\(dead)-dir"])
        #expect(Set(try ImageFileSystem.entries(of: store.temporaryDirectory)) == ["strip-\(getpid())-3", "notes"])
    }
}
