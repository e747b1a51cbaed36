/// Format checks from k8s.io/apimachinery/pkg/util/validation.
///
/// Each returns the list of upstream error strings (empty when valid), worded exactly as
/// kube-apiserver words them, so callers can build `Invalid value` causes kubectl recognises.
/// Lengths are counted in UTF-8 bytes, as Go's len() counts them.
public enum NameValidation {
    static let dns1123LabelFmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
    static let dns1123LabelErrMsg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
    static let dns1123SubdomainFmt = dns1123LabelFmt + "(\\." + dns1123LabelFmt + ")*"
    static let dns1123SubdomainErrMsg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
    static let dns1035LabelFmt = "[a-z]([-a-z0-9]*[a-z0-9])?"
    static let dns1035LabelErrMsg = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"
    static let qualifiedNameFmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
    static let qualifiedNameErrMsg = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    static let labelValueFmt = "(" + qualifiedNameFmt + ")?"
    static let labelValueErrMsg = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
    static let configMapKeyFmt = "[-._a-zA-Z0-9]+"
    static let configMapKeyErrMsg = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"

    public static let dns1123LabelMaxLength = 63
    public static let dns1123SubdomainMaxLength = 253
    public static let dns1035LabelMaxLength = 63
    public static let qualifiedNameMaxLength = 63
    public static let labelValueMaxLength = 63

    // MARK: Message builders (validation.MaxLenError, RegexError, ...)

    public static func maxLenError(_ length: Int) -> String {
        "must be no more than \(length) characters"
    }

    /// Upstream's RegexError, including its odd spacing: "(e.g. 'a',  or 'b', regex used ...)".
    public static func regexError(_ msg: String, _ fmt: String, _ examples: String...) -> String {
        if examples.isEmpty {
            return msg + " (regex used for validation is '" + fmt + "')"
        }
        var out = msg + " (e.g. "
        for (i, e) in examples.enumerated() {
            if i > 0 { out += " or " }
            out += "'" + e + "', "
        }
        return out + "regex used for validation is '" + fmt + "')"
    }

    public static func inclusiveRangeError(_ lo: Int64, _ hi: Int64) -> String {
        "must be between \(lo) and \(hi), inclusive"
    }

    public static let emptyError = "must be non-empty"

    // MARK: Character-level matchers (the upstream regexes, without a regex engine)

    private static func isLowerAlnum(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        isLowerAlnum(b) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
    }

    /// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
    static func matchesDNS1123Label<C: BidirectionalCollection<UInt8>>(_ bytes: C) -> Bool {
        guard let first = bytes.first, let last = bytes.last else { return false }
        guard isLowerAlnum(first), isLowerAlnum(last) else { return false }
        return bytes.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    static func matchesDNS1123Subdomain(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        if bytes.isEmpty { return false }
        return bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false).allSatisfy { matchesDNS1123Label($0) }
    }

    /// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
    static func matchesQualifiedNamePart(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    // MARK: Public checks

    /// validation.IsDNS1123Label.
    public static func isDNS1123Label(_ value: String) -> [String] {
        var errs: [String] = []
        if value.utf8.count > dns1123LabelMaxLength {
            errs.append(maxLenError(dns1123LabelMaxLength))
        }
        if !matchesDNS1123Label(Array(value.utf8)) {
            if matchesDNS1123Subdomain(value) {
                // A valid subdomain that is not a label can only be failing on its dots.
                errs.append("must not contain dots")
            } else {
                errs.append(regexError(dns1123LabelErrMsg, dns1123LabelFmt, "my-name", "123-abc"))
            }
        }
        return errs
    }

    /// validation.IsDNS1123Subdomain.
    public static func isDNS1123Subdomain(_ value: String) -> [String] {
        var errs: [String] = []
        if value.utf8.count > dns1123SubdomainMaxLength {
            errs.append(maxLenError(dns1123SubdomainMaxLength))
        }
        if !matchesDNS1123Subdomain(value) {
            errs.append(regexError(dns1123SubdomainErrMsg, dns1123SubdomainFmt, "example.com"))
        }
        return errs
    }

    /// validation.IsDNS1035Label (Service names).
    public static func isDNS1035Label(_ value: String) -> [String] {
        var errs: [String] = []
        if value.utf8.count > dns1035LabelMaxLength {
            errs.append(maxLenError(dns1035LabelMaxLength))
        }
        let bytes = Array(value.utf8)
        var ok = matchesDNS1123Label(bytes)
        if let first = bytes.first, !(first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) { ok = false }
        if !ok {
            errs.append(regexError(dns1035LabelErrMsg, dns1035LabelFmt, "my-name", "abc-123"))
        }
        return errs
    }

    /// validation.IsQualifiedName: an optional DNS subdomain prefix and "/", then a name part.
    public static func isQualifiedName(_ value: String) -> [String] {
        var errs: [String] = []
        let parts = value.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let name: String
        switch parts.count {
        case 1:
            name = parts[0]
        case 2:
            let prefix = parts[0]
            name = parts[1]
            if prefix.isEmpty {
                errs.append("prefix part " + emptyError)
            } else {
                errs.append(contentsOf: isDNS1123Subdomain(prefix).map { "prefix part " + $0 })
            }
        default:
            return ["a qualified name " + regexError(qualifiedNameErrMsg, qualifiedNameFmt, "MyName", "my.name", "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
        }
        if name.isEmpty {
            errs.append("name part " + emptyError)
        } else if name.utf8.count > qualifiedNameMaxLength {
            errs.append("name part " + maxLenError(qualifiedNameMaxLength))
        }
        if !matchesQualifiedNamePart(name) {
            errs.append("name part " + regexError(qualifiedNameErrMsg, qualifiedNameFmt, "MyName", "my.name", "123-abc"))
        }
        return errs
    }

    /// validation.IsValidLabelValue.
    public static func isValidLabelValue(_ value: String) -> [String] {
        var errs: [String] = []
        if value.utf8.count > labelValueMaxLength {
            errs.append(maxLenError(labelValueMaxLength))
        }
        if !value.isEmpty && !matchesQualifiedNamePart(value) {
            errs.append(regexError(labelValueErrMsg, labelValueFmt, "MyValue", "my_value", "12345"))
        }
        return errs
    }

    /// validation.IsConfigMapKey (ConfigMap and Secret data keys).
    public static func isConfigMapKey(_ value: String) -> [String] {
        var errs: [String] = []
        if value.utf8.count > dns1123SubdomainMaxLength {
            errs.append(maxLenError(dns1123SubdomainMaxLength))
        }
        let ok = !value.isEmpty && value.utf8.allSatisfy {
            isAlnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
        if !ok {
            errs.append(regexError(configMapKeyErrMsg, configMapKeyFmt, "key.name", "KEY_NAME", "key-name"))
        }
        errs.append(contentsOf: chDirPrefixErrors(value))
        return errs
    }

    private static func chDirPrefixErrors(_ value: String) -> [String] {
        if value == "." { return ["must not be '.'"] }
        if value == ".." { return ["must not be '..'"] }
        if value.hasPrefix("..") { return ["must not start with '..'"] }
        return []
    }

    /// validation.IsValidPortNum.
    public static func isValidPortNum(_ port: Int64) -> [String] {
        (1...65535).contains(port) ? [] : [inclusiveRangeError(1, 65535)]
    }

    /// validation.IsValidPortName (an IANA_SVC_NAME).
    public static func isValidPortName(_ port: String) -> [String] {
        var errs: [String] = []
        let bytes = Array(port.utf8)
        if bytes.count > 15 { errs.append(maxLenError(15)) }
        if bytes.isEmpty || !bytes.allSatisfy({ isLowerAlnum($0) || $0 == UInt8(ascii: "-") }) {
            errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
        }
        if !bytes.contains(where: { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }) {
            errs.append("must contain at least one letter (a-z)")
        }
        if port.contains("--") { errs.append("must not contain consecutive hyphens") }
        if let f = bytes.first, let l = bytes.last, f == UInt8(ascii: "-") || l == UInt8(ascii: "-") {
            errs.append("must not begin or end with a hyphen")
        }
        return errs
    }

    /// validation.IsRelaxedEnvVarName: the rule kube-apiserver 1.32+ applies by default
    /// (RelaxedEnvironmentVariableValidation): printable ASCII other than '='.
    public static func isEnvVarName(_ value: String) -> [String] {
        var errs: [String] = []
        if value.isEmpty { errs.append("environment variable name " + emptyError) }
        for s in value.unicodeScalars where s.value > 0x7E || s.value < 0x20 || s == "=" {
            errs.append("a valid environment variable name must consist only of printable ASCII characters other than '='")
            break
        }
        return errs
    }

    /// validation.IsHTTPHeaderName.
    public static func isHTTPHeaderName(_ value: String) -> [String] {
        let ok = !value.isEmpty && value.utf8.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") }
        return ok ? [] : [regexError("a valid HTTP header must consist of alphanumeric characters or '-'", "[-A-Za-z0-9]+", "X-Header-Name")]
    }

    /// validation.IsValidPercent.
    public static func isValidPercent(_ value: String) -> [String] {
        var bytes = Array(value.utf8)
        var ok = bytes.count >= 2 && bytes.last == UInt8(ascii: "%")
        if ok {
            bytes.removeLast()
            ok = bytes.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        return ok ? [] : [regexError("a valid percent string must be a numeric string followed by an ending '%'", "[0-9]+%", "1%", "93%")]
    }

    /// apimachinery's maskTrailingDash, kept byte for byte (it drops two characters, not one).
    static func maskTrailingDash(_ name: String) -> String {
        let bytes = Array(name.utf8)
        if bytes.count > 1 && bytes.last == UInt8(ascii: "-") {
            return String(decoding: bytes[..<(bytes.count - 2)], as: UTF8.self) + "a"
        }
        return name
    }

    /// A ValidateNameFunc: how a kind's metadata.name (or generateName prefix) is checked.
    public enum NameRule: Sendable {
        case dns1123Subdomain, dns1123Label, dns1035Label

        public func check(_ name: String, prefix: Bool) -> [String] {
            let n = prefix ? NameValidation.maskTrailingDash(name) : name
            switch self {
            case .dns1123Subdomain: return NameValidation.isDNS1123Subdomain(n)
            case .dns1123Label: return NameValidation.isDNS1123Label(n)
            case .dns1035Label: return NameValidation.isDNS1035Label(n)
            }
        }
    }

    /// The name rule kube-apiserver applies to a kind's metadata.name.
    public static func nameRule(kind: String, group: String) -> NameRule {
        switch (group, kind) {
        case ("", "Namespace"): return .dns1123Label
        case ("", "Service"): return .dns1035Label
        default: return .dns1123Subdomain
        }
    }
}
