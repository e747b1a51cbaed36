import Foundation
import Yams

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The labnode entries of a kubeconfig: cluster, user and context all named `labnode`.
///
/// `merge(into:)` edits an existing kubeconfig the way `kubectl config set-*` would: only the
/// entries named `labnode` are replaced and `current-context` is set; every other cluster, user,
/// context, preference and extension keeps its content and order. Like kubectl, the rewrite
/// drops YAML comments.
public struct Kubeconfig: Sendable, Equatable {
    /// Name of the cluster, user and context that labnode owns.
    public static let defaultName = "labnode"

    public var name: String
    public var server: String
    public var certificateAuthorityPEM: String
    public var clientCertificatePEM: String
    public var clientKeyPEM: String

    public init(
        server: String,
        certificateAuthorityPEM: String,
        clientCertificatePEM: String,
        clientKeyPEM: String,
        name: String = Kubeconfig.defaultName
    ) {
        self.name = name
        self.server = server
        self.certificateAuthorityPEM = certificateAuthorityPEM
        self.clientCertificatePEM = clientCertificatePEM
        self.clientKeyPEM = clientKeyPEM
    }

    /// The admin kubeconfig for an API server at `https://host:port`.
    public init(host: String, port: Int, pki: PKI, name: String = Kubeconfig.defaultName) {
        // An IPv6 literal needs brackets in a URL.
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        self.init(
            server: "https://\(hostPart):\(port)",
            certificateAuthorityPEM: pki.caCertificatePEM,
            clientCertificatePEM: pki.adminCertificatePEM,
            clientKeyPEM: pki.adminKeyPEM,
            name: name
        )
    }

    /// The admin kubeconfig for the API server at `server` (e.g. `https://127.0.0.1:6443`).
    public static func labnode(server: String, pki: PKI) -> Kubeconfig {
        Kubeconfig(
            server: server,
            certificateAuthorityPEM: pki.caCertificatePEM,
            clientCertificatePEM: pki.adminCertificatePEM,
            clientKeyPEM: pki.adminKeyPEM)
    }

    /// Merges the labnode entries into the kubeconfig `labnode up` should write (see
    /// `KubeconfigLocation.resolve`: `--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`,
    /// the invoking user's under sudo) and returns its path. An explicit file is merged into too,
    /// so pointing `--kubeconfig` at an existing file never loses its other entries.
    @discardableResult
    public func write(explicitPath: String?) throws -> String {
        let location = try KubeconfigLocation.resolve(explicitPath: explicitPath)
        try merge(into: location)
        return location.path
    }

    /// Removes the labnode entries from the kubeconfig `write(explicitPath:)` would use
    /// (`labnode down --purge`). Returns whether anything was removed.
    @discardableResult
    public static func removeLabnode(explicitPath: String?) throws -> Bool {
        try remove(from: try KubeconfigLocation.resolve(explicitPath: explicitPath))
    }

    /// A kubeconfig holding only the labnode entries, with `current-context: labnode`.
    public func yaml() throws -> String {
        var document = KubeconfigDocument()
        apply(to: &document)
        return try document.yaml()
    }

    /// Writes the labnode entries into the kubeconfig at `path` (created if missing, with its
    /// directory), makes `labnode` the current context, and leaves everything else alone.
    /// The file is replaced atomically with mode 0600.
    ///
    /// - Parameter owner: who should own a file or directory this call creates (the invoking user
    ///   under sudo). An existing file keeps its owner.
    public func merge(into path: String, owner: KubeconfigLocation.Owner? = nil) throws {
        let target = KubeconfigFile.resolvedTarget(path)
        var document = try KubeconfigDocument(contentsOfFile: target)
        apply(to: &document)
        try KubeconfigFile.write(document, to: target, owner: owner)
    }

    /// `merge(into:owner:)` at a resolved location.
    public func merge(into location: KubeconfigLocation) throws {
        try merge(into: location.path, owner: location.owner)
    }

    /// Removes the cluster, user and context named `name` from the kubeconfig at `path`, and
    /// `current-context` when it pointed at that context (for `labnode down --purge`).
    /// Returns false when there was nothing to remove (a missing file included).
    @discardableResult
    public static func remove(from path: String, name: String = Kubeconfig.defaultName) throws -> Bool {
        let target = KubeconfigFile.resolvedTarget(path)
        guard FileManager.default.fileExists(atPath: target) else { return false }
        var document = try KubeconfigDocument(contentsOfFile: target)
        var changed = false
        for section in KubeconfigDocument.Section.allCases {
            changed = document.removeEntry(name, in: section) || changed
        }
        if document.currentContext == name {
            document.currentContext = nil
            changed = true
        }
        if changed {
            try KubeconfigFile.write(document, to: target, owner: nil)
        }
        return changed
    }

    /// `remove(from:name:)` at a resolved location.
    @discardableResult
    public static func remove(from location: KubeconfigLocation, name: String = Kubeconfig.defaultName) throws -> Bool {
        try remove(from: location.path, name: name)
    }

    func apply(to document: inout KubeconfigDocument) {
        document.setEntry(name, in: .clusters, fields: [
            ("certificate-authority-data", Data(certificateAuthorityPEM.utf8).base64EncodedString()),
            ("server", server),
        ])
        // A namespace the trainee chose for the labnode context survives a restart.
        var contextFields = [("cluster", name), ("user", name)]
        if let namespace = document.entry(name, in: .contexts)?["namespace"], !namespace.isEmpty {
            contextFields.append(("namespace", namespace))
        }
        document.setEntry(name, in: .contexts, fields: contextFields)
        document.setEntry(name, in: .users, fields: [
            ("client-certificate-data", Data(clientCertificatePEM.utf8).base64EncodedString()),
            ("client-key-data", Data(clientKeyPEM.utf8).base64EncodedString()),
        ])
        document.currentContext = name
    }
}

/// Where the kubeconfig goes and who owns it.
public struct KubeconfigLocation: Sendable, Equatable {
    /// A numeric owner for files labnode creates.
    public struct Owner: Sendable, Equatable {
        public var uid: UInt32
        public var gid: UInt32
        public init(uid: UInt32, gid: UInt32) {
            self.uid = uid
            self.gid = gid
        }
    }

    public var path: String
    /// Set when running as root under sudo: the invoking user, who gets new files and directories.
    public var owner: Owner?

    public init(path: String, owner: Owner? = nil) {
        self.path = path
        self.owner = owner
    }

    /// A user's home directory and ids from the password database.
    public struct Account: Sendable, Equatable {
        public var home: String
        public var uid: UInt32
        public var gid: UInt32
        public init(home: String, uid: UInt32, gid: UInt32) {
            self.home = home
            self.uid = uid
            self.gid = gid
        }
    }

    /// Picks the file kubectl itself would write a new entry to:
    /// `--kubeconfig` if given; else `$KUBECONFIG` (one entry: that file; several: the first that
    /// exists, or the last when none does, as `kubectl config set-*` does); else `~/.kube/config`.
    /// Under sudo (root with `SUDO_USER` set) `~` is the invoking user's home and that user owns
    /// what gets created.
    public static func resolve(
        explicitPath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        effectiveUID: UInt32 = UInt32(geteuid()),
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) },
        account: (String) -> Account? = KubeconfigLocation.passwordEntry(named:)
    ) throws -> KubeconfigLocation {
        var owner: Owner?
        var home = environment["HOME"]
        if effectiveUID == 0, let sudoUser = environment["SUDO_USER"], !sudoUser.isEmpty, sudoUser != "root" {
            guard let entry = account(sudoUser) else {
                throw KubeconfigError.unknownSudoUser(sudoUser)
            }
            home = entry.home
            let uid = environment["SUDO_UID"].flatMap { UInt32($0) } ?? entry.uid
            let gid = environment["SUDO_GID"].flatMap { UInt32($0) } ?? entry.gid
            owner = Owner(uid: uid, gid: gid)
        }

        if let explicitPath, !explicitPath.isEmpty {
            return KubeconfigLocation(path: explicitPath, owner: owner)
        }
        var seen = Set<String>()
        let listed = (environment["KUBECONFIG"] ?? "")
            .split(separator: ":", omittingEmptySubsequences: true)
            .map(String.init)
            .filter { seen.insert($0).inserted }
        if listed.count == 1 {
            return KubeconfigLocation(path: listed[0], owner: owner)
        }
        if let last = listed.last {
            return KubeconfigLocation(path: listed.first(where: fileExists) ?? last, owner: owner)
        }
        guard let home, !home.isEmpty else {
            throw KubeconfigError.noHomeDirectory
        }
        return KubeconfigLocation(path: (home as NSString).appendingPathComponent(".kube/config"), owner: owner)
    }

    /// Looks a user up with getpwnam(3).
    public static func passwordEntry(named name: String) -> Account? {
        guard let entry = getpwnam(name), let directory = entry.pointee.pw_dir else { return nil }
        return Account(home: String(cString: directory), uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }
}

/// Why a kubeconfig could not be read, resolved or written.
public enum KubeconfigError: Error, Equatable, CustomStringConvertible, Sendable {
    case notAMapping(path: String)
    case malformed(path: String, detail: String)
    case unknownSudoUser(String)
    case noHomeDirectory

    public var description: String {
        switch self {
        case .notAMapping(let path):
            return "\(path) is not a kubeconfig: expected a YAML mapping at the top level"
        case let .malformed(path, detail):
            return "cannot parse kubeconfig \(path): \(detail)"
        case .unknownSudoUser(let user):
            return "SUDO_USER is \"\(user)\" but that user has no password entry; pass --kubeconfig"
        case .noHomeDirectory:
            return "HOME is not set; pass --kubeconfig"
        }
    }
}

/// A kubeconfig file as a YAML tree, edited in place so that what labnode does not own is
/// written back with the same content and order.
public struct KubeconfigDocument: Equatable {
    /// The three named lists of a kubeconfig, and the key inside each entry that holds its body.
    public enum Section: String, CaseIterable, Sendable {
        case clusters, users, contexts

        var bodyKey: String {
            switch self {
            case .clusters: return "cluster"
            case .users: return "user"
            case .contexts: return "context"
            }
        }
    }

    var root: Node.Mapping

    /// An empty kubeconfig, with the keys kubectl writes, in kubectl's order.
    public init() {
        root = Node.Mapping([
            (Node("apiVersion"), Node("v1")),
            (Node("clusters"), Node([Node]())),
            (Node("contexts"), Node([Node]())),
            (Node("current-context"), KubeconfigDocument.scalar("")),
            (Node("kind"), Node("Config")),
            (Node("preferences"), Node([(Node, Node)](), .implicit, .flow)),
            (Node("users"), Node([Node]())),
        ])
    }

    /// Parses kubeconfig YAML; an empty or comment-only text is an empty kubeconfig.
    public init(yaml: String, path: String = "kubeconfig") throws {
        let node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch {
            throw KubeconfigError.malformed(path: path, detail: String(describing: error))
        }
        guard let node else {
            self.init()
            return
        }
        guard case .mapping(let mapping) = node else {
            throw KubeconfigError.notAMapping(path: path)
        }
        self.init(root: mapping)
    }

    init(root: Node.Mapping) {
        self.root = root
    }

    /// Reads the file at `path`; a missing file is an empty kubeconfig.
    public init(contentsOfFile path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            self.init()
            return
        }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KubeconfigError.malformed(path: path, detail: "cannot read: \(error.localizedDescription)")
        }
        try self.init(yaml: text, path: path)
    }

    public var currentContext: String? {
        get {
            guard let value = root["current-context"], case .scalar(let scalar) = value else { return nil }
            return scalar.string
        }
        set {
            if let newValue {
                root["current-context"] = KubeconfigDocument.scalar(newValue)
            } else {
                root["current-context"] = nil
            }
        }
    }

    /// Entry names in file order.
    public func names(in section: Section) -> [String] {
        entries(in: section).compactMap { KubeconfigDocument.entryName($0) }
    }

    /// The scalar fields of the body of entry `name` (e.g. `server` of a cluster), or nil
    /// when there is no such entry.
    public func entry(_ name: String, in section: Section) -> [String: String]? {
        guard let entry = entries(in: section).first(where: { KubeconfigDocument.entryName($0) == name }) else {
            return nil
        }
        var fields: [String: String] = [:]
        if case .mapping(let body)? = entry.mapping?[section.bodyKey] {
            for (key, value) in body {
                if let key = key.scalar?.string, let value = value.scalar?.string {
                    fields[key] = value
                }
            }
        }
        return fields
    }

    /// Replaces entry `name` (keeping its position) or appends it, with a body of `fields`.
    public mutating func setEntry(_ name: String, in section: Section, fields: [(String, String)]) {
        let body = Node(fields.map { (Node($0.0), KubeconfigDocument.scalar($0.1)) })
        // kubectl writes entry keys in alphabetical order: cluster/context before name, name before user.
        let entry = Node([
            (Node("name"), KubeconfigDocument.scalar(name)),
            (Node(section.bodyKey), body),
        ].sorted { ($0.0.string ?? "") < ($1.0.string ?? "") })
        var list = entries(in: section)
        if let index = list.firstIndex(where: { KubeconfigDocument.entryName($0) == name }) {
            list[index] = entry
            // A hand-edited file may repeat the name; kubectl would only see one of them.
            var later = list.index(after: index)
            while later < list.endIndex {
                if KubeconfigDocument.entryName(list[later]) == name { list.remove(at: later) } else { later += 1 }
            }
        } else {
            list.append(entry)
        }
        setEntries(list, in: section)
    }

    /// Removes every entry named `name`; returns whether one existed.
    @discardableResult
    public mutating func removeEntry(_ name: String, in section: Section) -> Bool {
        let list = entries(in: section)
        let kept = list.filter { KubeconfigDocument.entryName($0) != name }
        guard kept.count != list.count else { return false }
        setEntries(kept, in: section)
        return true
    }

    /// The document as YAML.
    public func yaml() throws -> String {
        // Width -1: never fold long base64 values.
        try Yams.serialize(node: .mapping(root), width: -1)
    }

    private func entries(in section: Section) -> [Node] {
        guard case .sequence(let sequence)? = root[section.rawValue] else { return [] }
        return Array(sequence)
    }

    private mutating func setEntries(_ list: [Node], in section: Section) {
        if case .sequence(var sequence)? = root[section.rawValue] {
            // Keep the sequence's own style and tag; only its items change.
            sequence.replaceSubrange(sequence.startIndex..<sequence.endIndex, with: list)
            root[section.rawValue] = .sequence(sequence)
        } else {
            // Missing, or `null` as kubectl writes for an empty list.
            root[section.rawValue] = Node(list)
        }
    }

    private static func entryName(_ entry: Node) -> String? {
        entry.mapping?["name"]?.scalar?.string
    }

    /// A string scalar that reads back as a string: values that YAML would take for a number,
    /// boolean or null ("", "true", "1.0") are quoted.
    static func scalar(_ value: String) -> Node {
        let plain = Node(value)
        return plain.tag.rawValue == Tag.Name.str.rawValue ? plain : Node(value, Tag(.str), .doubleQuoted)
    }
}

/// Path handling and the atomic write for kubeconfig files.
enum KubeconfigFile {
    /// Writes through a symlinked kubeconfig to its target instead of replacing the link.
    static func resolvedTarget(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        guard (try? FileManager.default.destinationOfSymbolicLink(atPath: path)) != nil else { return url.path }
        return url.resolvingSymlinksInPath().path
    }

    static func write(_ document: KubeconfigDocument, to path: String, owner: KubeconfigLocation.Owner?) throws {
        let directory = (path as NSString).deletingLastPathComponent
        var fileOwner = owner.map { PKIFiles.Owner(uid: uid_t($0.uid), gid: gid_t($0.gid)) }
        if !directory.isEmpty {
            let created = try PKIFiles.makeDirectory(directory, mode: 0o755)
            if let fileOwner {
                for createdDirectory in created where chown(createdDirectory, fileOwner.uid, fileOwner.gid) != 0 {
                    throw PKIError.io(path: createdDirectory, operation: "chown", errno: errno)
                }
            }
        }
        // The rename makes a new inode; give it the old file's owner so a root-run rewrite of
        // a user's kubeconfig does not take it away from them.
        var info = stat()
        if stat(path, &info) == 0 {
            fileOwner = geteuid() == 0 ? PKIFiles.Owner(uid: info.st_uid, gid: info.st_gid) : nil
        }
        try PKIFiles.writeAtomically(path: path, contents: try document.yaml(), mode: 0o600, owner: fileOwner)
    }
}
