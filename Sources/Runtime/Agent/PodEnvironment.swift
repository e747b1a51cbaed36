import APIMachinery
import Foundation

/// A container's environment as the kubelet computes it (pkg/kubelet/kubelet_pods.go):
/// service variables first (when `enableServiceLinks` is not false), then `envFrom` sources,
/// then `env` entries, later ones replacing earlier ones of the same name, with `$(VAR)`
/// references expanded against what is defined so far.
public struct PodEnvironment: Sendable {
    /// What the environment may read besides the pod itself.
    public struct Sources: Sendable {
        /// Services of the pod's namespace, and the `kubernetes` service of `default`.
        public var services: [JSON]
        public var configMaps: [String: JSON]
        public var secrets: [String: JSON]

        public init(services: [JSON] = [], configMaps: [String: JSON] = [:], secrets: [String: JSON] = [:]) {
            self.services = services
            self.configMaps = configMaps
            self.secrets = secrets
        }
    }

    /// Why a container cannot start: the reason and message the kubelet reports in
    /// `CreateContainerConfigError`.
    public struct ConfigError: Error, Equatable, Sendable {
        public var message: String
    }

    /// The ordered variables for `container` of `pod`.
    public static func make(pod: JSON, container: JSON, sources: Sources) throws(ConfigError) -> [(String, String)] {
        var env = OrderedEnv()
        if pod[path: "spec", "enableServiceLinks"]?.boolValue != false {
            for (k, v) in serviceVariables(sources.services, namespace: pod.namespace ?? "default") { env[k] = v }
        } else {
            // The `kubernetes` service's variables are always set (the kubelet's "master service" rule).
            for (k, v) in serviceVariables(sources.services.filter { $0.name == "kubernetes" && $0.namespace == "default" },
                                           namespace: pod.namespace ?? "default") { env[k] = v }
        }
        for source in container["envFrom"]?.arrayValue ?? [] {
            let prefix = source["prefix"]?.stringValue ?? ""
            if let ref = source["configMapRef"] {
                guard let data = try lookup(ref, in: sources.configMaps, kind: "configmap") else { continue }
                for (k, v) in data { if isValidName(prefix + k) { env[prefix + k] = v } }
            }
            if let ref = source["secretRef"] {
                guard let data = try lookup(ref, in: sources.secrets, kind: "secret", decode: true) else { continue }
                for (k, v) in data { if isValidName(prefix + k) { env[prefix + k] = v } }
            }
        }
        for item in container["env"]?.arrayValue ?? [] {
            guard let name = item["name"]?.stringValue else { continue }
            if let value = item["value"]?.stringValue {
                env[name] = expand(value, env.lookup)
            } else if let from = item["valueFrom"] {
                if let value = try resolve(from, pod: pod, container: container, sources: sources) { env[name] = value }
            } else {
                env[name] = ""
            }
        }
        return env.pairs
    }

    // MARK: Service links

    /// `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT>]` and the Docker-link style
    /// `<NAME>_PORT...` variables for every service with a cluster IP.
    public static func serviceVariables(_ services: [JSON], namespace: String) -> [(String, String)] {
        // The pod's own namespace wins over `default` for the same name (kubernetes).
        var byName: [String: JSON] = [:]
        for s in services where s.namespace == namespace || (s.namespace == "default" && s.name == "kubernetes") {
            let name = s.name ?? ""
            if byName[name] == nil || s.namespace == namespace { byName[name] = s }
        }
        var out: [(String, String)] = []
        for name in byName.keys.sorted() {
            guard let s = byName[name], let ip = s[path: "spec", "clusterIP"]?.stringValue, !ip.isEmpty, ip != "None" else { continue }
            let ports = s[path: "spec", "ports"]?.arrayValue ?? []
            guard let first = ports.first else { continue }
            let prefix = name.uppercased().replacingOccurrences(of: "-", with: "_")
            out.append(("\(prefix)_SERVICE_HOST", ip))
            out.append(("\(prefix)_SERVICE_PORT", String(first["port"]?.intValue ?? 0)))
            for p in ports {
                if let pname = p["name"]?.stringValue, !pname.isEmpty {
                    out.append(("\(prefix)_SERVICE_PORT_\(pname.uppercased().replacingOccurrences(of: "-", with: "_"))",
                                String(p["port"]?.intValue ?? 0)))
                }
            }
            let proto = (first["protocol"]?.stringValue ?? "TCP").lowercased()
            out.append(("\(prefix)_PORT", "\(proto)://\(ip):\(first["port"]?.intValue ?? 0)"))
            for p in ports {
                let number = p["port"]?.intValue ?? 0
                let protocolName = p["protocol"]?.stringValue ?? "TCP"
                let base = "\(prefix)_PORT_\(number)_\(protocolName.uppercased())"
                out.append((base, "\(protocolName.lowercased())://\(ip):\(number)"))
                out.append((base + "_PROTO", protocolName.lowercased()))
                out.append((base + "_PORT", String(number)))
                out.append((base + "_ADDR", ip))
            }
        }
        return out
    }

    // MARK: valueFrom

    static func resolve(_ from: JSON, pod: JSON, container: JSON, sources: Sources) throws(ConfigError) -> String? {
        if let field = from[path: "fieldRef", "fieldPath"]?.stringValue {
            return fieldValue(field, pod: pod)
        }
        if let resource = from[path: "resourceFieldRef", "resource"]?.stringValue {
            return resourceValue(resource, container: container, divisor: from[path: "resourceFieldRef", "divisor"]?.stringValue)
        }
        if let ref = from["configMapKeyRef"] {
            return try key(ref, in: sources.configMaps, kind: "configmap", decode: false)
        }
        if let ref = from["secretKeyRef"] {
            return try key(ref, in: sources.secrets, kind: "secret", decode: true)
        }
        return nil
    }

    static func fieldValue(_ path: String, pod: JSON) -> String {
        func mapEntry(_ field: String, _ prefix: String) -> String? {
            guard path.hasPrefix(prefix + "['"), path.hasSuffix("']") else { return nil }
            let key = String(path.dropFirst(prefix.count + 2).dropLast(2))
            return pod[path: "metadata", field, key]?.stringValue ?? ""
        }
        if let v = mapEntry("labels", "metadata.labels") { return v }
        if let v = mapEntry("annotations", "metadata.annotations") { return v }
        switch path {
        case "metadata.name": return pod.name ?? ""
        case "metadata.namespace": return pod.namespace ?? ""
        case "metadata.uid": return pod.uid ?? ""
        case "spec.nodeName": return pod[path: "spec", "nodeName"]?.stringValue ?? ""
        case "spec.serviceAccountName": return pod[path: "spec", "serviceAccountName"]?.stringValue ?? ""
        case "status.hostIP": return pod[path: "status", "hostIP"]?.stringValue ?? ""
        case "status.hostIPs":
            return (pod[path: "status", "hostIPs"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }.joined(separator: ",")
        case "status.podIP": return pod[path: "status", "podIP"]?.stringValue ?? ""
        case "status.podIPs":
            return (pod[path: "status", "podIPs"]?.arrayValue ?? []).compactMap { $0["ip"]?.stringValue }.joined(separator: ",")
        default: return ""
        }
    }

    /// limits.cpu / requests.memory ... in units of the divisor (default 1), rounded up as upstream.
    static func resourceValue(_ resource: String, container: JSON, divisor: String?) -> String {
        let parts = resource.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2 else { return "" }
        let quantity = container[path: "resources", parts[0], parts[1]]?.stringValue
            ?? container[path: "resources", parts[0], parts[1]]?.intValue.map(String.init)
        let isCPU = parts[1] == "cpu"
        // Without a limit the kubelet reports the node's allocatable; we report the node's CPUs / memory.
        let value: Double = quantity.flatMap(Quantity.parse)
            ?? (isCPU ? Double(ProcessInfo.processInfo.activeProcessorCount) : Double(ProcessInfo.processInfo.physicalMemory))
        let div = divisor.flatMap(Quantity.parse) ?? 1
        guard div > 0 else { return "" }
        return String(Int64((value / div).rounded(.up)))
    }

    // MARK: ConfigMaps and Secrets

    static func lookup(_ ref: JSON, in objects: [String: JSON], kind: String, decode: Bool = false) throws(ConfigError) -> [(String, String)]? {
        let name = ref["name"]?.stringValue ?? ""
        guard let obj = objects[name] else {
            if ref["optional"]?.boolValue == true { return nil }
            throw ConfigError(message: "\(kind) \"\(name)\" not found")
        }
        var out: [(String, String)] = []
        for (k, v) in obj["data"]?.objectValue ?? [:] {
            guard let s = v.stringValue else { continue }
            out.append((k, decode ? base64(s) : s))
        }
        return out
    }

    static func key(_ ref: JSON, in objects: [String: JSON], kind: String, decode: Bool) throws(ConfigError) -> String? {
        let name = ref["name"]?.stringValue ?? ""
        let key = ref["key"]?.stringValue ?? ""
        let optional = ref["optional"]?.boolValue == true
        guard let obj = objects[name] else {
            if optional { return nil }
            throw ConfigError(message: "\(kind) \"\(name)\" not found")
        }
        guard let value = obj[path: "data", key]?.stringValue else {
            if optional { return nil }
            throw ConfigError(message: "couldn't find key \(key) in \(kind.capitalized) \(obj.namespace ?? "")/\(name)")
        }
        return decode ? base64(value) : value
    }

    static func base64(_ s: String) -> String {
        Data(base64Encoded: s).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// C identifiers and dots/dashes, as upstream's IsEnvVarName accepts.
    static func isValidName(_ s: String) -> Bool {
        guard let first = s.first, !first.isNumber else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" || $0 == ".") }
    }

    // MARK: $(VAR) expansion

    /// Expands `$(NAME)` with defined variables, `$$` to `$`; unknown references stay as written.
    public static func expand(_ input: String, _ lookup: (String) -> String?) -> String {
        var out = ""
        var i = input.startIndex
        while i < input.endIndex {
            let c = input[i]
            let next = input.index(after: i)
            guard c == "$", next < input.endIndex else {
                out.append(c)
                i = next
                continue
            }
            if input[next] == "$" {
                out.append("$")
                i = input.index(after: next)
            } else if input[next] == "(", let close = input[next...].firstIndex(of: ")") {
                let name = String(input[input.index(after: next)..<close])
                if let v = lookup(name) { out += v } else { out += "$(" + name + ")" }
                i = input.index(after: close)
            } else {
                out.append(c)
                i = next
            }
        }
        return out
    }

    /// Insertion-ordered variables where a redefinition keeps the first position.
    struct OrderedEnv {
        var names: [String] = []
        var values: [String: String] = [:]

        subscript(name: String) -> String? {
            get { values[name] }
            set {
                if values[name] == nil { names.append(name) }
                values[name] = newValue
            }
        }

        func lookup(_ name: String) -> String? { values[name] }
        var pairs: [(String, String)] { names.compactMap { n in values[n].map { (n, $0) } } }
    }
}
