import Testing
@testable import APIMachinery

@Suite("NameValidation messages match k8s.io/apimachinery")
struct ValidationNameTests {
    typealias S = ValidationTestSupport

    @Test(arguments: [
        ("my-name", [String]()),
        ("123-abc", []),
        ("Foo_Bar", [S.labelMessage]),
        ("a.b", ["must not contain dots"]),
        ("-a", [S.labelMessage]),
        ("", [S.labelMessage]),
        (String(repeating: "a", count: 64), ["must be no more than 63 characters"]),
    ])
    func dns1123Label(value: String, expected: [String]) {
        #expect(NameValidation.isDNS1123Label(value) == expected)
    }

    @Test(arguments: [
        ("example.com", [String]()),
        ("a-b.c-d.e", []),
        ("Foo_Bar", [S.subdomainMessage]),
        ("a..b", [S.subdomainMessage]),
        ("a.", [S.subdomainMessage]),
        (String(repeating: "a", count: 254), ["must be no more than 253 characters"]),
    ])
    func dns1123Subdomain(value: String, expected: [String]) {
        #expect(NameValidation.isDNS1123Subdomain(value) == expected)
    }

    @Test(arguments: [
        ("my-svc", [String]()),
        ("1abc", [S.dns1035Message]),
        ("web.api", [S.dns1035Message]),
    ])
    func dns1035Label(value: String, expected: [String]) {
        #expect(NameValidation.isDNS1035Label(value) == expected)
    }

    @Test func qualifiedNames() {
        let namePart = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        #expect(NameValidation.isQualifiedName("app.kubernetes.io/name").isEmpty)
        #expect(NameValidation.isQualifiedName("My_Key.1").isEmpty)
        #expect(NameValidation.isQualifiedName("-bad") == [namePart])
        #expect(NameValidation.isQualifiedName("/x") == ["prefix part must be non-empty"])
        #expect(NameValidation.isQualifiedName("Example.com/x") == ["prefix part " + S.subdomainMessage])
        #expect(NameValidation.isQualifiedName("example.com/") == ["name part must be non-empty", namePart])
        #expect(NameValidation.isQualifiedName("a/b/c").first?.hasPrefix("a qualified name must consist of") == true)
    }

    @Test func labelValues() {
        #expect(NameValidation.isValidLabelValue("").isEmpty)
        #expect(NameValidation.isValidLabelValue("v1.2_3-x").isEmpty)
        #expect(NameValidation.isValidLabelValue("bad value") == ["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"])
    }

    @Test func configKeysAndPorts() {
        #expect(NameValidation.isConfigMapKey("app.properties").isEmpty)
        #expect(NameValidation.isConfigMapKey("a/b") == ["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"])
        #expect(NameValidation.isConfigMapKey("..x") == ["must not start with '..'"])
        #expect(NameValidation.isValidPortName("http").isEmpty)
        #expect(NameValidation.isValidPortName("8080") == ["must contain at least one letter (a-z)"])
        #expect(NameValidation.isValidPortName("http_port") == ["must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"])
        #expect(NameValidation.isValidPortName("a--b-") == ["must not contain consecutive hyphens", "must not begin or end with a hyphen"])
        #expect(NameValidation.isValidPortNum(0) == [S.portRange])
        #expect(NameValidation.isValidPortNum(65535).isEmpty)
    }

    @Test func ipAddresses() {
        for ok in ["10.96.0.1", "::1", "2001:db8::ffff", "::ffff:10.0.0.1", "010.001.002.003"] {
            #expect(NameValidation.isValidIP(ok).isEmpty, "\(ok)")
        }
        for bad in ["", "10.0.0", "10.0.0.256", "1::2::3", "abc", "10.0.0.1/24"] {
            #expect(NameValidation.isValidIP(bad) == [NameValidation.invalidIPMessage], "\(bad)")
        }
    }

    @Test func generateNameBecomesAName() throws {
        let pod = try ValidationTestSupport.created("Pod", "", #"{"metadata":{"generateName":"web-","namespace":"d"},"spec":{"containers":[{"name":"c","image":"x"}]}}"#)
        let name = pod[path: "metadata", "name"]?.stringValue ?? ""
        #expect(name.hasPrefix("web-"))
        #expect(name.count == 9)
        #expect(NameValidation.isDNS1123Subdomain(name).isEmpty)
        #expect(ValidationTestSupport.createErrors("Pod", "", pod) == [])
    }
}
