import Testing
@testable import APIMachinery

@Suite("Causes become the Status kubectl prints")
struct ValidationStatusTests {
    typealias S = ValidationTestSupport

    /// What kubectl's cmdutil.CheckErr prints for a 422 with details (kind, name, causes).
    static func kubectlOutput(_ status: JSON) -> String {
        let details = status["details"] ?? .object([:])
        var s = "The \(details["kind"]?.stringValue ?? "") \"\(details["name"]?.stringValue ?? "")\" is invalid"
        let causes = details["causes"]?.arrayValue ?? []
        var lines: [String] = []
        for c in causes {
            let line = "\(c["field"]?.stringValue ?? ""): \(c["message"]?.stringValue ?? "")"
            if !lines.contains(line) { lines.append(line) }
        }
        if lines.count == 1 {
            s += ": " + lines[0]
        } else if !lines.isEmpty {
            s += ": \n" + lines.map { "* " + $0 }.joined(separator: "\n")
        }
        return s
    }

    @Test func servicePortMessage() throws {
        let svc = try S.created("Service", "", #"{"metadata":{"name":"x","namespace":"default"},"spec":{"ports":[{"port":0,"targetPort":80}]}}"#)
        let causes = Validation.validateCreate(kind: "Service", group: "", obj: svc, namespaced: true)
        let error = APIError.invalid(kind: "Service", name: "x", causes: causes)
        #expect(error.code == 422)
        #expect(error.message == "Service \"x\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
        #expect(error.status["details"]?["causes"] == [["reason": "FieldValueInvalid",
                                                         "message": "Invalid value: 0: must be between 1 and 65535, inclusive",
                                                         "field": "spec.ports[0].port"]])
        #expect(Self.kubectlOutput(error.status) == "The Service \"x\" is invalid: spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive")
    }

    @Test func deploymentWithSeveralErrors() throws {
        var d = try S.created("Deployment", "apps", S.minimalDeployment)
        d[path: "spec", "selector"] = nil
        let causes = Validation.validateCreate(kind: "Deployment", group: "apps", obj: d, namespaced: true)
        let error = APIError.invalid(kind: "Deployment", group: "apps", name: "web", causes: causes)
        #expect(error.message == "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]")
        #expect(Self.kubectlOutput(error.status) == "The Deployment \"web\" is invalid: \n* spec.selector: Required value\n* spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`")
    }

    @Test func podNameMessage() throws {
        var pod = try S.created("Pod", "", S.minimalPod)
        pod[path: "metadata", "name"] = "Foo_Bar"
        let error = APIError.invalid(kind: "Pod", name: "Foo_Bar", causes: Validation.validateCreate(kind: "Pod", group: "", obj: pod, namespaced: true))
        #expect(Self.kubectlOutput(error.status) == "The Pod \"Foo_Bar\" is invalid: metadata.name: Invalid value: \"Foo_Bar\": " + S.subdomainMessage)
    }
}
