import APIMachinery
import Testing

/// Random bodies must never crash the field manager, and what it accepts must stay coherent.
@Suite("Server-side apply fuzzing")
struct ApplyFuzzTests {
    typealias F = ApplyFixtures

    /// Deterministic, so a failure can be replayed from its seed.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let keys = ["metadata", "spec", "status", "labels", "annotations", "finalizers", "ownerReferences", "uid",
                       "ports", "port", "protocol", "name", "targetPort", "selector", "type", "clusterIPs",
                       "template", "containers", "image", "command", "env", "value", "replicas", "strategy",
                       "rollingUpdate", "maxSurge", "matchLabels", "resources", "limits", "loadBalancer",
                       "managedFields", "x", ".", "f:a", "k:{}", ""]

    static func value(_ rng: inout SplitMix64, depth: Int) -> JSON {
        let pick = Int.random(in: 0..<(depth > 3 ? 6 : 10), using: &rng)
        switch pick {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int(Int64.random(in: -3...90, using: &rng))
        case 3: return .double([0.5, 80.0, -1e-7, 1e21][Int.random(in: 0..<4, using: &rng)])
        case 4, 5: return .string(["", "a", "TCP", "UDP", "nginx", "x<y"][Int.random(in: 0..<6, using: &rng)])
        case 6, 7:
            var o = JSONObject()
            for _ in 0..<Int.random(in: 0...4, using: &rng) {
                o[keys[Int.random(in: 0..<keys.count, using: &rng)]] = value(&rng, depth: depth + 1)
            }
            return .object(o)
        default:
            return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in value(&rng, depth: depth + 1) })
        }
    }

    /// Mostly well-typed values for `schema`, from small domains so that list keys collide and
    /// managers disagree; now and then something of the wrong shape.
    static func guided(_ schema: Schema, _ rng: inout SplitMix64, depth: Int) -> JSON {
        if Int.random(in: 0..<25, using: &rng) == 0 { return value(&rng, depth: depth + 2) }
        func small<T>(_ options: [T]) -> T { options[Int.random(in: 0..<options.count, using: &rng)] }
        switch schema {
        case .string, .quantity, .time: return .string(small(["a", "b", "c", "TCP", "UDP"]))
        case .integer, .number: return .int(small([1, 2, 53, 80]))
        case .boolean: return .bool(Bool.random(using: &rng))
        case .intOrString: return Bool.random(using: &rng) ? .int(small([80, 8080])) : "http"
        case .any: return value(&rng, depth: depth + 1)
        case .map(let v):
            var o = JSONObject()
            for _ in 0..<Int.random(in: 0...2, using: &rng) { o[small(["app", "tier", "x"])] = guided(v, &rng, depth: depth + 1) }
            return .object(o)
        case .array(let e, _):
            guard depth < 8 else { return .array([]) }
            return .array((0..<Int.random(in: 0...3, using: &rng)).map { _ in guided(e, &rng, depth: depth + 1) })
        case .ref(let name):
            guard depth < 8, let def = F.registry[name] else { return .object([:]) }
            var o = JSONObject()
            for f in def.fields where Int.random(in: 0..<3, using: &rng) == 0 || f.name == "name" || f.name == "port" {
                o[f.name] = guided(f.schema, &rng, depth: depth + 1)
            }
            return .object(o)
        }
    }

    static func body(_ rng: inout SplitMix64, kind: Int) -> JSON {
        var b = Int.random(in: 0..<5, using: &rng) == 0 ? value(&rng, depth: 1)
            : guided(kind == 0 ? F.service : F.deployment, &rng, depth: 0)
        b["managedFields"] = nil
        b[path: "metadata", "managedFields"] = nil
        if b.objectValue == nil || Int.random(in: 0..<10, using: &rng) > 0 {
            var o = b.objectValue ?? [:]
            o["apiVersion"] = kind == 0 ? "v1" : "apps/v1"
            o["kind"] = kind == 0 ? "Service" : "Deployment"
            b = .object(o)
        }
        if Bool.random(using: &rng) { b[path: "metadata", "name"] = "n" }
        return b
    }

    static func withoutManagedFields(_ object: JSON) -> JSON {
        var o = object
        o[path: "metadata", "managedFields"] = nil
        return o
    }

    @Test("random apply bodies never crash; accepted ones leave decodable managedFields", arguments: 0..<8)
    func randomApplies(seed: UInt64) {
        var rng = SplitMix64(state: seed &* 7919)
        let fm = FieldManager()
        let managers = ["kubectl", "a", "b", "kubectl-client-side-apply"]
        var live: [JSON?] = [nil, nil]
        var accepted = 0
        var failures: [Int: Int] = [:]
        for round in 0..<150 {
            let kind = Int.random(in: 0...1, using: &rng)
            let schema = kind == 0 ? F.service : F.deployment
            let patch = Self.body(&rng, kind: kind)
            let manager = managers[Int.random(in: 0..<managers.count, using: &rng)]
            let force = Bool.random(using: &rng)
            do {
                let result = try fm.apply(patch: patch, to: live[kind], manager: manager, force: force, schema: schema,
                                          registry: F.registry, now: F.t1)
                #expect(result.objectValue != nil)
                for entry in result[path: "metadata", "managedFields"]?.arrayValue ?? [] {
                    let decoded = try? ManagedFieldsEntry(json: entry)
                    #expect(decoded?.fields.isEmpty == false, "entries decode and are never empty (round \(round))")
                    if let fields = decoded?.fields {
                        #expect((try? FieldSet(fieldsV1Text: fields.fieldsV1Text)) == fields)
                    }
                }
                // The same apply again, forced, changes neither the object nor what the applier owns.
                // (Other entries may change: an object left without managedFields gets a
                // "before-first-apply" entry, as upstream does.)
                let again = try fm.apply(patch: patch, to: result, manager: manager, force: true, schema: schema,
                                         registry: F.registry, now: F.t2)
                #expect(Self.withoutManagedFields(again) == Self.withoutManagedFields(result), "seed \(seed) round \(round): \(patch)")
                #expect(again.ssaEntry(manager)?["fieldsV1"] == result.ssaEntry(manager)?["fieldsV1"])
                live[kind] = result
                accepted += 1
            } catch {
                failures[error.code, default: 0] += 1
                #expect([400, 409, 500].contains(error.code), "\(error)")
            }
            if Int.random(in: 0..<10, using: &rng) == 0 {
                // Random stored objects too: whatever the store holds must not crash either.
                live[kind] = Self.value(&rng, depth: 1)
            }
        }
        // The generator must reach the merge, not just the validation errors.
        #expect(accepted > 20, "accepted \(accepted), refused \(failures)")
    }

    @Test("random writes never crash update tracking", arguments: 0..<4)
    func randomUpdates(seed: UInt64) {
        var rng = SplitMix64(state: seed &+ 17)
        let fm = FieldManager()
        var old: JSON?
        for round in 0..<150 {
            var new = Self.body(&rng, kind: 1)
            if let old, Bool.random(using: &rng) { new[path: "metadata", "managedFields"] = old[path: "metadata", "managedFields"] }
            let result = fm.recordUpdate(old: old, new: new, manager: ["x", "y", ""][Int.random(in: 0..<3, using: &rng)],
                                         schema: F.deployment, registry: F.registry, now: F.t1)
            for entry in result[path: "metadata", "managedFields"]?.arrayValue ?? [] {
                #expect((try? ManagedFieldsEntry(json: entry)) != nil, "round \(round)")
            }
            old = result
        }
    }

    @Test("random FieldsV1 documents never crash the reader", arguments: 0..<4)
    func randomFieldsV1(seed: UInt64) {
        var rng = SplitMix64(state: seed &+ 99)
        for _ in 0..<300 {
            let doc = Self.value(&rng, depth: 0)
            if let set = try? FieldSet(fieldsV1: doc) {
                #expect((try? FieldSet(fieldsV1: set.fieldsV1)) == set)
            }
        }
    }
}
