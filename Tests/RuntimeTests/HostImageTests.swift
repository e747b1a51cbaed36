import Foundation
import Testing
@testable import Runtime

/// The real recipes over the host's Debian packages (busybox-static, nginx).
@Suite("Images from host packages")
struct HostImageTests {
    @Test("ELF reading: a static binary needs nothing, nginx names its loader and libc")
    func elf() throws {
        if ImageTestHost.hasBusybox {
            let busybox = try #require(try ELFFile.read(path: "/bin/busybox"))
            #expect(busybox.interpreter == nil)
            #expect(busybox.needed.isEmpty)
        }
        #expect(try ELFFile.read(path: ImageTestHost.recipesDirectory + "/README.md") == nil, "a text file is not ELF")
        let me = try #require(try ELFFile.read(path: ImageTestHost.testExecutable))
        #expect(me.interpreter?.hasPrefix("/") == true)
        #expect(me.needed.contains("libc.so.6"))
        #expect(me.needed.contains("libswiftCore.so") || me.runpath.isEmpty, "a Swift program links the Swift runtime")
    }

    /// The resolver must find exactly what the real loader finds (`ldd` asks it).
    static func lddPaths(_ program: String) throws -> Set<String> {
        let result = try ImageTestHost.run(["ldd", program])
        #expect(result.status == 0, "\(result.output)")
        var paths = Set<String>()
        for line in result.output.split(separator: "\n") {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if let arrow = words.firstIndex(of: "=>"), arrow + 1 < words.count, words[arrow + 1].hasPrefix("/") {
                paths.insert(String(words[arrow + 1]))
            } else if let first = words.first, first.hasPrefix("/") {
                paths.insert(String(first))
            }
        }
        return paths
    }

    @Test("the shared-library closure matches ldd, for nginx and for a Swift program")
    func closureMatchesLdd() throws {
        var programs = [ImageTestHost.testExecutable]
        if ImageTestHost.hasNginx { programs.append("/usr/sbin/nginx") }
        for program in programs {
            let closure = try SharedLibraryResolver.host().closure(of: program, imagePath: "/usr/bin/program")
            let resolved = Set(closure.map { try? ImageFileSystem.realPath($0.hostPath) }.compactMap { $0 })
            let expected = Set(try Self.lddPaths(program).map { try ImageFileSystem.realPath($0) })
            #expect(resolved == expected, "\(program)")
            // Libraries keep their host path in the image, so the loader's defaults and RUNPATH find them.
            #expect(closure.allSatisfy { $0.imagePath == $0.hostPath || $0.imagePath.hasPrefix("/lib") || $0.imagePath.hasPrefix("/usr/lib") })
        }
    }

    @Test("busybox builds well under a second, reproducibly", .enabled(if: ImageTestHost.hasBusybox))
    func busyboxBuild() throws {
        let first = try ImageScratchDirectory("store")
        let second = try ImageScratchDirectory("store")
        let builder = ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory)
        let started = Date()
        let a = try builder.build("busybox", into: try ImageStore(root: first.path))
        let elapsed = Date().timeIntervalSince(started)
        #expect(elapsed < 1.0, "busybox took \(elapsed) s")
        let b = try builder.build("busybox", into: try ImageStore(root: second.path))
        #expect(a == b)
        #expect(a.reference == "docker.io/library/busybox:latest")
        let image = try ImageStore(root: first.path).resolve("busybox")
        #expect(image.config.cmd == ["sh"])
        let layer = try #require(image.layerDirectories.first)
        for applet in ["bin/sh", "bin/cat", "bin/sleep", "usr/bin/wget", "usr/bin/nslookup"] {
            #expect(try ImageFileSystem.readLink(layer + "/" + applet) == "/bin/busybox", "\(applet)")
        }
        let passwd = String(decoding: try ImageFileSystem.read(layer + "/etc/passwd"), as: UTF8.self)
        #expect(passwd.hasPrefix("root:x:0:0:"))
        #expect(passwd.contains("\nnobody:x:65534:65534:"))
    }

    @Test("the nginx image has its libraries, config and welcome page", .enabled(if: ImageTestHost.hasNginx))
    func nginxBuild() throws {
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        try ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory).build("nginx", into: store)
        let image = try store.resolve("nginx")
        #expect(image.config.cmd == ["nginx", "-g", "daemon off;"])
        #expect(image.config.exposedPorts == ["80/tcp"])
        let layer = try #require(image.layerDirectories.first)
        let elf = try #require(try ELFFile.read(path: "/usr/sbin/nginx"))
        #expect(ImageFileSystem.exists(layer + (elf.interpreter ?? "/missing")))
        for library in try Self.lddPaths("/usr/sbin/nginx") where library != elf.interpreter {
            let name = (library as NSString).lastPathComponent
            let found = ["/lib/x86_64-linux-gnu/", "/usr/lib/x86_64-linux-gnu/", "/lib64/", "/usr/lib64/", "/lib/", "/usr/lib/"]
                .contains { ImageFileSystem.exists(layer + $0 + name) }
            #expect(found, "\(name) is in the image")
        }
        let config = String(decoding: try ImageFileSystem.read(layer + "/etc/nginx/nginx.conf"), as: UTF8.self)
        #expect(config.contains("error_log  /dev/stderr"))
        #expect(config.contains("access_log  /dev/stdout"))
        let page = String(decoding: try ImageFileSystem.read(layer + "/usr/share/nginx/html/index.html"), as: UTF8.self)
        #expect(page.contains("<title>Welcome to nginx!</title>"))
        #expect(page.contains("<h1>Welcome to nginx!</h1>"))
        #expect(ImageFileSystem.isDirectory(layer + "/var/lib/nginx/body"))
        #expect(try ImageFileSystem.readLink(layer + "/var/log/nginx/access.log") == "/dev/stdout")
    }

    @Test("busybox runs in a chroot of its image: sh, cat, sleep, echo (root)", .enabled(if: ImageTestHost.hasBusybox))
    func busyboxRuns() throws {
        guard ImageTestHost.isRoot else { return ImageTestHost.skipped("chroot into the busybox image") }
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        try ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory).build("busybox", into: store)
        let layer = try #require(try store.resolve("busybox").layerDirectories.first)
        let echo = try ImageTestHost.run(["/usr/sbin/chroot", layer, "/bin/busybox", "echo", "ok"])
        #expect(echo.status == 0)
        #expect(echo.output == "ok\n")
        let shell = try ImageTestHost.run(["/usr/sbin/chroot", layer, "/bin/sh", "-c", "echo piped | cat; sleep 0.01; cat /etc/group | grep -c nogroup"])
        #expect(shell.status == 0, "\(shell.output)")
        #expect(shell.output == "piped\n1\n")
    }

    /// Runs `script` in a new network namespace (loopback only, created by unshare and gone
    /// when it exits) and a private mount namespace, so nothing reaches the host's network
    /// and every mount disappears with the namespace.
    static func inPrivateNamespaces(_ script: String) throws -> ImageTestHost.Result {
        try ImageTestHost.run(["unshare", "--net", "--mount", "--propagation", "private", "--fork", "/bin/sh", "-c", "ip link set lo up\n" + script])
    }

    @Test("busybox nslookup asks a DNS server in a private network namespace (root)", .enabled(if: ImageTestHost.hasBusybox))
    func busyboxNslookup() throws {
        guard ImageTestHost.isRoot else { return ImageTestHost.skipped("busybox nslookup in a private network namespace") }
        let scratch = try ImageScratchDirectory("dns")
        let store = try ImageStore(root: scratch.path + "/images")
        try ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory).build("busybox", into: store)
        let layer = try #require(try store.resolve("busybox").layerDirectories.first)
        // A tiny DNS responder: every A question gets 192.0.2.10 (a documentation address).
        try scratch.write("dns.py", """
            import socket, struct, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 53))
            s.settimeout(10)
            open(sys.argv[1], "w").close()
            while True:
                try:
                    data, peer = s.recvfrom(512)
                except socket.timeout:
                    break
                end = 12
                while data[end] != 0:
                    end += data[end] + 1
                qtype = struct.unpack("!H", data[end + 1:end + 3])[0]
                question = data[12:end + 5]
                answer = b""
                if qtype == 1:
                    answer = b"\\xc0\\x0c" + struct.pack("!HHIH", 1, 1, 30, 4) + socket.inet_aton("192.0.2.10")
                header = struct.pack("!HHHHHH", struct.unpack("!H", data[:2])[0], 0x8180, 1, 1 if answer else 0, 0, 0)
                s.sendto(header + question + answer, peer)
            """)
        let result = try Self.inPrivateNamespaces("""
            python3 \(scratch.path)/dns.py \(scratch.path)/ready &
            dns=$!
            for i in $(seq 1 100); do [ -e \(scratch.path)/ready ] && break; sleep 0.05; done
            /usr/sbin/chroot \(layer) /usr/bin/nslookup web.default.svc.cluster.local 127.0.0.1
            status=$?
            kill $dns
            exit $status
            """)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("web.default.svc.cluster.local"), "\(result.output)")
        #expect(result.output.contains("192.0.2.10"), "\(result.output)")
    }

    @Test("nginx serves its welcome page from the image, fetched by busybox wget (root)", .enabled(if: ImageTestHost.hasNginx && ImageTestHost.hasBusybox))
    func nginxServes() throws {
        guard ImageTestHost.isRoot else { return ImageTestHost.skipped("nginx in a chroot of its image, in a private network namespace") }
        let scratch = try ImageScratchDirectory("nginx")
        let store = try ImageStore(root: scratch.path + "/images")
        let builder = ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory)
        try builder.build("nginx", into: store)
        try builder.build("busybox", into: store)
        let nginx = try store.resolve("nginx")
        let busybox = try #require(try store.resolve("busybox").layerDirectories.first)
        // The unpacked layer stays read-only: nginx runs on an overlay with a scratch upper
        // layer, with /proc and a minimal /dev, as a container runtime would set it up.
        let root = scratch.path + "/merged"
        let lower = nginx.layerDirectories.reversed().joined(separator: ":")
        let result = try Self.inPrivateNamespaces("""
            set -e
            mkdir -p \(scratch.path)/upper \(scratch.path)/work \(root)
            mount -t overlay overlay -o lowerdir=\(lower),upperdir=\(scratch.path)/upper,workdir=\(scratch.path)/work \(root)
            mount -t proc proc \(root)/proc
            mount -t tmpfs -o mode=755 tmpfs \(root)/dev
            ln -s /proc/self/fd/1 \(root)/dev/stdout
            ln -s /proc/self/fd/2 \(root)/dev/stderr
            mknod -m 666 \(root)/dev/null c 1 3
            /usr/sbin/chroot \(root) /usr/sbin/nginx -g 'daemon off;' > \(scratch.path)/nginx.log 2>&1 &
            nginx=$!
            fetched=no
            for i in $(seq 1 100); do
                if /usr/sbin/chroot \(busybox) /usr/bin/wget -q -O - http://127.0.0.1/ > \(scratch.path)/page.html 2>/dev/null; then
                    fetched=yes
                    break
                fi
                sleep 0.05
            done
            kill -QUIT $nginx
            wait $nginx || true
            echo "fetched=$fetched"
            """)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("fetched=yes"), "\(result.output)\n\((try? scratch.read("nginx.log")) ?? "")")
        let page = (try? scratch.read("page.html")) ?? ""
        #expect(page.contains("Welcome to nginx!"))
        let log = (try? scratch.read("nginx.log")) ?? ""
        #expect(log.contains("\"GET / HTTP/1.1\" 200"), "the access log goes to stdout: \(log)")
        #expect(log.contains("start worker process"), "the error log (notice level) goes to stderr: \(log)")
        #expect(!ImageFileSystem.exists(nginx.layerDirectories[0] + "/run/nginx.pid"), "the unpacked layer was not written to")
    }

    @Test("the labnode recipe packs a Swift program whose loader finds every library in the image (root)")
    func labnodeImage() throws {
        guard ImageTestHost.isRoot else { return ImageTestHost.skipped("ld.so --list inside the labnode image") }
        let storeDirectory = try ImageScratchDirectory("store")
        let store = try ImageStore(root: storeDirectory.path)
        let builder = ImageBuilder(recipesDirectory: ImageTestHost.recipesDirectory, variables: ["labnode": ImageTestHost.testExecutable])
        try builder.build("labnode", into: store)
        let image = try store.resolve("labnode")
        #expect(image.config.entrypoint == ["/usr/bin/labnode"])
        // Symbols bound at start, before the DNS add-on's start-up trim (its README).
        #expect(image.config.env.contains("LD_BIND_NOW=1"), "\(image.config.env)")
        let layer = try #require(image.layerDirectories.first)
        let interpreter = try #require(try ELFFile.read(path: ImageTestHost.testExecutable)?.interpreter)
        let listing = try ImageTestHost.run(["/usr/sbin/chroot", layer, interpreter, "--list", "/usr/bin/labnode"])
        #expect(listing.status == 0, "\(listing.output)")
        #expect(!listing.output.contains("not found"), "\(listing.output)")
        #expect(listing.output.contains("libswiftCore.so"), "\(listing.output)")
    }
}
