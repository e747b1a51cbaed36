import Crypto
import Foundation

/// The claims of a bound service account token, as kube-apiserver issues them for
/// `kubectl create token` and for a pod's projected token volume.
public struct ServiceAccountTokenClaims: Sendable, Equatable {
    public var issuer: String
    /// `system:serviceaccount:<namespace>:<name>`.
    public var subject: String
    public var audiences: [String]
    public var issuedAt: Date
    public var notBefore: Date
    public var expiresAt: Date
    /// The `jti` claim, when present.
    public var tokenID: String?
    public var namespace: String
    public var serviceAccountName: String
    public var serviceAccountUID: String
    public var podName: String?
    public var podUID: String?

    public init(
        issuer: String,
        audiences: [String],
        issuedAt: Date,
        notBefore: Date,
        expiresAt: Date,
        tokenID: String? = nil,
        namespace: String,
        serviceAccountName: String,
        serviceAccountUID: String,
        podName: String? = nil,
        podUID: String? = nil
    ) {
        self.issuer = issuer
        self.subject = ServiceAccountTokenClaims.username(namespace: namespace, name: serviceAccountName)
        self.audiences = audiences
        self.issuedAt = issuedAt
        self.notBefore = notBefore
        self.expiresAt = expiresAt
        self.tokenID = tokenID
        self.namespace = namespace
        self.serviceAccountName = serviceAccountName
        self.serviceAccountUID = serviceAccountUID
        self.podName = podName
        self.podUID = podUID
    }

    /// The user name Kubernetes gives a service account.
    public static func username(namespace: String, name: String) -> String {
        "system:serviceaccount:\(namespace):\(name)"
    }

    /// The user these claims authenticate: the service account's name and UID, the groups
    /// `system:serviceaccounts`, `system:serviceaccounts:<ns>` and `system:authenticated`,
    /// and the pod name/UID (and token ID) as extra attributes like kube-apiserver sets them.
    public var userInfo: UserInfo {
        var extra: [String: [String]] = [:]
        if let podName, let podUID {
            extra["authentication.kubernetes.io/pod-name"] = [podName]
            extra["authentication.kubernetes.io/pod-uid"] = [podUID]
        }
        if let tokenID {
            extra["authentication.kubernetes.io/credential-id"] = ["JTI=\(tokenID)"]
        }
        return UserInfo(
            name: subject,
            uid: serviceAccountUID,
            groups: ["system:serviceaccounts", "system:serviceaccounts:\(namespace)", UserInfo.authenticatedGroup],
            extra: extra
        )
    }

    /// A token stays valid only while the objects it is bound to exist with the UIDs it names.
    /// Given what the store holds now (nil = not found), returns nil when the binding still
    /// holds, else the reason kube-apiserver logs.
    public func bindingFailure(currentServiceAccountUID: String?, currentPodUID: String?) -> String? {
        guard let currentServiceAccountUID else {
            return "serviceaccounts \"\(serviceAccountName)\" not found"
        }
        if currentServiceAccountUID != serviceAccountUID {
            return "service account UID (\(currentServiceAccountUID)) does not match claim (\(serviceAccountUID))"
        }
        if let podUID {
            guard let currentPodUID else { return "service account token has been invalidated" }
            if currentPodUID != podUID {
                return "pod UID (\(currentPodUID)) does not match service account pod ref claim (\(podUID))"
            }
        }
        return nil
    }
}

/// The outcome of checking a bearer token.
public enum ServiceAccountTokenVerification: Sendable, Equatable {
    /// Signature, issuer, audience and time all check out. The caller still checks that the
    /// service account (and pod) exist: `claims.bindingFailure(...)`.
    case valid(ServiceAccountTokenClaims)
    /// Not a JWT from this issuer; another authenticator may still accept it.
    case notServiceAccountToken
    /// A token from this issuer that must be refused, and why.
    case invalid(String)
}

/// Why a token could not be issued.
public enum ServiceAccountTokenError: Error, Equatable, CustomStringConvertible, Sendable {
    case invalidSigningKey(String)
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .invalidSigningKey(let detail): return "service account signing key is unusable: \(detail)"
        case .invalidRequest(let detail): return "cannot issue service account token: \(detail)"
        }
    }
}

/// Issues and verifies service account tokens: JWTs signed with ES256 by the cluster's
/// `sa.key`, with the claims kube-apiserver writes (`iss`, `sub`, `aud`, `iat`, `nbf`, `exp`,
/// `jti`, and `kubernetes.io` with namespace, service account and optional pod).
public struct ServiceAccountTokenAuthority: Sendable {
    /// kube-apiserver (through go-jose) allows this much clock skew on `exp` and `nbf`.
    public static let leeway: TimeInterval = 60

    public let issuer: String
    /// Audiences a token must name one of; kube-apiserver defaults `--api-audiences` to the issuer.
    public let acceptedAudiences: [String]
    /// `kid` header: base64url SHA-256 of the public key's DER, as kube-apiserver derives it.
    public let keyID: String

    // Crypto's key types are not Sendable here, so the keys are kept as bytes.
    private let privateKeyRaw: Data
    private let publicKeyX963: Data

    /// The issuer URL for a cluster domain: `https://kubernetes.default.svc.<domain>`.
    public static func issuer(clusterDomain: String) -> String {
        let domain = clusterDomain.hasSuffix(".") ? String(clusterDomain.dropLast()) : clusterDomain
        return "https://kubernetes.default.svc.\(domain)"
    }

    public init(signingKey: P256.Signing.PrivateKey, issuer: String, acceptedAudiences: [String]? = nil) {
        self.issuer = issuer
        self.acceptedAudiences = acceptedAudiences ?? [issuer]
        self.privateKeyRaw = signingKey.rawRepresentation
        self.publicKeyX963 = signingKey.publicKey.x963Representation
        self.keyID = TokenBase64URL.encode(Data(SHA256.hash(data: signingKey.publicKey.derRepresentation)))
    }

    /// Reads the key from PEM (PKCS#8 or SEC1), e.g. the PKI's `serviceAccountKeyPEM`.
    public init(signingKeyPEM: String, issuer: String, acceptedAudiences: [String]? = nil) throws {
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: signingKeyPEM)
        } catch {
            throw ServiceAccountTokenError.invalidSigningKey("not a PEM ECDSA P-256 key (\(error))")
        }
        self.init(signingKey: key, issuer: issuer, acceptedAudiences: acceptedAudiences)
    }

    /// A new ECDSA P-256 signing key in PKCS#8 PEM (what the PKI keeps in `sa.key`).
    public static func generateSigningKeyPEM() -> String {
        P256.Signing.PrivateKey().pemRepresentation
    }

    /// The verification key in PEM (SubjectPublicKeyInfo), as the OIDC discovery JWKS would publish it.
    public var publicKeyPEM: String {
        (try? P256.Signing.PublicKey(x963Representation: publicKeyX963))?.pemRepresentation ?? ""
    }

    /// Issues a token for service account `namespace/serviceAccountName`, optionally bound to a pod.
    ///
    /// - Parameters:
    ///   - audiences: defaults to `acceptedAudiences` (what `kubectl create token` gets).
    ///   - lifetime: seconds until `exp`; kube-apiserver's default request is 3600.
    public func issue(
        namespace: String,
        serviceAccountName: String,
        serviceAccountUID: String,
        pod: (name: String, uid: String)? = nil,
        audiences: [String]? = nil,
        lifetime: TimeInterval = 3600,
        now: Date = Date()
    ) throws -> String {
        try issueToken(
            namespace: namespace, serviceAccountName: serviceAccountName, serviceAccountUID: serviceAccountUID,
            pod: pod, audiences: audiences, lifetime: lifetime, now: now
        ).token
    }

    /// `issue`, also returning the claims written (a TokenRequest answers with `exp`).
    public func issueToken(
        namespace: String,
        serviceAccountName: String,
        serviceAccountUID: String,
        pod: (name: String, uid: String)? = nil,
        audiences: [String]? = nil,
        lifetime: TimeInterval = 3600,
        now: Date = Date()
    ) throws -> (token: String, claims: ServiceAccountTokenClaims) {
        guard !namespace.isEmpty, !serviceAccountName.isEmpty else {
            throw ServiceAccountTokenError.invalidRequest("namespace and service account name are required")
        }
        guard lifetime >= 1 else {
            throw ServiceAccountTokenError.invalidRequest("lifetime must be at least one second")
        }
        // JWT times are whole seconds; round here so the claims returned equal the ones signed.
        let issuedAt = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = ServiceAccountTokenClaims(
            issuer: issuer,
            audiences: audiences ?? acceptedAudiences,
            issuedAt: issuedAt,
            notBefore: issuedAt,
            expiresAt: issuedAt.addingTimeInterval(lifetime.rounded(.down)),
            tokenID: UUID().uuidString.lowercased(),
            namespace: namespace,
            serviceAccountName: serviceAccountName,
            serviceAccountUID: serviceAccountUID,
            podName: pod?.name,
            podUID: pod?.uid
        )
        return (try sign(claims), claims)
    }

    /// Signs arbitrary claims; `issue` is the usual entry point. Tests use this to build
    /// tokens with chosen times.
    public func sign(_ claims: ServiceAccountTokenClaims) throws -> String {
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(rawRepresentation: privateKeyRaw)
        } catch {
            throw ServiceAccountTokenError.invalidSigningKey(String(describing: error))
        }
        let header = try TokenJSON.encode(["alg": "ES256", "kid": keyID])
        let payload = try TokenJSON.encode(TokenJSON.object(from: claims))
        let signingInput = TokenBase64URL.encode(header) + "." + TokenBase64URL.encode(payload)
        let signature = try key.signature(for: Data(signingInput.utf8))
        return signingInput + "." + TokenBase64URL.encode(signature.rawRepresentation)
    }

    /// Checks a bearer token: form, issuer, signature, audience, then `nbf`/`exp` with
    /// `leeway`. The messages match kube-apiserver's where it has one.
    public func verify(_ token: String, now: Date = Date()) -> ServiceAccountTokenVerification {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              let headerData = TokenBase64URL.decode(parts[0]),
              let payloadData = TokenBase64URL.decode(parts[1]),
              let header = TokenJSON.decodeObject(headerData),
              let payload = TokenJSON.decodeObject(payloadData)
        else {
            return .notServiceAccountToken
        }
        guard payload["iss"] as? String == issuer else {
            return .notServiceAccountToken
        }
        guard header["alg"] as? String == "ES256" else {
            return .invalid("unsupported signing algorithm \(String(describing: header["alg"] ?? "none"))")
        }
        guard let signatureBytes = TokenBase64URL.decode(parts[2]),
              let signature = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes),
              let publicKey = try? P256.Signing.PublicKey(x963Representation: publicKeyX963),
              publicKey.isValidSignature(signature, for: Data("\(parts[0]).\(parts[1])".utf8))
        else {
            return .invalid("invalid signature")
        }
        let claims: ServiceAccountTokenClaims
        switch TokenJSON.claims(from: payload) {
        case .success(let parsed): claims = parsed
        case .failure(let problem): return .invalid(problem.message)
        }
        if Set(claims.audiences).isDisjoint(with: acceptedAudiences) {
            return .invalid("token audiences \(TokenJSON.goQuoted(claims.audiences)) is invalid for the target audiences \(TokenJSON.goQuoted(acceptedAudiences))")
        }
        if now.addingTimeInterval(-ServiceAccountTokenAuthority.leeway) > claims.expiresAt {
            return .invalid("service account token has expired")
        }
        if now.addingTimeInterval(ServiceAccountTokenAuthority.leeway) < claims.notBefore {
            return .invalid("service account token is not valid yet")
        }
        return .valid(claims)
    }
}

// MARK: - Encoding helpers (private to this file)

/// Base64url without padding (RFC 7515 section 2).
private enum TokenBase64URL {
    static func encode(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: Substring) -> Data? {
        // Padding is not allowed in JWS; standard-alphabet characters are not either.
        guard !text.contains(where: { $0 == "=" || $0 == "+" || $0 == "/" }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = base64.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { base64 += String(repeating: "=", count: 4 - remainder) }
        return Data(base64Encoded: base64)
    }
}

private struct ClaimProblem: Error {
    var message: String
}

private enum TokenJSON {
    static func encode(_ object: [String: Any]) throws -> Data {
        // Sorted keys give the same member order kube-apiserver's tokens have.
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func decodeObject(_ data: Data) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func object(from claims: ServiceAccountTokenClaims) -> [String: Any] {
        var kubernetes: [String: Any] = [
            "namespace": claims.namespace,
            "serviceaccount": ["name": claims.serviceAccountName, "uid": claims.serviceAccountUID],
        ]
        if let podName = claims.podName, let podUID = claims.podUID {
            kubernetes["pod"] = ["name": podName, "uid": podUID]
        }
        var object: [String: Any] = [
            "iss": claims.issuer,
            "sub": claims.subject,
            "aud": claims.audiences,
            "iat": Int64(claims.issuedAt.timeIntervalSince1970),
            "nbf": Int64(claims.notBefore.timeIntervalSince1970),
            "exp": Int64(claims.expiresAt.timeIntervalSince1970),
            "kubernetes.io": kubernetes,
        ]
        if let tokenID = claims.tokenID {
            object["jti"] = tokenID
        }
        return object
    }

    static func claims(from payload: [String: Any]) -> Result<ServiceAccountTokenClaims, ClaimProblem> {
        func time(_ key: String) -> Date? {
            guard let number = payload[key] as? NSNumber else { return nil }
            return Date(timeIntervalSince1970: number.doubleValue)
        }
        guard let issuer = payload["iss"] as? String,
              let subject = payload["sub"] as? String,
              let expiresAt = time("exp")
        else {
            return .failure(ClaimProblem(message: "service account token is missing iss, sub or exp"))
        }
        // RFC 7519 allows a single string or an array.
        let audiences: [String]
        if let single = payload["aud"] as? String {
            audiences = [single]
        } else if let list = payload["aud"] as? [String] {
            audiences = list
        } else {
            audiences = []
        }
        guard let kubernetes = payload["kubernetes.io"] as? [String: Any],
              let namespace = kubernetes["namespace"] as? String,
              let serviceAccount = kubernetes["serviceaccount"] as? [String: Any],
              let serviceAccountName = serviceAccount["name"] as? String
        else {
            return .failure(ClaimProblem(message: "service account token has no kubernetes.io namespace and serviceaccount claims"))
        }
        guard subject == ServiceAccountTokenClaims.username(namespace: namespace, name: serviceAccountName) else {
            return .failure(ClaimProblem(message: "service account token subject \(subject) does not match its kubernetes.io claims"))
        }
        let pod = kubernetes["pod"] as? [String: Any]
        return .success(ServiceAccountTokenClaims(
            issuer: issuer,
            audiences: audiences,
            issuedAt: time("iat") ?? Date(timeIntervalSince1970: 0),
            notBefore: time("nbf") ?? Date(timeIntervalSince1970: 0),
            expiresAt: expiresAt,
            tokenID: payload["jti"] as? String,
            namespace: namespace,
            serviceAccountName: serviceAccountName,
            serviceAccountUID: serviceAccount["uid"] as? String ?? "",
            podName: pod?["name"] as? String,
            podUID: pod?["uid"] as? String
        ))
    }

    /// Go's %q of a []string, as kube-apiserver prints audiences: ["a" "b"].
    static func goQuoted(_ values: [String]) -> String {
        "[" + values.map { "\"\($0)\"" }.joined(separator: " ") + "]"
    }
}
