import Testing
@testable import APIMachinery

/// Deterministic pseudo-random numbers (SplitMix64), so a failing seed can be replayed.
struct PatchRandom: RandomNumberGenerator {
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

/// Random JSON biased towards the shapes patches care about: Kubernetes-ish keys,
/// directive keys and values, lists of keyed objects.
struct PatchFuzzer {
    var rng: PatchRandom
    var allowDirectives = true
    var allowLists = true

    static let keys = ["metadata", "spec", "template", "containers", "name", "image", "env", "value", "ports",
                       "port", "containerPort", "labels", "annotations", "finalizers", "ownerReferences", "uid",
                       "strategy", "type", "replicas", "volumes", "selector", "a", "b", ""]
    static let directiveKeys = ["$patch", "$retainKeys", "$setElementOrder/containers", "$setElementOrder/ports",
                                "$deleteFromPrimitiveList/finalizers", "$setElementOrder/finalizers",
                                "$setElementOrder", "$deleteFromPrimitiveList/", "$retainKeys/x"]
    static let strings = ["replace", "delete", "merge", "a", "b", "nginx", "x", "/a", "~1", "-", "0", "name", "port"]

    mutating func int(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }

    mutating func key() -> String {
        if allowDirectives && chance(15) { return Self.directiveKeys[int(Self.directiveKeys.count)] }
        return Self.keys[int(Self.keys.count)]
    }

    mutating func scalar() -> JSON {
        switch int(6) {
        case 0: return .null
        case 1: return .bool(chance(50))
        case 2: return .int(Int64(int(5)) - 1)
        case 3: return .double(Double(int(7)) / 2)
        default: return .string(Self.strings[int(Self.strings.count)])
        }
    }

    mutating func value(depth: Int) -> JSON {
        if depth <= 0 { return scalar() }
        switch int(10) {
        case 0...3: return scalar()
        case 4...5 where allowLists:
            var items: [JSON] = []
            let homogeneousObjects = chance(60)
            for _ in 0..<int(4) {
                items.append(homogeneousObjects ? object(depth: depth - 1) : value(depth: depth - 1))
            }
            return .array(items)
        default:
            return object(depth: depth - 1)
        }
    }

    mutating func object(depth: Int) -> JSON {
        var o = JSONObject()
        for _ in 0..<int(5) {
            o[key()] = value(depth: depth)
        }
        return .object(o)
    }

    mutating func pointer() -> String {
        var path = ""
        for _ in 0..<int(4) {
            path += "/"
            switch int(4) {
            case 0: path += String(int(4) - 1)
            case 1: path += "-"
            case 2: path += ["a~1b", "~0", "~", "~2"][int(4)]
            default: path += Self.keys[int(Self.keys.count)]
            }
        }
        return chance(5) ? String(path.dropFirst()) : path
    }

    mutating func jsonPatch() -> JSON {
        var ops: [JSON] = []
        for _ in 0..<int(5) {
            var op = JSONObject()
            if !chance(5) {
                op["op"] = .string(["add", "remove", "replace", "move", "copy", "test", "bogus"][int(7)])
            }
            if !chance(5) { op["path"] = chance(3) ? .int(1) : .string(pointer()) }
            if chance(40) { op["from"] = .string(pointer()) }
            if chance(70) { op["value"] = value(depth: 2) }
            ops.append(chance(3) ? scalar() : .object(op))
        }
        return chance(3) ? object(depth: 1) : .array(ops)
    }
}

@Suite("Patch fuzzing: random input never crashes")
struct PatchFuzzTests {
    static let iterations = 3_000

    @Test("strategic merge patch on random documents and on a real Deployment")
    func strategic() {
        var fuzz = PatchFuzzer(rng: PatchRandom(seed: 0x5eed_0001))
        var succeeded = 0
        for i in 0..<Self.iterations {
            let doc = i % 2 == 0 ? PatchTestTypes.nginxDeployment : fuzz.object(depth: 4)
            let patch = fuzz.chance(3) ? fuzz.value(depth: 2) : fuzz.object(depth: 4)
            do {
                let out = try StrategicMergePatch.apply(patch, to: doc, schema: PatchTestTypes.deployment,
                                                        registry: PatchTestTypes.registry)
                #expect(out.objectValue != nil || patch.isNull)
                succeeded += 1
            } catch {
                #expect([400, 422, 500].contains(error.code), "\(error)")
            }
        }
        // The generator must reach the merge paths, not only the error paths.
        #expect(succeeded > Self.iterations / 10)
    }

    @Test("without directives or lists, strategic merge equals JSON merge patch")
    func strategicMatchesMergePatch() {
        var fuzz = PatchFuzzer(rng: PatchRandom(seed: 0x5eed_0002), allowDirectives: false, allowLists: false)
        var compared = 0
        for _ in 0..<Self.iterations {
            let doc = fuzz.object(depth: 4)
            let patch = fuzz.object(depth: 4)
            guard let out = try? StrategicMergePatch.apply(patch, to: doc, schema: .any, registry: PatchTestTypes.registry) else {
                continue
            }
            compared += 1
            let merged = MergePatch.apply(patch, to: doc)
            #expect(out.sameValue(as: merged), "patch \(patch.text) on \(doc.text)")
        }
        #expect(compared == Self.iterations)
    }

    @Test("JSON merge patch is total and idempotent")
    func merge() {
        var fuzz = PatchFuzzer(rng: PatchRandom(seed: 0x5eed_0003))
        for _ in 0..<Self.iterations {
            let doc = fuzz.value(depth: 4)
            let patch = fuzz.value(depth: 4)
            let once = MergePatch.apply(patch, to: doc)
            #expect(MergePatch.apply(patch, to: once) == once)
            _ = try? MergePatch.validate(patch, strict: fuzz.chance(50))
        }
    }

    @Test("JSON patch on random operations")
    func jsonPatch() {
        var fuzz = PatchFuzzer(rng: PatchRandom(seed: 0x5eed_0004))
        var succeeded = 0
        for i in 0..<Self.iterations {
            let doc = i % 2 == 0 ? PatchTestTypes.nginxDeployment : fuzz.object(depth: 4)
            let patch = fuzz.jsonPatch()
            do {
                _ = try JSONPatch.apply(patch, to: doc, strict: fuzz.chance(50))
                succeeded += 1
            } catch {
                #expect([400, 422].contains(error.code), "\(error)")
            }
        }
        #expect(succeeded > 0)
    }
}
