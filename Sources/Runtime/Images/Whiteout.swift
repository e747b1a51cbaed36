/// How an OCI layer member maps onto overlayfs.
///
/// OCI layers mark deletions with files named `.wh.<name>` ("<name> is gone from the layers
/// below") and `.wh..wh..opq` ("this directory hides everything below it"). overlayfs spells
/// the same two facts as a character device 0/0 named `<name>` and the xattr
/// `trusted.overlay.opaque=y` on the directory, so unpacking translates one into the other.
enum WhiteoutKind: Equatable, Sendable {
    /// An ordinary member: extract it as it is.
    case none
    /// Hide `path` (relative to the layer root) from lower layers.
    case remove(path: String)
    /// Make the directory `path` opaque ("" is the layer root).
    case opaque(directory: String)
    /// Another name in the reserved `.wh..wh.` namespace (AUFS bookkeeping such as
    /// `.wh..wh.plnk`): it means nothing to overlayfs and is skipped, as Docker does.
    case reserved

    static let prefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"
    static let overlayOpaqueXattr = "trusted.overlay.opaque"

    /// Classifies a sanitised member path (no leading `/`, no `..`).
    static func classify(_ path: String) -> WhiteoutKind {
        let slash = path.lastIndex(of: "/")
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let directory = slash.map { String(path[..<$0]) } ?? ""
        if name == opaqueMarker { return .opaque(directory: directory) }
        guard name.hasPrefix(prefix) else { return .none }
        let hidden = String(name.dropFirst(prefix.count))
        if hidden.isEmpty || hidden.hasPrefix(prefix) { return .reserved }
        return .remove(path: directory.isEmpty ? hidden : directory + "/" + hidden)
    }
}
