import APIMachinery
import Testing

@Suite("FieldsV1 and field sets")
struct ApplyFieldSetTests {
    /// Documents in the exact form kube-apiserver stores them (keys sorted, "." first).
    static let upstreamDocuments: [String] = [
        #"{}"#,
        #"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#,
        // kubectl create deployment nginx --image=nginx, as a real apiserver records it.
        #"{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#,
        #"{"f:metadata":{"f:finalizers":{".":{},"v:\"a.example.com/x\"":{},"v:\"b\"":{}}}}"#,
        #"{"f:spec":{"f:containers":{"k:{\"name\":\"a\"}":{"f:ports":{"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}}}}}}"#,
        #"{"f:metadata":{"f:annotations":{"f:kubectl.kubernetes.io/last-applied-configuration":{}}}}"#,
        #"{"f:status":{"f:conditions":{"k:{\"type\":\"Available\"}":{".":{},"f:status":{},"f:type":{}},"k:{\"type\":\"Progressing\"}":{".":{},"f:type":{}}}}}"#,
        #"{"f:spec":{"f:x":{"v:1":{},"v:2.5":{},"v:\"s\"":{},"v:true":{}}}}"#,
        #"{"f:spec":{"f:x":{"i:0":{},"i:2":{".":{},"f:a":{}}}}}"#,
    ]

    @Test("upstream documents round-trip byte for byte", arguments: upstreamDocuments)
    func roundTrip(document: String) throws {
        let set = try FieldSet(fieldsV1Text: document)
        #expect(set.fieldsV1Text == document)
        #expect(try FieldSet(fieldsV1: set.fieldsV1) == set)
    }

    @Test func serializesASetBuiltFromPaths() {
        let port: PathElement = .key(sorting: [KeyField("protocol", "TCP"), KeyField("port", 80)])
        let set = FieldSet([
            [.field("spec"), .field("ports"), port, .field("port")],
            [.field("metadata"), .field("labels"), .field("app")],
            [.field("spec"), .field("ports"), port],
        ])
        #expect(set.fieldsV1Text == #"{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:ports":{"k:{\"port\":80,\"protocol\":\"TCP\"}":{".":{},"f:port":{}}}}}"#)
        #expect(set.count == 3)
    }

    @Test("input order does not matter; output is sorted")
    func sortsKeys() throws {
        let set = try FieldSet(fieldsV1Text: #"{"f:spec":{"f:b":{},"f:a":{}},"f:metadata":{"f:name":{}}}"#)
        #expect(set.fieldsV1Text == #"{"f:metadata":{"f:name":{}},"f:spec":{"f:a":{},"f:b":{}}}"#)
    }

    @Test("element kinds order fields < keys < values < indexes")
    func elementKindOrder() throws {
        let set = try FieldSet(fieldsV1Text: #"{"i:0":{},"v:\"x\"":{},"k:{\"name\":\"a\"}":{},"f:z":{}}"#)
        #expect(set.fieldsV1Text == #"{"f:z":{},"k:{\"name\":\"a\"}":{},"v:\"x\"":{},"i:0":{}}"#)
    }

    @Test("values order numbers < strings < bools, numbers numerically")
    func valueOrder() throws {
        let set = try FieldSet(fieldsV1Text: #"{"v:true":{},"v:\"a\"":{},"v:10":{},"v:9.5":{},"v:-1":{}}"#)
        #expect(set.fieldsV1Text == #"{"v:-1":{},"v:9.5":{},"v:10":{},"v:\"a\"":{},"v:true":{}}"#)
    }

    @Test("field names sort by bytes, as Go does")
    func byteOrder() throws {
        let set = try FieldSet(fieldsV1Text: #"{"f:b":{},"f:B":{},"f:a":{},"f:é":{}}"#)
        #expect(set.fieldsV1Text == #"{"f:B":{},"f:a":{},"f:b":{},"f:é":{}}"#)
    }

    @Test("key values are written as Go's encoding/json writes them")
    func keyValueEncoding() {
        let e: PathElement = .key(sorting: [KeyField("name", "a<b&c"), KeyField("n", .double(0.000001))])
        #expect(e.fieldsV1Key == #"k:{"n":0.000001,"name":"a\u003cb\u0026c"}"#)
        #expect(PathElement.value(.double(1e21)).fieldsV1Key == "v:1e+21")
        #expect(PathElement.value(.double(1e-7)).fieldsV1Key == "v:1e-7")
        #expect(PathElement.value(.double(123456789)).fieldsV1Key == "v:123456789")
    }

    @Test("unknown element types are dropped, like upstream")
    func unknownKinds() throws {
        let set = try FieldSet(fieldsV1Text: #"{"x:future":{"f:a":{}},"f:a":{}}"#)
        #expect(set.fieldsV1Text == #"{"f:a":{}}"#)
    }

    @Test("a subtree holding only unknown kinds makes its element a member")
    func onlyUnknownInside() throws {
        let set = try FieldSet(fieldsV1Text: #"{"f:a":{"x:y":{}}}"#)
        #expect(set.has([.field("a")]))
    }

    static let broken: [(String, String)] = [
        (#"{"a":{}}"#, "key must be 2 characters long"),
        (#"{"fa":{}}"#, "missing colon"),
        (#"{"k:[1]":{}}"#, "expected an object"),
        (#"{"i:x":{}}"#, "invalid index"),
        (#"{"f:a":1}"#, "must be an object"),
        (#"[]"#, "must be a JSON object"),
        (#"{"v:{":{}}"#, "invalid value"),
    ]

    @Test("malformed documents are refused", arguments: broken)
    func malformed(document: String, why: String) {
        #expect {
            _ = try FieldSet(fieldsV1Text: document)
        } throws: { error in
            (error as? FieldsV1Error)?.message.contains(why) == true
        }
    }

    @Test func pathStrings() {
        let port: PathElement = .key(sorting: [KeyField("protocol", "TCP"), KeyField("port", 80)])
        #expect([.field("spec"), .field("ports"), port, .field("targetPort")].pathString
            == #".spec.ports[port=80,protocol="TCP"].targetPort"#)
        #expect([.field("metadata"), .field("finalizers"), .value("a\"b")].pathString == #".metadata.finalizers[="a\"b"]"#)
        #expect([.field("x"), .index(3)].pathString == ".x[3]")
        #expect(PathElement.value(.double(2.5)).description == "[=2.5]")
        #expect(PathElement.value(.double(1e6)).description == "[=1e+06]")
    }

    @Test func setAlgebra() throws {
        let a = try FieldSet(fieldsV1Text: #"{"f:a":{".":{},"f:b":{},"f:c":{}},"f:d":{}}"#)
        let b = try FieldSet(fieldsV1Text: #"{"f:a":{"f:b":{}},"f:e":{}}"#)
        #expect(a.union(b).fieldsV1Text == #"{"f:a":{".":{},"f:b":{},"f:c":{}},"f:d":{},"f:e":{}}"#)
        #expect(a.intersection(b).fieldsV1Text == #"{"f:a":{"f:b":{}}}"#)
        #expect(a.subtracting(b).fieldsV1Text == #"{"f:a":{".":{},"f:c":{}},"f:d":{}}"#)
        // A parent in the subtrahend removes only itself from a plain difference...
        let parent = FieldSet([[.field("a")]])
        #expect(a.subtracting(parent).fieldsV1Text == #"{"f:a":{"f:b":{},"f:c":{}},"f:d":{}}"#)
        // ...and its whole subtree from a recursive one.
        #expect(a.subtractingRecursively(parent).fieldsV1Text == #"{"f:d":{}}"#)
        #expect(a.paths.map(\.pathString) == [".a", ".d", ".a.b", ".a.c"])
        #expect(a.has([.field("a"), .field("c")]))
        #expect(!a.has([.field("a"), .field("x")]))
        #expect(!FieldSet().has([]))
    }
}
