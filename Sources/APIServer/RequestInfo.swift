import APIMachinery

/// What a request path and method mean to the API, parsed the way kube-apiserver's
/// RequestInfoFactory does: `/api/v1/namespaces/default/services/nginx/proxy/x` is
/// verb get, resource services, namespace default, name nginx, subresource proxy, rest "x".
public struct RequestInfo: Sendable, Equatable {
    public enum Verb: String, Sendable {
        case get, list, watch, create, update, patch, delete, deletecollection, connect
    }

    public var verb: Verb
    public var group: String
    public var version: String
    public var resource: String
    public var namespace: String?
    public var name: String?
    public var subresource: String?
    /// What follows the subresource (the path under `proxy/`).
    public var rest: String

    /// Returns nil for paths that are not resource paths (discovery, /version, /openapi ...).
    public static func parse(method: String, path: String, query: Query) -> RequestInfo? {
        // Split on the byte, and Substrings until the end: a GET of one object is parsed per
        // request, and splitting by Character (grapheme breaking) and copying every part showed
        // in profiles.
        var parts = path.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).map { Substring($0) }
        if parts.first == "" { parts.removeFirst() }
        // A trailing slash is kept as an empty part only where it matters (the proxy path).
        let group: Substring
        let version: Substring
        if parts.first == "api" {
            guard parts.count >= 3 else { return nil }
            group = ""
            version = parts[1]
            parts.removeFirst(2)
        } else if parts.first == "apis" {
            guard parts.count >= 4 else { return nil }
            group = parts[1]
            version = parts[2]
            parts.removeFirst(3)
        } else {
            return nil
        }
        if parts.last == "" && parts.count > 0 && !parts.dropLast().contains(where: { $0 == "proxy" }) {
            parts.removeLast()
        }
        guard let first = parts.first, !first.isEmpty else { return nil }

        var namespace: Substring?
        var resourceParts: ArraySlice<Substring>
        if first == "namespaces" && parts.count >= 2 {
            if parts.count == 2 || (parts.count == 3 && (parts[2] == "status" || parts[2] == "finalize")) {
                // The namespace object itself (or its status/finalize subresource).
                resourceParts = parts[...]
            } else {
                namespace = parts[1]
                resourceParts = parts[2...]
            }
        } else {
            resourceParts = parts[...]
        }
        let resourceList = Array(resourceParts)
        guard let resource = resourceList.first, !resource.isEmpty else { return nil }
        let name = resourceList.count >= 2 ? resourceList[1] : nil
        let subresource = resourceList.count >= 3 ? resourceList[2] : nil
        let rest = resourceList.count >= 4 ? resourceList[3...].joined(separator: "/") : ""

        let isWatch = query["watch"] == "true" || query["watch"] == "1"
        let verb: Verb
        switch method {
        case "GET", "HEAD":
            if subresource == "proxy" || subresource == "exec" || subresource == "attach" || subresource == "portforward" {
                verb = .connect
            } else if name == nil {
                verb = isWatch ? .watch : .list
            } else {
                verb = .get
            }
        case "POST":
            if let sub = subresource, sub == "exec" || sub == "attach" || sub == "portforward" || sub == "proxy" {
                verb = .connect
            } else {
                verb = .create
            }
        case "PUT": verb = subresource == "proxy" ? .connect : .update
        case "PATCH": verb = subresource == "proxy" ? .connect : .patch
        case "DELETE":
            if subresource == "proxy" { verb = .connect } else { verb = name == nil ? .deletecollection : .delete }
        default:
            if subresource == "proxy" { verb = .connect } else { return nil }
        }
        return RequestInfo(verb: verb, group: String(group), version: String(version), resource: String(resource),
                           namespace: namespace.map(String.init), name: name.map(String.init),
                           subresource: subresource.map(String.init), rest: rest)
    }
}

/// Decoded query parameters (last value wins, as Go's `Get` would see the first: we keep the first).
public struct Query: Sendable, Equatable {
    public var values: [String: [String]] = [:]

    public init(_ raw: String?) {
        guard let raw, !raw.isEmpty else { return }
        for pair in raw.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let k = Query.decode(String(kv[0]))
            let v = kv.count > 1 ? Query.decode(String(kv[1])) : ""
            values[k, default: []].append(v)
        }
    }

    public subscript(key: String) -> String? { values[key]?.first }

    public func all(_ key: String) -> [String] { values[key] ?? [] }

    static func decode(_ s: String) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.utf8.count)
        var it = Array(s.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if b == UInt8(ascii: "%"), it.count >= 2,
                      let h = hexValue(it[it.startIndex]), let l = hexValue(it[it.startIndex + 1]) {
                bytes.append(h << 4 | l)
                it = it.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
