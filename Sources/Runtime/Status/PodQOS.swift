import APIMachinery

/// The pod's quality-of-service class (`status.qosClass`), by upstream's `ComputePodQOS`.
///
/// Only cpu and memory count. Requests and limits are summed over containers and init
/// containers (zero amounts ignored). No amounts at all gives BestEffort; every container
/// limiting both cpu and memory, with pod-wide request sums equal to limit sums, gives
/// Guaranteed; anything else is Burstable.
public enum PodQOS {
    public static func qosClass(of pod: JSON) -> String {
        let spec = pod["spec"] ?? .object([:])
        let containers = (spec["containers"]?.arrayValue ?? []) + (spec["initContainers"]?.arrayValue ?? [])
        var requests: [String: ResourceAmount] = [:]
        var limits: [String: ResourceAmount] = [:]
        var guaranteed = true
        for container in containers {
            let resources = container["resources"] ?? .object([:])
            let limitObject = resources["limits"]?.objectValue ?? [:]
            var requestObject = resources["requests"]?.objectValue ?? [:]
            // kube-apiserver defaults a missing request to its limit before the pod is stored;
            // do the same so a pod written without that defaulting still classifies correctly.
            for (name, value) in limitObject where requestObject[name] == nil { requestObject[name] = value }

            for name in ["cpu", "memory"] {
                if let amount = requestObject[name].flatMap(ResourceAmount.init(json:)), amount.isPositive {
                    requests[name] = (requests[name] ?? .zero) + amount
                }
            }
            var limitedHere = Set<String>()
            for name in ["cpu", "memory"] {
                if let amount = limitObject[name].flatMap(ResourceAmount.init(json:)), amount.isPositive {
                    limitedHere.insert(name)
                    limits[name] = (limits[name] ?? .zero) + amount
                }
            }
            if limitedHere.count < 2 { guaranteed = false }
        }
        if requests.isEmpty && limits.isEmpty { return "BestEffort" }
        if guaranteed {
            for (name, request) in requests where limits[name] != request {
                guaranteed = false
            }
        }
        return guaranteed && requests.count == limits.count ? "Guaranteed" : "Burstable"
    }
}

/// A resource quantity held exactly, in billionths of the unit ("100m" cpu = 100_000_000), so
/// sums compare equal when upstream's `resource.Quantity` would (no binary floating point).
struct ResourceAmount: Sendable, Equatable {
    var nanos: Int128

    static let zero = ResourceAmount(nanos: 0)
    var isPositive: Bool { nanos > 0 }

    static func + (a: ResourceAmount, b: ResourceAmount) -> ResourceAmount { ResourceAmount(nanos: a.nanos &+ b.nanos) }

    init(nanos: Int128) { self.nanos = nanos }

    /// A quantity string (`500m`, `1.5`, `128Mi`, `1e3`, `2G`) or a plain JSON number.
    init?(json: JSON) {
        switch json {
        case .string(let text): self.init(text: text)
        case .int(let i): self.init(nanos: Int128(i) * 1_000_000_000)
        case .double(let d): self.init(text: "\(d)")
        default: return nil
        }
    }

    init?(text: String) {
        var chars = Substring(text)
        var negative = false
        if let first = chars.first, first == "+" || first == "-" {
            negative = first == "-"
            chars = chars.dropFirst()
        }
        let numberPart = chars.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let suffix = chars.dropFirst(numberPart.count)
        let pieces = numberPart.split(separator: ".", omittingEmptySubsequences: false)
        guard !numberPart.isEmpty, pieces.count <= 2 else { return nil }
        let wholeDigits = pieces[0]
        let fractionDigits = pieces.count == 2 ? pieces[1] : ""

        // value = digits * 10^(exponent10) * 2^(exponent2), computed in nanos.
        var exponent10 = 0
        var exponent2 = 0
        switch suffix {
        case "": break
        case "n": exponent10 = -9
        case "u": exponent10 = -6
        case "m": exponent10 = -3
        case "k": exponent10 = 3
        case "M": exponent10 = 6
        case "G": exponent10 = 9
        case "T": exponent10 = 12
        case "P": exponent10 = 15
        case "E": exponent10 = 18
        case "Ki": exponent2 = 10
        case "Mi": exponent2 = 20
        case "Gi": exponent2 = 30
        case "Ti": exponent2 = 40
        case "Pi": exponent2 = 50
        case "Ei": exponent2 = 60
        default:
            guard let e = suffix.first, e == "e" || e == "E", let power = Int(suffix.dropFirst()),
                  abs(power) <= 30 else { return nil }
            exponent10 = power
        }
        // Amounts too large for 128 bits are refused rather than wrapped; no real request is near.
        var digits = Int128(0)
        for c in wholeDigits + fractionDigits {
            guard let d = c.wholeNumberValue, let scaled = digits.checkedTimes(10) else { return nil }
            digits = scaled + Int128(d)
        }
        // Shift so the result is in nanos: 9 places, minus the fraction digits already included.
        let shift = exponent10 + 9 - fractionDigits.count
        var value = digits
        if shift >= 0 {
            for _ in 0..<shift {
                guard let scaled = value.checkedTimes(10) else { return nil }
                value = scaled
            }
        } else {
            // Below a nano: upstream rounds up to the smallest representable amount.
            var divisor: Int128 = 1
            for _ in 0..<min(-shift, 38) { divisor *= 10 }
            let (q, r) = value.quotientAndRemainder(dividingBy: divisor)
            value = r == 0 ? q : q + 1
        }
        guard let binaryScaled = value.checkedTimes(Int128(1) << exponent2) else { return nil }
        value = binaryScaled
        self.nanos = negative ? -value : value
    }
}

extension Int128 {
    /// Multiplication that reports overflow as nil.
    fileprivate func checkedTimes(_ other: Int128) -> Int128? {
        let (result, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? nil : result
    }
}
