import Testing
@testable import APIMachinery

@Suite("Go-style rendering in patch error messages")
struct PatchGoFormatTests {
    @Test(arguments: [
        (1.5, "1.5"), (3.0, "3"), (100000.0, "100000"), (1000000.0, "1e+06"), (123456789.0, "1.23456789e+08"),
        (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.25, "-2.25"), (1e21, "1e+21"), (0.1, "0.1"),
    ])
    func floats(_ value: Double, _ expected: String) {
        #expect(GoFormat.float(value) == expected)
    }

    @Test func values() {
        #expect(GoFormat.value(patchJSON(#"{"b":[1,"x",null,true],"a":{"$patch":"delete"},"B":2.5}"#))
            == "map[B:2.5 a:map[$patch:delete] b:[1 x <nil> true]]")
        #expect(GoFormat.s(.int(5)) == "%!s(int64=5)")
        #expect(GoFormat.s(.null) == "%!s(<nil>)")
        #expect(GoFormat.typeName(.array([])) == "[]interface {}")
    }

    @Test func quoting() {
        #expect(GoFormat.quote("a\"b\\c\nd\u{1}é") == #""a\"b\\c\nd\x01é""#)
    }

    @Test("JSON Pointer unescaping is left to right")
    func unescape() {
        #expect(JSONPatch.unescape("a~1b~0c") == "a/b~c")
        #expect(JSONPatch.unescape("~01") == "~1")
        #expect(JSONPatch.unescape("~2~") == "~2~")
    }
}
