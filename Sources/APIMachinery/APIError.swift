/// An API failure as Kubernetes reports it: an HTTP code, a machine reason and the message kubectl prints.
///
/// Everything below the HTTP layer throws this; only the HTTP layer turns it into a
/// `Status` body (`status: Failure`), which is what makes kubectl print
/// `Error from server (Reason): message`.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case badRequest = "BadRequest"
        case unauthorized = "Unauthorized"
        case forbidden = "Forbidden"
        case notFound = "NotFound"
        case alreadyExists = "AlreadyExists"
        case conflict = "Conflict"
        case gone = "Expired"
        case invalid = "Invalid"
        case methodNotAllowed = "MethodNotAllowed"
        case notAcceptable = "NotAcceptable"
        case requestEntityTooLarge = "RequestEntityTooLarge"
        case unsupportedMediaType = "UnsupportedMediaType"
        case tooManyRequests = "TooManyRequests"
        case internalError = "InternalError"
        case serviceUnavailable = "ServiceUnavailable"
        case timeout = "Timeout"
        /// No reason: kubectl then prints `Error from server: <message>` (apiserver's generic 500s).
        case unknown = ""
    }

    /// One entry of `details.causes`: for 422 Invalid, the field path and what is wrong with it.
    public struct Cause: Sendable, Equatable {
        /// "FieldValueRequired", "FieldValueInvalid", "FieldValueNotSupported", "FieldValueDuplicate", ...
        public var reason: String
        public var message: String
        public var field: String

        public init(reason: String, message: String, field: String) {
            self.reason = reason
            self.message = message
            self.field = field
        }
    }

    public var code: Int
    public var reason: Reason
    public var message: String
    /// details.name, details.group, details.kind (kind is the resource, e.g. "services").
    public var name: String?
    public var group: String?
    public var kind: String?
    public var causes: [Cause]
    /// details.retryAfterSeconds.
    public var retryAfterSeconds: Int?

    public init(code: Int, reason: Reason, message: String, name: String? = nil, group: String? = nil,
                kind: String? = nil, causes: [Cause] = [], retryAfterSeconds: Int? = nil) {
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.group = group
        self.kind = kind
        self.causes = causes
        self.retryAfterSeconds = retryAfterSeconds
    }

    public var description: String { "\(code) \(reason.rawValue): \(message)" }

    /// "services" or "deployments.apps", as apiserver names a resource in messages.
    public static func qualified(_ resource: String, group: String) -> String {
        group.isEmpty ? resource : "\(resource).\(group)"
    }

    // MARK: Constructors worded exactly as k8s.io/apimachinery/pkg/api/errors words them.

    public static func notFound(_ resource: String, group: String = "", name: String) -> APIError {
        APIError(code: 404, reason: .notFound, message: "\(qualified(resource, group: group)) \"\(name)\" not found",
                 name: name, group: group.isEmpty ? nil : group, kind: resource)
    }

    public static func alreadyExists(_ resource: String, group: String = "", name: String) -> APIError {
        APIError(code: 409, reason: .alreadyExists,
                 message: "\(qualified(resource, group: group)) \"\(name)\" already exists",
                 name: name, group: group.isEmpty ? nil : group, kind: resource)
    }

    /// The optimistic-concurrency conflict kubectl shows on a stale resourceVersion.
    public static func conflict(_ resource: String, group: String = "", name: String,
                                why: String = "the object has been modified; please apply your changes to the latest version and try again") -> APIError {
        APIError(code: 409, reason: .conflict,
                 message: "Operation cannot be fulfilled on \(qualified(resource, group: group)) \"\(name)\": \(why)",
                 name: name, group: group.isEmpty ? nil : group, kind: resource)
    }

    /// 422 with one cause per field error; `kind` is the Kind ("Service"), as apiserver uses here.
    public static func invalid(kind: String, group: String = "", name: String, causes: [Cause]) -> APIError {
        let list = causes.map { c in c.field.isEmpty ? c.message : "\(c.field): \(c.message)" }
        let joined = list.count == 1 ? list[0] : "[" + list.joined(separator: ", ") + "]"
        let qualifiedKind = group.isEmpty ? kind : "\(kind).\(group)"
        return APIError(code: 422, reason: .invalid,
                        message: "\(qualifiedKind) \"\(name)\" is invalid: \(joined)",
                        name: name, group: group.isEmpty ? nil : group, kind: kind, causes: causes)
    }

    public static func badRequest(_ message: String) -> APIError {
        APIError(code: 400, reason: .badRequest, message: message)
    }

    public static func gone(_ message: String) -> APIError {
        APIError(code: 410, reason: .gone, message: message)
    }

    public static func methodNotAllowed(_ message: String) -> APIError {
        APIError(code: 405, reason: .methodNotAllowed, message: message)
    }

    public static func unsupportedMediaType(_ contentType: String) -> APIError {
        APIError(code: 415, reason: .unsupportedMediaType,
                 message: "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf")
    }

    public static func internalError(_ message: String) -> APIError {
        APIError(code: 500, reason: .internalError, message: "Internal error occurred: \(message)")
    }

    public static let unauthorized = APIError(code: 401, reason: .unauthorized, message: "Unauthorized")

    /// The Status object sent as the body of an error reply.
    public var status: JSON {
        var s: JSON = ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure",
                       "message": .string(message)]
        if reason != .unknown { s["reason"] = .string(reason.rawValue) }
        var details: JSON = [:]
        if let name, !name.isEmpty { details["name"] = .string(name) }
        if let group, !group.isEmpty { details["group"] = .string(group) }
        if let kind, !kind.isEmpty { details["kind"] = .string(kind) }
        if !causes.isEmpty {
            details["causes"] = .array(causes.map { c in
                var j: JSON = ["reason": .string(c.reason), "message": .string(c.message)]
                if !c.field.isEmpty { j["field"] = .string(c.field) }
                return j
            })
        }
        if let retryAfterSeconds { details["retryAfterSeconds"] = .int(Int64(retryAfterSeconds)) }
        if details.objectValue?.isEmpty == false { s["details"] = details }
        s["code"] = .int(Int64(code))
        return s
    }
}
