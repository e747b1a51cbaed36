import Foundation
import APIMachinery

/// A field of an object, written like kubectl's JSONPath without the braces:
/// `.spec.ports[0].nodePort`, `.status.loadBalancer.ingress[0].ip`.
struct FieldPath: Sendable, Equatable {
    enum Segment: Sendable, Equatable {
        case key(String)
        case index(Int)
    }

    let segments: [Segment]

    init(_ text: String) throws {
        guard text.hasPrefix(".") else { throw LabError("field \(text) must start with a dot, as in .spec.type") }
        var segments: [Segment] = []
        for part in text.dropFirst().split(separator: ".", omittingEmptySubsequences: false) {
            var rest = Substring(part)
            let keyEnd = rest.firstIndex(of: "[") ?? rest.endIndex
            let key = rest[..<keyEnd]
            guard !key.isEmpty else { throw LabError("field \(text) has an empty name") }
            segments.append(.key(String(key)))
            rest = rest[keyEnd...]
            while rest.hasPrefix("[") {
                guard let close = rest.firstIndex(of: "]"), let n = Int(rest[rest.index(after: rest.startIndex)..<close]), n >= 0 else {
                    throw LabError("field \(text) has an index that is not [N]")
                }
                segments.append(.index(n))
                rest = rest[rest.index(after: close)...]
            }
            guard rest.isEmpty else { throw LabError("field \(text) has text after an index") }
        }
        self.segments = segments
    }

    func value(in object: JSON) -> JSON? {
        var current: JSON? = object
        for segment in segments {
            switch segment {
            case .key(let k): current = current?[k]
            case .index(let i):
                guard let items = current?.arrayValue, i < items.count else { return nil }
                current = items[i]
            }
        }
        if let c = current, c.isNull { return nil }
        return current
    }

    /// A value as kubectl's jsonpath prints it: scalars bare, the rest as JSON.
    static func text(_ value: JSON) -> String {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return ""
        case .array, .object: return String(decoding: value.serialized(), as: UTF8.self)
        }
    }
}

/// Splits a command line into words the way a POSIX shell does for plain words and
/// quotes (no expansions): the checks pass kubectl arguments as one line.
enum ShellWords {
    static func split(_ line: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var iterator = line.makeIterator()
        while let c = iterator.next() {
            if let q = quote {
                if c == q { quote = nil } else if c == "\\" && q == "\"", let n = iterator.next() { current.append(n) } else { current.append(c) }
                continue
            }
            switch c {
            case "'", "\"":
                quote = c
                inWord = true
            case "\\":
                if let n = iterator.next() { current.append(n) }
                inWord = true
            case " ", "\t", "\n":
                if inWord { words.append(current) }
                current = ""
                inWord = false
            default:
                current.append(c)
                inWord = true
            }
        }
        guard quote == nil else { throw LabError("unterminated quote in: \(line)") }
        if inWord { words.append(current) }
        return words
    }
}

/// Expands `{{...}}` in the lab's text. `{{nodeIP}}` and `{{workdir}}` are facts of the run;
/// anything else is kubectl get arguments followed by a field, such as
/// `{{service/kube-dns -n kube-system .spec.clusterIP}}`.
struct Template {
    enum Reference: Sendable, Equatable {
        case fact(String)
        case object(arguments: [String], field: FieldPath)
    }

    static func references(in text: String) throws -> [(range: Range<String.Index>, reference: Reference)] {
        var found: [(Range<String.Index>, Reference)] = []
        var searchFrom = text.startIndex
        while let open = text.range(of: "{{", range: searchFrom..<text.endIndex) {
            guard let close = text.range(of: "}}", range: open.upperBound..<text.endIndex) else {
                throw LabError("unclosed {{ in: \(text)")
            }
            let inner = text[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            var words = try ShellWords.split(inner)
            if words.count == 1, !words[0].hasPrefix("."), !words[0].contains("/") {
                found.append((open.lowerBound..<close.upperBound, .fact(words[0])))
            } else {
                guard let last = words.last, last.hasPrefix("."), words.count >= 2 else {
                    throw LabError("{{\(inner)}} must be kubectl get arguments followed by a field such as .spec.clusterIP")
                }
                words.removeLast()
                found.append((open.lowerBound..<close.upperBound, .object(arguments: words, field: try FieldPath(last))))
            }
            searchFrom = close.upperBound
        }
        return found
    }

    static func expand(_ text: String, resolve: (Reference) async throws -> String) async throws -> String {
        var result = ""
        var last = text.startIndex
        for (range, reference) in try references(in: text) {
            result += text[last..<range.lowerBound]
            result += try await resolve(reference)
            last = range.upperBound
        }
        result += text[last...]
        return result
    }
}
