import Testing
@testable import APIMachinery

@Suite("JSON")
struct JSONTests {
    @Test("round trips keep order, types and escapes", arguments: [
        #"{"b":1,"a":[true,false,null],"c":{"d":"x\"y\\z\n"},"e":-12,"f":0.5,"g":"\u00e9"}"#,
        #"[]"#,
        #"{}"#,
        #""plain""#,
        #"9223372036854775807"#,
    ])
    func roundTrip(text: String) throws {
        let v = try JSON.parse(text)
        let again = try JSON.parse(v.text)
        #expect(v == again)
        if text.hasPrefix("{\"b\"") {
            #expect(Array(v.objectValue?.keys ?? []) == ["b", "a", "c", "e", "f", "g"])
            #expect(v["e"] == .int(-12))
            #expect(v["f"] == .double(0.5))
            #expect(v["g"]?.stringValue == "é")
        }
    }

    @Test("surrogate pairs decode to one scalar")
    func surrogates() throws {
        #expect(try JSON.parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(try JSON.parse(#""\ud83d""#).stringValue == "\u{FFFD}")
    }

    @Test("errors are worded like Go's decoder", arguments: [
        ("{", "unexpected end of JSON input"),
        ("{\"a\" 1}", "invalid character '1' after object key"),
        ("[1,]", "invalid character ']' looking for beginning of value"),
        ("tru", "unexpected end of JSON input"),
        ("{} x", "invalid character 'x' after top-level value"),
        ("01", "invalid character '1' after top-level value"),
        ("\"a\u{01}\"", "invalid character '\\x1' in string literal"),
    ])
    func errors(input: String, message: String) {
        #expect(throws: JSONParseError.self) { try JSON.parse(input) }
        do {
            _ = try JSON.parse(input)
        } catch {
            #expect(error.message == message)
        }
    }

    @Test("deep nesting is refused, not a stack overflow")
    func depth() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSON.parse(deep) }
    }

    @Test("random bytes never crash the parser")
    func fuzz() {
        var rng = SystemRandomNumberGenerator()
        let seeds = [#"{"a":[1,2,{"b":"c"}],"d":null}"#, #"[true,false,-1.5e3,"\u0041"]"#]
        for i in 0..<5000 {
            var bytes = Array(seeds[i % seeds.count].utf8)
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let pos = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[pos] = UInt8.random(in: 0...255, using: &rng)
                case 1: bytes.remove(at: pos)
                default: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: pos)
                }
                if bytes.isEmpty { bytes = [0x7b] }
            }
            _ = try? JSON.parse(bytes)
        }
    }

    @Test("path subscripts create and remove members")
    func paths() {
        var o: JSON = [:]
        o[path: "metadata", "labels", "app"] = "web"
        #expect(o.text == #"{"metadata":{"labels":{"app":"web"}}}"#)
        o[path: "metadata", "labels", "app"] = nil
        #expect(o.text == #"{"metadata":{"labels":{}}}"#)
        #expect(o.labels.isEmpty)
    }

    @Test("timestamps parse and format in UTC")
    func timestamps() {
        #expect(Timestamp.parse("1970-01-01T00:00:00Z") == 0)
        #expect(Timestamp.parse("2026-11-30T04:19:00Z") == 1_796_012_340)
        #expect(Timestamp.parse("2026-11-30T05:19:00+01:00") == 1_796_012_340)
        #expect(Timestamp.parse("nope") == nil)
        #expect(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_796_012_340)) == "2026-11-30T04:19:00Z")
    }
}

import Foundation

@Suite("Selectors")
struct SelectorTests {
    @Test("label selector strings", arguments: [
        ("app=web", ["app": "web"], true),
        ("app==web", ["app": "api"], false),
        ("app!=web", ["app": "api"], true),
        ("app!=web", [:], true),
        ("tier in (front, back)", ["tier": "back"], true),
        ("tier notin (front,back)", ["tier": "back"], false),
        ("app", ["app": "x"], true),
        ("!app", ["app": "x"], false),
        ("app=web,tier=front", ["app": "web", "tier": "back"], false),
        ("", ["x": "y"], true),
    ])
    func labels(selector: String, labels: [String: String], matches: Bool) throws {
        #expect(try LabelSelector.parse(selector).matches(labels) == matches)
    }

    @Test("bad selectors are 400s")
    func bad() {
        #expect(throws: APIError.self) { try LabelSelector.parse("app in web") }
        #expect(throws: APIError.self) { try LabelSelector.parse("app=web,,") }
        #expect(throws: APIError.self) { try FieldSelector.parse("metadata.name") }
    }

    @Test("selector objects from specs")
    func objects() {
        let s = LabelSelector.from(["matchLabels": ["app": "nginx"],
                                    "matchExpressions": [["key": "tier", "operator": "In", "values": ["a", "b"]]]])
        #expect(s.matches(["app": "nginx", "tier": "a"]))
        #expect(!s.matches(["app": "nginx", "tier": "c"]))
        #expect(s.description == "app=nginx,tier in (a,b)")
        #expect(!LabelSelector.from(nil).matches([:]))
        #expect(LabelSelector.from([:]).matches(["any": "thing"]))
    }

    @Test("field selectors with escapes")
    func fields() throws {
        let s = try FieldSelector.parse("metadata.name=a\\,b,spec.nodeName!=n1")
        #expect(s.matches(["metadata.name": "a,b", "spec.nodeName": "n2"]))
        #expect(!s.matches(["metadata.name": "a,b", "spec.nodeName": "n1"]))
    }
}
