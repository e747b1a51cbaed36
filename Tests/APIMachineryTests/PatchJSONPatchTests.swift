import Testing
@testable import APIMachinery

@Suite("JSON patch (RFC 6902)")
struct PatchJSONPatchTests {
    @Test("rollout undo: replace the template and the annotations (transcript 40)")
    func rolloutUndo() throws {
        let patch = patchJSON(#"[{"op":"replace","path":"/spec/template","value":{"metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","resources":{}}]}}},{"op":"replace","path":"/metadata/annotations","value":{"deployment.kubernetes.io/revision":"1"}}]"#)
        let out = try JSONPatch.apply(patch, to: PatchTestTypes.nginxDeployment)
        #expect(out[path: "spec", "template", "spec", "containers", ] == patchJSON(#"[{"name":"nginx","image":"nginx:1.27","resources":{}}]"#))
        #expect(out[path: "spec", "template", "spec", "restartPolicy"] == nil)
        #expect(out[path: "metadata", "annotations"] == patchJSON(#"{"deployment.kubernetes.io/revision":"1"}"#))
        #expect(out[path: "spec", "replicas"] == 1)
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let doc: String
        let patch: String
        let expected: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "add a member", doc: #"{"a":1}"#, patch: #"[{"op":"add","path":"/b","value":2}]"#, expected: #"{"a":1,"b":2}"#),
        Case(name: "add replaces an existing member", doc: #"{"a":1}"#, patch: #"[{"op":"add","path":"/a","value":[1]}]"#, expected: #"{"a":[1]}"#),
        Case(name: "add inserts into a list", doc: #"{"l":[1,3]}"#, patch: #"[{"op":"add","path":"/l/1","value":2}]"#, expected: #"{"l":[1,2,3]}"#),
        Case(name: "add at the end index", doc: #"{"l":[1]}"#, patch: #"[{"op":"add","path":"/l/1","value":2}]"#, expected: #"{"l":[1,2]}"#),
        Case(name: "add with - appends", doc: #"{"l":[1]}"#, patch: #"[{"op":"add","path":"/l/-","value":{"x":1}}]"#, expected: #"{"l":[1,{"x":1}]}"#),
        Case(name: "add with a negative index counts from the end", doc: #"{"l":[1,2]}"#, patch: #"[{"op":"add","path":"/l/-1","value":9}]"#, expected: #"{"l":[1,2,9]}"#),
        Case(name: "add without value adds null", doc: #"{}"#, patch: #"[{"op":"add","path":"/a"}]"#, expected: #"{"a":null}"#),
        Case(name: "remove a member", doc: #"{"a":1,"b":2}"#, patch: #"[{"op":"remove","path":"/a"}]"#, expected: #"{"b":2}"#),
        Case(name: "remove a list element", doc: #"{"l":[1,2,3]}"#, patch: #"[{"op":"remove","path":"/l/1"}]"#, expected: #"{"l":[1,3]}"#),
        Case(name: "remove the last element with -1", doc: #"{"l":[1,2,3]}"#, patch: #"[{"op":"remove","path":"/l/-1"}]"#, expected: #"{"l":[1,2]}"#),
        Case(name: "replace a member", doc: #"{"a":{"b":1}}"#, patch: #"[{"op":"replace","path":"/a/b","value":"x"}]"#, expected: #"{"a":{"b":"x"}}"#),
        Case(name: "replace of a missing member adds it (evanphx v4)", doc: #"{"a":{}}"#, patch: #"[{"op":"replace","path":"/a/b","value":1}]"#, expected: #"{"a":{"b":1}}"#),
        Case(name: "replace the whole document", doc: #"{"a":1}"#, patch: #"[{"op":"replace","path":"","value":{"b":2}}]"#, expected: #"{"b":2}"#),
        Case(name: "move a member", doc: #"{"a":{"x":1},"b":{}}"#, patch: #"[{"op":"move","from":"/a/x","path":"/b/y"}]"#, expected: #"{"a":{},"b":{"y":1}}"#),
        Case(name: "move within a list", doc: #"{"l":[1,2,3]}"#, patch: #"[{"op":"move","from":"/l/0","path":"/l/-"}]"#, expected: #"{"l":[2,3,1]}"#),
        Case(name: "copy a subtree", doc: #"{"a":{"x":[1]}}"#, patch: #"[{"op":"copy","from":"/a","path":"/b"}]"#, expected: #"{"a":{"x":[1]},"b":{"x":[1]}}"#),
        Case(name: "copy of a missing member copies null", doc: #"{"a":{}}"#, patch: #"[{"op":"copy","from":"/a/x","path":"/b"}]"#, expected: #"{"a":{},"b":null}"#),
        Case(name: "test passes regardless of member order", doc: #"{"a":{"x":1,"y":2}}"#, patch: #"[{"op":"test","path":"/a","value":{"y":2,"x":1}},{"op":"add","path":"/ok","value":true}]"#, expected: #"{"a":{"x":1,"y":2},"ok":true}"#),
        Case(name: "test of a missing member against null passes", doc: #"{}"#, patch: #"[{"op":"test","path":"/a","value":null}]"#, expected: #"{}"#),
        Case(name: "~1 and ~0 escapes", doc: #"{"metadata":{"annotations":{"example.com/x":"1","a~b":"2"}}}"#,
             patch: #"[{"op":"remove","path":"/metadata/annotations/example.com~1x"},{"op":"replace","path":"/metadata/annotations/a~0b","value":"3"}]"#,
             expected: #"{"metadata":{"annotations":{"a~b":"3"}}}"#),
        Case(name: "~01 is ~1, not /", doc: #"{"~1":0}"#, patch: #"[{"op":"replace","path":"/~01","value":1}]"#, expected: #"{"~1":1}"#),
        Case(name: "empty key", doc: #"{"":{"":1}}"#, patch: #"[{"op":"replace","path":"//","value":2}]"#, expected: #"{"":{"":2}}"#),
        Case(name: "a null body is no operation", doc: #"{"a":1}"#, patch: #"null"#, expected: #"{"a":1}"#),
        Case(name: "a path without leading slash drops its first token (evanphx v4)", doc: #"{"a":1}"#, patch: #"[{"op":"add","path":"x/b","value":2}]"#, expected: #"{"a":1,"b":2}"#),
    ]

    @Test(arguments: cases)
    func applies(_ c: Case) throws {
        let out = try JSONPatch.apply(patchJSON(c.patch), to: patchJSON(c.doc))
        #expect(out.sameValue(as: patchJSON(c.expected)), "got \(out.text)")
    }

    struct FailureCase: CustomTestStringConvertible, Sendable {
        let name: String
        let doc: String
        let patch: String
        /// evanphx/json-patch's message, which the apiserver keeps to itself.
        let detail: String
        var testDescription: String { name }
    }

    static let failures: [FailureCase] = [
        FailureCase(name: "add under a missing parent", doc: #"{}"#, patch: #"[{"op":"add","path":"/a/b","value":1}]"#,
                    detail: #"add operation does not apply: doc is missing path: "/a/b": missing value"#),
        FailureCase(name: "add through a string", doc: #"{"a":"s"}"#, patch: #"[{"op":"add","path":"/a/b","value":1}]"#,
                    detail: #"add operation does not apply: doc is missing path: "/a/b": missing value"#),
        FailureCase(name: "add past the end", doc: #"{"l":[]}"#, patch: #"[{"op":"add","path":"/l/2","value":1}]"#,
                    detail: "error in add for path: '/l/2': Unable to access invalid index: 2: invalid index referenced"),
        FailureCase(name: "add with a bad index", doc: #"{"l":[]}"#, patch: #"[{"op":"add","path":"/l/x","value":1}]"#,
                    detail: #"error in add for path: '/l/x': value was not a proper array index: 'x': strconv.Atoi: parsing "x": invalid syntax"#),
        FailureCase(name: "remove a missing member", doc: #"{}"#, patch: #"[{"op":"remove","path":"/a"}]"#,
                    detail: "error in remove for path: '/a': Unable to remove nonexistent key: a: missing value"),
        FailureCase(name: "remove the root", doc: #"{}"#, patch: #"[{"op":"remove","path":""}]"#,
                    detail: #"remove operation does not apply: doc is missing path: "": missing value"#),
        FailureCase(name: "replace a missing index", doc: #"{"l":[1]}"#, patch: #"[{"op":"replace","path":"/l/1","value":1}]"#,
                    detail: "replace operation does not apply: doc is missing key: /l/1: missing value"),
        FailureCase(name: "test fails", doc: #"{"a":1}"#, patch: #"[{"op":"test","path":"/a","value":2}]"#,
                    detail: "testing value /a failed: test failed"),
        FailureCase(name: "test: 1 is not 1.0", doc: #"{"a":1}"#, patch: #"[{"op":"test","path":"/a","value":1.0}]"#,
                    detail: "testing value /a failed: test failed"),
        FailureCase(name: "move from a missing member", doc: #"{}"#, patch: #"[{"op":"move","from":"/a","path":"/b"}]"#,
                    detail: "error in move for path: 'a': Unable to remove nonexistent key: a: missing value"),
        FailureCase(name: "unknown op", doc: #"{}"#, patch: #"[{"op":"merge","path":"/a"}]"#, detail: "Unexpected kind: merge"),
        FailureCase(name: "missing op", doc: #"{}"#, patch: #"[{"path":"/a"}]"#, detail: "Unexpected kind: unknown"),
        FailureCase(name: "null operation", doc: #"{}"#, patch: #"[null]"#, detail: "Unexpected kind: unknown"),
        FailureCase(name: "missing path", doc: #"{}"#, patch: #"[{"op":"add","value":1}]"#,
                    detail: "add operation failed to decode path: missing value"),
        FailureCase(name: "a later failure undoes earlier operations", doc: #"{}"#,
                    patch: #"[{"op":"add","path":"/a","value":1},{"op":"test","path":"/a","value":2}]"#,
                    detail: "testing value /a failed: test failed"),
    ]

    @Test(arguments: failures)
    func fails(_ c: FailureCase) throws {
        let ops = try JSONPatch.decode(patchJSON(c.patch))
        #expect(JSONPatch.run(ops, on: patchJSON(c.doc)) == .failure(JSONPatch.Failure(message: c.detail)))
        let error = #expect(throws: APIError.self) { _ = try JSONPatch.apply(patchJSON(c.patch), to: patchJSON(c.doc)) }
        #expect(error?.code == 422)
        #expect(error?.reason == .invalid)
        #expect(error?.message == "the server rejected our request due to an error in our request")
        #expect(error?.causes.isEmpty == true)
    }

    struct BadBody: CustomTestStringConvertible, Sendable {
        let patch: String
        let strict: Bool
        let message: String
        var testDescription: String { "\(patch) strict=\(strict)" }
    }

    static let badBodies: [BadBody] = [
        BadBody(patch: #"{"op":"add","path":"/a","value":1}"#, strict: false,
                message: "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
        BadBody(patch: #"[1]"#, strict: false,
                message: "json: cannot unmarshal number into Go value of type jsonpatch.Operation"),
        BadBody(patch: #""x""#, strict: false,
                message: "json: cannot unmarshal string into Go value of type jsonpatch.Patch"),
        BadBody(patch: #"{"op":"add","path":"/a","value":1}"#, strict: true,
                message: "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"),
        BadBody(patch: #"[true]"#, strict: true,
                message: "error decoding patch: json: cannot unmarshal bool into Go value of type handlers.jsonPatchOp"),
        BadBody(patch: #"[{"op":"add","path":5}]"#, strict: true,
                message: "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.path of type string"),
    ]

    @Test(arguments: badBodies)
    func malformedBody(_ c: BadBody) {
        let error = #expect(throws: APIError.self) { _ = try JSONPatch.apply(patchJSON(c.patch), to: patchJSON("{}"), strict: c.strict) }
        #expect(error?.code == 400)
        #expect(error?.reason == .badRequest)
        #expect(error?.message == c.message)
    }

    @Test("more than 10000 operations is 413")
    func tooManyOperations() {
        let ops = JSON.array(Array(repeating: patchJSON(#"{"op":"test","path":"/a","value":null}"#), count: 10_001))
        let error = #expect(throws: APIError.self) { _ = try JSONPatch.apply(ops, to: patchJSON("{}")) }
        #expect(error?.code == 413)
        #expect(error?.message == "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001")
    }

    @Test("the input document is not changed by a failing patch")
    func noPartialResult() throws {
        let doc = patchJSON(#"{"a":{"b":1}}"#)
        let ops = try JSONPatch.decode(patchJSON(#"[{"op":"remove","path":"/a/b"},{"op":"remove","path":"/zz"}]"#))
        #expect(throws: JSONPatch.Failure.self) { _ = try JSONPatch.run(ops, on: doc).get() }
        #expect(doc == patchJSON(#"{"a":{"b":1}}"#))
    }
}
