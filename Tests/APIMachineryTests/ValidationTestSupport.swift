import Testing
@testable import APIMachinery

/// Shared helpers for the Validation and Defaults tests (namespaced to avoid clashing with
/// other test files in the module).
enum ValidationTestSupport {
    /// Parses, then defaults as the API server does before validating a create.
    static func created(_ kind: String, _ group: String = "", _ text: String) throws -> JSON {
        var obj = try JSON.parse(text)
        Defaults.apply(kind: kind, group: group, to: &obj)
        return obj
    }

    /// The "field: message" lines kube-apiserver would put in its aggregate message.
    static func createErrors(_ kind: String, _ group: String = "", _ obj: JSON, namespaced: Bool = true) -> [String] {
        Validation.fieldErrorsForCreate(kind: kind, group: group, obj: obj, namespaced: namespaced).map(\.description)
    }

    static func updateErrors(_ kind: String, _ group: String = "", new: JSON, old: JSON, namespaced: Bool = true) -> [String] {
        Validation.fieldErrorsForUpdate(kind: kind, group: group, new: new, old: old, namespaced: namespaced).map(\.description)
    }

    /// A stored object: defaulted, with the system metadata the store adds.
    static func stored(_ kind: String, _ group: String = "", _ text: String) throws -> JSON {
        var obj = try created(kind, group, text)
        obj[path: "metadata", "uid"] = "6a4c1f2e-0000-4000-8000-000000000001"
        obj[path: "metadata", "resourceVersion"] = "100"
        obj[path: "metadata", "creationTimestamp"] = "2026-11-30T10:00:00Z"
        return obj
    }

    /// Re-defaults an edited copy of a stored object as an update would.
    static func updated(_ kind: String, _ group: String = "", from old: JSON, _ edit: (inout JSON) -> Void) -> JSON {
        var new = old
        edit(&new)
        Defaults.applyForUpdate(kind: kind, group: group, to: &new, old: old)
        return new
    }

    static let subdomainMessage = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    static let labelMessage = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    static let dns1035Message = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    static let portRange = "must be between 1 and 65535, inclusive"

    static let minimalPod = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","namespace":"default"},"spec":{"containers":[{"name":"nginx","image":"nginx"}]}}"#
    static let minimalDeployment = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","labels":{"app":"web"}},"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27"}]}}}}"#
    static let nodePortService = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"default"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80}]}}"#
}
