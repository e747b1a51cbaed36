import Foundation
import Testing
import Cluster

@Suite("PKI")
struct PKITests {
    static let expectedSANs = [
        "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "IP:127.0.0.1", "IP:192.168.56.10", "IP:10.96.0.1",
    ]

    func create(_ directory: String, nodeIP: String = "192.168.56.10", now: Date = Date()) throws -> PKI {
        try PKI.loadOrCreate(
            directory: directory, nodeIP: nodeIP, serviceIP: "10.96.0.1", clusterDomain: "cluster.local", now: now)
    }

    @Test func firstStartCreatesEveryFileWithPrivateKeys() throws {
        let root = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let directory = root + "/data/pki"
        let pki = try create(directory)

        #expect(pki.actions == [
            "created cluster CA", "created serving certificate", "created admin client certificate",
            "created service account signing key",
        ])
        let modes: [String: Int] = [
            "ca.crt": 0o644, "ca.key": 0o600, "apiserver.crt": 0o644, "apiserver.key": 0o600,
            "admin.crt": 0o644, "admin.key": 0o600, "sa.key": 0o600,
        ]
        for (file, mode) in modes {
            let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + file)
            #expect((attributes[.posixPermissions] as? Int) == mode, "\(file)")
        }
        let directoryMode = try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int
        #expect(directoryMode == 0o700)
        #expect(try String(contentsOfFile: pki.caCertificatePath, encoding: .utf8) == pki.caCertificatePEM)
        #expect(try String(contentsOfFile: pki.servingKeyPath, encoding: .utf8) == pki.servingKeyPEM)
        #expect(pki.servingKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        // No temp files left behind by the atomic writes.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == modes.keys.sorted())
    }

    @Test func certificatesHaveTheRightShape() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try create(directory)

        let ca = try PKI.summary(ofPEM: pki.caCertificatePEM)
        #expect(ca.isCertificateAuthority)
        #expect(ca.commonName == "labnode-ca")
        #expect(ca.notValidAfter.timeIntervalSince(ca.notValidBefore) > 9.9 * 365 * 86_400)

        let serving = try PKI.summary(ofPEM: pki.servingCertificatePEM)
        #expect(!serving.isCertificateAuthority)
        #expect(serving.subjectAlternativeNames == Self.expectedSANs)
        #expect(serving.extendedKeyUsages == ["serverAuth"])
        #expect(serving.issuerCommonName == "labnode-ca")
        let servingLifetime = serving.notValidAfter.timeIntervalSince(serving.notValidBefore)
        #expect(servingLifetime > 364 * 86_400 && servingLifetime < 366 * 86_400)

        let admin = try PKI.summary(ofPEM: pki.adminCertificatePEM)
        #expect(admin.commonName == "kubernetes-admin")
        #expect(admin.organizations == ["system:masters"])
        #expect(admin.extendedKeyUsages == ["clientAuth"])
        #expect(admin.subjectAlternativeNames.isEmpty)
        #expect(!admin.isCertificateAuthority)
    }

    @Test(arguments: ["127.0.0.1", "192.168.56.10", "10.96.0.1", "kubernetes", "kubernetes.default.svc",
                      "kubernetes.default.svc.cluster.local", "localhost"])
    func servingCertificateVerifiesForEachName(serverName: String) async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try create(directory)
        try await PKI.verify(
            certificatePEM: pki.servingCertificatePEM, trustedCAPEM: pki.caCertificatePEM, serverName: serverName)
    }

    @Test func verificationFailsForOtherNamesAndOtherCAs() async throws {
        let first = try PKITestSupport.temporaryDirectory()
        let second = try PKITestSupport.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: first)
            try? FileManager.default.removeItem(atPath: second)
        }
        let pki = try create(first)
        let other = try create(second)

        await #expect(throws: PKIError.self) {
            try await PKI.verify(
                certificatePEM: pki.servingCertificatePEM, trustedCAPEM: pki.caCertificatePEM, serverName: "example.com")
        }
        await #expect(throws: PKIError.self) {
            try await PKI.verify(
                certificatePEM: pki.servingCertificatePEM, trustedCAPEM: pki.caCertificatePEM, serverName: "10.96.0.2")
        }
        await #expect(throws: PKIError.self) {
            try await PKI.verify(certificatePEM: pki.adminCertificatePEM, trustedCAPEM: other.caCertificatePEM)
        }
        try await PKI.verify(certificatePEM: pki.adminCertificatePEM, trustedCAPEM: pki.caCertificatePEM)
    }

    @Test func secondStartReusesEverything() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try create(directory)
        let second = try create(directory)
        #expect(second.actions.isEmpty)
        #expect(second.caCertificatePEM == first.caCertificatePEM)
        #expect(second.servingCertificatePEM == first.servingCertificatePEM)
        #expect(second.servingKeyPEM == first.servingKeyPEM)
        #expect(second.adminCertificatePEM == first.adminCertificatePEM)
        #expect(second.serviceAccountKeyPEM == first.serviceAccountKeyPEM)
    }

    @Test func nodeIPChangeReissuesOnlyTheServingCertificate() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try create(directory)
        let moved = try create(directory, nodeIP: "192.168.56.77")

        #expect(moved.actions == ["re-issued serving certificate: SANs changed"])
        #expect(moved.caCertificatePEM == first.caCertificatePEM)
        #expect(moved.adminCertificatePEM == first.adminCertificatePEM)
        #expect(moved.serviceAccountKeyPEM == first.serviceAccountKeyPEM)
        #expect(moved.servingCertificatePEM != first.servingCertificatePEM)
        #expect(moved.servingKeyPEM != first.servingKeyPEM)
        #expect(try PKI.summary(ofPEM: moved.servingCertificatePEM).subjectAlternativeNames.contains("IP:192.168.56.77"))
        #expect(try String(contentsOfFile: moved.servingCertificatePath, encoding: .utf8) == moved.servingCertificatePEM)
        try await PKI.verify(
            certificatePEM: moved.servingCertificatePEM, trustedCAPEM: first.caCertificatePEM, serverName: "192.168.56.77")
    }

    @Test func clusterDomainChangeReissuesTheServingCertificate() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try create(directory)
        let renamed = try PKI.loadOrCreate(
            directory: directory, nodeIP: "192.168.56.10", serviceIP: "10.96.0.1", clusterDomain: "lab.internal")
        #expect(renamed.actions == ["re-issued serving certificate: SANs changed"])
        #expect(try PKI.summary(ofPEM: renamed.servingCertificatePEM).subjectAlternativeNames
            .contains("DNS:kubernetes.default.svc.lab.internal"))
    }

    @Test func leavesNearExpiryAreRenewedButTheCAIsKept() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let start = Date()
        let first = try create(directory, now: start)
        let later = try create(directory, now: start.addingTimeInterval(340 * 86_400))
        #expect(later.caCertificatePEM == first.caCertificatePEM)
        #expect(later.actions.count == 2)
        #expect(later.actions.allSatisfy { $0.hasPrefix("re-issued") && $0.contains("expires") })
        #expect(try PKI.summary(ofPEM: later.adminCertificatePEM).notValidAfter > start.addingTimeInterval(700 * 86_400))
    }

    @Test func newCAReissuesTheLeaves() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try create(directory)
        try FileManager.default.removeItem(atPath: first.caCertificatePath)
        try FileManager.default.removeItem(atPath: directory + "/ca.key")
        let second = try create(directory)
        #expect(second.caCertificatePEM != first.caCertificatePEM)
        #expect(second.actions == [
            "created cluster CA",
            "re-issued serving certificate: not signed by the current CA",
            "re-issued admin client certificate: not signed by the current CA",
        ])
        #expect(second.serviceAccountKeyPEM == first.serviceAccountKeyPEM)
    }

    @Test func caCertificateWithoutKeyIsAnError() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try create(directory)
        try FileManager.default.removeItem(atPath: directory + "/ca.key")
        #expect(throws: PKIError.missingCAKey(certificate: directory + "/ca.crt", key: directory + "/ca.key")) {
            try create(directory)
        }
    }

    @Test func brokenLeafIsReplaced() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try create(directory)
        try "garbage".write(toFile: first.adminCertificatePath, atomically: true, encoding: .utf8)
        let second = try create(directory)
        #expect(second.actions == ["re-issued admin client certificate: unreadable"])
        #expect(try PKI.summary(ofPEM: second.adminCertificatePEM).commonName == "kubernetes-admin")
    }

    @Test(arguments: [
        ("not-an-ip", "10.96.0.1", "cluster.local", #"node IP "not-an-ip" is not an IP address"#),
        ("192.168.56.10", "10.96.0.300", "cluster.local", #"service IP "10.96.0.300" is not an IP address"#),
        ("192.168.56.10", "10.96.0.1", "", "cluster domain is empty"),
    ])
    func badInputIsRefused(nodeIP: String, serviceIP: String, domain: String, message: String) throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        do {
            _ = try PKI.loadOrCreate(directory: directory, nodeIP: nodeIP, serviceIP: serviceIP, clusterDomain: domain)
            Issue.record("accepted bad input")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test func sansAreDeduplicatedAndExtraNamesAdded() throws {
        let sans = try PKI.servingSubjectAlternativeNames(
            nodeIP: "127.0.0.1", serviceIP: "10.0.0.1", clusterDomain: "cluster.local.",
            extraSANs: ["Lab.Example", "::1", "10.0.0.1"])
        #expect(sans == [
            "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local", "DNS:lab.example",
            "IP:127.0.0.1", "IP:10.0.0.1", "IP:::1",
        ])
    }

    @Test func clientCertificatesForLabUsers() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try create(directory)
        let jane = try pki.issueClientCertificate(commonName: "jane", organizations: ["dev", "ops"])
        let summary = try PKI.summary(ofPEM: jane.certificatePEM)
        #expect(summary.commonName == "jane")
        #expect(summary.organizations == ["dev", "ops"])
        #expect(summary.extendedKeyUsages == ["clientAuth"])
        try await PKI.verify(certificatePEM: jane.certificatePEM, trustedCAPEM: pki.caCertificatePEM)
    }

    /// OpenSSL, an implementation independent of swift-certificates, accepts the chain and the
    /// purposes.
    @Test(.enabled(if: PKITestSupport.executableExists("openssl"), "openssl is not installed"))
    func opensslAgrees() throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try create(directory)
        let serving = try PKITestSupport.run("openssl", ["verify", "-CAfile", pki.caCertificatePath, "-purpose", "sslserver",
                                          "-verify_ip", "10.96.0.1", pki.servingCertificatePath])
        #expect(serving.status == 0, "\(serving.output)")
        let admin = try PKITestSupport.run("openssl", ["verify", "-CAfile", pki.caCertificatePath, "-purpose", "sslclient",
                                        pki.adminCertificatePath])
        #expect(admin.status == 0, "\(admin.output)")
        let wrongPurpose = try PKITestSupport.run("openssl", ["verify", "-CAfile", pki.caCertificatePath, "-purpose", "sslserver",
                                               pki.adminCertificatePath])
        #expect(wrongPurpose.status != 0, "the admin certificate must not be a server certificate")
        let key = try PKITestSupport.run("openssl", ["pkey", "-in", pki.serviceAccountKeyPath, "-noout", "-text"])
        #expect(key.status == 0 && key.output.contains("prime256v1"), "\(key.output)")
    }
}

// MARK: - Helpers shared by the PKI, Kubeconfig and HostNetwork tests

enum PKITestSupport {
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "labnode-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func executableExists(_ name: String) -> Bool {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    /// Runs a program found on PATH and returns its exit status and combined output.
    static func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
