import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The lab cluster's TLS material, kept in one directory of the data dir:
///
/// | file | what |
/// |---|---|
/// | `ca.crt`, `ca.key` | the cluster CA, created on first start and reused afterwards |
/// | `apiserver.crt`, `apiserver.key` | the API server's serving certificate |
/// | `admin.crt`, `admin.key` | the `kubernetes-admin` client certificate (O=system:masters) for the kubeconfig |
/// | `sa.key` | the key that signs service account tokens |
///
/// All keys are ECDSA P-256 in PKCS#8 PEM, mode 0600. The CA lives 10 years, leaf certificates 1 year.
/// A leaf is issued again when it is missing, not signed by the current CA, within 30 days of
/// expiry, or (serving certificate) when its SANs no longer match the node IP, service IP or
/// cluster domain. The CA and `sa.key` are never replaced automatically: a new CA would break
/// every kubeconfig already handed out, a new `sa.key` every token already mounted in a pod.
public struct PKI: Sendable {
    public static let caCertificateFile = "ca.crt"
    public static let caKeyFile = "ca.key"
    public static let servingCertificateFile = "apiserver.crt"
    public static let servingKeyFile = "apiserver.key"
    public static let adminCertificateFile = "admin.crt"
    public static let adminKeyFile = "admin.key"
    public static let serviceAccountKeyFile = "sa.key"

    /// Subject of the admin client certificate; the group grants everything under RBAC.
    public static let adminUser = "kubernetes-admin"
    public static let adminGroup = "system:masters"

    static let caValidity: TimeInterval = 10 * 365 * 86_400
    static let leafValidity: TimeInterval = 365 * 86_400
    /// Leaves this close to expiry are replaced at start.
    static let renewBefore: TimeInterval = 30 * 86_400
    /// Back-dating absorbs small clock differences between the host and whoever verifies.
    static let backdate: TimeInterval = 5 * 60

    public let directory: String
    public let caCertificatePEM: String
    public let servingCertificatePEM: String
    public let servingKeyPEM: String
    public let adminCertificatePEM: String
    public let adminKeyPEM: String
    public let serviceAccountKeyPEM: String
    /// What this start did, one short line each ("created CA", "re-issued serving certificate: SANs changed").
    public let actions: [String]

    let caCertificate: Certificate
    // Crypto's key types are not Sendable here, so keys are kept as PEM and parsed on use.
    let caKeyPEM: String

    /// The key that signs and verifies service account tokens (ES256).
    public func serviceAccountSigningKey() throws -> P256.Signing.PrivateKey {
        try PKI.parseKey(serviceAccountKeyPEM, path: serviceAccountKeyPath)
    }

    public var caCertificatePath: String { path(PKI.caCertificateFile) }
    public var servingCertificatePath: String { path(PKI.servingCertificateFile) }
    public var servingKeyPath: String { path(PKI.servingKeyFile) }
    public var adminCertificatePath: String { path(PKI.adminCertificateFile) }
    public var adminKeyPath: String { path(PKI.adminKeyFile) }
    public var serviceAccountKeyPath: String { path(PKI.serviceAccountKeyFile) }

    private func path(_ file: String) -> String { (directory as NSString).appendingPathComponent(file) }

    /// Loads the material from `directory`, creating or re-issuing what is missing or stale.
    ///
    /// - Parameters:
    ///   - nodeIP: the node's address (a serving certificate SAN).
    ///   - serviceIP: the first service IP, the ClusterIP of the `kubernetes` Service (a SAN).
    ///   - clusterDomain: e.g. `cluster.local`; adds `kubernetes.default.svc.<domain>`.
    ///   - extraSANs: more names or addresses for the serving certificate.
    ///   - now: the clock, for tests.
    public static func loadOrCreate(
        directory: String,
        nodeIP: String,
        serviceIP: String,
        clusterDomain: String,
        extraSANs: [String] = [],
        now: Date = Date()
    ) throws -> PKI {
        try PKIFiles.makeDirectory(directory, mode: 0o700)
        var actions: [String] = []
        func file(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

        let (caCertificate, caKey) = try loadOrCreateCA(
            certificatePath: file(caCertificateFile), keyPath: file(caKeyFile), now: now, actions: &actions)

        let sans = try servingSubjectAlternativeNames(
            nodeIP: nodeIP, serviceIP: serviceIP, clusterDomain: clusterDomain, extraSANs: extraSANs)
        let serving = try loadOrIssueLeaf(
            name: "serving certificate",
            certificatePath: file(servingCertificateFile), keyPath: file(servingKeyFile),
            request: LeafRequest(
                commonName: "kube-apiserver", organizations: [], usage: .serverAuth, subjectAlternativeNames: sans),
            ca: (caCertificate, caKey), now: now, actions: &actions)

        let admin = try loadOrIssueLeaf(
            name: "admin client certificate",
            certificatePath: file(adminCertificateFile), keyPath: file(adminKeyFile),
            request: LeafRequest(
                commonName: adminUser, organizations: [adminGroup], usage: .clientAuth, subjectAlternativeNames: []),
            ca: (caCertificate, caKey), now: now, actions: &actions)

        let saKeyPath = file(serviceAccountKeyFile)
        let saKey: P256.Signing.PrivateKey
        if FileManager.default.fileExists(atPath: saKeyPath) {
            saKey = try readKey(saKeyPath)
        } else {
            saKey = P256.Signing.PrivateKey()
            try PKIFiles.writeAtomically(path: saKeyPath, contents: saKey.pemRepresentation, mode: 0o600)
            actions.append("created service account signing key")
        }

        return PKI(
            directory: directory,
            caCertificatePEM: try caCertificate.serializeAsPEM().pemString,
            servingCertificatePEM: serving.certificatePEM,
            servingKeyPEM: serving.keyPEM,
            adminCertificatePEM: admin.certificatePEM,
            adminKeyPEM: admin.keyPEM,
            serviceAccountKeyPEM: saKey.pemRepresentation,
            actions: actions,
            caCertificate: caCertificate,
            caKeyPEM: caKey.pemRepresentation
        )
    }

    /// The SANs the serving certificate must carry, in the order they are written:
    /// `DNS:` names first, then `IP:` addresses.
    public static func servingSubjectAlternativeNames(
        nodeIP: String, serviceIP: String, clusterDomain: String, extraSANs: [String] = []
    ) throws -> [String] {
        let domain = clusterDomain.hasSuffix(".") ? String(clusterDomain.dropLast()) : clusterDomain
        guard !domain.isEmpty else { throw PKIError.invalidInput("cluster domain is empty") }
        var dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.\(domain)"]
        var ips = ["127.0.0.1"]
        for (label, value) in [("node IP", nodeIP), ("service IP", serviceIP)] {
            guard let canonical = canonicalIP(value) else {
                throw PKIError.invalidInput("\(label) \"\(value)\" is not an IP address")
            }
            ips.append(canonical)
        }
        for extra in extraSANs where !extra.isEmpty {
            if let ip = canonicalIP(extra) { ips.append(ip) } else { dns.append(extra.lowercased()) }
        }
        return uniqued(dns).map { "DNS:\($0)" } + uniqued(ips).map { "IP:\($0)" }
    }

    /// Issues a client certificate signed by the cluster CA, e.g. for a lab user.
    /// CN becomes the user name and each O a group, as the API server reads them.
    public func issueClientCertificate(
        commonName: String, organizations: [String] = [], validity: TimeInterval = 365 * 86_400, now: Date = Date()
    ) throws -> (certificatePEM: String, keyPEM: String) {
        let caKey = try PKI.parseKey(caKeyPEM, path: path(PKI.caKeyFile))
        let request = LeafRequest(
            commonName: commonName, organizations: organizations, usage: .clientAuth, subjectAlternativeNames: [])
        let issued = try PKI.issueLeaf(request, ca: (caCertificate, caKey), validity: validity, now: now)
        return (try issued.certificate.serializeAsPEM().pemString, issued.key.pemRepresentation)
    }

    // MARK: - CA

    private static func loadOrCreateCA(
        certificatePath: String, keyPath: String, now: Date, actions: inout [String]
    ) throws -> (Certificate, P256.Signing.PrivateKey) {
        let haveCertificate = FileManager.default.fileExists(atPath: certificatePath)
        let haveKey = FileManager.default.fileExists(atPath: keyPath)
        switch (haveCertificate, haveKey) {
        case (true, true):
            let certificate = try readCertificate(certificatePath)
            let key = try readKey(keyPath)
            guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
                throw PKIError.mismatchedKey(certificate: certificatePath, key: keyPath)
            }
            guard now < certificate.notValidAfter else {
                throw PKIError.caExpired(path: certificatePath, notValidAfter: certificate.notValidAfter)
            }
            return (certificate, key)
        case (false, false):
            let key = P256.Signing.PrivateKey()
            let certificate = try makeCA(key: key, now: now)
            // Key first: a crash in between leaves a lone key, which the next start replaces.
            try PKIFiles.writeAtomically(path: keyPath, contents: key.pemRepresentation, mode: 0o600)
            try PKIFiles.writeAtomically(path: certificatePath, contents: certificate.serializeAsPEM().pemString, mode: 0o644)
            actions.append("created cluster CA")
            return (certificate, key)
        case (false, true):
            // A key without a certificate was never handed out to anyone: start over.
            let key = P256.Signing.PrivateKey()
            let certificate = try makeCA(key: key, now: now)
            try PKIFiles.writeAtomically(path: keyPath, contents: key.pemRepresentation, mode: 0o600)
            try PKIFiles.writeAtomically(path: certificatePath, contents: certificate.serializeAsPEM().pemString, mode: 0o644)
            actions.append("created cluster CA (replaced a key without certificate)")
            return (certificate, key)
        case (true, false):
            throw PKIError.missingCAKey(certificate: certificatePath, key: keyPath)
        }
    }

    private static func makeCA(key: P256.Signing.PrivateKey, now: Date) throws -> Certificate {
        let name = try DistinguishedName { CommonName("labnode-ca") }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(digitalSignature: true, keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-backdate),
            notValidAfter: now.addingTimeInterval(caValidity),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(key)
        )
    }

    // MARK: - Leaves

    struct LeafRequest {
        enum Usage { case serverAuth, clientAuth }
        var commonName: String
        var organizations: [String]
        var usage: Usage
        /// "DNS:name" / "IP:address" strings, as from `servingSubjectAlternativeNames`.
        var subjectAlternativeNames: [String]
    }

    private static func loadOrIssueLeaf(
        name: String,
        certificatePath: String,
        keyPath: String,
        request: LeafRequest,
        ca: (certificate: Certificate, key: P256.Signing.PrivateKey),
        now: Date,
        actions: inout [String]
    ) throws -> (certificatePEM: String, keyPEM: String) {
        let action: String
        if FileManager.default.fileExists(atPath: certificatePath), FileManager.default.fileExists(atPath: keyPath) {
            // Leaves are cheap to replace, so an unreadable one is re-issued rather than fatal.
            let reason: String?
            if let certificate = try? readCertificate(certificatePath), let key = try? readKey(keyPath) {
                reason = reasonToReissue(certificate, key: key, request: request, ca: ca.certificate, now: now)
            } else {
                reason = "unreadable"
            }
            guard let reason else {
                return (try PKIFiles.read(certificatePath), try PKIFiles.read(keyPath))
            }
            action = "re-issued \(name): \(reason)"
        } else {
            action = "created \(name)"
        }
        let (certificate, key) = try issueLeaf(request, ca: ca, now: now)
        try store(certificate, key: key, certificatePath: certificatePath, keyPath: keyPath)
        actions.append(action)
        return (try certificate.serializeAsPEM().pemString, key.pemRepresentation)
    }

    private static func store(
        _ certificate: Certificate, key: P256.Signing.PrivateKey, certificatePath: String, keyPath: String
    ) throws {
        try PKIFiles.writeAtomically(path: keyPath, contents: key.pemRepresentation, mode: 0o600)
        try PKIFiles.writeAtomically(path: certificatePath, contents: certificate.serializeAsPEM().pemString, mode: 0o644)
    }

    /// Nil when the stored leaf is still good; otherwise why it must be replaced.
    static func reasonToReissue(
        _ certificate: Certificate, key: P256.Signing.PrivateKey, request: LeafRequest, ca: Certificate, now: Date
    ) -> String? {
        if certificate.publicKey != Certificate.PublicKey(key.publicKey) {
            return "key does not match certificate"
        }
        if certificate.issuer != ca.subject || !ca.publicKey.isValidSignature(certificate.signature, for: certificate) {
            return "not signed by the current CA"
        }
        if certificate.notValidAfter.timeIntervalSince(now) < renewBefore {
            return "expires \(certificate.notValidAfter)"
        }
        if certificate.notValidBefore > now {
            return "not valid yet"
        }
        let summary = CertificateSummary(certificate)
        if summary.commonName != request.commonName || summary.organizations != request.organizations {
            return "subject changed"
        }
        if Set(summary.subjectAlternativeNames) != Set(request.subjectAlternativeNames) {
            return "SANs changed"
        }
        return nil
    }

    static func issueLeaf(
        _ request: LeafRequest,
        ca: (certificate: Certificate, key: P256.Signing.PrivateKey),
        validity: TimeInterval = leafValidity,
        now: Date
    ) throws -> (certificate: Certificate, key: P256.Signing.PrivateKey) {
        let key = P256.Signing.PrivateKey()
        let publicKey = Certificate.PublicKey(key.publicKey)
        let subject = try DistinguishedName {
            for organization in request.organizations {
                OrganizationName(organization)
            }
            CommonName(request.commonName)
        }
        var names: [GeneralName] = []
        for san in request.subjectAlternativeNames {
            if san.hasPrefix("DNS:") {
                names.append(.dnsName(String(san.dropFirst(4))))
            } else if san.hasPrefix("IP:"), let bytes = ipBytes(String(san.dropFirst(3))) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
            } else {
                throw PKIError.invalidInput("subject alternative name \"\(san)\" is neither DNS: nor IP:")
            }
        }
        let caSKI = (try? ca.certificate.extensions.subjectKeyIdentifier)??.keyIdentifier
            ?? SubjectKeyIdentifier(hash: ca.certificate.publicKey).keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([request.usage == .serverAuth ? .serverAuth : .clientAuth])
            AuthorityKeyIdentifier(keyIdentifier: caSKI)
            if !names.isEmpty {
                SubjectAlternativeNames(names)
            }
        }
        let notAfter = min(now.addingTimeInterval(validity), ca.certificate.notValidAfter)
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: publicKey,
            notValidBefore: now.addingTimeInterval(-backdate),
            notValidAfter: notAfter,
            issuer: ca.certificate.subject,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(ca.key)
        )
        return (certificate, key)
    }

    // MARK: - Reading

    private static func readCertificate(_ path: String) throws -> Certificate {
        let pem = try PKIFiles.read(path)
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw PKIError.invalidFile(path: path, reason: "not a PEM certificate (\(error))")
        }
    }

    private static func readKey(_ path: String) throws -> P256.Signing.PrivateKey {
        try parseKey(try PKIFiles.read(path), path: path)
    }

    private static func parseKey(_ pem: String, path: String) throws -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            throw PKIError.invalidFile(path: path, reason: "not a PEM ECDSA P-256 private key (\(error))")
        }
    }

    // MARK: - Inspection and verification

    /// The parts of a certificate that matter to labnode, for checks, tests and `labnode status`.
    public struct CertificateSummary: Sendable, Equatable {
        public var commonName: String?
        public var organizations: [String]
        public var issuerCommonName: String?
        /// "DNS:name" and "IP:address" entries, in certificate order.
        public var subjectAlternativeNames: [String]
        public var isCertificateAuthority: Bool
        /// "serverAuth", "clientAuth", ...
        public var extendedKeyUsages: [String]
        public var notValidBefore: Date
        public var notValidAfter: Date

        init(_ certificate: Certificate) {
            func values(_ name: DistinguishedName, _ type: ASN1ObjectIdentifier) -> [String] {
                name.flatMap { $0 }.filter { $0.type == type }.compactMap { String($0.value) }
            }
            commonName = values(certificate.subject, .RDNAttributeType.commonName).last
            organizations = values(certificate.subject, .RDNAttributeType.organizationName)
            issuerCommonName = values(certificate.issuer, .RDNAttributeType.commonName).last
            var sans: [String] = []
            for name in (try? certificate.extensions.subjectAlternativeNames) ?? nil ?? SubjectAlternativeNames() {
                switch name {
                case .dnsName(let dns): sans.append("DNS:\(dns)")
                case .ipAddress(let octets): sans.append("IP:\(PKI.ipString(Array(octets.bytes)))")
                default: sans.append(String(describing: name))
                }
            }
            subjectAlternativeNames = sans
            if case .isCertificateAuthority = (try? certificate.extensions.basicConstraints) ?? nil {
                isCertificateAuthority = true
            } else {
                isCertificateAuthority = false
            }
            let usages = ((try? certificate.extensions.extendedKeyUsage) ?? nil).map(Array.init) ?? []
            extendedKeyUsages = usages.map { usage in
                switch usage {
                case .serverAuth: return "serverAuth"
                case .clientAuth: return "clientAuth"
                default: return String(describing: usage)
                }
            }
            notValidBefore = certificate.notValidBefore
            notValidAfter = certificate.notValidAfter
        }
    }

    /// Summarizes a PEM certificate.
    public static func summary(ofPEM pem: String) throws -> CertificateSummary {
        do {
            return CertificateSummary(try Certificate(pemEncoded: pem))
        } catch {
            throw PKIError.invalidInput("not a PEM certificate: \(error)")
        }
    }

    /// Verifies that `certificatePEM` chains to `trustedCAPEM` now (RFC 5280 rules) and,
    /// when `serverName` is given (a DNS name or IP address), that it is valid for that server.
    /// Throws `PKIError.verificationFailed` saying why not.
    public static func verify(
        certificatePEM: String, trustedCAPEM: String, serverName: String? = nil
    ) async throws {
        let leaf: Certificate
        let root: Certificate
        do {
            leaf = try Certificate(pemEncoded: certificatePEM)
            root = try Certificate(pemEncoded: trustedCAPEM)
        } catch {
            throw PKIError.invalidInput("not a PEM certificate: \(error)")
        }
        let result: CertificateValidationResult
        if let serverName {
            let isIP = canonicalIP(serverName) != nil
            var verifier = Verifier(rootCertificates: CertificateStore([root])) {
                RFC5280Policy()
                ServerIdentityPolicy(serverHostname: isIP ? nil : serverName, serverIP: isIP ? serverName : nil)
            }
            result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        } else {
            var verifier = Verifier(rootCertificates: CertificateStore([root])) {
                RFC5280Policy()
            }
            result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        }
        if case .couldNotValidate(let failures) = result {
            let reasons = failures.map { String(describing: $0.policyFailureReason) }
            throw PKIError.verificationFailed(reasons.isEmpty ? "no chain to the CA" : reasons.joined(separator: "; "))
        }
    }

    // MARK: - Addresses

    static func ipBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    static func ipString(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard bytes.count == 4 || bytes.count == 16,
              bytes.withUnsafeBytes({ inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }) != nil
        else { return bytes.map { String($0, radix: 16) }.joined(separator: ":") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func canonicalIP(_ text: String) -> String? {
        ipBytes(text).map(ipString)
    }

    private static func uniqued(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }
}

/// Why TLS material could not be loaded, created or verified.
public enum PKIError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidInput(String)
    case invalidFile(path: String, reason: String)
    case missingCAKey(certificate: String, key: String)
    case mismatchedKey(certificate: String, key: String)
    case caExpired(path: String, notValidAfter: Date)
    case io(path: String, operation: String, errno: Int32)
    case verificationFailed(String)

    public var description: String {
        switch self {
        case .invalidInput(let message):
            return message
        case let .invalidFile(path, reason):
            return "\(path): \(reason)"
        case let .missingCAKey(certificate, key):
            return "\(certificate) exists but \(key) is missing; restore the key, or remove the certificate to create a new CA (kubeconfigs made with the old CA stop working)"
        case let .mismatchedKey(certificate, key):
            return "\(key) does not belong to \(certificate); restore the matching key or remove both to create a new CA"
        case let .caExpired(path, notValidAfter):
            return "the cluster CA \(path) expired on \(notValidAfter); remove the CA files to create a new one"
        case let .io(path, operation, code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case .verificationFailed(let reason):
            return "certificate verification failed: \(reason)"
        }
    }
}

/// File writes shared by the PKI and the kubeconfig writer: a temp file in the same directory,
/// fsync, then rename, so a reader never sees half a key and a crash never leaves one.
enum PKIFiles {
    struct Owner: Equatable {
        var uid: uid_t
        var gid: gid_t
    }

    static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PKIError.invalidFile(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }

    /// Creates `path` and missing parents with `mode`. Returns the directories it created,
    /// outermost first, so a caller can hand them to another owner.
    @discardableResult
    static func makeDirectory(_ path: String, mode: mode_t) throws -> [String] {
        var missing: [String] = []
        var cursor = path
        while !cursor.isEmpty, cursor != "/", !FileManager.default.fileExists(atPath: cursor) {
            missing.insert(cursor, at: 0)
            cursor = (cursor as NSString).deletingLastPathComponent
        }
        for directory in missing {
            if mkdir(directory, mode) != 0 && errno != EEXIST {
                throw PKIError.io(path: directory, operation: "mkdir", errno: errno)
            }
            // mkdir applies the umask; the mode we asked for is the one we want.
            _ = chmod(directory, mode)
        }
        return missing
    }

    static func writeAtomically(path: String, contents: String, mode: mode_t, owner: Owner? = nil) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let temporary = ((directory.isEmpty ? "." : directory) as NSString)
            .appendingPathComponent(".\(base).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw PKIError.io(path: temporary, operation: "create", errno: errno) }
        var succeeded = false
        defer {
            if !succeeded { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            let bytes = Array(contents.utf8)
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw PKIError.io(path: temporary, operation: "write", errno: errno)
                }
                written += n
            }
            if fchmod(fd, mode) != 0 { throw PKIError.io(path: temporary, operation: "chmod", errno: errno) }
            if let owner, fchown(fd, owner.uid, owner.gid) != 0 {
                throw PKIError.io(path: temporary, operation: "chown", errno: errno)
            }
            if fsync(fd) != 0 { throw PKIError.io(path: temporary, operation: "fsync", errno: errno) }
        }
        if rename(temporary, path) != 0 { throw PKIError.io(path: path, operation: "rename", errno: errno) }
        succeeded = true
    }
}
