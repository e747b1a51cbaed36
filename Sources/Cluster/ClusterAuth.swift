import APIServer
import Foundation
import NIOConcurrencyHelpers

/// Service account tokens signed with the cluster's `sa.key`: issued for the
/// `serviceaccounts/token` subresource (`kubectl create token`, projected volumes) and checked
/// when a request carries `Authorization: Bearer`.
public struct ServiceAccountTokens: TokenIssuing {
    public let authority: ServiceAccountTokenAuthority

    /// Issuer `https://kubernetes.default.svc.<clusterDomain>`, which is also the one accepted audience.
    public init(pki: PKI, clusterDomain: String) throws {
        authority = try ServiceAccountTokenAuthority(
            signingKeyPEM: pki.serviceAccountKeyPEM,
            issuer: ServiceAccountTokenAuthority.issuer(clusterDomain: clusterDomain))
    }

    public func issue(
        namespace: String, serviceAccount: String, uid: String, audiences: [String], expirationSeconds: Int64,
        boundPod: (name: String, uid: String)?
    ) throws -> (token: String, expiration: Date) {
        let issued = try authority.issueToken(
            namespace: namespace, serviceAccountName: serviceAccount, serviceAccountUID: uid, pod: boundPod,
            audiences: audiences.isEmpty ? nil : audiences, lifetime: TimeInterval(expirationSeconds))
        return (issued.token, issued.claims.expiresAt)
    }

    public func verify(_ token: String, now: Date = Date()) -> ServiceAccountTokenVerification {
        authority.verify(token, now: now)
    }
}

/// The cluster's authenticators: service account bearer tokens, then client certificates
/// (CN = user, O = groups) that the TLS layer already verified against the cluster CA.
/// Every accepted user also gets the group `system:authenticated`, as in kube-apiserver.
public struct ClusterAuthenticator: Authenticating {
    /// What the store holds now for a token's service account and pod: their UIDs, nil when
    /// missing. Without it a token stays valid after its service account or pod is deleted.
    public typealias BindingLookup = @Sendable (_ namespace: String, _ serviceAccount: String, _ pod: String?) async
        -> (serviceAccountUID: String?, podUID: String?)

    /// The same lookup answered without suspending (from the store's memory).
    public typealias ImmediateBindingLookup = @Sendable (_ namespace: String, _ serviceAccount: String, _ pod: String?)
        -> (serviceAccountUID: String?, podUID: String?)

    public let tokens: ServiceAccountTokens
    let lookup: BindingLookup?
    let immediateLookup: ImmediateBindingLookup?
    /// Verified tokens: an ES256 check costs far more than serving a GET, and clients send the
    /// same token on every request. Expiry is still checked on each use.
    let verified = NIOLockedValueBox<[String: ServiceAccountTokenClaims]>([:])
    static let cacheLimit = 4096

    public init(tokens: ServiceAccountTokens, lookup: BindingLookup? = nil, immediateLookup: ImmediateBindingLookup? = nil) {
        self.tokens = tokens
        self.lookup = lookup
        self.immediateLookup = immediateLookup
    }

    func claims(for token: String) -> ServiceAccountTokenClaims? {
        if let cached = verified.withLockedValue({ $0[token] }) {
            return cached.expiresAt > Date() ? cached : nil
        }
        guard case .valid(let claims) = tokens.verify(token) else { return nil }
        verified.withLockedValue { cache in
            if cache.count >= Self.cacheLimit { cache.removeAll() }
            cache[token] = claims
        }
        return claims
    }

    public func authenticate(bearerToken: String) async -> RequestUser? {
        guard let claims = claims(for: bearerToken) else { return nil }
        let current = await lookup?(claims.namespace, claims.serviceAccountName, claims.podName)
        return Self.user(claims, bindings: current)
    }

    public func authenticateImmediately(bearerToken: String) -> (user: RequestUser, expires: Date)? {
        guard let claims = claims(for: bearerToken) else { return nil }
        var current: (serviceAccountUID: String?, podUID: String?)?
        if lookup != nil {
            // The bindings must be checked, and only the async lookup could: undecidable now.
            guard let immediateLookup else { return nil }
            current = immediateLookup(claims.namespace, claims.serviceAccountName, claims.podName)
        }
        return Self.user(claims, bindings: current).map { ($0, claims.expiresAt) }
    }

    /// The token's user, unless the service account or pod it is bound to is gone or was
    /// recreated (`bindings`: their current UIDs; nil when there is nothing to check against).
    static func user(_ claims: ServiceAccountTokenClaims, bindings: (serviceAccountUID: String?, podUID: String?)?) -> RequestUser? {
        if let bindings, claims.bindingFailure(currentServiceAccountUID: bindings.serviceAccountUID,
                                               currentPodUID: bindings.podUID) != nil {
            return nil
        }
        let user = claims.userInfo
        return RequestUser(name: user.name, groups: user.groups)
    }

    public func authenticateImmediately(clientCertificateDER der: [UInt8]) -> RequestUser? {
        guard let user = try? ClientCertificateIdentity.userInfo(derEncoded: der) else { return nil }
        return RequestUser(name: user.name, groups: user.groups)
    }

    public func authenticate(clientCertificateDER der: [UInt8]) async -> RequestUser? {
        authenticateImmediately(clientCertificateDER: der)
    }
}
