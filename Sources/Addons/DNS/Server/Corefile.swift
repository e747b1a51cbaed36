/// A parsed Corefile: server blocks, each with its keys (`.:53`, `tls://.:853`) and its
/// directives (a plugin name, arguments, and an optional `{ }` block of sub-directives).
///
/// The grammar is Caddy's, as CoreDNS uses it: a token is a word or a quoted string, `#`
/// starts a comment, a directive ends at the end of its line unless a `{` opens a block,
/// and `{$NAME}` is replaced by the environment variable NAME.
public struct Corefile: Sendable, Equatable {
    public var blocks: [ServerBlock]

    public struct ServerBlock: Sendable, Equatable {
        public var keys: [ServerKey]
        public var directives: [Directive]
    }

    public struct ServerKey: Sendable, Equatable, Hashable {
        public var scheme: Scheme
        public var zone: DNSName
        public var port: Int

        public enum Scheme: String, Sendable {
            case dns, tls
        }

        /// CoreDNS's metric label for the server: `dns://:53`.
        public var serverLabel: String { "\(scheme.rawValue)://:\(port)" }
    }

    public struct Directive: Sendable, Equatable {
        public var name: String
        public var args: [String]
        public var block: [Directive]
        public var line: Int

        public init(name: String, args: [String] = [], block: [Directive] = [], line: Int = 0) {
            self.name = name
            self.args = args
            self.block = block
            self.line = line
        }

        /// The sub-directive `name`'s arguments, if present.
        public func sub(_ name: String) -> [String]? { block.first { $0.name == name }?.args }
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var line: Int
        public var message: String
        /// CoreDNS's wording: `Corefile:3 - Error during parsing: ...`.
        public var description: String { "Corefile:\(line) - Error during parsing: \(message)" }
    }

    public init(blocks: [ServerBlock]) { self.blocks = blocks }

    public init(parsing text: String, environment: [String: String] = [:]) throws(ParseError) {
        var tokens = try Self.tokenize(text, environment: environment)[...]
        var blocks: [ServerBlock] = []
        while let first = tokens.first {
            // Keys up to the `{` (several may share one block; commas separate them too).
            var keys: [ServerKey] = []
            while let t = tokens.first, t.text != "{" || t.quoted {
                guard t.text != "}" || t.quoted else { throw ParseError(line: t.line, message: "unexpected '}'") }
                tokens.removeFirst()
                for piece in t.text.split(separator: ",") where !piece.isEmpty {
                    keys.append(try Self.key(String(piece), line: t.line))
                }
            }
            guard tokens.first?.text == "{" else {
                throw ParseError(line: first.line, message: "server block \(first.text) has no '{'")
            }
            tokens.removeFirst()
            let directives = try Self.directives(&tokens, nested: true)
            blocks.append(ServerBlock(keys: keys, directives: directives))
        }
        self.blocks = blocks
    }

    struct Token {
        var text: String
        var line: Int
        var quoted = false
        /// The first token on its line (directives start there).
        var startsLine = false
    }

    static func key(_ text: String, line: Int) throws(ParseError) -> ServerKey {
        var rest = Substring(text)
        var scheme = ServerKey.Scheme.dns
        if let range = rest.range(of: "://") {
            guard let s = ServerKey.Scheme(rawValue: String(rest[..<range.lowerBound]).lowercased()) else {
                throw ParseError(line: line, message: "unsupported scheme in \(text) (dns:// and tls:// are served)")
            }
            scheme = s
            rest = rest[range.upperBound...]
        }
        var port = scheme == .tls ? 853 : 53
        if let colon = rest.lastIndex(of: ":") {
            guard let p = Int(rest[rest.index(after: colon)...]), (0...65535).contains(p) else {
                throw ParseError(line: line, message: "invalid port in \(text)")
            }
            port = p
            rest = rest[..<colon]
        }
        guard let zone = DNSName(rest.isEmpty ? "." : rest) else {
            throw ParseError(line: line, message: "invalid zone in \(text)")
        }
        return ServerKey(scheme: scheme, zone: zone, port: port)
    }

    static func directives(_ tokens: inout ArraySlice<Token>, nested: Bool) throws(ParseError) -> [Directive] {
        var out: [Directive] = []
        while let t = tokens.first {
            if t.text == "}" && !t.quoted {
                tokens.removeFirst()
                return out
            }
            if t.text == "{" && !t.quoted { throw ParseError(line: t.line, message: "unexpected '{'") }
            tokens.removeFirst()
            var d = Directive(name: t.text.lowercased(), line: t.line)
            while let a = tokens.first, a.line == t.line, !(a.text == "}" && !a.quoted) {
                tokens.removeFirst()
                if a.text == "{" && !a.quoted {
                    d.block = try directives(&tokens, nested: true)
                    break
                }
                d.args.append(a.text)
            }
            // A `{` on the next line still opens this directive's block.
            if d.block.isEmpty, let a = tokens.first, a.text == "{", !a.quoted {
                tokens.removeFirst()
                d.block = try directives(&tokens, nested: true)
            }
            out.append(d)
        }
        if nested { throw ParseError(line: tokens.last?.line ?? 0, message: "unexpected end of file: missing '}'") }
        return out
    }

    static func tokenize(_ text: String, environment: [String: String]) throws(ParseError) -> [Token] {
        var tokens: [Token] = []
        var line = 1
        var current = ""
        var quoted = false
        var inQuote = false
        var inComment = false
        var lastLine = 0
        var escaped = false
        func flush() {
            guard !current.isEmpty || quoted else { return }
            tokens.append(Token(text: substitute(current, environment), line: line, quoted: quoted, startsLine: lastLine != line))
            lastLine = line
            current = ""
            quoted = false
        }
        for ch in text {
            if inComment {
                if ch == "\n" { inComment = false; line += 1 }
                continue
            }
            if inQuote {
                if escaped {
                    current.append(ch)
                    escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else if ch == "\"" {
                    inQuote = false
                } else {
                    if ch == "\n" { line += 1 }
                    current.append(ch)
                }
                continue
            }
            switch ch {
            case "#" where current.isEmpty:
                flush()
                inComment = true
            case "\"":
                inQuote = true
                quoted = true
            case " ", "\t", "\r":
                flush()
            case "\n":
                flush()
                line += 1
            case "{", "}":
                // `{$ENV}` is a placeholder, not a block.
                if ch == "{" && current.isEmpty {
                    current.append(ch)
                } else if ch == "}" && current.hasPrefix("{$") {
                    current.append(ch)
                } else {
                    flush()
                    current.append(ch)
                    flush()
                }
            default:
                if current == "{" && ch != "$" {
                    flush()
                }
                current.append(ch)
            }
        }
        if inQuote { throw ParseError(line: line, message: "unterminated quoted string") }
        flush()
        return tokens
    }

    static func substitute(_ token: String, _ environment: [String: String]) -> String {
        guard token.contains("{$") else { return token }
        var out = ""
        var rest = Substring(token)
        while let start = rest.range(of: "{$") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                out += rest[start.lowerBound...]
                return out
            }
            out += environment[String(rest[start.upperBound..<end])] ?? ""
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}
