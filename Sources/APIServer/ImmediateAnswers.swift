import APIMachinery
import Foundation
import NIOHTTP1
import Synchronization

/// A reply built without suspending, written by `ImmediateAnswerHandler` on the connection's
/// event loop.
struct ImmediateAnswer: Sendable {
    var contentType: String
    var body: [UInt8]
}

/// What one connection's fast path remembers between its requests.
struct ImmediateConnectionState {
    /// The client certificate's user, looked up at the first request that needs it (a TLS
    /// connection's peer certificate never changes).
    var certificateUser: RequestUser??
    /// The last bearer token accepted: the header that carried it, whom it names, until when,
    /// and the store revision its service account (and pod) were checked at. Clients send the
    /// same token on every request; while nothing was written since, the check still holds.
    var token: (header: String, user: RequestUser, expires: Date, revision: Int64)?
}

/// What the connection's fast path asks the API: the reply to a request, when it needs no
/// waiting. `certificateDER` reads the connection's verified client certificate.
struct ImmediateResponder: Sendable {
    let answer: @Sendable (_ head: HTTPRequestHead, _ state: inout ImmediateConnectionState,
                           _ certificateDER: () -> [UInt8]?) -> ImmediateAnswer?
    /// Sees every request of the connection, whichever path answers it.
    var activity: RequestActivity?
}

extension APIHandler {
    /// The fast path's view of this handler.
    var immediateResponder: ImmediateResponder {
        ImmediateResponder(answer: { head, state, certificateDER in
            self.immediateAnswer(head, state: &state, certificateDER: certificateDER)
        }, activity: activity)
    }

    /// The reply to a GET of one object, when the credentials can be checked and the object read
    /// from memory: the same bytes `serve` would send (JSON, or a Table when Accept asks for one).
    ///
    /// A request through Hummingbird crosses from the event loop to a task and back, which is
    /// most of its cost on a small machine; the commonest request needs neither. Anything else
    /// returns nil and takes the async path, which also words every error (404, 401, ...), so
    /// the two paths cannot disagree on one.
    func immediateAnswer(_ head: HTTPRequestHead, state: inout ImmediateConnectionState,
                         certificateDER: () -> [UInt8]?) -> ImmediateAnswer? {
        guard head.method == .GET else { return nil }
        let path = head.uri
        // A query changes what a GET means (resourceVersion, includeObject, ...); %-escapes are
        // never in a valid name. Both are left to the full path.
        guard path.hasPrefix("/api/") || path.hasPrefix("/apis/"),
              !path.utf8.contains(UInt8(ascii: "?")), !path.utf8.contains(UInt8(ascii: "%")) else { return nil }
        guard immediateUser(head, state: &state, certificateDER: certificateDER) != nil else { return nil }
        guard let info = RequestInfo.parse(method: "GET", path: path, query: Query(nil)),
              info.verb == .get, info.subresource == nil, let name = info.name,
              let resource = Resources.find(group: info.group, version: info.version, resource: info.resource),
              resource.namespaced == (info.namespace != nil), Self.deprecationWarning(resource) == nil else { return nil }
        // Without a query TableRequest cannot fail: nil means Accept did not ask for a Table.
        let accept = head.headers.first(name: "accept") ?? ""
        if let table = try? TableRequest(accept: accept, query: Query(nil)) {
            guard let obj = api.getImmediately(resource, namespace: info.namespace, name: name) else { return nil }
            let reply = TablePrinter.table(resource: resource, objects: [obj], listResourceVersion: obj.resourceVersion,
                                           continueToken: nil, includeObject: table.includeObject,
                                           now: Date().timeIntervalSince1970)
            return ImmediateAnswer(contentType: "application/json", body: reply.serialized())
        }
        guard let bytes = api.getEncodedImmediately(resource, namespace: info.namespace, name: name) else { return nil }
        return ImmediateAnswer(contentType: "application/json", body: bytes)
    }

    /// `authenticate` without suspending: a bearer token if one is sent, else the connection's
    /// client certificate; nil when refused or undecidable now.
    func immediateUser(_ head: HTTPRequestHead, state: inout ImmediateConnectionState,
                       certificateDER: () -> [UInt8]?) -> RequestUser? {
        guard let authenticator else { return RequestUser(name: "system:anonymous", groups: ["system:masters"]) }
        guard let auth = head.headers.first(name: "authorization") else {
            if let known = state.certificateUser { return known }
            let user = certificateDER().flatMap { authenticator.authenticateImmediately(clientCertificateDER: $0) }
            state.certificateUser = .some(user)
            return user
        }
        guard let revision = api.revisionImmediately else { return nil }
        if let known = state.token, known.header == auth, known.revision == revision, known.expires > Date() {
            return known.user
        }
        guard let token = Self.bearerToken(auth), let accepted = authenticator.authenticateImmediately(bearerToken: token) else {
            return nil
        }
        state.token = (auth, accepted.user, accepted.expires, revision)
        return accepted.user
    }
}

/// The `Date` header's value (RFC 9110's IMF-fixdate), formatted once per second. The day and
/// month names are English whatever the locale, as HTTP requires (strftime's would follow
/// LC_TIME once anything calls setlocale).
enum HTTPDate {
    static let cache = Mutex<(second: Int, text: String)>((-1, ""))
    static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static var now: String {
        let second = time(nil)
        return cache.withLock { c in
            if c.second != second { c = (second, format(second)) }
            return c.text
        }
    }

    /// `seconds` since the epoch as `Tue, 01 Dec 2026 11:52:37 GMT`.
    static func format(_ seconds: Int) -> String {
        var t = seconds
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let day = days[Int(parts.tm_wday) % 7], month = months[Int(parts.tm_mon) % 12]
        return "\(day), \(two(parts.tm_mday)) \(month) \(parts.tm_year + 1900) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
