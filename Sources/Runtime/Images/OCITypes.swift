import Foundation

/// Media types of the OCI image spec, plus the Docker v2 equivalents that `docker save`
/// and older registries write; the store accepts both and writes the OCI ones.
enum OCIMediaType {
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let ociConfig = "application/vnd.oci.image.config.v1+json"
    static let ociLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let ociLayer = "application/vnd.oci.image.layer.v1.tar"
    static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

    static func isIndex(_ type: String?) -> Bool { type == ociIndex || type == dockerManifestList }
    static func isManifest(_ type: String?) -> Bool { type == ociManifest || type == dockerManifest }
}

/// Annotation keys the store reads and writes.
enum OCIAnnotation {
    /// The OCI layout's name for an image; the store writes the full normalised reference.
    static let refName = "org.opencontainers.image.ref.name"
    /// containerd's full image name, present in archives from `ctr export` and Docker 25+.
    static let containerdName = "io.containerd.image.name"
}

/// The `os`/`architecture` pair that picks one manifest out of a multi-platform index.
struct ImagePlatform: Codable, Hashable, Sendable {
    var architecture: String
    var os: String
    var variant: String?

    /// The platform of this machine in Go's spelling, which image indexes use.
    static var host: ImagePlatform {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        let architecture: String
        switch machine {
        case "x86_64": architecture = "amd64"
        case "aarch64", "arm64": architecture = "arm64"
        case "armv7l": architecture = "arm"
        case "i686", "i386": architecture = "386"
        default: architecture = machine
        }
        return ImagePlatform(architecture: architecture, os: "linux", variant: nil)
    }
}

/// A pointer to a blob: what it is, its digest and its size.
struct OCIDescriptor: Codable, Hashable, Sendable {
    var mediaType: String
    var digest: ContentDigest
    var size: Int64
    var annotations: [String: String]?
    var platform: ImagePlatform?
}

/// `index.json` of an OCI layout, or an image index blob.
struct OCIIndex: Codable, Sendable {
    var schemaVersion: Int = 2
    var mediaType: String? = OCIMediaType.ociIndex
    var manifests: [OCIDescriptor] = []
}

/// An image manifest: the config blob and the layers, lowest first.
struct OCIManifest: Codable, Sendable {
    var schemaVersion: Int = 2
    var mediaType: String? = OCIMediaType.ociManifest
    var config: OCIDescriptor
    var layers: [OCIDescriptor]
}

/// The image config blob (`application/vnd.oci.image.config.v1+json`). Only the fields the
/// store reads are modelled; imported blobs are stored byte for byte, so nothing is lost.
struct OCIImageFile: Codable, Sendable {
    struct RootFS: Codable, Sendable {
        var type: String = "layers"
        var diffIDs: [ContentDigest]

        enum CodingKeys: String, CodingKey {
            case type
            case diffIDs = "diff_ids"
        }
    }

    struct History: Codable, Sendable {
        var created: String?
        var createdBy: String?
        var emptyLayer: Bool?

        enum CodingKeys: String, CodingKey {
            case created
            case createdBy = "created_by"
            case emptyLayer = "empty_layer"
        }
    }

    var created: String?
    var architecture: String?
    var os: String?
    var config: ImageConfig?
    var rootfs: RootFS?
    var history: [History]?
}

/// One entry of a `docker save` tarball's `manifest.json`.
struct DockerSaveEntry: Codable, Sendable {
    var config: String
    var repoTags: [String]?
    var layers: [String]

    enum CodingKeys: String, CodingKey {
        case config = "Config"
        case repoTags = "RepoTags"
        case layers = "Layers"
    }
}
