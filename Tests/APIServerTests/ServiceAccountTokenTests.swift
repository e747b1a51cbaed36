import Foundation
import Testing
import APIServer

@Suite("Service account tokens")
struct ServiceAccountTokenTests {
    let issuer = ServiceAccountTokenAuthority.issuer(clusterDomain: "cluster.local")

    func makeAuthority(_ keyPEM: String = ServiceAccountTokenAuthority.generateSigningKeyPEM()) throws -> ServiceAccountTokenAuthority {
        try ServiceAccountTokenAuthority(signingKeyPEM: keyPEM, issuer: issuer)
    }

    func validClaims(from result: ServiceAccountTokenVerification) -> ServiceAccountTokenClaims? {
        if case .valid(let claims) = result { return claims }
        return nil
    }

    @Test func issuerFollowsTheClusterDomain() {
        #expect(issuer == "https://kubernetes.default.svc.cluster.local")
        #expect(ServiceAccountTokenAuthority.issuer(clusterDomain: "lab.example.") == "https://kubernetes.default.svc.lab.example")
    }

    @Test func issueThenVerifyRoundTrips() throws {
        let authority = try makeAuthority()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let token = try authority.issue(
            namespace: "default", serviceAccountName: "builder", serviceAccountUID: "sa-uid-1",
            pod: (name: "web-0", uid: "pod-uid-1"), lifetime: 3600, now: now)

        let result = authority.verify(token, now: now.addingTimeInterval(10))
        let claims = try #require(validClaims(from: result), "verification said \(result)")
        #expect(claims.issuer == issuer)
        #expect(claims.subject == "system:serviceaccount:default:builder")
        #expect(claims.audiences == [issuer])
        #expect(claims.issuedAt == now)
        #expect(claims.notBefore == now)
        #expect(claims.expiresAt == now.addingTimeInterval(3600))
        #expect(claims.namespace == "default")
        #expect(claims.serviceAccountName == "builder")
        #expect(claims.serviceAccountUID == "sa-uid-1")
        #expect(claims.podName == "web-0")
        #expect(claims.podUID == "pod-uid-1")

        let user = claims.userInfo
        #expect(user.name == "system:serviceaccount:default:builder")
        #expect(user.uid == "sa-uid-1")
        #expect(user.groups == ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"])
        #expect(user.extra["authentication.kubernetes.io/pod-name"] == ["web-0"])
        #expect(user.extra["authentication.kubernetes.io/pod-uid"] == ["pod-uid-1"])
        #expect(user.extra["authentication.kubernetes.io/credential-id"]?.first?.hasPrefix("JTI=") == true)
    }

    @Test func tokenHasTheKubernetesShape() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(namespace: "kube-system", serviceAccountName: "coredns", serviceAccountUID: "u1")
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        #expect(parts.count == 3)
        #expect(!token.contains("="), "base64url without padding")
        #expect(!token.contains("+") && !token.contains("/"))

        let header = try #require(jsonObject(parts[0]))
        #expect(header["alg"] as? String == "ES256")
        #expect(header["kid"] as? String == authority.keyID)

        let payload = try #require(jsonObject(parts[1]))
        #expect(payload["iss"] as? String == issuer)
        #expect(payload["sub"] as? String == "system:serviceaccount:kube-system:coredns")
        #expect(payload["aud"] as? [String] == [issuer])
        for key in ["iat", "nbf", "exp"] {
            #expect(payload[key] is NSNumber, "\(key) is a NumericDate")
        }
        let kubernetes = try #require(payload["kubernetes.io"] as? [String: Any])
        #expect(kubernetes["namespace"] as? String == "kube-system")
        let serviceAccount = try #require(kubernetes["serviceaccount"] as? [String: Any])
        #expect(serviceAccount["name"] as? String == "coredns")
        #expect(serviceAccount["uid"] as? String == "u1")
        #expect(kubernetes["pod"] == nil, "no pod claim for an unbound token")

        // raw r||s, 64 bytes for P-256
        #expect(base64URLDecode(parts[2])?.count == 64)
    }

    @Test func tamperedPayloadIsRejected() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(namespace: "default", serviceAccountName: "reader", serviceAccountUID: "u1")
        var parts = token.split(separator: ".").map(String.init)
        var payload = try #require(jsonObject(parts[1]))
        payload["sub"] = "system:serviceaccount:kube-system:admin"
        var kubernetes = try #require(payload["kubernetes.io"] as? [String: Any])
        kubernetes["namespace"] = "kube-system"
        kubernetes["serviceaccount"] = ["name": "admin", "uid": "u1"]
        payload["kubernetes.io"] = kubernetes
        parts[1] = base64URLEncode(try JSONSerialization.data(withJSONObject: payload))
        #expect(authority.verify(parts.joined(separator: ".")) == .invalid("invalid signature"))
    }

    @Test func tamperedSignatureIsRejected() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(namespace: "default", serviceAccountName: "reader", serviceAccountUID: "u1")
        var parts = token.split(separator: ".").map(String.init)
        var signature = try #require(base64URLDecode(parts[2]))
        signature[10] ^= 0x01
        parts[2] = base64URLEncode(signature)
        #expect(authority.verify(parts.joined(separator: ".")) == .invalid("invalid signature"))
    }

    @Test func tokenFromAnotherKeyIsRejected() throws {
        let other = try makeAuthority().issue(namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        #expect(try makeAuthority().verify(other) == .invalid("invalid signature"))
    }

    @Test func expiredTokenIsRejected() throws {
        let authority = try makeAuthority()
        let issued = Date(timeIntervalSince1970: 1_800_000_000)
        let token = try authority.issue(
            namespace: "default", serviceAccountName: "x", serviceAccountUID: "u", lifetime: 600, now: issued)
        #expect(authority.verify(token, now: issued.addingTimeInterval(600 + 120)) == .invalid("service account token has expired"))
        // kube-apiserver allows a minute of clock skew past exp.
        #expect(validClaims(from: authority.verify(token, now: issued.addingTimeInterval(600 + 30))) != nil)
    }

    @Test func tokenNotYetValidIsRejected() throws {
        let authority = try makeAuthority()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let future = ServiceAccountTokenClaims(
            issuer: issuer, audiences: [issuer],
            issuedAt: now.addingTimeInterval(600), notBefore: now.addingTimeInterval(600),
            expiresAt: now.addingTimeInterval(4200),
            namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        let token = try authority.sign(future)
        #expect(authority.verify(token, now: now) == .invalid("service account token is not valid yet"))
    }

    @Test func wrongAudienceIsRejected() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(
            namespace: "default", serviceAccountName: "x", serviceAccountUID: "u", audiences: ["vault"])
        #expect(authority.verify(token) == .invalid(
            "token audiences [\"vault\"] is invalid for the target audiences [\"https://kubernetes.default.svc.cluster.local\"]"))
    }

    @Test(arguments: [
        "lab-token",
        "a.b",
        "not.base64!.x",
        "",
    ])
    func nonJWTsAreLeftToOtherAuthenticators(token: String) throws {
        #expect(try makeAuthority().verify(token) == .notServiceAccountToken)
    }

    @Test func tokenFromAnotherIssuerIsNotOurs() throws {
        let key = ServiceAccountTokenAuthority.generateSigningKeyPEM()
        let foreign = try ServiceAccountTokenAuthority(signingKeyPEM: key, issuer: "https://issuer.example")
        let token = try foreign.issue(namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        #expect(try makeAuthority(key).verify(token) == .notServiceAccountToken)
    }

    @Test func unsignedTokenIsRejected() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        let parts = token.split(separator: ".").map(String.init)
        let none = base64URLEncode(Data(#"{"alg":"none"}"#.utf8))
        #expect(authority.verify("\(none).\(parts[1]).") == .invalid("unsupported signing algorithm none"))
    }

    @Test func sameKeyGivesTheSameAuthority() throws {
        let key = ServiceAccountTokenAuthority.generateSigningKeyPEM()
        let first = try makeAuthority(key)
        let second = try makeAuthority(key)
        let token = try first.issue(namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        #expect(validClaims(from: second.verify(token)) != nil)
        #expect(first.keyID == second.keyID)
        #expect(first.keyID != (try makeAuthority().keyID))
        #expect(throws: ServiceAccountTokenError.self) {
            try ServiceAccountTokenAuthority(signingKeyPEM: "garbage", issuer: issuer)
        }
    }

    struct BindingCase: Sendable, CustomTestStringConvertible {
        var serviceAccountUID: String?
        var podUID: String?
        var expected: String?
        var testDescription: String { expected ?? "binding holds" }
    }

    @Test(arguments: [
        BindingCase(serviceAccountUID: "sa-1", podUID: "pod-1", expected: nil),
        BindingCase(serviceAccountUID: nil, podUID: "pod-1", expected: "serviceaccounts \"builder\" not found"),
        BindingCase(serviceAccountUID: "sa-2", podUID: "pod-1",
                    expected: "service account UID (sa-2) does not match claim (sa-1)"),
        BindingCase(serviceAccountUID: "sa-1", podUID: nil, expected: "service account token has been invalidated"),
        BindingCase(serviceAccountUID: "sa-1", podUID: "pod-2",
                    expected: "pod UID (pod-2) does not match service account pod ref claim (pod-1)"),
    ])
    func bindingToServiceAccountAndPod(_ testCase: BindingCase) {
        let claims = ServiceAccountTokenClaims(
            issuer: issuer, audiences: [issuer], issuedAt: Date(), notBefore: Date(), expiresAt: Date(),
            namespace: "default", serviceAccountName: "builder", serviceAccountUID: "sa-1",
            podName: "web-0", podUID: "pod-1")
        #expect(claims.bindingFailure(
            currentServiceAccountUID: testCase.serviceAccountUID, currentPodUID: testCase.podUID) == testCase.expected)
    }

    /// Python's `cryptography` verifies our ES256 signature independently of swift-crypto.
    @Test(.enabled(if: pythonCryptographyAvailable(), "python3 with the cryptography package is not installed"))
    func signatureVerifiesWithAnIndependentImplementation() throws {
        let authority = try makeAuthority()
        let token = try authority.issue(namespace: "default", serviceAccountName: "x", serviceAccountUID: "u")
        let script = """
        import base64, sys
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, utils
        pem, token = sys.stdin.read().split("\\n===\\n")
        h, p, s = token.strip().split(".")
        raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        sig = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        key = serialization.load_pem_public_key(pem.encode())
        key.verify(sig, (h + "." + p).encode(), ec.ECDSA(hashes.SHA256()))
        print("ok")
        """
        let output = try runPython(script, input: authority.publicKeyPEM + "\n===\n" + token)
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "ok")
    }
}

@Suite("Client certificate identity")
struct ClientCertificateIdentityTests {
    @Test func commonNameIsTheUserAndOrganizationsAreGroups() {
        let user = ClientCertificateIdentity.userInfo(commonName: "kubernetes-admin", organizations: ["system:masters"])
        #expect(user == UserInfo(name: "kubernetes-admin", groups: ["system:masters", "system:authenticated"]))
    }

    @Test func emptyCommonNameIsNotAUser() {
        #expect(ClientCertificateIdentity.userInfo(commonName: "", organizations: ["dev"]) == nil)
        #expect(ClientCertificateIdentity.userInfo(commonName: nil, organizations: []) == nil)
    }

    @Test func authenticatedGroupIsNotDuplicated() {
        let user = ClientCertificateIdentity.userInfo(commonName: "bob", organizations: ["system:authenticated"])
        #expect(user?.groups == ["system:authenticated"])
    }

    /// Made with `openssl req -x509 ... -subj "/O=dev/O=ops/CN=jane"`.
    static let janePEM = """
    MIIBrDCCAVOgAwIBAgIUY8acrlpWU35UPVj8/7qfCffhem0wCgYIKoZIzj0EAwIw
    KzEMMAoGA1UECgwDZGV2MQwwCgYDVQQKDANvcHMxDTALBgNVBAMMBGphbmUwIBcN
    MjYxMTMwMDQzMjE2WhgPMjEyNjExMDYwNDMyMTZaMCsxDDAKBgNVBAoMA2RldjEM
    MAoGA1UECgwDb3BzMQ0wCwYDVQQDDARqYW5lMFkwEwYHKoZIzj0CAQYIKoZIzj0D
    AQcDQgAEI1XJgfSdV+pIrVwlf5akB11oiWj3PvtjLmFpFNK8ZisFAJUrAD+2Faox
    iavgWXEygcK3cFDGrTQqYtzbeSDBlKNTMFEwHQYDVR0OBBYEFGXRp1HkuXpuJUJu
    Ago3sSaaH4cbMB8GA1UdIwQYMBaAFGXRp1HkuXpuJUJuAgo3sSaaH4cbMA8GA1Ud
    EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgeCPGpvHvSAfaHLEGmEn9Uyav
    GpbJx5BmfDsjRVTR2TMCIFmMuk7oyGpOBjBehW/VlBQKAOJthUZxKJwYI+ivXQjg
    """

    @Test func derCertificateSubjectMapsToUser() throws {
        let der = try #require(Data(base64Encoded: Self.janePEM, options: .ignoreUnknownCharacters))
        let user = try ClientCertificateIdentity.userInfo(derEncoded: Array(der))
        #expect(user == UserInfo(name: "jane", groups: ["dev", "ops", "system:authenticated"]))
    }

    @Test func garbageDERThrows() {
        #expect(throws: (any Error).self) {
            try ClientCertificateIdentity.userInfo(derEncoded: [0x30, 0x03, 0x01])
        }
    }
}

// MARK: - Helpers

private func base64URLEncode(_ data: Data) -> String {
    data.base64EncodedString()
        .replacingOccurrences(of: "+", with: "-")
        .replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
}

private func base64URLDecode(_ text: String) -> Data? {
    var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base64.count % 4 != 0 { base64 += "=" }
    return Data(base64Encoded: base64)
}

private func jsonObject(_ part: String) -> [String: Any]? {
    guard let data = base64URLDecode(part) else { return nil }
    return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
}

private func pythonCryptographyAvailable() -> Bool {
    (try? runPython("import cryptography; print('ok')", input: ""))?.contains("ok") == true
}

private func runPython(_ script: String, input: String) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = FileHandle.nullDevice
    try process.run()
    stdin.fileHandleForWriting.write(Data(input.utf8))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: output, as: UTF8.self)
}
