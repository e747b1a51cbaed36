/// Go's `strconv.Quote`, which upstream error messages use for strings (`%q`): double quotes,
/// backslash escapes, `\x`/`\u`/`\U` for what Go's unicode.IsPrint rejects. Patch, apply and
/// validation messages all quote through this one function so they agree with kube-apiserver.
public enum GoQuote {
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{07}": out += "\\a"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{0B}": out += "\\v"
            default:
                if isPrintable(u) {
                    out.unicodeScalars.append(u)
                } else if u.value < 0x80 {
                    out += "\\x" + hex(u.value, width: 2)
                } else if u.value < 0x10000 {
                    out += "\\u" + hex(u.value, width: 4)
                } else {
                    out += "\\U" + hex(u.value, width: 8)
                }
            }
        }
        return out + "\""
    }

    /// Close to Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    static func isPrintable(_ u: Unicode.Scalar) -> Bool {
        if u == " " { return true }
        switch u.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .spaceSeparator, .lineSeparator, .paragraphSeparator:
            return false
        default:
            return true
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
