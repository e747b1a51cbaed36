import Foundation
import Testing
@testable import APIMachinery

/// Runs `kubectl patch --local`, which applies a patch with the same Go libraries the
/// apiserver uses (strategicpatch with the built-in types' metadata, evanphx/json-patch.v4),
/// without any server.
enum KubectlOracle {
    static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let candidate = "\(dir)/kubectl"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }()

    static var available: Bool { executable != nil }

    enum Outcome {
        case patched(JSON)
        /// kubectl's message without its "error: " prefix.
        case failed(String)
    }

    static func patch(_ doc: JSON, type: String, patch: String) throws -> Outcome {
        guard let executable else { throw CocoaError(.fileNoSuchFile) }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("patch-oracle-\(UUID().uuidString).json")
        try Data(doc.serialized()).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["patch", "--local", "-f", file.path, "--type", type, "-p", patch, "-o", "json",
                             "--kubeconfig=/dev/null"]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        if process.terminationStatus == 0 {
            return .patched(try JSON.parse(Array(stdout)))
        }
        var message = String(decoding: stderr, as: UTF8.self)
        if message.hasPrefix("error: ") { message.removeFirst("error: ".count) }
        while message.last?.isWhitespace == true { message.removeLast() }
        return .failed(message)
    }
}

@Suite("Patches agree with kubectl patch --local", .enabled(if: KubectlOracle.available, "needs kubectl on PATH"))
struct PatchKubectlOracleTests {
    struct Case: CustomTestStringConvertible, Sendable {
        enum Kind: String, Sendable { case strategic, merge, json }
        let type: Kind
        let doc: String
        let patch: String
        var testDescription: String { "\(type.rawValue) \(patch)" }
    }

    static let deployment = PatchTestTypes.nginxDeployment.text
    static let threeContainers = #"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"x","labels":{"a":"1","b":"2"},"finalizers":["f1","f2"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"o","uid":"u1"}]},"spec":{"selector":{"matchLabels":{"app":"x"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}},"template":{"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"X","value":"1"},{"name":"Y","value":"2"}],"ports":[{"containerPort":80},{"containerPort":81}]},{"name":"b","image":"b:1"},{"name":"c","image":"c:1","args":["1","2"]}],"tolerations":[{"key":"k","operator":"Exists"}]}}}}"#
    static let service = PatchTestTypes.webService.text
    static let pod = #"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}],"volumes":[{"name":"v","emptyDir":{}},{"name":"w","secret":{"secretName":"s"}}]}}"#
    static let twoPorts = #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP"},{"name":"https","port":443,"protocol":"TCP"}],"selector":{"app":"x"}}}"#
    static let configMap = #"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","annotations":{"a/b":"1"}},"data":{"x":"1","y":"2"}}"#

    static let cases: [Case] = [
        // strategic merge: bodies kubectl sends
        Case(type: .strategic, doc: deployment, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"image":"nginx:1.27","name":"nginx"}]}}}}"#),
        Case(type: .strategic, doc: deployment, patch: #"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T03:30:14Z"}}}}}"#),
        Case(type: .strategic, doc: deployment, patch: #"{"metadata":{"labels":{"edited":"yes"}},"spec":{"selector":{"app":"edited","matchLabels":null}}}"#),
        Case(type: .strategic, doc: service, patch: #"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}\n"}},"spec":{"$setElementOrder/ports":[{"port":8080}],"ports":[{"name":"http","port":8080,"targetPort":80},{"$patch":"delete","port":80}],"selector":{"app":"v2"}}}"#),
        Case(type: .strategic, doc: service, patch: #"{"spec":{"selector":{"app":"v2"}}}"#),
        Case(type: .strategic, doc: service, patch: #"{"spec":{"ports":[{"port":443,"name":"https"},{"port":80,"targetPort":"web"}]}}"#),
        // strategic merge: list merging and ordering
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"d","image":"d"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"b:2"},{"name":"d","image":"d"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"c:2"},{"name":"a","image":"a:2"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"d"},{"name":"a"},{"name":"b"}],"containers":[{"name":"d","image":"d"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}],"containers":[{"$patch":"delete","name":"c"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"z","image":"z"},{"$patch":"replace"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"},{"name":"c"}],"containers":[{"$setElementOrder/env":[{"name":"Z"},{"name":"Y"}],"env":[{"name":"Z","value":"3"},{"$patch":"delete","name":"X"}],"name":"a"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"a","ports":[{"containerPort":82},{"containerPort":80,"name":"http"}]}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"name":"c","args":["3"]}],"tolerations":[{"key":"j","operator":"Exists"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"finalizers":["f3","f1"]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"$setElementOrder/finalizers":["f2","f3"],"$deleteFromPrimitiveList/finalizers":["f1"],"finalizers":["f3"]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"ownerReferences":[{"uid":"u2","apiVersion":"v1","kind":"Secret","name":"s"},{"uid":"u1","controller":true}]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"labels":{"$patch":"replace","c":"3"}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"labels":{"$patch":"delete"}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"labels":{"a":null,"z":"9"}},"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"}}}"#),
        Case(type: .strategic, doc: pod, patch: #"{"spec":{"$setElementOrder/volumes":[{"name":"v"},{"name":"w"}],"volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"emptyDir":null,"name":"v"}]}}"#),
        Case(type: .strategic, doc: pod, patch: #"{"spec":{"volumes":[{"name":"n","configMap":{"name":"x"}}]}}"#),
        // apply renaming a port while another port was added by hand: upstream's shared-slice
        // writes decide the order (443 stays first)
        Case(type: .strategic, doc: twoPorts, patch: #"{"spec":{"$setElementOrder/ports":[{"port":8080}],"ports":[{"name":"http","port":8080},{"$patch":"delete","port":80}]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"d"}],"containers":[{"name":"d","image":"d"},{"$patch":"delete","name":"b"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[],"containers":[{"name":"d","image":"d"},{"name":"b","image":"x"}]}}}}"#),
        // strategic merge: errors
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"labels":{"$patch":"merge","a":"b"}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge","name":"a"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":[{"$patch":"bogus","name":"a"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"strategy":{"$retainKeys":"type"}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":2}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"q","image":"q"}]}}}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"metadata":{"$deleteFromPrimitiveList":["f1"]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"$setElementOrderX":[]}}"#),
        Case(type: .strategic, doc: threeContainers, patch: #"{"spec":{"template":{"spec":{"containers":["a"]}}}}"#),
        // merge patch
        Case(type: .merge, doc: configMap, patch: #"{"metadata":{"labels":{"version":"v2"}}}"#),
        Case(type: .merge, doc: configMap, patch: #"{"data":{"x":null,"z":"3"},"metadata":{"annotations":{"a/b":null}}}"#),
        Case(type: .merge, doc: configMap, patch: #"{"data":{"l":[{"a":null,"b":1}]},"extra":{"n":{"m":null}}}"#),
        // json patch
        Case(type: .json, doc: deployment, patch: #"[{"op":"replace","path":"/spec/template","value":{"metadata":{"creationTimestamp":null,"labels":{"app":"nginx"}},"spec":{"containers":[{"name":"nginx","image":"nginx:1.27","resources":{}}]}}},{"op":"replace","path":"/metadata/annotations","value":{"deployment.kubernetes.io/revision":"1"}}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"add","path":"/metadata/labels","value":{"a":"b"}},{"op":"copy","from":"/data/x","path":"/data/z"},{"op":"move","from":"/data/y","path":"/metadata/labels/y"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"remove","path":"/metadata/annotations/a~1b"},{"op":"test","path":"/data","value":{"y":"2","x":"1"}}]"#),
        Case(type: .json, doc: threeContainers, patch: #"[{"op":"add","path":"/spec/template/spec/containers/1","value":{"name":"n"}},{"op":"remove","path":"/spec/template/spec/containers/-1"},{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"i"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"replace","path":"/data/new","value":"v"},{"op":"copy","from":"/data/none","path":"/data/q"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"remove","path":"/data/zz"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"add","path":"/data/zz/q","value":1}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"test","path":"/data/x","value":"2"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"add","path":"/metadata/finalizers/1","value":"x"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"move","from":"/data/none","path":"/data/q"}]"#),
        Case(type: .json, doc: configMap, patch: #"[{"op":"frob","path":"/data"}]"#),
        Case(type: .json, doc: configMap, patch: #"{"op":"add","path":"/data/q","value":"1"}"#),
        Case(type: .json, doc: configMap, patch: #"[1]"#),
    ]

    @Test(arguments: cases)
    func agrees(_ c: Case) throws {
        try Self.check(c, registry: PatchTestTypes.registry) { kind in
            kind == "Service" ? PatchTestTypes.service : kind == "Pod" ? PatchTestTypes.pod : PatchTestTypes.deployment
        }
    }

    /// Applies case `c` with our code (strategic merge with `registry`, the root schema chosen
    /// by the document's kind) and with kubectl, and records any difference.
    static func check(_ c: Case, registry: TypeRegistry, schema: (String) -> Schema) throws {
        let doc = patchJSON(c.doc)
        let expected = try KubectlOracle.patch(doc, type: c.type.rawValue, patch: c.patch)
        let mine: KubectlOracle.Outcome
        switch c.type {
        case .strategic:
            do throws(APIError) {
                mine = .patched(try StrategicMergePatch.apply(patchJSON(c.patch), to: doc,
                                                              schema: schema(doc["kind"]?.stringValue ?? ""),
                                                              registry: registry))
            } catch {
                mine = .failed(error.message)
            }
        case .merge:
            mine = .patched(MergePatch.apply(patchJSON(c.patch), to: doc))
        case .json:
            // kubectl shows the library's own message; the apiserver would hide it behind a 422.
            do throws(APIError) {
                let ops = try JSONPatch.decode(patchJSON(c.patch))
                switch JSONPatch.run(ops, on: doc) {
                case .success(let result): mine = .patched(result)
                case .failure(let failure): mine = .failed(failure.message)
                }
            } catch {
                mine = .failed(error.message)
            }
        }
        switch (expected, mine) {
        case (.patched(let want), .patched(let got)):
            // The Go side keeps some nulls that decoding into the typed object would drop.
            let w = MergePatch.withoutNullMembers(want)
            let g = MergePatch.withoutNullMembers(got)
            #expect(g.sameValue(as: w), "kubectl: \(w.text)\nours:    \(g.text)")
        case (.failed(let want), .failed(let got)):
            // kubectl trims the message's trailing newline when it prints it.
            var trimmed = got
            while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
            #expect(trimmed == want)
        case (.patched(let want), .failed(let got)):
            Issue.record("kubectl patched to \(want.text) but we failed: \(got)")
        case (.failed(let want), .patched(let got)):
            Issue.record("kubectl failed with \(want) but we patched to \(got.text)")
        }
    }
}

/// Random strategic merge patches against kubectl, for exploring; off unless
/// LABNODE_PATCH_ORACLE_FUZZ names a number of cases (each runs kubectl once).
///
/// Patches touch one list only, because upstream walks a patch object in Go map order, which
/// is random: with two failing members, or a list and its `$deleteFromPrimitiveList` partner,
/// the apiserver itself does not always give the same answer.
@Suite("Random strategic merge patches agree with kubectl",
       .enabled(if: KubectlOracle.available && ProcessInfo.processInfo.environment["LABNODE_PATCH_ORACLE_FUZZ"] != nil))
struct PatchKubectlOracleFuzzTests {
    @Test func randomContainerPatches() throws {
        let count = Int(ProcessInfo.processInfo.environment["LABNODE_PATCH_ORACLE_FUZZ"] ?? "") ?? 100
        var rng = PatchRandom(seed: 0x0a11_ce)
        func pick<T>(_ a: [T]) -> T { a[Int(rng.next() % UInt64(a.count))] }
        func chance(_ p: Int) -> Bool { Int(rng.next() % 100) < p }
        let doc = patchJSON(PatchKubectlOracleTests.threeContainers)
        for _ in 0..<count {
            var containers: [JSON] = []
            for _ in 0..<Int(rng.next() % 4) {
                var c = JSONObject()
                if chance(95) { c["name"] = .string(pick(["a", "b", "c", "d"])) }
                if chance(50) { c["image"] = .string(pick(["i1", "i2"])) }
                if chance(40) {
                    c["env"] = .array((0..<Int(rng.next() % 3)).map { _ in
                        var e: JSONObject = ["name": .string(pick(["X", "Y", "Z"]))]
                        if chance(70) { e["value"] = .string(pick(["1", "2"])) }
                        if chance(15) { e["$patch"] = .string(pick(["delete", "replace"])) }
                        return .object(e)
                    })
                }
                if chance(20) { c["$setElementOrder/env"] = .array([.object(["name": .string(pick(["X", "Y", "Z"]))])]) }
                if chance(8) { c["$retainKeys"] = .array(["name", "image"]) }
                if chance(10) { c["$patch"] = .string(pick(["delete", "replace", "merge"])) }
                containers.append(.object(c))
            }
            var spec: JSONObject = ["containers": .array(containers)]
            if chance(40) {
                let order = ["a", "b", "c", "d"].shuffled(using: &rng).prefix(Int(rng.next() % 5))
                spec["$setElementOrder/containers"] = .array(order.map { .object(["name": .string($0)]) })
            }
            let patch = JSON.object(["spec": .object(["template": .object(["spec": .object(spec)])])])
            let want = try KubectlOracle.patch(doc, type: "strategic", patch: patch.text)
            var got: KubectlOracle.Outcome
            do throws(APIError) {
                got = .patched(try StrategicMergePatch.apply(patch, to: doc, schema: PatchTestTypes.deployment,
                                                             registry: PatchTestTypes.registry))
            } catch {
                got = .failed(error.message)
            }
            switch (want, got) {
            case (.patched(let w), .patched(let g)):
                // Upstream leaves directive members of appended elements to the typed decode.
                #expect(StrategicMerger.stripped(w).sameValue(as: g), "patch \(patch.text)")
            case (.failed(let w), .failed(let g)):
                #expect(w == g.trimmingCharacters(in: .whitespacesAndNewlines), "patch \(patch.text)")
            default:
                Issue.record("patch \(patch.text): kubectl \(want), ours \(got)")
            }
        }
    }
}
