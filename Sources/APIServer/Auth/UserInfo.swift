import Foundation
import X509

/// Who made a request, as authentication decided it. Authorization and `kubectl auth whoami`
/// read this.
public struct UserInfo: Sendable, Equatable {
    public var name: String
    public var uid: String
    public var groups: [String]
    /// Extra attributes, e.g. `authentication.kubernetes.io/pod-name` for a pod's token.
    public var extra: [String: [String]]

    public init(name: String, uid: String = "", groups: [String] = [], extra: [String: [String]] = [:]) {
        self.name = name
        self.uid = uid
        self.groups = groups
        self.extra = extra
    }

    /// kube-apiserver adds this group to every user that any authenticator accepted.
    public static let authenticatedGroup = "system:authenticated"
    /// The superuser group (the admin certificate's O).
    public static let mastersGroup = "system:masters"

    /// A copy with `system:authenticated` appended unless it is already there.
    public func addingAuthenticatedGroup() -> UserInfo {
        guard !groups.contains(UserInfo.authenticatedGroup) else { return self }
        var copy = self
        copy.groups.append(UserInfo.authenticatedGroup)
        return copy
    }
}

/// Client-certificate authentication: the subject's CN is the user name and each O a group,
/// as kube-apiserver reads a certificate signed by its client CA. Chain verification is the TLS
/// layer's job (NIOSSL with the cluster CA as trust root); these functions only map a verified
/// certificate to a user.
public enum ClientCertificateIdentity {
    /// The user for a certificate subject, with `system:authenticated` added. Nil when the
    /// common name is empty: kube-apiserver does not authenticate such a certificate.
    public static func userInfo(commonName: String?, organizations: [String]) -> UserInfo? {
        guard let commonName, !commonName.isEmpty else { return nil }
        return UserInfo(name: commonName, groups: organizations).addingAuthenticatedGroup()
    }

    /// The user for a parsed certificate.
    public static func userInfo(certificate: Certificate) -> UserInfo? {
        var commonName: String?
        var organizations: [String] = []
        for attribute in certificate.subject.flatMap({ $0 }) {
            guard let value = String(attribute.value) else { continue }
            if attribute.type == .RDNAttributeType.commonName {
                commonName = value
            } else if attribute.type == .RDNAttributeType.organizationName {
                organizations.append(value)
            }
        }
        return userInfo(commonName: commonName, organizations: organizations)
    }

    /// The user for a DER-encoded certificate, e.g. NIOSSL's peer certificate `toDERBytes()`.
    public static func userInfo(derEncoded bytes: [UInt8]) throws -> UserInfo? {
        userInfo(certificate: try Certificate(derEncoded: bytes))
    }
}
