import APIMachinery
import Foundation
import Testing
@testable import Labs

/// The package's labs/ folder, found from this file.
let labsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("labs").path

@Suite struct ScenarioTests {
    @Test func theServicesLabLoadsAndCoversTheChapter() throws {
        let scenario = try LabCatalog(source: .directory(labsDirectory)).load("services")
        #expect(scenario.name == "services")
        let ids = scenario.steps.map(\.id)
        // The chapter's parts, in the chapter's order.
        for id in ["deploy", "expose", "list", "browser", "clusterip", "loadbalancer", "externalname", "headless",
                   "outside", "update-v1", "update-v2", "proxy-rules", "kubectl-proxy", "busybox", "nslookup", "resolv", "dns-health"] {
            #expect(ids.contains(id), "missing step \(id)")
        }
        let commands = scenario.steps.flatMap { $0.run + $0.then + [$0.background].compactMap { $0 } }
        #expect(commands.contains("kubectl expose deployment/nginx --port=80 --type=NodePort"))
        #expect(commands.contains("kubectl exec -ti busybox -- nslookup nginx"))
        #expect(commands.contains("kubectl proxy --port=8001"))
        // Every check that can fail tells the trainee what to do.
        for step in scenario.steps {
            for check in step.checks where !check.onlyWhileRunning {
                #expect(!check.hint.isEmpty, "step \(step.id): \(check.expect) has no hint")
            }
        }
        #expect(scenario.files["busybox.yaml"]?.contains("sleep") == true)
    }

    @Test func theEmbeddedCopyMatchesLabsOnDisk() throws {
        // Regenerate with scripts/embed-labs when this fails.
        let disk = LabCatalog(source: .directory(labsDirectory))
        let embedded = LabCatalog(source: .embedded)
        #expect(try disk.names() == embedded.names())
        for name in try disk.names() {
            let files = try FileManager.default.contentsOfDirectory(atPath: "\(labsDirectory)/\(name)").sorted()
            #expect(EmbeddedLabs.files[name].map { $0.keys.sorted() } == files, "scripts/embed-labs is out of date for \(name)")
            for file in files {
                let text = try String(contentsOfFile: "\(labsDirectory)/\(name)/\(file)", encoding: .utf8)
                #expect(EmbeddedLabs.files[name]?[file] == text, "scripts/embed-labs is out of date for \(name)/\(file)")
            }
        }
    }

    @Test(arguments: [
        ("steps: [{id: a, title: t, explain: e, checks: []}]\nname: x\ntitle: y", "step a has no checks"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, checks: [{expect: z, get: svc/a}]}", "steps[0].checks[0] has no field"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, checks: [{expect: z, get: svc/a, field: .spec}]}", "says what to look at but not what to expect"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, checks: [{expect: z, http: u, kubectl: v, contains: w}]}", "needs exactly one of"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, checks: [{expect: z, http: u, matches: '('}]}", "not a valid regular expression"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, show: f.yaml, checks: [{expect: z, http: u, contains: w}]}", "not in the lab's files"),
        ("name: x\ntitle: y\nsteps:\n- {id: a, title: t, explain: e, checks: [{expect: z, http: u, contains: w}]}\n- {id: a, title: t, explain: e, checks: [{expect: z, http: u, contains: w}]}", "used twice"),
        ("name: [", "not valid YAML"),
    ])
    func badLabsAreRefusedWithTheReason(yaml: String, reason: String) {
        #expect {
            _ = try Scenario.parse(yaml: yaml) { _ in "" }
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func fieldPaths() throws {
        let object = try JSON.parse(#"{"spec":{"ports":[{"port":80,"nodePort":31230}],"clusterIP":"None","selector":{}}}"#)
        #expect(try FieldPath(".spec.ports[0].nodePort").value(in: object).map(FieldPath.text) == "31230")
        #expect(try FieldPath(".spec.clusterIP").value(in: object).map(FieldPath.text) == "None")
        #expect(try FieldPath(".spec.ports[3].port").value(in: object) == nil)
        #expect(try FieldPath(".status.loadBalancer.ingress[0].ip").value(in: object) == nil)
        #expect(throws: LabError.self) { try FieldPath("spec") }
        #expect(throws: LabError.self) { try FieldPath(".spec.ports[x]") }
    }

    @Test func shellWordsAndTemplates() throws {
        #expect(try ShellWords.split(#"get --raw '/a b' "c\"d" e\ f"#) == ["get", "--raw", "/a b", #"c"d"#, "e f"])
        #expect(throws: LabError.self) { try ShellWords.split("a 'b") }
        let refs = try Template.references(in: "http://{{nodeIP}}:{{service/nginx .spec.ports[0].nodePort}}/ {{service/kube-dns -n kube-system .spec.clusterIP}}")
        #expect(refs.map(\.reference) == [
            .fact("nodeIP"),
            .object(arguments: ["service/nginx"], field: try FieldPath(".spec.ports[0].nodePort")),
            .object(arguments: ["service/kube-dns", "-n", "kube-system"], field: try FieldPath(".spec.clusterIP")),
        ])
        #expect(throws: LabError.self) { try Template.references(in: "{{service/nginx}}") }
        #expect(throws: LabError.self) { try Template.references(in: "{{nodeIP") }
    }
}
