import Crypto
import Foundation

/// A content digest in OCI form, `sha256:<64 lower-case hex>`. Only sha256 is supported:
/// it is the only algorithm Docker and containerd write.
struct ContentDigest: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The 64 hex characters after `sha256:`.
    let hex: String

    /// Accepts `sha256:<hex>`; throws `.corruptStore` for anything else, because digests
    /// always come from files (manifests, index.json, archives), never from a person.
    init(parsing text: String) throws {
        let prefix = "sha256:"
        let hex = text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : ""
        guard hex.utf8.count == 64, hex.utf8.allSatisfy(ImageReference.isLowerHex) else {
            throw ImageError(.corruptStore, "\"\(text)\" is not a sha256 digest")
        }
        self.hex = hex
    }

    init(hashed digest: SHA256.Digest) {
        self.hex = digest.map { byte in
            let text = String(byte, radix: 16)
            return byte < 16 ? "0" + text : text
        }.joined()
    }

    /// The digest of `bytes`.
    static func of<Bytes: DataProtocol>(_ bytes: Bytes) -> ContentDigest {
        ContentDigest(hashed: SHA256.hash(data: bytes))
    }

    var description: String { "sha256:\(hex)" }

    /// The first 12 hex characters, as `docker images` shows an image ID.
    var short: String { String(hex.prefix(12)) }

    static func < (lhs: ContentDigest, rhs: ContentDigest) -> Bool { lhs.hex < rhs.hex }
}

extension ContentDigest: Codable {
    init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        try self.init(parsing: text)
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Running sha256 over a stream, for layers too large to hold in memory.
struct StreamingSHA256 {
    private var hasher = SHA256()
    private(set) var count: Int64 = 0

    mutating func update(_ buffer: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: buffer)
        count += Int64(buffer.count)
    }

    func finish() -> ContentDigest {
        ContentDigest(hashed: hasher.finalize())
    }
}
