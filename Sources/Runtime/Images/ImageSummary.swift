import Foundation

/// One line of `labnode image ls`: a reference in the store and what it points to.
public struct ImageSummary: Hashable, Sendable {
    /// Normalised reference, e.g. `docker.io/library/nginx:latest`.
    public let reference: String
    /// Digest of the manifest, what a pod's `imageID` pins (`repo@digest`).
    public let digest: String
    /// Digest of the config blob, Docker's "IMAGE ID".
    public let imageID: String
    /// Bytes of content in the store: manifest, config and compressed layers, as containerd counts.
    public let size: Int64
    /// The config's `created` time, if it has a readable one.
    public let created: Date?
}
