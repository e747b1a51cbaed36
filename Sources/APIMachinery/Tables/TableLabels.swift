extension TablePrinter {
    /// Label maps and label selectors rendered as kube-apiserver prints them in Table cells.
    enum Labels {
        /// A plain label map (a Service selector, a node selector): `a=1,b=2`, keys sorted,
        /// `<none>` when empty.
        static func format(_ labels: JSON?) -> String {
            let pairs = (labels?.objectValue ?? [:]).map { ($0.key, $0.value.stringValue ?? "") }
            if pairs.isEmpty { return "<none>" }
            return pairs.sorted { $0.0 < $1.0 }.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
        }

        /// A `metav1.LabelSelector` in selector syntax: `app=nginx,tier in (a,b),!legacy`.
        /// Requirements are sorted by key. nil means the selector is invalid (an unknown operator,
        /// values where none belong, or a malformed key or value); a missing or empty selector
        /// renders as "".
        static func selectorString(_ selector: JSON?) -> String? {
            guard let selector, let object = selector.objectValue else { return "" }
            var requirements: [(key: String, text: String)] = []
            for (key, value) in object["matchLabels"]?.objectValue ?? [:] {
                let v = value.stringValue ?? ""
                guard isQualifiedName(key), isLabelValue(v) else { return nil }
                requirements.append((key, "\(key)=\(v)"))
            }
            for expression in object["matchExpressions"]?.arrayValue ?? [] {
                let key = expression["key"]?.stringValue ?? ""
                let values = (expression["values"]?.arrayValue ?? []).map { $0.stringValue ?? "" }
                guard isQualifiedName(key), values.allSatisfy(isLabelValue) else { return nil }
                let op = expression["operator"]?.stringValue ?? ""
                switch op {
                case "In", "NotIn":
                    guard !values.isEmpty else { return nil }
                    let word = op == "In" ? "in" : "notin"
                    requirements.append((key, "\(key) \(word) (\(values.sorted().joined(separator: ",")))"))
                case "Exists":
                    guard values.isEmpty else { return nil }
                    requirements.append((key, key))
                case "DoesNotExist":
                    guard values.isEmpty else { return nil }
                    requirements.append((key, "!\(key)"))
                default:
                    return nil
                }
            }
            // Stable, so a key used twice keeps the order the selector gave.
            let sorted = requirements.enumerated().sorted {
                $0.element.key != $1.element.key ? $0.element.key < $1.element.key : $0.offset < $1.offset
            }
            return sorted.map(\.element.text).joined(separator: ",")
        }

        /// The selector as ReplicaSet and friends show it: `<none>` when it selects by nothing,
        /// `<error>` when it cannot be read as a selector.
        static func formatSelector(_ selector: JSON?) -> String {
            guard let text = selectorString(selector) else { return "<error>" }
            return text.isEmpty ? "<none>" : text
        }

        // MARK: Validation (the rules labels.NewRequirement enforces)

        /// `[prefix/]name`: prefix a DNS subdomain, name at most 63 characters of
        /// alphanumerics, '-', '_' and '.', starting and ending alphanumeric.
        static func isQualifiedName(_ key: String) -> Bool {
            let parts = key.split(separator: "/", omittingEmptySubsequences: false)
            switch parts.count {
            case 1: return isLabelName(Substring(key))
            case 2: return isDNSSubdomain(parts[0]) && isLabelName(parts[1])
            default: return false
            }
        }

        static func isLabelValue(_ value: String) -> Bool {
            value.isEmpty || isLabelName(Substring(value))
        }

        static func isLabelName(_ name: Substring) -> Bool {
            let bytes = Array(name.utf8)
            guard let first = bytes.first, let last = bytes.last, bytes.count <= 63 else { return false }
            guard isAlphanumeric(first), isAlphanumeric(last) else { return false }
            return bytes.allSatisfy {
                isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            }
        }

        static func isDNSSubdomain(_ name: Substring) -> Bool {
            guard !name.isEmpty, name.utf8.count <= 253 else { return false }
            return name.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
                let bytes = Array(label.utf8)
                guard let first = bytes.first, let last = bytes.last else { return false }
                let lowerAlnum: (UInt8) -> Bool = {
                    ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                }
                return lowerAlnum(first) && lowerAlnum(last)
                    && bytes.allSatisfy { lowerAlnum($0) || $0 == UInt8(ascii: "-") }
            }
        }

        static func isAlphanumeric(_ c: UInt8) -> Bool {
            (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
        }
    }
}
