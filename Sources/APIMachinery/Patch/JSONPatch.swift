/// RFC 6902 JSON Patch (`application/json-patch+json`), as kube-apiserver applies it.
///
/// kube-apiserver runs gopkg.in/evanphx/json-patch.v4, which departs from the RFC in a few
/// ways a client can observe; we keep them so kubectl sees the same results:
/// - `replace` of an object member that does not exist adds it (only array indices must exist);
/// - `test` of a missing object member passes when the expected value is null or absent;
/// - `copy` from a missing object member copies null;
/// - negative array indices count from the end (`-1` is the last element);
/// - a path without a leading `/` is read as if it had one (`a/b` is `/b`): the first
///   segment is dropped, as the library splits on `/` and skips the first piece;
/// - a missing `value` is null.
///
/// Errors are reported as kube-apiserver does: a body that is not a list of objects is 400
/// BadRequest with Go's decoding message; an operation that cannot be applied is 422
/// Invalid with the generic text "the server rejected our request due to an error in our
/// request" (the apiserver drops the library's message; kubectl prints
/// `The request is invalid: the server rejected our request ...`).
public enum JSONPatch {
    /// kube-apiserver refuses patches with more operations than this (413).
    public static let maxOperations = 10_000

    /// Applies `patch` (a JSON array of operations) to `doc`.
    ///
    /// - Parameter strict: the request's `fieldValidation` is Strict or Warn (kubectl ≥1.25
    ///   sends `fieldValidation=Strict` with `kubectl patch`). kube-apiserver then first decodes
    ///   the body into its own operation struct, whose type errors are worded differently.
    ///   Unknown fields in operations are not reported (upstream reports them as a 422 after
    ///   applying); they are ignored.
    public static func apply(_ patch: JSON, to doc: JSON, strict: Bool = false) throws(APIError) -> JSON {
        if strict, let message = strictDecodingProblem(patch) {
            throw .badRequest("error decoding patch: \(message)")
        }
        let operations = try decode(patch)
        if operations.count > maxOperations {
            throw APIError(code: 413, reason: .requestEntityTooLarge,
                           message: "Request entity too large: The allowed maximum operations in a JSON patch is \(maxOperations), got \(operations.count)")
        }
        switch run(operations, on: doc) {
        case .success(let result): return result
        case .failure: throw unprocessable
        }
    }

    /// What kube-apiserver answers when an operation fails (errors.NewGenericServerResponse(422)).
    static let unprocessable = APIError(code: 422, reason: .invalid,
                                        message: "the server rejected our request due to an error in our request")

    /// Why an operation failed, worded as evanphx/json-patch words it. kube-apiserver does not
    /// pass this on to the client; we keep it for tests and logs.
    struct Failure: Error, Equatable, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// One operation as the library holds it: raw members; a JSON null element is an empty op.
    typealias Operation = JSONObject

    /// `jsonpatch.DecodePatch`: the body must be a JSON array of objects (or null for none).
    static func decode(_ patch: JSON) throws(APIError) -> [Operation] {
        switch patch {
        case .null: return []
        case .array(let items):
            var ops: [Operation] = []
            ops.reserveCapacity(items.count)
            for item in items {
                switch item {
                case .object(let o): ops.append(o)
                case .null: ops.append([:])
                default:
                    throw .badRequest("json: cannot unmarshal \(GoFormat.jsonKind(item)) into Go value of type jsonpatch.Operation")
                }
            }
            return ops
        default:
            throw .badRequest("json: cannot unmarshal \(GoFormat.jsonKind(patch)) into Go value of type jsonpatch.Patch")
        }
    }

    /// The first type error kube-apiserver's strict decode into `[]jsonPatchOp` reports, if any.
    static func strictDecodingProblem(_ patch: JSON) -> String? {
        switch patch {
        case .null: return nil
        case .array(let items):
            for item in items {
                switch item {
                case .null: continue
                case .object(let o):
                    for field in ["op", "path", "from"] {
                        if let v = o[field], !v.isNull, v.stringValue == nil {
                            return "json: cannot unmarshal \(GoFormat.jsonKind(v)) into Go struct field jsonPatchOp.\(field) of type string"
                        }
                    }
                default:
                    return "json: cannot unmarshal \(GoFormat.jsonKind(item)) into Go value of type handlers.jsonPatchOp"
                }
            }
            return nil
        default:
            return "json: cannot unmarshal \(GoFormat.jsonKind(patch)) into Go value of type []handlers.jsonPatchOp"
        }
    }

    /// Applies decoded operations in order; the first failing one aborts the whole patch.
    static func run(_ operations: [Operation], on original: JSON) -> Result<JSON, Failure> {
        var doc = original
        do {
            for op in operations {
                try apply(op, to: &doc)
            }
        } catch {
            return .failure(error)
        }
        return .success(doc)
    }

    private static func apply(_ op: Operation, to doc: inout JSON) throws(Failure) {
        let kind = op["op"]?.stringValue ?? "unknown"
        switch kind {
        case "add": try add(op, &doc)
        case "remove": try remove(op, &doc)
        case "replace": try replace(op, &doc)
        case "move": try move(op, &doc)
        case "copy": try copy(op, &doc)
        case "test": try test(op, doc)
        default: throw Failure(message: "Unexpected kind: \(kind)")
        }
    }

    // MARK: Operations

    private static func add(_ op: Operation, _ doc: inout JSON) throws(Failure) {
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "add operation failed to decode path: missing value")
        }
        let value = op["value"] ?? .null
        let found = try withContainer(of: path, in: &doc) { (container, key) throws(Failure) in
            try insert(value, into: &container, at: key, path: path)
        }
        if !found {
            throw Failure(message: "add operation does not apply: doc is missing path: \"\(path)\": missing value")
        }
    }

    private static func remove(_ op: Operation, _ doc: inout JSON) throws(Failure) {
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "remove operation failed to decode path: missing value")
        }
        let found = try withContainer(of: path, in: &doc) { (container, key) throws(Failure) in
            do throws(Failure) {
                _ = try delete(from: &container, at: key)
            } catch {
                throw Failure(message: "error in remove for path: '\(path)': \(error.message)")
            }
        }
        if !found {
            throw Failure(message: "remove operation does not apply: doc is missing path: \"\(path)\": missing value")
        }
    }

    private static func replace(_ op: Operation, _ doc: inout JSON) throws(Failure) {
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "replace operation failed to decode path: missing value")
        }
        let value = op["value"] ?? .null
        if path.isEmpty {
            switch value {
            case .object, .array: doc = value
            default: throw Failure(message: "replace operation value must be object or array: %!w(<nil>)")
            }
            return
        }
        let found = try withContainer(of: path, in: &doc) { (container, key) throws(Failure) in
            switch container {
            case .object(var o):
                // v4 quirk kept on purpose: a missing member is simply set.
                container = .null
                o[key] = value
                container = .object(o)
            case .array(var a):
                guard let i = try? existingIndex(key, count: a.count) else {
                    throw Failure(message: "replace operation does not apply: doc is missing key: \(path): missing value")
                }
                container = .null
                a[i] = value
                container = .array(a)
            default:
                throw Failure(message: "replace operation does not apply: doc is missing path: \(path): missing value")
            }
        }
        if !found {
            throw Failure(message: "replace operation does not apply: doc is missing path: \(path): missing value")
        }
    }

    private static func move(_ op: Operation, _ doc: inout JSON) throws(Failure) {
        guard let from = op["from"]?.stringValue else {
            throw Failure(message: "move operation failed to decode from: operation, missing from field: missing value")
        }
        var moved: JSON = .null
        let foundFrom = try withContainer(of: from, in: &doc) { (container, key) throws(Failure) in
            do throws(Failure) {
                moved = try delete(from: &container, at: key)
            } catch {
                throw Failure(message: "error in move for path: '\(key)': \(error.message)")
            }
        }
        if !foundFrom {
            throw Failure(message: "move operation does not apply: doc is missing from path: \(from): missing value")
        }
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "move operation failed to decode path: operation missing path field: missing value")
        }
        let found = try withContainer(of: path, in: &doc) { (container, key) throws(Failure) in
            try insert(moved, into: &container, at: key, path: path, verb: "move")
        }
        if !found {
            throw Failure(message: "move operation does not apply: doc is missing destination path: \(path): missing value")
        }
    }

    private static func copy(_ op: Operation, _ doc: inout JSON) throws(Failure) {
        guard let from = op["from"]?.stringValue else {
            throw Failure(message: "copy operation failed to decode from: operation, missing from field: missing value")
        }
        var copied: JSON = .null
        let foundFrom = try withContainer(of: from, in: &doc) { (container, key) throws(Failure) in
            do throws(Failure) {
                // A missing object member reads as null here, and null is what gets copied.
                copied = try read(container, at: key) ?? .null
            } catch {
                throw Failure(message: "error in copy for from: '\(from)': \(error.message)")
            }
        }
        if !foundFrom {
            throw Failure(message: "copy operation does not apply: doc is missing from path: \(from): missing value")
        }
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "copy operation failed to decode path: missing value")
        }
        let found = try withContainer(of: path, in: &doc) { (container, key) throws(Failure) in
            do throws(Failure) {
                try insertValue(copied, into: &container, at: key)
            } catch {
                throw Failure(message: "error while adding value during copy: \(error.message)")
            }
        }
        if !found {
            throw Failure(message: "copy operation does not apply: doc is missing destination path: \(path): missing value")
        }
    }

    private static func test(_ op: Operation, _ doc: JSON) throws(Failure) {
        guard let path = op["path"]?.stringValue else {
            throw Failure(message: "test operation failed to decode path: missing value")
        }
        let expected = op["value"]
        if path.isEmpty {
            if let expected, doc.sameValue(as: expected) { return }
            throw Failure(message: "testing value \(path) failed: test failed")
        }
        var scratch = doc
        var actual: JSON?
        let found = try withContainer(of: path, in: &scratch) { (container, key) throws(Failure) in
            do throws(Failure) {
                actual = try read(container, at: key)
            } catch {
                throw Failure(message: "error in test for path: '\(path)': \(error.message)")
            }
        }
        if !found {
            throw Failure(message: "test operation does not apply: is missing path: \(path): missing value")
        }
        // The library holds JSON null members as "no value", so null and absent compare equal.
        // (JSON is ExpressibleByNilLiteral, so spell out the Optional's nil.)
        let actualValue: JSON? = (actual?.isNull ?? true) ? JSON?.none : actual
        let expectedValue: JSON? = (expected?.isNull ?? true) ? JSON?.none : expected
        switch (actualValue, expectedValue) {
        case (nil, nil): return
        case (let a?, let e?) where a.sameValue(as: e): return
        default: throw Failure(message: "testing value \(path) failed: test failed")
        }
    }

    // MARK: Containers and JSON Pointer

    /// Walks to the object or array that holds the last token of `path` and lets `body`
    /// change it in place. Returns false when the walk fails (the library's "missing path").
    private static func withContainer(
        of path: String, in doc: inout JSON,
        _ body: (inout JSON, String) throws(Failure) -> Void
    ) throws(Failure) -> Bool {
        var tokens = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // Fewer than two pieces means there is no token after a separator: "" or "name".
        guard tokens.count >= 2 else { return false }
        tokens.removeFirst()
        let key = unescape(tokens.removeLast())
        return try descend(&doc, tokens.map(unescape)[...], key, body)
    }

    private static func descend(
        _ node: inout JSON, _ parents: ArraySlice<String>, _ key: String,
        _ body: (inout JSON, String) throws(Failure) -> Void
    ) throws(Failure) -> Bool {
        guard let first = parents.first else {
            switch node {
            case .object, .array:
                try body(&node, key)
                return true
            default:
                return false
            }
        }
        switch node {
        case .object(var o):
            guard var child = o[first], isContainer(child) else { return false }
            node = .null  // drop our reference so the child is uniquely owned while edited
            o[first] = .null
            let found: Bool
            do throws(Failure) {
                found = try descend(&child, parents.dropFirst(), key, body)
            } catch {
                o[first] = child
                node = .object(o)
                throw error
            }
            o[first] = child
            node = .object(o)
            return found
        case .array(var a):
            guard let i = try? existingIndex(first, count: a.count), isContainer(a[i]) else { return false }
            var child = a[i]
            node = .null
            a[i] = .null
            let found: Bool
            do throws(Failure) {
                found = try descend(&child, parents.dropFirst(), key, body)
            } catch {
                a[i] = child
                node = .array(a)
                throw error
            }
            a[i] = child
            node = .array(a)
            return found
        default:
            return false
        }
    }

    private static func isContainer(_ v: JSON) -> Bool {
        switch v {
        case .object, .array: return true
        default: return false
        }
    }

    /// RFC 6901 unescaping, left to right: `~1` is `/`, `~0` is `~`.
    static func unescape(_ token: String) -> String {
        guard token.contains("~") else { return token }
        var out = ""
        var chars = token.makeIterator()
        var pending: Character?
        while let c = pending ?? chars.next() {
            pending = nil
            guard c == "~" else {
                out.append(c)
                continue
            }
            let next = chars.next()
            switch next {
            case "1": out.append("/")
            case "0": out.append("~")
            default:
                out.append("~")
                pending = next
            }
        }
        return out
    }

    /// Go's strconv.Atoi on an array token; accepts a sign and leading zeros.
    private static func parseIndex(_ token: String) throws(Failure) -> Int {
        guard let i = Int(token) else {
            throw Failure(message: "strconv.Atoi: parsing \(GoFormat.quote(token)): invalid syntax")
        }
        return i
    }

    /// An index that must name an existing element; negative counts from the end.
    private static func existingIndex(_ token: String, count: Int) throws(Failure) -> Int {
        var i = try parseIndex(token)
        if i < 0 {
            guard i >= -count else { throw Failure(message: "Unable to access invalid index: \(i): invalid index referenced") }
            i += count
        }
        guard i < count else { throw Failure(message: "Unable to access invalid index: \(i): invalid index referenced") }
        return i
    }

    private static func read(_ container: JSON, at key: String) throws(Failure) -> JSON? {
        switch container {
        case .object(let o): return o[key]
        case .array(let a): return a[try existingIndex(key, count: a.count)]
        default: return nil
        }
    }

    private static func insert(_ value: JSON, into container: inout JSON, at key: String,
                               path: String, verb: String = "add") throws(Failure) {
        do {
            try insertValue(value, into: &container, at: key)
        } catch {
            throw Failure(message: "error in \(verb) for path: '\(path)': \(error.message)")
        }
    }

    private static func insertValue(_ value: JSON, into container: inout JSON, at key: String) throws(Failure) {
        switch container {
        case .object(var o):
            container = .null
            o[key] = value
            container = .object(o)
        case .array(var a):
            if key == "-" {
                container = .null
                a.append(value)
                container = .array(a)
                return
            }
            var i: Int
            do throws(Failure) {
                i = try parseIndex(key)
            } catch {
                throw Failure(message: "value was not a proper array index: '\(key)': \(error.message)")
            }
            let newCount = a.count + 1
            guard i < newCount else { throw Failure(message: "Unable to access invalid index: \(i): invalid index referenced") }
            if i < 0 {
                guard i >= -newCount else { throw Failure(message: "Unable to access invalid index: \(i): invalid index referenced") }
                i += newCount
            }
            container = .null
            a.insert(value, at: i)
            container = .array(a)
        default:
            throw Failure(message: "invalid state detected")
        }
    }

    @discardableResult
    private static func delete(from container: inout JSON, at key: String) throws(Failure) -> JSON {
        switch container {
        case .object(var o):
            guard let old = o[key] else {
                throw Failure(message: "Unable to remove nonexistent key: \(key): missing value")
            }
            container = .null
            o[key] = nil
            container = .object(o)
            return old
        case .array(var a):
            let i = try existingIndex(key, count: a.count)
            container = .null
            let old = a.remove(at: i)
            container = .array(a)
            return old
        default:
            throw Failure(message: "invalid state detected")
        }
    }
}
