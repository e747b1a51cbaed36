import APIMachinery
import Yams

/// YAML request bodies (`application/yaml`, and server-side apply's `application/apply-patch+yaml`)
/// converted to the JSON value the rest of the server works with.
enum YAMLBody {
    static func toJSON(_ text: String) throws(APIError) -> JSON {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw APIError.badRequest("error converting YAML to JSON: \(error)")
        }
        guard let node else { throw APIError.badRequest("error converting YAML to JSON: empty document") }
        return try convert(node, depth: 0)
    }

    static func convert(_ node: Node, depth: Int) throws(APIError) -> JSON {
        guard depth < JSON.maxDepth else { throw APIError.badRequest("error converting YAML to JSON: too deeply nested") }
        switch node {
        case .scalar(let s):
            return scalar(s)
        case .mapping(let m):
            var o = JSONObject()
            for (k, v) in m {
                guard case .scalar(let ks) = k else {
                    throw APIError.badRequest("error converting YAML to JSON: non-string map key")
                }
                o[ks.string] = try convert(v, depth: depth + 1)
            }
            return .object(o)
        case .sequence(let seq):
            var a: [JSON] = []
            for item in seq { a.append(try convert(item, depth: depth + 1)) }
            return .array(a)
        case .alias:
            throw APIError.badRequest("error converting YAML to JSON: aliases are not supported")
        }
    }

    /// YAML 1.1-ish scalar resolution as sigs.k8s.io/yaml does it: quoted stays a string;
    /// plain true/false, null, integers and floats become those types.
    static func scalar(_ s: Node.Scalar) -> JSON {
        if s.style != .plain { return .string(s.string) }
        let v = s.string
        switch v {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default: break
        }
        if let i = Int64(v) { return .int(i) }
        if v.hasPrefix("0x"), let i = Int64(v.dropFirst(2), radix: 16) { return .int(i) }
        if v.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), v.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true,
           let d = Double(v), d.isFinite {
            return .double(d)
        }
        return .string(v)
    }
}
