import Foundation

/// An image ready to run: its start-up config and its layers unpacked on disk.
public struct ResolvedImage: Hashable, Sendable {
    /// The normalised reference that was asked for.
    public let reference: String
    /// Digest of the manifest.
    public let digest: String
    /// Digest of the config blob (Docker's image ID).
    public let imageID: String
    /// Entrypoint, Cmd, Env, WorkingDir, User, ExposedPorts of the image.
    public let config: ImageConfig
    /// One directory per layer, lowest layer first, each holding that layer unpacked with
    /// overlayfs whiteouts. overlayfs lists `lowerdir` topmost first, so reverse it there.
    public let layerDirectories: [String]

    /// `repository@digest`, the form the kubelet reports as a container's `imageID`.
    public var repoDigest: String {
        let repository = (try? ImageReference(parsing: reference).repository) ?? reference
        return "\(repository)@\(digest)"
    }
}
