import APIServer
import Foundation
import Testing
import Cluster

@Suite("Cluster authenticators")
struct PKIClusterAuthTests {
    func makePKI(_ directory: String) throws -> PKI {
        try PKI.loadOrCreate(directory: directory, nodeIP: "192.0.2.2", serviceIP: "10.96.0.1", clusterDomain: "cluster.local")
    }

    func der(ofPEM pem: String) throws -> [UInt8] {
        let body = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        return Array(try #require(Data(base64Encoded: body)))
    }

    @Test func issuedTokenAuthenticatesAsTheServiceAccount() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = try ServiceAccountTokens(pki: try makePKI(directory), clusterDomain: "cluster.local")
        let before = Date()
        let issued = try tokens.issue(namespace: "default", serviceAccount: "builder", uid: "sa-1", audiences: [],
                                      expirationSeconds: 3600, boundPod: nil)
        #expect(issued.expiration.timeIntervalSince(before) > 3598 && issued.expiration.timeIntervalSince(before) <= 3600)
        guard case .valid(let claims) = tokens.verify(issued.token) else {
            Issue.record("the token did not verify")
            return
        }
        #expect(claims.expiresAt == issued.expiration)
        #expect(claims.audiences == ["https://kubernetes.default.svc.cluster.local"])

        let user = await ClusterAuthenticator(tokens: tokens).authenticate(bearerToken: issued.token)
        #expect(user == RequestUser(name: "system:serviceaccount:default:builder",
                                    groups: ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"]))
        #expect(await ClusterAuthenticator(tokens: tokens).authenticate(bearerToken: "lab-token") == nil)
    }

    @Test func tokenOfADeletedServiceAccountIsRefusedWhenALookupIsGiven() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = try ServiceAccountTokens(pki: try makePKI(directory), clusterDomain: "cluster.local")
        let token = try tokens.issue(namespace: "default", serviceAccount: "builder", uid: "sa-1", audiences: [],
                                     expirationSeconds: 600, boundPod: (name: "web-0", uid: "pod-1")).token
        let present = ClusterAuthenticator(tokens: tokens) { _, _, _ in ("sa-1", "pod-1") }
        let recreated = ClusterAuthenticator(tokens: tokens) { _, _, _ in ("sa-2", "pod-1") }
        let podGone = ClusterAuthenticator(tokens: tokens) { _, _, _ in ("sa-1", nil) }
        #expect(await present.authenticate(bearerToken: token)?.name == "system:serviceaccount:default:builder")
        #expect(await recreated.authenticate(bearerToken: token) == nil)
        #expect(await podGone.authenticate(bearerToken: token) == nil)
    }

    @Test func immediateChecksDecideAsTheAsyncOnes() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try makePKI(directory)
        let tokens = try ServiceAccountTokens(pki: pki, clusterDomain: "cluster.local")
        let issued = try tokens.issue(namespace: "default", serviceAccount: "builder", uid: "sa-1", audiences: [],
                                      expirationSeconds: 600, boundPod: (name: "web-0", uid: "pod-1"))
        let async: ClusterAuthenticator.BindingLookup = { _, _, _ in ("sa-1", "pod-1") }
        func with(_ uids: (String?, String?)) -> ClusterAuthenticator {
            ClusterAuthenticator(tokens: tokens, lookup: async, immediateLookup: { _, _, _ in uids })
        }
        let accepted = with(("sa-1", "pod-1")).authenticateImmediately(bearerToken: issued.token)
        #expect(accepted?.user.name == "system:serviceaccount:default:builder")
        #expect(accepted?.expires == issued.expiration)
        #expect(with(("sa-2", "pod-1")).authenticateImmediately(bearerToken: issued.token) == nil)
        #expect(with(("sa-1", nil)).authenticateImmediately(bearerToken: issued.token) == nil)
        #expect(with(("sa-1", "pod-1")).authenticateImmediately(bearerToken: "lab-token") == nil)
        // A lookup that can only wait: the immediate check cannot decide, so it does not accept.
        #expect(ClusterAuthenticator(tokens: tokens, lookup: async).authenticateImmediately(bearerToken: issued.token) == nil)
        let admin = ClusterAuthenticator(tokens: tokens).authenticateImmediately(clientCertificateDER: try der(ofPEM: pki.adminCertificatePEM))
        #expect(admin?.groups == ["system:masters", "system:authenticated"])
    }

    @Test func adminCertificateAuthenticatesAsSystemMasters() async throws {
        let directory = try PKITestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let pki = try makePKI(directory)
        let authenticator = ClusterAuthenticator(tokens: try ServiceAccountTokens(pki: pki, clusterDomain: "cluster.local"))
        let user = await authenticator.authenticate(clientCertificateDER: try der(ofPEM: pki.adminCertificatePEM))
        #expect(user == RequestUser(name: "kubernetes-admin", groups: ["system:masters", "system:authenticated"]))
        #expect(await authenticator.authenticate(clientCertificateDER: [0x30, 0x00]) == nil)
    }
}
