extension Validation {
    /// resource.Quantity parsing, enough to check well-formedness, sign and ordering.
    enum Quantity {
        static let formatError = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
        static let suffixError = "unable to parse quantity's suffix"
        static let numericError = "unable to parse numeric part of quantity"

        private static let multipliers: [String: Double] = [
            "": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 1024, "Mi": 1_048_576, "Gi": 1_073_741_824, "Ti": 1_099_511_627_776,
            "Pi": 1_125_899_906_842_624, "Ei": 1_152_921_504_606_846_976,
        ]

        /// The numeric value, or the upstream parse error text. Follows resource.ParseQuantity's
        /// scanner: sign, digits, optional fraction, then a suffix of [eEinumkKMGTP]* and an
        /// optional signed exponent.
        static func parse(_ text: String) -> Result<Double, QuantityError> {
            let s = Array(text.utf8)
            guard !s.isEmpty else { return .failure(QuantityError(message: formatError)) }
            var pos = 0
            var negative = false
            if s[0] == UInt8(ascii: "-") || s[0] == UInt8(ascii: "+") {
                negative = s[0] == UInt8(ascii: "-")
                pos = 1
            }
            func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
            let numStart = pos
            while pos < s.count && isDigit(s[pos]) { pos += 1 }
            var numberEnd = pos
            if pos < s.count && s[pos] == UInt8(ascii: ".") {
                pos += 1
                while pos < s.count && isDigit(s[pos]) { pos += 1 }
                numberEnd = pos
            }
            let suffixStart = pos
            let suffixChars = Set("eEinumkKMGTP".utf8)
            while pos < s.count && suffixChars.contains(s[pos]) { pos += 1 }
            if pos < s.count && (s[pos] == UInt8(ascii: "-") || s[pos] == UInt8(ascii: "+")) { pos += 1 }
            while pos < s.count && isDigit(s[pos]) { pos += 1 }
            guard pos == s.count else { return .failure(QuantityError(message: formatError)) }

            var numberText = String(decoding: s[numStart..<numberEnd], as: UTF8.self)
            if numberText.isEmpty || numberText == "." { numberText = "0" }
            if numberText.hasSuffix(".") { numberText.removeLast() }
            if numberText.hasPrefix(".") { numberText = "0" + numberText }
            guard let base = Double(numberText) else { return .failure(QuantityError(message: numericError)) }
            let suffix = String(decoding: s[suffixStart...], as: UTF8.self)
            let multiplier: Double
            if let m = multipliers[suffix] {
                multiplier = m
            } else if suffix.count > 1, let f = suffix.first, f == "e" || f == "E", let exp = Int(suffix.dropFirst()) {
                multiplier = pow10(exp)
            } else {
                return .failure(QuantityError(message: suffixError))
            }
            let value = base * multiplier
            return .success(negative ? -value : value)
        }

        private static func pow10(_ e: Int) -> Double {
            var r = 1.0
            if e >= 0 { for _ in 0..<min(e, 400) { r *= 10 } } else { for _ in 0..<min(-e, 400) { r /= 10 } }
            return r
        }

        /// A JSON number as the string Quantity serializes it to (1 -> "1", 0.5 -> "500m").
        static func canonicalString(fromNumber v: JSON) -> String? {
            switch v {
            case .int(let i): return String(i)
            case .double(let d) where d.isFinite:
                if d.rounded() == d && abs(d) < 9e15 { return String(Int64(d)) }
                let milli = d * 1000
                if milli.rounded() == milli && abs(milli) < 9e15 { return "\(Int64(milli))m" }
                return "\(d)"
            default: return nil
            }
        }
    }

    struct QuantityError: Error, Equatable {
        var message: String
    }
}
