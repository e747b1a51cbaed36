import Foundation

/// The one error type of the image store, the image builder and reference parsing.
///
/// `code` is stable so callers can branch on it (the node agent turns `.notFound` into
/// `ErrImagePull`, `.invalidReference` into `InvalidImageName`); `message` is the sentence a
/// person reads, already phrased like the upstream tool's message where one exists.
public struct ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The text is not a valid image reference.
        case invalidReference
        /// No image with that reference is in the local store.
        case notFound
        /// The store on disk is damaged (missing blob, digest mismatch, unreadable JSON).
        case corruptStore
        /// An archive to import is not an OCI layout or a `docker save` tarball.
        case invalidArchive
        /// A recipe is malformed or asks for something the host cannot provide.
        case recipe
        /// A file-system operation failed.
        case io
        /// libarchive reported an error while reading or writing a tar stream.
        case archive
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    /// The error for a reference that the store does not hold.
    ///
    /// The wording follows containerd's resolver ("failed to resolve reference ...: not found"),
    /// which is what a trainee sees in `kubectl describe pod` on a real cluster, and then says
    /// what labnode can offer instead, because there is no registry to pull from.
    static func notFound(_ normalized: String, available: [String]) -> ImageError {
        let images = available.isEmpty ? "none" : available.joined(separator: ", ")
        return ImageError(
            .notFound,
            "failed to resolve reference \"\(normalized)\": not found in the local image store "
                + "(labnode works offline; images: \(images); load others with labnode image import)")
    }

    static func io(_ operation: String, _ path: String, errno code: Int32) -> ImageError {
        ImageError(.io, "\(operation) \(path): \(String(cString: strerror(code)))")
    }
}
