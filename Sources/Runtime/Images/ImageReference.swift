/// An image reference, parsed and normalised the way Docker and containerd do it, so that
/// `nginx`, `library/nginx` and `docker.io/library/nginx:latest` all name the same image.
///
/// Grammar (from the distribution `reference` package): `[domain/]path[:tag][@digest]`, where the
/// first `/`-separated component is a domain only if it contains `.` or `:`, is `localhost`,
/// or has an upper-case letter. Docker Hub names gain `docker.io` and, when they have a single
/// component, `library/`. A reference without tag and digest gets the tag `latest`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// Registry host, with port if any (`docker.io`, `registry.k8s.io`, `localhost:5000`).
    public let domain: String
    /// Repository path inside the registry (`library/nginx`, `pause`).
    public let path: String
    /// The tag, if any. `nil` only when a digest is given without a tag.
    public let tag: String?
    /// The manifest digest (`sha256:<64 hex>`), if the reference pins one.
    public let digest: String?

    static let defaultDomain = "docker.io"
    static let legacyDefaultDomain = "index.docker.io"
    static let officialRepositoryPrefix = "library/"
    static let defaultTag = "latest"
    /// distribution's limit on the length of a whole name (domain and path).
    static let maxNameLength = 255

    /// Parses `text`, applying Docker's normalisation; throws `ImageError(.invalidReference)`.
    public init(parsing text: String) throws {
        func invalid(_ why: String) -> ImageError {
            ImageError(.invalidReference, "invalid reference format: \"\(text)\": \(why)")
        }
        if text.isEmpty { throw invalid("the reference is empty") }
        // A bare image ID is refused by Docker too: it would otherwise parse as a repository.
        if text.utf8.count == 64, text.utf8.allSatisfy(Self.isLowerHex) {
            throw ImageError(
                .invalidReference,
                "invalid repository name (\(text)), cannot specify 64-byte hexadecimal strings")
        }

        var rest = Substring(text)
        var digest: String?
        if let at = rest.firstIndex(of: "@") {
            let digestText = String(rest[rest.index(after: at)...])
            try Self.validateDigest(digestText, invalid: invalid)
            digest = digestText
            rest = rest[..<at]
        }
        var tag: String?
        // A tag's colon comes after the last slash; an earlier colon belongs to a domain's port.
        if let colon = rest.lastIndex(of: ":"), !rest[colon...].contains("/") {
            let tagText = String(rest[rest.index(after: colon)...])
            guard Self.isValidTag(tagText) else {
                throw invalid("tag \"\(tagText)\" must be 1-128 of letters, digits, '_', '.', '-', not starting with '.' or '-'")
            }
            tag = tagText
            rest = rest[..<colon]
        }
        let name = String(rest)
        if name.isEmpty { throw invalid("repository name must have at least one component") }

        var domain = Self.defaultDomain
        var remainder = name
        if let slash = name.firstIndex(of: "/") {
            let first = name[..<slash]
            let looksLikeDomain = first.contains(".") || first.contains(":") || first == "localhost"
                || first.lowercased() != first
            if looksLikeDomain {
                domain = String(first)
                remainder = String(name[name.index(after: slash)...])
            }
        }
        if domain == Self.legacyDefaultDomain { domain = Self.defaultDomain }
        guard Self.isValidDomain(domain) else { throw invalid("invalid registry host \"\(domain)\"") }
        if domain == Self.defaultDomain, !remainder.contains("/") {
            remainder = Self.officialRepositoryPrefix + remainder
        }
        if remainder.lowercased() != remainder {
            throw invalid("repository name (\(remainder)) must be lowercase")
        }
        let components = remainder.split(separator: "/", omittingEmptySubsequences: false)
        for component in components where !Self.isValidPathComponent(component) {
            throw invalid("repository path component \"\(component)\" must be lower-case letters and digits, separated by '.', '_', '__' or '-'")
        }
        if domain.utf8.count + 1 + remainder.utf8.count > Self.maxNameLength {
            throw invalid("repository name must not be more than \(Self.maxNameLength) characters")
        }

        self.domain = domain
        self.path = remainder
        self.digest = digest
        self.tag = tag ?? (digest == nil ? Self.defaultTag : nil)
    }

    /// `domain/path`, the repository without tag or digest.
    public var repository: String { "\(domain)/\(path)" }

    /// The fully normalised form: `docker.io/library/nginx:latest`, `repo@sha256:...`.
    public var normalized: String {
        var result = repository
        if let tag { result += ":\(tag)" }
        if let digest { result += "@\(digest)" }
        return result
    }

    /// The short form Docker prints (`nginx`, `nginx:1.25`, `registry.k8s.io/pause:3.9`).
    public var familiar: String {
        var name = repository
        let hubLibrary = Self.defaultDomain + "/" + Self.officialRepositoryPrefix
        if name.hasPrefix(hubLibrary) {
            name = String(name.dropFirst(hubLibrary.count))
        } else if name.hasPrefix(Self.defaultDomain + "/") {
            name = String(name.dropFirst(Self.defaultDomain.count + 1))
        }
        if let tag, tag != Self.defaultTag || digest != nil { name += ":\(tag)" }
        if let digest { name += "@\(digest)" }
        return name
    }

    public var description: String { normalized }

    /// Normalises `text`, or throws the parse error.
    public static func normalize(_ text: String) throws -> String {
        try ImageReference(parsing: text).normalized
    }

    // MARK: - Grammar pieces

    static func isLowerHex(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66)
    }

    private static func isLowerAlnum(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x7a)
    }

    private static func isAlnum(_ byte: UInt8) -> Bool {
        isLowerAlnum(byte) || (byte >= 0x41 && byte <= 0x5a)
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
    private static func isValidPathComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isLowerAlnum(first), isLowerAlnum(last) else {
            return false
        }
        var index = 0
        while index < bytes.count {
            if isLowerAlnum(bytes[index]) {
                index += 1
                continue
            }
            // A separator run: one '.', one or two '_', or any number of '-'.
            let start = index
            let separator = bytes[index]
            while index < bytes.count, !isLowerAlnum(bytes[index]) { index += 1 }
            let run = bytes[start..<index]
            switch separator {
            case UInt8(ascii: "."): if run.count != 1 { return false }
            case UInt8(ascii: "_"): if run.count > 2 || run.contains(where: { $0 != separator }) { return false }
            case UInt8(ascii: "-"): if run.contains(where: { $0 != separator }) { return false }
            default: return false
            }
        }
        return true
    }

    /// `[\w][\w.-]{0,127}`
    private static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool { isAlnum(b) || b == UInt8(ascii: "_") }
        return word(first) && bytes.allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// Host labels of letters, digits and inner hyphens, separated by dots, with an optional
    /// numeric port; an IPv6 literal in brackets is accepted as distribution does.
    private static func isValidDomain(_ domain: String) -> Bool {
        var host = Substring(domain)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return false }
            let inner = host[host.index(after: host.startIndex)..<close]
            guard !inner.isEmpty, inner.utf8.allSatisfy({ isAlnum($0) || $0 == UInt8(ascii: ":") }) else { return false }
            host = host[host.index(after: close)...]
            if host.isEmpty { return true }
            guard host.hasPrefix(":") else { return false }
            let port = host.dropFirst()
            return !port.isEmpty && port.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        }
        if let colon = host.firstIndex(of: ":") {
            let port = host[host.index(after: colon)...]
            guard !port.isEmpty, port.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return false }
            host = host[..<colon]
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
            return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") }
        }
    }

    private static func validateDigest(_ digest: String, invalid: (String) -> ImageError) throws {
        guard let colon = digest.firstIndex(of: ":") else {
            throw invalid("invalid checksum digest format")
        }
        let algorithm = digest[..<colon]
        let hex = digest[digest.index(after: colon)...]
        guard algorithm == "sha256" else {
            throw invalid("unsupported digest algorithm \"\(algorithm)\"")
        }
        guard hex.utf8.count == 64, hex.utf8.allSatisfy(isLowerHex) else {
            throw invalid("invalid checksum digest length")
        }
    }
}
