import Testing
@testable import APIMachinery

@Suite("JSON merge patch (RFC 7386)")
struct PatchMergePatchTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let doc: String
        let patch: String
        let expected: String
        var testDescription: String { "\(doc) + \(patch)" }
    }

    /// RFC 7386 appendix A, plus the bodies kubectl label/annotate/scale send.
    static let cases: [Case] = [
        Case(doc: #"{"a":"b"}"#, patch: #"{"a":"c"}"#, expected: #"{"a":"c"}"#),
        Case(doc: #"{"a":"b"}"#, patch: #"{"b":"c"}"#, expected: #"{"a":"b","b":"c"}"#),
        Case(doc: #"{"a":"b"}"#, patch: #"{"a":null}"#, expected: #"{}"#),
        Case(doc: #"{"a":"b","b":"c"}"#, patch: #"{"a":null}"#, expected: #"{"b":"c"}"#),
        Case(doc: #"{"a":["b"]}"#, patch: #"{"a":"c"}"#, expected: #"{"a":"c"}"#),
        Case(doc: #"{"a":"c"}"#, patch: #"{"a":["b"]}"#, expected: #"{"a":["b"]}"#),
        Case(doc: #"{"a":{"b":"c"}}"#, patch: #"{"a":{"b":"d","c":null}}"#, expected: #"{"a":{"b":"d"}}"#),
        Case(doc: #"{"a":[{"b":"c"}]}"#, patch: #"{"a":[1]}"#, expected: #"{"a":[1]}"#),
        Case(doc: #"["a","b"]"#, patch: #"["c","d"]"#, expected: #"["c","d"]"#),
        Case(doc: #"{"a":"b"}"#, patch: #"["c"]"#, expected: #"["c"]"#),
        Case(doc: #"{"a":"foo"}"#, patch: #"null"#, expected: #"null"#),
        Case(doc: #"{"a":"foo"}"#, patch: #""bar""#, expected: #""bar""#),
        Case(doc: #"{"e":null}"#, patch: #"{"a":1}"#, expected: #"{"e":null,"a":1}"#),
        Case(doc: #"[1,2]"#, patch: #"{"a":"b","c":null}"#, expected: #"{"a":"b"}"#),
        Case(doc: #"{}"#, patch: #"{"a":{"bb":{"ccc":null}}}"#, expected: #"{"a":{"bb":{}}}"#),
        // kubectl label pod busybox version=v2 --overwrite / version- (transcript 17)
        Case(doc: #"{"metadata":{"name":"busybox","labels":{"app":"busybox"}}}"#,
             patch: #"{"metadata":{"labels":{"version":"v2"}}}"#,
             expected: #"{"metadata":{"name":"busybox","labels":{"app":"busybox","version":"v2"}}}"#),
        Case(doc: #"{"metadata":{"name":"busybox","labels":{"app":"busybox","version":"v2"}}}"#,
             patch: #"{"metadata":{"labels":{"version":null}}}"#,
             expected: #"{"metadata":{"name":"busybox","labels":{"app":"busybox"}}}"#),
        // kubectl annotate on an object without annotations
        Case(doc: #"{"metadata":{"name":"nginx"}}"#, patch: #"{"metadata":{"annotations":{"foo":"bar"}}}"#,
             expected: #"{"metadata":{"name":"nginx","annotations":{"foo":"bar"}}}"#),
        // kubectl scale deployment nginx --replicas=3 (transcript 20), on the Scale subresource
        Case(doc: #"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"nginx"},"spec":{"replicas":1},"status":{"replicas":1,"selector":"app=nginx"}}"#,
             patch: #"{"spec":{"replicas":3}}"#,
             expected: #"{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"nginx"},"spec":{"replicas":3},"status":{"replicas":1,"selector":"app=nginx"}}"#),
        // evanphx v4: added values lose null members even inside lists
        Case(doc: #"{}"#, patch: #"{"l":[{"a":null,"b":1},null]}"#, expected: #"{"l":[{"b":1},null]}"#),
    ]

    @Test(arguments: cases)
    func merges(_ c: Case) {
        let out = MergePatch.apply(patchJSON(c.patch), to: patchJSON(c.doc))
        #expect(out.sameValue(as: patchJSON(c.expected)), "got \(out.text)")
    }

    @Test(arguments: cases)
    func idempotent(_ c: Case) {
        let once = MergePatch.apply(patchJSON(c.patch), to: patchJSON(c.doc))
        #expect(MergePatch.apply(patchJSON(c.patch), to: once) == once)
    }

    @Test("existing members keep their place")
    func order() {
        let out = MergePatch.apply(patchJSON(#"{"b":2,"c":3}"#), to: patchJSON(#"{"a":1,"b":1}"#))
        #expect(out.text == #"{"a":1,"b":2,"c":3}"#)
    }

    struct Refusal: CustomTestStringConvertible, Sendable {
        let patch: String
        let strict: Bool
        let code: Int
        let message: String
        var testDescription: String { "\(patch) strict=\(strict)" }
    }

    static let refusals: [Refusal] = [
        Refusal(patch: "null", strict: false, code: 400, message: "Invalid JSON Patch"),
        Refusal(patch: "null", strict: true, code: 400, message: "Invalid JSON Patch"),
        Refusal(patch: #""x""#, strict: false, code: 400, message: "Invalid JSON Patch"),
        Refusal(patch: "3", strict: false, code: 400, message: "Invalid JSON Patch"),
        Refusal(patch: "[1]", strict: true, code: 400,
                message: "error decoding patch: json: cannot unmarshal array into Go value of type map[string]interface {}"),
        Refusal(patch: "true", strict: true, code: 400,
                message: "error decoding patch: json: cannot unmarshal bool into Go value of type map[string]interface {}"),
    ]

    @Test(arguments: refusals)
    func refused(_ c: Refusal) {
        let error = #expect(throws: APIError.self) { try MergePatch.validate(patchJSON(c.patch), strict: c.strict) }
        #expect(error?.code == c.code)
        #expect(error?.message == c.message)
    }

    @Test("a list body without strict validation is 422 Invalid on field patch")
    func listBody() {
        let error = #expect(throws: APIError.self) { try MergePatch.validate(patchJSON("[1]")) }
        #expect(error?.code == 422)
        #expect(error?.causes.first?.field == "patch")
    }

    @Test("an object body is accepted")
    func objectBody() throws {
        try MergePatch.validate(patchJSON(#"{"spec":{"replicas":3}}"#), strict: true)
    }
}
