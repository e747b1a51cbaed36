import APIMachinery
import Foundation

/// Where one pod's runtime state lives on the host: `<root>/<uid>/`.
///
/// Everything the pod owns on disk is under this one directory (namespace files, the files the
/// kubelet manages, volumes, each container run's writable layer), so removing the pod is one
/// recursive delete after the namespace files are unmounted.
public struct PodPaths: Sendable, Equatable {
    public var directory: String
    public init(root: String, uid: String) { directory = root + "/" + uid }
    public var namespaces: String { directory + "/ns" }
    public var etc: String { directory + "/etc" }
    public var hosts: String { etc + "/hosts" }
    public var hostname: String { etc + "/hostname" }
    public var resolvConf: String { etc + "/resolv.conf" }
    public var serviceAccount: String { directory + "/serviceaccount" }
    public var volumes: String { directory + "/volumes" }
    /// What the agent must know after a restart (the PID 1 of each running container).
    public var stateFile: String { directory + "/state.json" }
    public func container(_ name: String, attempt: Int) -> ContainerRunDirectories {
        ContainerRunDirectories(base: "\(directory)/containers/\(name)/\(attempt)")
    }
    public func containerRoot(_ name: String) -> String { "\(directory)/containers/\(name)" }
}

/// Writes the files the kubelet manages for a pod (/etc/hosts, /etc/hostname, resolv.conf, the
/// service-account token) and prepares its volumes.
public enum PodFiles {
    /// The objects volumes and the token come from, fetched by the agent.
    public struct Inputs: Sendable {
        public var dns: PodDNS
        public var podIP: String?
        public var clusterDomain: String
        /// The service-account token (nil: not mounted).
        public var token: String?
        public var caCertificatePEM: String
        public var configMaps: [String: JSON]
        public var secrets: [String: JSON]

        public init(dns: PodDNS, podIP: String?, clusterDomain: String, token: String?, caCertificatePEM: String,
                    configMaps: [String: JSON] = [:], secrets: [String: JSON] = [:]) {
            self.dns = dns
            self.podIP = podIP
            self.clusterDomain = clusterDomain
            self.token = token
            self.caCertificatePEM = caCertificatePEM
            self.configMaps = configMaps
            self.secrets = secrets
        }
    }

    /// The pod's hostname: `spec.hostname`, else its name cut to 63 characters (the kubelet's rule).
    public static func hostname(_ pod: JSON) -> String {
        if let h = pod[path: "spec", "hostname"]?.stringValue, !h.isEmpty { return h }
        var name = String((pod.name ?? "pod").prefix(63))
        while name.hasSuffix("-") || name.hasSuffix(".") { name.removeLast() }
        return name
    }

    /// The kubelet's hosts file: its fixed header, then the pod's own line (FQDN first when the
    /// pod has a subdomain), then `hostAliases`.
    public static func hostsFile(pod: JSON, podIP: String?, clusterDomain: String) -> String {
        var text = """
        # Kubernetes-managed hosts file.
        127.0.0.1\tlocalhost
        ::1\tlocalhost ip6-localhost ip6-loopback
        fe00::0\tip6-localnet
        fe00::0\tip6-mcastprefix
        fe00::1\tip6-allnodes
        fe00::2\tip6-allrouters

        """
        let host = hostname(pod)
        if let podIP, !podIP.isEmpty {
            if let sub = pod[path: "spec", "subdomain"]?.stringValue, !sub.isEmpty {
                text += "\(podIP)\t\(host).\(sub).\(pod.namespace ?? "default").svc.\(clusterDomain)\t\(host)\n"
            } else {
                text += "\(podIP)\t\(host)\n"
            }
        }
        let aliases = pod[path: "spec", "hostAliases"]?.arrayValue ?? []
        if !aliases.isEmpty {
            text += "\n# Entries added by HostAliases.\n"
            for alias in aliases {
                guard let ip = alias["ip"]?.stringValue else { continue }
                let names = (alias["hostnames"]?.arrayValue ?? []).compactMap(\.stringValue)
                text += "\(ip)\t\(names.joined(separator: "\t"))\n"
            }
        }
        return text
    }

    /// Writes everything and returns what the containers mount. Throws a `ConfigError` naming
    /// the missing object or unsupported volume, which the agent reports on the pod.
    public static func prepare(pod: JSON, paths: PodPaths, sandbox: SandboxNamespaces,
                               inputs: Inputs) throws(ContainerTranslation.ConfigError) -> PodContext {
        let fm = FileManager.default
        func write(_ text: String, _ path: String, mode: Int = 0o644) throws(ContainerTranslation.ConfigError) {
            do {
                try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try Data(text.utf8).write(to: URL(fileURLWithPath: path))
                try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            } catch {
                throw ContainerTranslation.ConfigError("writing \(path): \(error.localizedDescription)")
            }
        }
        let host = hostname(pod)
        try write(hostsFile(pod: pod, podIP: inputs.podIP, clusterDomain: inputs.clusterDomain), paths.hosts)
        try write(host + "\n", paths.hostname)
        try write(inputs.dns.rendered, paths.resolvConf)
        var saDirectory: String?
        if let token = inputs.token {
            try write(token, paths.serviceAccount + "/token", mode: 0o600)
            try write(inputs.caCertificatePEM, paths.serviceAccount + "/ca.crt")
            try write(pod.namespace ?? "default", paths.serviceAccount + "/namespace")
            saDirectory = paths.serviceAccount
        }
        var volumes: [String: String] = [:]
        var readOnly: Set<String> = []
        for volume in pod[path: "spec", "volumes"]?.arrayValue ?? [] {
            guard let name = volume["name"]?.stringValue else { continue }
            let directory = paths.volumes + "/" + name
            if volume["emptyDir"] != nil {
                do {
                    try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
                    // Any user in the container may write an emptyDir, as upstream (0777).
                    try fm.setAttributes([.posixPermissions: 0o777], ofItemAtPath: directory)
                } catch {
                    throw .init("creating emptyDir \(name): \(error.localizedDescription)")
                }
                volumes[name] = directory
            } else if let hostPath = volume["hostPath"] {
                guard let path = hostPath["path"]?.stringValue else { throw .init("hostPath volume \(name) has no path") }
                let type = hostPath["type"]?.stringValue ?? ""
                var isDirectory: ObjCBool = false
                let exists = fm.fileExists(atPath: path, isDirectory: &isDirectory)
                switch type {
                case "DirectoryOrCreate" where !exists:
                    try? fm.createDirectory(atPath: path, withIntermediateDirectories: true)
                case "FileOrCreate" where !exists:
                    try write("", path)
                case "Directory" where !(exists && isDirectory.boolValue):
                    throw .init("hostPath type check failed: \(path) is not a directory")
                case "File" where !(exists && !isDirectory.boolValue):
                    throw .init("hostPath type check failed: \(path) is not a file")
                default:
                    break
                }
                volumes[name] = path
            } else if let source = volume["configMap"] {
                try writeKeys(source, from: inputs.configMaps, kind: "configmap", decode: false, into: directory, write: write)
                volumes[name] = directory
                readOnly.insert(name)
            } else if let source = volume["secret"] {
                var ref = source
                ref["name"] = source["secretName"]
                try writeKeys(ref, from: inputs.secrets, kind: "secret", decode: true, into: directory, write: write)
                volumes[name] = directory
                readOnly.insert(name)
            } else if let items = volume[path: "downwardAPI", "items"]?.arrayValue {
                try writeDownward(items, pod: pod, into: directory, write: write)
                volumes[name] = directory
                readOnly.insert(name)
            } else if let sources = volume[path: "projected", "sources"]?.arrayValue {
                for source in sources {
                    if let cm = source["configMap"] {
                        try writeKeys(cm, from: inputs.configMaps, kind: "configmap", decode: false, into: directory, write: write)
                    } else if let secret = source["secret"] {
                        try writeKeys(secret, from: inputs.secrets, kind: "secret", decode: true, into: directory, write: write)
                    } else if let items = source[path: "downwardAPI", "items"]?.arrayValue {
                        try writeDownward(items, pod: pod, into: directory, write: write)
                    } else if let token = source["serviceAccountToken"] {
                        try write(inputs.token ?? "", directory + "/" + (token["path"]?.stringValue ?? "token"), mode: 0o600)
                    }
                }
                volumes[name] = directory
                readOnly.insert(name)
            } else {
                let kind = volume.objectValue?.keys.first { $0 != "name" } ?? "unknown"
                throw .init("volume \(GoQuote.quote(name)) of type \(kind) is not supported by labnode's node agent")
            }
        }
        return PodContext(sandbox: sandbox, hostname: host, hostsFile: paths.hosts, hostnameFile: paths.hostname,
                          resolvConfFile: paths.resolvConf, serviceAccountDirectory: saDirectory,
                          volumes: volumes, readOnlyVolumes: readOnly)
    }

    /// Rewrites the pod's configMap volumes (plain and projected) from `configMaps`, as the
    /// kubelet does when a ConfigMap changes: each changed file is replaced atomically (a
    /// reader sees the old or the new content, never half), unchanged files are left alone.
    /// Returns the paths it replaced. Keys removed from the ConfigMap are left in place.
    @discardableResult
    public static func refreshConfigMapVolumes(pod: JSON, paths: PodPaths, configMaps: [String: JSON]) -> [String] {
        var replaced: [String] = []
        func write(_ text: String, _ path: String, mode: Int) throws(ContainerTranslation.ConfigError) {
            if let old = try? String(contentsOfFile: path, encoding: .utf8), old == text { return }
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
                replaced.append(path)
            } catch {
                throw ContainerTranslation.ConfigError("writing \(path): \(error.localizedDescription)")
            }
        }
        for volume in pod[path: "spec", "volumes"]?.arrayValue ?? [] {
            guard let name = volume["name"]?.stringValue else { continue }
            let directory = paths.volumes + "/" + name
            var sources: [JSON] = []
            if let cm = volume["configMap"] { sources.append(cm) }
            for source in volume[path: "projected", "sources"]?.arrayValue ?? [] {
                if let cm = source["configMap"] { sources.append(cm) }
            }
            for source in sources {
                // A ConfigMap that vanished keeps its last files, as upstream.
                try? writeKeys(source, from: configMaps, kind: "configmap", decode: false, into: directory, write: write)
            }
        }
        return replaced
    }

    /// The ConfigMaps a pod's volumes name.
    public static func configMapVolumeNames(_ pod: JSON) -> Set<String> {
        var names: Set<String> = []
        for volume in pod[path: "spec", "volumes"]?.arrayValue ?? [] {
            if let n = volume[path: "configMap", "name"]?.stringValue { names.insert(n) }
            for source in volume[path: "projected", "sources"]?.arrayValue ?? [] {
                if let n = source[path: "configMap", "name"]?.stringValue { names.insert(n) }
            }
        }
        return names
    }

    /// (Re)writes /etc/hosts once the pod's address is known.
    public static func writeHosts(pod: JSON, podIP: String?, clusterDomain: String,
                                  paths: PodPaths) throws(ContainerTranslation.ConfigError) {
        do {
            try Data(hostsFile(pod: pod, podIP: podIP, clusterDomain: clusterDomain).utf8)
                .write(to: URL(fileURLWithPath: paths.hosts))
        } catch {
            throw .init("writing \(paths.hosts): \(error.localizedDescription)")
        }
    }

    typealias Writer = (String, String, Int) throws(ContainerTranslation.ConfigError) -> Void

    /// A configMap or secret volume source: every key (or the listed `items`) as a file.
    static func writeKeys(_ source: JSON, from objects: [String: JSON], kind: String, decode: Bool, into directory: String,
                          write: Writer) throws(ContainerTranslation.ConfigError) {
        let name = source["name"]?.stringValue ?? ""
        let optional = source["optional"]?.boolValue == true
        guard let object = objects[name] else {
            if optional { return }
            throw .init("\(kind) \(GoQuote.quote(name)) not found")
        }
        var data: [String: String] = [:]
        for (k, v) in object["data"]?.objectValue ?? [:] {
            guard let s = v.stringValue else { continue }
            data[k] = decode ? (Data(base64Encoded: s).map { String(decoding: $0, as: UTF8.self) } ?? "") : s
        }
        if !decode {
            for (k, v) in object["binaryData"]?.objectValue ?? [:] {
                data[k] = v.stringValue.flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
            }
        }
        let mode = Int(source["defaultMode"]?.intValue ?? 0o644)
        if let items = source["items"]?.arrayValue {
            for item in items {
                guard let key = item["key"]?.stringValue, let path = item["path"]?.stringValue else { continue }
                guard let value = data[key] else {
                    if optional { continue }
                    throw .init("configuration key \(GoQuote.quote(key)) not found in \(kind) \(GoQuote.quote(name))")
                }
                try checkRelative(path)
                try write(value, directory + "/" + path, Int(item["mode"]?.intValue ?? Int64(mode)))
            }
        } else {
            for (key, value) in data { try write(value, directory + "/" + key, mode) }
        }
    }

    static func writeDownward(_ items: [JSON], pod: JSON, into directory: String,
                              write: Writer) throws(ContainerTranslation.ConfigError) {
        for item in items {
            guard let path = item["path"]?.stringValue else { continue }
            try checkRelative(path)
            guard let field = item[path: "fieldRef", "fieldPath"]?.stringValue else { continue }
            let text: String
            switch field {
            case "metadata.name": text = pod.name ?? ""
            case "metadata.namespace": text = pod.namespace ?? ""
            case "metadata.uid": text = pod.uid ?? ""
            case "metadata.labels", "metadata.annotations":
                let map = pod[path: "metadata", field == "metadata.labels" ? "labels" : "annotations"]?.objectValue ?? [:]
                text = map.keys.sorted().map { "\($0)=\(GoQuote.quote(map[$0]?.stringValue ?? ""))" }.joined(separator: "\n")
            default:
                text = ""
            }
            try write(text, directory + "/" + path, Int(item["mode"]?.intValue ?? 0o644))
        }
    }

    static func checkRelative(_ path: String) throws(ContainerTranslation.ConfigError) {
        if path.hasPrefix("/") || path.split(separator: "/").contains("..") {
            throw .init("volume path \(GoQuote.quote(path)) must be relative and may not contain '..'")
        }
    }
}
