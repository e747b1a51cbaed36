import Foundation
import Testing
import Cluster

@Suite("Kubeconfig")
struct KubeconfigTests {
    /// Somebody's real kubeconfig: other clusters, an old labnode entry with settings that would
    /// now be wrong, quoted strings that look like numbers, flow style, exec plugins, extensions.
    static let existing = """
    # my clusters
    apiVersion: v1
    kind: Config
    preferences:
      colors: true
    current-context: prod
    clusters:
    - cluster:
        server: https://prod.example:6443
        certificate-authority-data: QUJD
        extensions:
        - name: client.authentication.k8s.io/exec
          extension:
            audience: "true"
      name: prod
    - cluster:
        server: https://old-labnode:6443
        insecure-skip-tls-verify: true
      name: labnode
    - cluster:
        server: http://localhost:8080
      name: staging
    contexts:
    - context:
        cluster: prod
        user: prod-admin
        namespace: "0123"
      name: prod
    - context:
        cluster: labnode
        user: labnode
        namespace: shop
      name: labnode
    users:
    - name: prod-admin
      user:
        token: "12345"
        exec:
          apiVersion: client.authentication.k8s.io/v1
          command: aws
          args: ["eks", "get-token", "--cluster-name", "prod"]
          env: null
          interactiveMode: Never
    - name: labnode
      user:
        token: stale
    extensions:
    - name: my-tool
      extension:
        enabled: yes
        retries: 3
    """

    static let config = Kubeconfig(
        server: "https://127.0.0.1:6443",
        certificateAuthorityPEM: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
        clientCertificatePEM: "-----BEGIN CERTIFICATE-----\nADMIN\n-----END CERTIFICATE-----\n",
        clientKeyPEM: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
    )

    /// The document with everything labnode may touch taken out.
    func withoutLabnode(_ document: KubeconfigDocument) -> KubeconfigDocument {
        var copy = document
        for section in KubeconfigDocument.Section.allCases {
            copy.removeEntry("labnode", in: section)
        }
        copy.currentContext = nil
        return copy
    }

    @Test func mergeIntoMissingFileCreatesDirectoryAndFile() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/home/.kube/config"
        try Self.config.merge(into: path)

        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect(attributes[.posixPermissions] as? Int == 0o600)
        let document = try KubeconfigDocument(contentsOfFile: path)
        #expect(document.currentContext == "labnode")
        #expect(document.names(in: .clusters) == ["labnode"])
        #expect(document.names(in: .users) == ["labnode"])
        #expect(document.names(in: .contexts) == ["labnode"])
        let cluster = try #require(document.entry("labnode", in: .clusters))
        #expect(cluster["server"] == "https://127.0.0.1:6443")
        #expect(cluster["certificate-authority-data"].flatMap { Data(base64Encoded: $0) }
            == Data(Self.config.certificateAuthorityPEM.utf8))
        let user = try #require(document.entry("labnode", in: .users))
        #expect(user["client-certificate-data"].flatMap { Data(base64Encoded: $0) } == Data(Self.config.clientCertificatePEM.utf8))
        #expect(user["client-key-data"].flatMap { Data(base64Encoded: $0) } == Data(Self.config.clientKeyPEM.utf8))
        #expect(document.entry("labnode", in: .contexts) == ["cluster": "labnode", "user": "labnode"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/home/.kube") == ["config"])
    }

    @Test func mergeKeepsEverythingElseAndReplacesTheOldLabnodeEntries() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try Self.existing.write(toFile: path, atomically: true, encoding: .utf8)
        let before = try KubeconfigDocument(contentsOfFile: path)

        try Self.config.merge(into: path)
        let after = try KubeconfigDocument(contentsOfFile: path)

        #expect(withoutLabnode(after) == withoutLabnode(before))
        #expect(after.currentContext == "labnode")
        // Replaced where it was, not appended.
        #expect(after.names(in: .clusters) == ["prod", "labnode", "staging"])
        #expect(after.names(in: .contexts) == ["prod", "labnode"])
        #expect(after.names(in: .users) == ["prod-admin", "labnode"])
        // The old insecure flag would make kubectl refuse the CA; the old token would override the cert.
        #expect(after.entry("labnode", in: .clusters)?.keys.sorted() == ["certificate-authority-data", "server"])
        #expect(after.entry("labnode", in: .users)?.keys.sorted() == ["client-certificate-data", "client-key-data"])
        // The trainee's namespace choice survives.
        #expect(after.entry("labnode", in: .contexts) == ["cluster": "labnode", "user": "labnode", "namespace": "shop"])
        // A quoted number stays a string.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(#"token: "12345""#) || text.contains("token: '12345'"))
    }

    @Test func mergingTwiceGivesTheSameFile() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try Self.existing.write(toFile: path, atomically: true, encoding: .utf8)
        try Self.config.merge(into: path)
        let once = try String(contentsOfFile: path, encoding: .utf8)
        try Self.config.merge(into: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == once)
    }

    @Test func removeTakesOutOnlyLabnode() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try Self.existing.write(toFile: path, atomically: true, encoding: .utf8)
        let before = try KubeconfigDocument(contentsOfFile: path)
        try Self.config.merge(into: path)

        #expect(try Kubeconfig.remove(from: path))
        let after = try KubeconfigDocument(contentsOfFile: path)
        #expect(after == withoutLabnode(before))
        #expect(after.currentContext == nil)
        #expect(try !Kubeconfig.remove(from: path), "nothing left to remove")
        #expect(try !Kubeconfig.remove(from: root + "/missing"))
    }

    @Test func removeKeepsSomebodyElsesCurrentContext() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try Self.existing.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try Kubeconfig.remove(from: path))
        let after = try KubeconfigDocument(contentsOfFile: path)
        #expect(after.currentContext == "prod")
        #expect(after.names(in: .clusters) == ["prod", "staging"])
    }

    @Test func symlinkedKubeconfigIsWrittenThrough() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        try Self.existing.write(toFile: root + "/real", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/config", withDestinationPath: root + "/real")
        try Self.config.merge(into: root + "/config")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/config") == root + "/real")
        #expect(try KubeconfigDocument(contentsOfFile: root + "/real").currentContext == "labnode")
    }

    @Test func notAKubeconfigIsRefusedAndLeftAlone() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try "- just\n- a list\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: KubeconfigError.notAMapping(path: path)) { try Self.config.merge(into: path) }
        try "key: [unclosed\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: KubeconfigError.self) { try Self.config.merge(into: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "key: [unclosed\n")
    }

    @Test func emptyAndNullListsAreFilled() throws {
        for text in ["", "# nothing yet\n", "apiVersion: v1\nclusters: null\ncontexts: null\nusers: null\nkind: Config\n"] {
            var document = try KubeconfigDocument(yaml: text)
            document.setEntry("labnode", in: .clusters, fields: [("server", "https://127.0.0.1:6443")])
            let reread = try KubeconfigDocument(yaml: try document.yaml())
            #expect(reread.names(in: .clusters) == ["labnode"], "from \(text.debugDescription)")
        }
    }

    @Test func valuesThatLookLikeOtherTypesStayStrings() throws {
        var document = KubeconfigDocument()
        document.setEntry("labnode", in: .contexts, fields: [("cluster", "labnode"), ("namespace", "true")])
        document.setEntry("1.5", in: .clusters, fields: [("server", "null")])
        let reread = try KubeconfigDocument(yaml: try document.yaml())
        #expect(reread.entry("labnode", in: .contexts)?["namespace"] == "true")
        #expect(reread.names(in: .clusters) == ["1.5"])
        #expect(reread.entry("1.5", in: .clusters)?["server"] == "null")
        #expect(try document.yaml().contains(#"namespace: "true""#))
    }

    @Test(arguments: [("127.0.0.1", "https://127.0.0.1:6443"), ("::1", "https://[::1]:6443"), ("lab.local", "https://lab.local:6443")])
    func serverURL(host: String, expected: String) throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try PKI.loadOrCreate(directory: directory, nodeIP: "192.0.2.2", serviceIP: "10.96.0.1", clusterDomain: "cluster.local")
        let config = Kubeconfig(host: host, port: 6443, pki: pki)
        #expect(config.server == expected)
        #expect(config.clientCertificatePEM == pki.adminCertificatePEM)
        #expect(config.certificateAuthorityPEM == pki.caCertificatePEM)
    }

    @Test func lifecycleEntryPointsWriteAndRemove() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pki = try PKI.loadOrCreate(directory: root + "/pki", nodeIP: "192.0.2.2", serviceIP: "10.96.0.1", clusterDomain: "cluster.local")
        let path = root + "/kc/config"
        try Self.existing.write(toFile: root + "/seed", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/kc", withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: root + "/seed", toPath: path)

        let config = Kubeconfig.labnode(server: "https://127.0.0.1:6443", pki: pki)
        #expect(config == Kubeconfig(host: "127.0.0.1", port: 6443, pki: pki))
        #expect(try config.write(explicitPath: path) == path)
        let written = try KubeconfigDocument(contentsOfFile: path)
        #expect(written.currentContext == "labnode")
        #expect(written.names(in: .clusters) == ["prod", "labnode", "staging"], "an explicit file is merged, not overwritten")

        #expect(try Kubeconfig.removeLabnode(explicitPath: path))
        #expect(try KubeconfigDocument(contentsOfFile: path).names(in: .clusters) == ["prod", "staging"])
    }

    // MARK: Where the file goes

    struct LocationCase: Sendable, CustomTestStringConvertible {
        var name: String
        var explicit: String? = nil
        var environment: [String: String]
        var effectiveUID: UInt32 = 1000
        var existing: Set<String> = []
        var path: String
        var owner: KubeconfigLocation.Owner? = nil
        var testDescription: String { name }
    }

    @Test(arguments: [
        LocationCase(name: "default", environment: ["HOME": "/home/ann"], path: "/home/ann/.kube/config"),
        LocationCase(name: "explicit wins", explicit: "/tmp/kc", environment: ["HOME": "/home/ann", "KUBECONFIG": "/x"],
                     path: "/tmp/kc"),
        LocationCase(name: "one KUBECONFIG entry, even missing", environment: ["HOME": "/home/ann", "KUBECONFIG": "/etc/kc"],
                     path: "/etc/kc"),
        LocationCase(name: "first existing entry", environment: ["HOME": "/h", "KUBECONFIG": "/a:/b:/c"],
                     existing: ["/b", "/c"], path: "/b"),
        LocationCase(name: "none exists: the last, like kubectl", environment: ["HOME": "/h", "KUBECONFIG": "/a::/b:/a"],
                     path: "/b"),
        LocationCase(name: "empty KUBECONFIG is ignored", environment: ["HOME": "/h", "KUBECONFIG": ""],
                     path: "/h/.kube/config"),
        LocationCase(name: "sudo: the invoking user's home and ids",
                     environment: ["HOME": "/root", "SUDO_USER": "ann", "SUDO_UID": "1000", "SUDO_GID": "1001"],
                     effectiveUID: 0, path: "/home/ann/.kube/config", owner: .init(uid: 1000, gid: 1001)),
        LocationCase(name: "sudo without SUDO_UID: ids from the password entry",
                     environment: ["HOME": "/root", "SUDO_USER": "ann"],
                     effectiveUID: 0, path: "/home/ann/.kube/config", owner: .init(uid: 1500, gid: 1500)),
        LocationCase(name: "sudo with --kubeconfig: that file, owned by the user",
                     explicit: "/srv/kc", environment: ["HOME": "/root", "SUDO_USER": "ann", "SUDO_UID": "1000", "SUDO_GID": "1000"],
                     effectiveUID: 0, path: "/srv/kc", owner: .init(uid: 1000, gid: 1000)),
        LocationCase(name: "SUDO_USER but not root", environment: ["HOME": "/home/bob", "SUDO_USER": "ann"],
                     path: "/home/bob/.kube/config"),
        LocationCase(name: "sudo from root", environment: ["HOME": "/root", "SUDO_USER": "root"], effectiveUID: 0,
                     path: "/root/.kube/config"),
    ])
    func resolveLocation(_ testCase: LocationCase) throws {
        let location = try KubeconfigLocation.resolve(
            explicitPath: testCase.explicit,
            environment: testCase.environment,
            effectiveUID: testCase.effectiveUID,
            fileExists: { testCase.existing.contains($0) },
            account: { $0 == "ann" ? .init(home: "/home/ann", uid: 1500, gid: 1500) : nil }
        )
        #expect(location == KubeconfigLocation(path: testCase.path, owner: testCase.owner))
    }

    @Test func unknownSudoUserOrNoHomeIsAClearError() {
        #expect(throws: KubeconfigError.unknownSudoUser("ghost")) {
            try KubeconfigLocation.resolve(
                explicitPath: nil, environment: ["SUDO_USER": "ghost"], effectiveUID: 0, account: { _ in nil })
        }
        #expect(throws: KubeconfigError.noHomeDirectory) {
            try KubeconfigLocation.resolve(explicitPath: nil, environment: [:], effectiveUID: 1000)
        }
    }

    @Test(.enabled(if: geteuid() == 0, "chown needs root"))
    func underSudoNewFilesBelongToTheInvokingUser() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let owner = KubeconfigLocation.Owner(uid: 4242, gid: 4343)
        try Self.config.merge(into: KubeconfigLocation(path: root + "/home/.kube/config", owner: owner))
        for path in [root + "/home", root + "/home/.kube", root + "/home/.kube/config"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == 4242, "\(path)")
            #expect((attributes[.groupOwnerAccountID] as? NSNumber)?.uint32Value == 4343, "\(path)")
        }
        // The temp directory we started from keeps its owner.
        #expect((try FileManager.default.attributesOfItem(atPath: root)[.ownerAccountID] as? NSNumber)?.uint32Value == 0)

        // A rewrite by root keeps the existing file's owner even without an owner given.
        try Self.config.merge(into: root + "/home/.kube/config")
        let attributes = try FileManager.default.attributesOfItem(atPath: root + "/home/.kube/config")
        #expect((attributes[.ownerAccountID] as? NSNumber)?.uint32Value == 4242)
    }

    // MARK: The real kubectl

    @Test(.enabled(if: PKITestSupport.executableExists("kubectl"), "kubectl is not installed"))
    func kubectlReadsTheMergedFile() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let path = root + "/config"
        try Self.existing.write(toFile: path, atomically: true, encoding: .utf8)
        let before = try kubectlView(path)
        try Self.config.merge(into: path)
        let after = try kubectlView(path)

        #expect(after["current-context"] as? String == "labnode")
        for section in ["clusters", "contexts", "users"] {
            let old = try #require(before[section] as? [[String: Any]]).filter { $0["name"] as? String != "labnode" }
            let new = try #require(after[section] as? [[String: Any]]).filter { $0["name"] as? String != "labnode" }
            #expect(try canonicalJSON(old) == canonicalJSON(new), "\(section) other than labnode are unchanged")
        }
        #expect(try canonicalJSON(before["preferences"] ?? [:]) == canonicalJSON(after["preferences"] ?? [:]))
        #expect(try canonicalJSON(before["extensions"] ?? []) == canonicalJSON(after["extensions"] ?? []))
        #expect(try canonicalJSON(before["extensions"] ?? []).contains("my-tool"), "the fixture's extension was read")

        let contexts = try PKITestSupport.run("kubectl", ["config", "get-contexts", "--kubeconfig", path])
        #expect(contexts.status == 0, "\(contexts.output)")
        let current = contexts.output.split(separator: "\n").filter { $0.hasPrefix("*") }
        #expect(current.map { $0.split(separator: " ").map(String.init) } == [["*", "labnode", "labnode", "labnode", "shop"]])
    }

    /// End to end: the real kubectl, with the kubeconfig labnode writes, trusts the serving
    /// certificate for 127.0.0.1 and presents the admin certificate, which an independent TLS
    /// server (Python's ssl, requiring a client certificate from the lab CA) accepts.
    @Test(.enabled(if: PKITestSupport.executableExists("kubectl") && PKITestSupport.executableExists("python3"), "needs kubectl and python3"))
    func kubectlTalksTLSWithTheGeneratedMaterial() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let pki = try PKI.loadOrCreate(
            directory: root + "/pki", nodeIP: "192.0.2.2", serviceIP: "10.96.0.1", clusterDomain: "cluster.local")
        let server = try PKITestTLSServer(pki: pki)
        defer { server.stop() }

        let path = root + "/config"
        try Kubeconfig(host: "127.0.0.1", port: server.port, pki: pki).merge(into: path)
        let result = try PKITestSupport.run("kubectl", ["--kubeconfig", path, "version", "-o", "json", "--request-timeout=10s"])
        #expect(result.status == 0, "\(result.output)")
        let json = try #require(result.output.firstIndex(of: "{").map { String(result.output[$0...]) })
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        let serverVersion = object?["serverVersion"] as? [String: Any]
        // The test server echoes the client certificate subject it verified.
        #expect(serverVersion?["gitCommit"] as? String == "system:masters/kubernetes-admin")
    }

    func canonicalJSON(_ value: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys]), as: UTF8.self)
    }

    func kubectlView(_ path: String) throws -> [String: Any] {
        let result = try PKITestSupport.run("kubectl", ["config", "view", "--kubeconfig", path, "--raw", "-o", "json"])
        #expect(result.status == 0, "\(result.output)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
    }
}

/// A tiny HTTPS server in Python answering `/version`, requiring a client certificate from the
/// lab CA and echoing its subject.
private final class PKITestTLSServer {
    static let script = """
    import json, ssl, sys, http.server
    ca, crt, key = sys.argv[1:4]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.load_verify_locations(ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            subject = self.connection.getpeercert().get("subject", ())
            names = [value for rdn in subject for (kind, value) in rdn]
            body = json.dumps({"major": "1", "minor": "32", "gitVersion": "v1.32.0",
                               "gitCommit": "/".join(names), "gitTreeState": "clean",
                               "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23",
                               "compiler": "gc", "platform": "linux/amd64"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """

    let process = Process()
    let port: Int

    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    init(pki: PKI) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", Self.script,
                             pki.caCertificatePath, pki.servingCertificatePath, pki.servingKeyPath]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = FileHandle.nullDevice
        try process.run()
        var text = ""
        while !text.contains("\n") {
            let chunk = stdout.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        guard let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            kill(process.processIdentifier, SIGKILL)
            throw StartError(description: "the Python TLS server did not start: \(text)")
        }
        self.port = port
    }

    func stop() {
        // Not terminate(): a child spawned from a test's worker thread inherits a signal mask
        // that blocks SIGTERM, so only SIGKILL reliably ends it.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
