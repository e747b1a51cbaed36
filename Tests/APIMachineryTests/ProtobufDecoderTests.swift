import Testing
@testable import APIMachinery

// MARK: - A tiny protobuf encoder, enough to hand-build Kubernetes messages

/// Builds a protobuf message field by field: `Proto().string(1, "web").message(2, spec)`.
private struct Proto {
    var bytes: [UInt8] = []

    static func varint(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
        return out
    }

    func tag(_ field: Int, _ wireType: UInt64) -> Proto {
        var p = self
        p.bytes += Proto.varint(UInt64(field) << 3 | wireType)
        return p
    }

    /// int32, int64 and bool all travel as varints; negatives sign-extend to ten bytes.
    func int(_ field: Int, _ value: Int64) -> Proto {
        var p = tag(field, 0)
        p.bytes += Proto.varint(UInt64(bitPattern: value))
        return p
    }

    func bool(_ field: Int, _ value: Bool) -> Proto { int(field, value ? 1 : 0) }

    func bytes(_ field: Int, _ value: [UInt8]) -> Proto {
        var p = tag(field, 2)
        p.bytes += Proto.varint(UInt64(value.count)) + value
        return p
    }

    func string(_ field: Int, _ value: String) -> Proto { bytes(field, Array(value.utf8)) }

    func message(_ field: Int, _ value: Proto) -> Proto { bytes(field, value.bytes) }

    /// One entry of a map<string, string> field.
    func entry(_ field: Int, _ key: String, _ value: String) -> Proto {
        message(field, Proto().string(1, key).string(2, value))
    }

    func entry(_ field: Int, _ key: String, bytes value: [UInt8]) -> Proto {
        message(field, Proto().string(1, key).bytes(2, value))
    }

    func packed(_ field: Int, _ values: [Int64]) -> Proto {
        bytes(field, values.flatMap { Proto.varint(UInt64(bitPattern: $0)) })
    }

    func fixed64(_ field: Int, _ value: UInt64) -> Proto {
        var p = tag(field, 1)
        for i in 0..<8 { p.bytes.append(UInt8(value >> (8 * UInt64(i)) & 0xff)) }
        return p
    }

    func fixed32(_ field: Int, _ value: UInt32) -> Proto {
        var p = tag(field, 5)
        for i in 0..<4 { p.bytes.append(UInt8(value >> (8 * UInt32(i)) & 0xff)) }
        return p
    }

    /// Quantity, IntOrString and Time as their wrapper messages.
    func quantity(_ field: Int, _ value: String) -> Proto { message(field, Proto().string(1, value)) }
    func intOrString(_ field: Int, int value: Int64) -> Proto {
        message(field, Proto().int(1, 0).int(2, value).string(3, ""))
    }
    func intOrString(_ field: Int, string value: String) -> Proto {
        message(field, Proto().int(1, 1).int(2, 0).string(3, value))
    }
    func time(_ field: Int, seconds: Int64, nanos: Int64 = 0) -> Proto {
        message(field, Proto().int(1, seconds).int(2, nanos))
    }

    /// The "k8s\0" envelope around a typed message.
    static func envelope(_ apiVersion: String, _ kind: String, _ raw: Proto,
                         contentEncoding: String = "", contentType: String = "") -> [UInt8] {
        KubernetesProtobuf.magic + Proto()
            .message(1, Proto().string(1, apiVersion).string(2, kind))
            .message(2, raw)
            .string(3, contentEncoding)
            .string(4, contentType)
            .bytes
    }
}

/// ObjectMeta as kubectl writes it: every string field present even when empty, and an empty
/// creationTimestamp message.
private func kubectlMeta(name: String, labels: [(String, String)] = []) -> Proto {
    var meta = Proto().string(1, name).string(2, "").string(3, "").string(4, "").string(5, "")
        .string(6, "").int(7, 0).message(8, Proto())
    for (k, v) in labels { meta = meta.entry(11, k, v) }
    return meta
}

private func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8).filter { !$0.isWhitespace }
    var out: [UInt8] = []
    var i = 0
    while i + 1 < digits.count {
        out.append(UInt8(hexDigit(digits[i]) << 4 | hexDigit(digits[i + 1])))
        i += 2
    }
    return out
}

private func hexDigit(_ c: UInt8) -> UInt8 {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    default: c - UInt8(ascii: "A") + 10
    }
}

extension UInt8 {
    fileprivate var isWhitespace: Bool { self == 0x20 || self == 0x0a || self == 0x0d || self == 0x09 }
}

private func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

/// Expected JSON with Go's nulls removed (the decoder leaves unset values out) and apiVersion
/// and kind moved to the front, where the decoder puts them.
private func normalized(_ json: JSON, top: Bool = true) -> JSON {
    switch json {
    case .object(let members):
        var out = JSONObject()
        if top {
            if let v = members["apiVersion"] { out["apiVersion"] = v }
            if let v = members["kind"] { out["kind"] = v }
        }
        for (k, v) in members where !v.isNull { out[k] = normalized(v, top: false) }
        return .object(out)
    case .array(let items):
        return .array(items.map { normalized($0, top: false) })
    default:
        return json
    }
}

// MARK: - Decoding

@Suite("Protobuf decoder")
struct ProtobufDecoderTests {

    @Test("kubectl 1.32+ bodies decode to the JSON kubectl 1.31 sends", arguments: ProtobufKubectlCaptures.all)
    func kubectlCaptures(capture: ProtobufKubectlCapture) throws {
        let decoded = try KubernetesProtobuf.decode(hexBytes(capture.protobufHex))
        #expect(decoded == normalized(try parse(capture.json)))
    }

    @Test("the Deployment body of transcript 05a")
    func transcriptDeployment() throws {
        let decoded = try KubernetesProtobuf.decode(hexBytes(ProtobufTranscriptBodies.deployment05a))
        let expected = try parse("""
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","labels":{"app":"nginx"}},
             "spec":{"replicas":1,"selector":{"matchLabels":{"app":"nginx"}},
                     "template":{"metadata":{"labels":{"app":"nginx"}},
                                 "spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},
                     "strategy":{}},
             "status":{}}
            """)
        #expect(decoded == expected)
    }

    @Test("the bodies of transcript 40", arguments: [
        (ProtobufTranscriptBodies.namespace40, #"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"lab"},"spec":{},"status":{}}"#),
        (ProtobufTranscriptBodies.configMap40, #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"a":"b"}}"#),
        (ProtobufTranscriptBodies.secret40, #"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"sec"},"data":{"a":"Yg=="}}"#),
        (ProtobufTranscriptBodies.tokenRequest40,
         #"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","metadata":{},"spec":{},"status":{"token":""}}"#),
        (ProtobufTranscriptBodies.service40,
         #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web2","labels":{"app":"web2"}},"spec":{"ports":[{"name":"80-8080","protocol":"TCP","port":80,"targetPort":8080}],"selector":{"app":"web2"},"type":"NodePort"},"status":{"loadBalancer":{}}}"#),
    ])
    func transcriptBodies(body: String, json: String) throws {
        #expect(try KubernetesProtobuf.decode(hexBytes(body)) == parse(json))
    }

    @Test("a kind that is not served is a 400 naming it (kubectl autoscale's HPA, transcript 40)")
    func unknownKind() {
        let error = #expect(throws: APIError.self) {
            try KubernetesProtobuf.decode(hexBytes(ProtobufTranscriptBodies.horizontalPodAutoscaler40))
        }
        #expect(error?.code == 400)
        #expect(error?.message == #"no kind "HorizontalPodAutoscaler" is registered for version "autoscaling/v1""#)
    }

    @Test("Deployment like `kubectl create deployment nginx --image=nginx --replicas=2`")
    func deployment() throws {
        let labels = [("app", "nginx")]
        let container = Proto().string(1, "nginx").string(2, "nginx").string(5, "").message(8, Proto())
            .string(13, "").string(14, "").bool(16, false).bool(17, false).bool(18, false).string(20, "")
        let podSpec = Proto().message(2, container).string(3, "").string(6, "").string(8, "").string(9, "")
            .string(10, "").bool(11, false).bool(12, false).bool(13, false).string(16, "").string(17, "")
            .string(19, "").string(24, "")
        let spec = Proto().int(1, 2)
            .message(2, Proto().entry(1, "app", "nginx"))
            .message(3, Proto().message(1, kubectlMeta(name: "", labels: labels)).message(2, podSpec))
            .message(4, Proto().string(1, ""))
            .int(5, 0).bool(7, false)
        let status = Proto().int(1, 0).int(2, 0).int(3, 0).int(4, 0).int(5, 0).int(7, 0)
        let body = Proto.envelope("apps/v1", "Deployment",
                                  Proto().message(1, kubectlMeta(name: "nginx", labels: labels)).message(2, spec).message(3, status))
        let expected = try parse("""
            {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"nginx","labels":{"app":"nginx"}},
             "spec":{"replicas":2,"selector":{"matchLabels":{"app":"nginx"}},
                     "template":{"metadata":{"labels":{"app":"nginx"}},
                                 "spec":{"containers":[{"name":"nginx","image":"nginx","resources":{}}]}},
                     "strategy":{}},
             "status":{}}
            """)
        #expect(try KubernetesProtobuf.decode(body) == expected)
    }

    @Test("NodePort Service with numbered and named target ports")
    func nodePortService() throws {
        let http = Proto().string(1, "http").string(2, "TCP").int(3, 80).intOrString(4, int: 8080).int(5, 30080)
        let metrics = Proto().string(1, "metrics").string(2, "TCP").int(3, 9090).intOrString(4, string: "metrics").int(5, 0)
        let spec = Proto().message(1, http).message(1, metrics).entry(2, "app", "web").string(3, "").string(4, "NodePort")
            .string(7, "").string(8, "").string(10, "").string(11, "").int(12, 0).bool(13, false)
        let body = Proto.envelope("v1", "Service", Proto().message(1, kubectlMeta(name: "web")).message(2, spec)
                                    .message(3, Proto().message(1, Proto())))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
             "spec":{"ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":8080,"nodePort":30080},
                              {"name":"metrics","protocol":"TCP","port":9090,"targetPort":"metrics"}],
                     "selector":{"app":"web"},"type":"NodePort"},
             "status":{"loadBalancer":{}}}
            """)
        let got = try KubernetesProtobuf.decode(body)
        #expect(got == expected, "\(got.text)")
    }

    @Test("a required field keeps its zero value (ServicePort.port 0)")
    func requiredZero() throws {
        let spec = Proto().message(1, Proto().string(1, "").int(3, 0).int(5, 0))
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("v1", "Service", Proto().message(2, spec)))
        #expect(decoded[path: "spec", "ports"] == [["port": 0]])
    }

    @Test("Namespace with labels and finalizers")
    func namespace() throws {
        let body = Proto.envelope("v1", "Namespace", Proto()
            .message(1, kubectlMeta(name: "lab", labels: [("team", "a"), ("env", "")]))
            .message(2, Proto().string(1, "kubernetes"))
            .message(3, Proto().string(1, "")))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"lab","labels":{"team":"a","env":""}},
             "spec":{"finalizers":["kubernetes"]},"status":{}}
            """)
        #expect(try KubernetesProtobuf.decode(body) == expected)
    }

    @Test("ConfigMap with text and binary data, marked immutable")
    func configMap() throws {
        let body = Proto.envelope("v1", "ConfigMap", Proto()
            .message(1, kubectlMeta(name: "cfg"))
            .entry(2, "greeting", "héllo\n").entry(2, "empty", "")
            .entry(3, "blob", bytes: [0x00, 0xff, 0x10])
            .bool(4, true))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"immutable":true,
             "data":{"greeting":"héllo\\n","empty":""},"binaryData":{"blob":"AP8Q"}}
            """)
        #expect(try KubernetesProtobuf.decode(body) == expected)
    }

    @Test("Secret data is base64, stringData stays text, a present false pointer is kept")
    func secret() throws {
        let body = Proto.envelope("v1", "Secret", Proto()
            .message(1, kubectlMeta(name: "sec"))
            .entry(2, "a", bytes: Array("b".utf8))
            .entry(2, "key", bytes: [0xde, 0xad, 0xbe, 0xef, 0x00])
            .string(3, "Opaque")
            .entry(4, "plain", "text")
            .bool(5, false))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Secret","metadata":{"name":"sec"},"immutable":false,
             "data":{"a":"Yg==","key":"3q2+7wA="},"stringData":{"plain":"text"},"type":"Opaque"}
            """)
        #expect(try KubernetesProtobuf.decode(body) == expected)
    }

    @Test("TokenRequest with audiences, int64 lifetime, bound object and an issued timestamp")
    func tokenRequest() throws {
        let spec = Proto().string(1, "api").string(1, "vault")
            .message(3, Proto().string(1, "Pod").string(2, "v1").string(3, "p").string(4, "1234"))
            .int(4, 3600)
        let status = Proto().string(1, "").time(2, seconds: 1_767_225_600)
        let body = Proto.envelope("authentication.k8s.io/v1", "TokenRequest", Proto()
            .message(1, kubectlMeta(name: "")).message(2, spec).message(3, status))
        let expected = try parse("""
            {"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest","metadata":{},
             "spec":{"audiences":["api","vault"],"expirationSeconds":3600,
                     "boundObjectRef":{"kind":"Pod","apiVersion":"v1","name":"p","uid":"1234"}},
             "status":{"token":"","expirationTimestamp":"2026-01-01T00:00:00Z"}}
            """)
        #expect(try KubernetesProtobuf.decode(body) == expected)
    }

    @Test("negative numbers, packed and unpacked repeated integers")
    func numbers() throws {
        let security = Proto().int(2, -1).packed(4, [1000, -2]).int(4, 3000).int(5, 0)
        let spec = Proto().int(4, -30).message(14, security).int(25, -7).int(5, 0)
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("v1", "Pod", Proto().message(2, spec)))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Pod","spec":{"terminationGracePeriodSeconds":-30,"activeDeadlineSeconds":0,
             "securityContext":{"runAsUser":-1,"supplementalGroups":[1000,-2,3000],"fsGroup":0},"priority":-7}}
            """)
        #expect(decoded == expected)
    }

    @Test("inlined structs (volume sources, probe handlers, key selectors) are flattened")
    func inlined() throws {
        let configMapVolume = Proto().message(1, Proto().string(1, "settings"))
            .message(2, Proto().string(1, "app.conf").string(2, "conf/app.conf")).int(3, 0o644)
        let volumes = [
            Proto().string(1, "config").message(2, Proto().message(19, configMapVolume)),
            Proto().string(1, "scratch").message(2, Proto().message(2, Proto().string(1, "Memory").quantity(2, "64Mi"))),
            Proto().string(1, "host").message(2, Proto().message(1, Proto().string(1, "/var/log").string(2, "Directory"))),
        ]
        let env = Proto().string(1, "PASSWORD")
            .message(3, Proto().message(4, Proto().message(1, Proto().string(1, "db")).string(2, "password").bool(3, true)))
        let probe = Proto().message(1, Proto().message(2, Proto().string(1, "/healthz").intOrString(2, string: "http")
                                                        .string(4, "HTTP")))
            .int(2, 5).int(3, 1).int(4, 10).int(5, 1).int(6, 3)
        let container = Proto().string(1, "app").string(2, "app:1").message(7, env).message(10, probe)
            .message(9, Proto().string(1, "config").string(3, "/etc/app").bool(2, true))
        var podSpec = Proto()
        for v in volumes { podSpec = podSpec.message(1, v) }
        podSpec = podSpec.message(2, container)
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("v1", "Pod", Proto().message(2, podSpec)))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Pod","spec":{
              "volumes":[
                {"name":"config","configMap":{"name":"settings","items":[{"key":"app.conf","path":"conf/app.conf"}],"defaultMode":420}},
                {"name":"scratch","emptyDir":{"medium":"Memory","sizeLimit":"64Mi"}},
                {"name":"host","hostPath":{"path":"/var/log","type":"Directory"}}],
              "containers":[{"name":"app","image":"app:1",
                "env":[{"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"password","optional":true}}}],
                "volumeMounts":[{"name":"config","readOnly":true,"mountPath":"/etc/app"}],
                "livenessProbe":{"httpGet":{"path":"/healthz","port":"http","scheme":"HTTP"},
                                 "initialDelaySeconds":5,"timeoutSeconds":1,"periodSeconds":10,
                                 "successThreshold":1,"failureThreshold":3}}]}}
            """)
        #expect(decoded == expected)
    }

    @Test("Time drops fractions, MicroTime keeps microseconds, zero time is left out")
    func times() throws {
        let lease = Proto().string(1, "node-1").int(2, 40)
            .time(3, seconds: 1_700_000_000, nanos: 123_456_789)
            .time(4, seconds: 1_700_000_100)
            .int(5, 0)
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("coordination.k8s.io/v1", "Lease", Proto()
            .message(1, Proto().string(1, "node-1").time(8, seconds: 1_700_000_000, nanos: 999_000_000)
                .time(9, seconds: 0))
            .message(2, lease)))
        let expected = try parse("""
            {"apiVersion":"coordination.k8s.io/v1","kind":"Lease",
             "metadata":{"name":"node-1","creationTimestamp":"2023-11-14T22:13:20Z"},
             "spec":{"holderIdentity":"node-1","leaseDurationSeconds":40,
                     "acquireTime":"2023-11-14T22:13:20.123456Z","renewTime":"2023-11-14T22:15:00.000000Z",
                     "leaseTransitions":0}}
            """)
        #expect(decoded == expected)
    }

    @Test("timestamps across the calendar", arguments: [
        (Int64(0), Int64(1), false, "1970-01-01T00:00:00Z"),
        (Int64(951_782_400), Int64(0), false, "2000-02-29T00:00:00Z"),
        (Int64(-1), Int64(0), false, "1969-12-31T23:59:59Z"),
        (Int64(-62_135_596_800), Int64(0), false, "0001-01-01T00:00:00Z"),
        (Int64(253_402_300_799), Int64(999_999_999), true, "9999-12-31T23:59:59.999999Z"),
        (Int64(4_102_444_800), Int64(500), true, "2100-01-01T00:00:00.000000Z"),
    ])
    func calendar(seconds: Int64, nanos: Int64, micro: Bool, text: String) {
        #expect(KubernetesProtobuf.Timestamp.format(seconds: seconds, nanos: nanos, micro: micro) == text)
    }

    @Test("quantities, resources and managed fields")
    func quantitiesAndRawJSON() throws {
        let resources = Proto()
            .message(1, Proto().string(1, "cpu").quantity(2, "500m"))
            .message(2, Proto().string(1, "memory").message(2, Proto()))
        let container = Proto().string(1, "app").message(8, resources)
        let managed = Proto().string(1, "kubectl").string(2, "Update").string(3, "v1").time(4, seconds: 86_400)
            .string(6, "FieldsV1").message(7, Proto().string(1, #"{"f:spec":{}}"#))
        let meta = Proto().string(1, "p").message(17, managed)
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("v1", "Pod", Proto()
            .message(1, meta).message(2, Proto().message(2, container))))
        let expected = try parse("""
            {"apiVersion":"v1","kind":"Pod",
             "metadata":{"name":"p","managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1",
                          "time":"1970-01-02T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{}}}]},
             "spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"500m"},"requests":{"memory":"0"}}}]}}
            """)
        #expect(decoded == expected)
    }

    @Test("unknown fields of every wire type are skipped")
    func unknownFields() throws {
        let meta = Proto().string(1, "cfg").int(99, 7).fixed64(98, 1).fixed32(97, 2).string(96, "x")
            .message(95, Proto().string(1, "nested"))
        let body = Proto.envelope("v1", "ConfigMap", Proto().message(1, meta).entry(2, "a", "b").int(1000, 5)
            .message(2, Proto().string(1, "c").string(2, "d").int(3, 9)))
        let decoded = try KubernetesProtobuf.decode(body)
        #expect(try decoded == parse(#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg"},"data":{"a":"b","c":"d"}}"#))
    }

    @Test("members come out in Go declaration order whatever the wire order")
    func memberOrder() throws {
        let port = Proto().int(5, 30001).intOrString(4, int: 81).int(3, 80).string(2, "UDP").string(1, "dns")
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("v1", "Service", Proto()
            .message(2, Proto().string(4, "NodePort").message(1, port))
            .message(1, Proto().entry(11, "b", "2").string(1, "svc"))))
        let keys = decoded.objectValue.map { Array($0.keys) }
        #expect(keys == ["apiVersion", "kind", "metadata", "spec"])
        #expect(decoded[path: "spec", "ports"]?.arrayValue?.first?.objectValue.map { Array($0.keys) }
                == ["name", "protocol", "port", "targetPort", "nodePort"])
        #expect(decoded[path: "spec"]?.objectValue.map { Array($0.keys) } == ["ports", "type"])
    }

    @Test("repeated occurrences: last scalar wins, messages merge")
    func repeatedOccurrences() throws {
        let decoded = try KubernetesProtobuf.decode(Proto.envelope("apps/v1", "Deployment", Proto()
            .message(2, Proto().int(1, 3).int(5, 10).int(5, 0))
            .message(2, Proto().int(1, 4).message(4, Proto().string(1, "Recreate")))))
        #expect(try decoded == parse(#"{"apiVersion":"apps/v1","kind":"Deployment","spec":{"replicas":4,"strategy":{"type":"Recreate"}}}"#))
    }

    // MARK: Malformed input

    static let good = Proto.envelope("v1", "ConfigMap", Proto().message(1, Proto().string(1, "cfg")))

    static let malformedCases: [ProtobufMalformedBody] = [
        ProtobufMalformedBody("empty", [UInt8](), "prefix"),
        ProtobufMalformedBody("no magic", Array("{\"kind\":\"ConfigMap\"}".utf8), "prefix"),
        ProtobufMalformedBody("truncated varint", KubernetesProtobuf.magic + [0x0a, 0x80], "truncated varint"),
        ProtobufMalformedBody("length past end", KubernetesProtobuf.magic + [0x0a, 0x05, 0x0a], "runs past the end"),
        ProtobufMalformedBody("varint overflow", KubernetesProtobuf.magic + [0x28] + [UInt8](repeating: 0xff, count: 10) + [0x01], "overflows"),
        ProtobufMalformedBody("field number 0", KubernetesProtobuf.magic + [0x02, 0x00], "invalid field number 0"),
        ProtobufMalformedBody("wire type 7", KubernetesProtobuf.magic + [0x0f], "invalid wire type 7"),
        ProtobufMalformedBody("group", Proto.envelope("v1", "ConfigMap", Proto().tag(50, 3)), "start-group"),
        ProtobufMalformedBody("no kind", Proto.envelope("v1", "", Proto()), "names no kind"),
        ProtobufMalformedBody("unknown kind", Proto.envelope("v1", "Frobnicator", Proto()), #"no kind "Frobnicator" is registered for version "v1""#),
        ProtobufMalformedBody("wrong group", Proto.envelope("apps/v1", "ConfigMap", Proto()), #"no kind "ConfigMap" is registered"#),
        ProtobufMalformedBody("gzip", Proto.envelope("v1", "ConfigMap", Proto(), contentEncoding: "gzip"), "content encoding \"gzip\""),
        ProtobufMalformedBody("json inside", Proto.envelope("v1", "ConfigMap", Proto(), contentType: "application/json"), "inner content type"),
        ProtobufMalformedBody("wrong wire type", Proto.envelope("apps/v1", "Deployment", Proto().message(2, Proto().string(1, "2"))),
         "field 1 (replicas) of io.k8s.api.apps.v1.DeploymentSpec has wire type length-delimited"),
        ProtobufMalformedBody("string as varint", Proto.envelope("v1", "ConfigMap", Proto().message(1, Proto().int(1, 5))), "(name)"),
        ProtobufMalformedBody("map as varint", Proto.envelope("v1", "ConfigMap", Proto().int(2, 5)), "(data)"),
        ProtobufMalformedBody("truncated inner", Proto.envelope("v1", "ConfigMap", Proto().bytes(1, [0x0a, 0x09, 0x61])), "runs past the end"),
        ProtobufMalformedBody("fields not JSON", Proto.envelope("v1", "ConfigMap", Proto().message(1, Proto()
            .message(17, Proto().message(7, Proto().string(1, "{nope"))))), "does not hold JSON"),
        ProtobufMalformedBody("time out of range", Proto.envelope("v1", "ConfigMap", Proto().message(1, Proto()
            .time(8, seconds: Int64.max))), "out of range"),
        ProtobufMalformedBody("nanos out of range", Proto.envelope("v1", "ConfigMap", Proto().message(1, Proto()
            .time(8, seconds: 1, nanos: -1))), "out of range"),
        ProtobufMalformedBody("truncated transcript body", hexBytes(ProtobufTranscriptBodies.truncatedDeployment05b), "runs past the end"),
    ]

    @Test("malformed bodies are 400 Bad Request with a reason", arguments: malformedCases)
    func malformed(test: ProtobufMalformedBody) {
        let (name, body, reason) = (test.name, test.body, test.reason)
        let error = #expect(throws: APIError.self, "\(name)") {
            try KubernetesProtobuf.decode(body)
        }
        #expect(error?.code == 400, "\(name)")
        #expect(error?.reason == .badRequest, "\(name)")
        #expect(error?.message.contains(reason) == true, "\(name): \(error?.message ?? "")")
    }

    @Test("random mutations of real bodies never crash, hang or fail with anything but 400")
    func fuzz() {
        var seeds = ProtobufKubectlCaptures.all.map { hexBytes($0.protobufHex) }
        seeds += [ProtobufTranscriptBodies.deployment05a, ProtobufTranscriptBodies.service40, ProtobufTranscriptBodies.tokenRequest40].map(hexBytes)
        seeds.append(Self.good)
        var rng = SplitMix64(seed: 0x6b38_7300)
        var decodedCount = 0
        var rejected = 0
        for round in 0..<4000 {
            var body = seeds[Int(rng.next() % UInt64(seeds.count))]
            for _ in 0..<(1 + Int(rng.next() % 4)) { body = mutate(body, &rng) }
            do {
                let json = try KubernetesProtobuf.decode(body)
                #expect(json["kind"]?.stringValue != nil)
                decodedCount += 1
            } catch {
                rejected += 1
                if error.code != 400 {
                    Issue.record("round \(round): \(error)")
                }
            }
        }
        // Both outcomes must actually occur, or the mutations are not exercising the decoder.
        #expect(decodedCount > 100)
        #expect(rejected > 100)
    }

    private func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = input
        // Keep the magic most of the time so the mutation reaches the message decoder.
        let low = b.count > 8 ? 4 : 0
        guard b.count > low else { return b + [UInt8(rng.next() & 0xff)] }
        let at = low + Int(rng.next() % UInt64(b.count - low))
        switch rng.next() % 7 {
        case 0: b[at] = UInt8(rng.next() & 0xff)
        case 1: b[at] ^= UInt8(1 << (rng.next() % 8))
        case 2: b.removeSubrange(at..<min(b.count, at + 1 + Int(rng.next() % 8)))
        case 3: b.insert(contentsOf: (0..<(1 + rng.next() % 6)).map { _ in UInt8(rng.next() & 0xff) }, at: at)
        case 4: b = Array(b[0..<at])
        case 5: b.insert(contentsOf: b[at..<min(b.count, at + 1 + Int(rng.next() % 16))], at: at)
        default: b[at] = [0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12][Int(rng.next() % 6)]
        }
        return b
    }
}

struct ProtobufMalformedBody: Sendable, CustomTestStringConvertible {
    let name: String
    let body: [UInt8]
    let reason: String
    init(_ name: String, _ body: [UInt8], _ reason: String) {
        self.name = name
        self.body = body
        self.reason = reason
    }
    var testDescription: String { name }
}

/// Deterministic PRNG so a fuzz failure can be replayed.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
