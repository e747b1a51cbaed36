import Collections

// ConfigMap, Secret, Namespace, ServiceAccount, Endpoints, EndpointSlice, Lease, Event and Node.

extension Validation {
    static let maxSecretSize = 1024 * 1024

    // MARK: ConfigMap and Secret

    static func validateConfigMap(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        var total = 0
        let data = ctx.stringMap(obj["data"], Path("data")) ?? []
        let binary = ctx.object(obj["binaryData"], Path("binaryData"))?.objectValue ?? [:]
        for (key, value) in data {
            for msg in NameValidation.isConfigMapKey(key) { ctx.add(.invalid(Path("data").key(key), key, msg)) }
            if binary[key] != nil {
                ctx.add(.invalid(Path("data").key(key), key, "duplicate of key present in binaryData"))
            }
            total += value.utf8.count
        }
        for (key, value) in binary {
            for msg in NameValidation.isConfigMapKey(key) { ctx.add(.invalid(Path("binaryData").key(key), key, msg)) }
            total += decodedBase64Length(value, Path("binaryData").key(key), ctx: &ctx)
        }
        if total > maxSecretSize {
            ctx.add(.tooLong(.emptyRoot, maxSecretSize))
        }
        _ = ctx.bool(obj["immutable"], Path("immutable"))
    }

    static func validateSecret(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        let dataPath = Path("data")
        let data = ctx.object(obj["data"], dataPath)?.objectValue ?? [:]
        var total = 0
        var decoded: [String: [UInt8]] = [:]
        for (key, value) in data {
            for msg in NameValidation.isConfigMapKey(key) { ctx.add(.invalid(dataPath.key(key), key, msg)) }
            if let bytes = decodeBase64(value, dataPath.key(key), ctx: &ctx) {
                decoded[key] = bytes
                total += bytes.count
            }
        }
        if total > maxSecretSize {
            ctx.add(.tooLong(dataPath, maxSecretSize))
        }
        // stringData is merged into data by defaulting; anything left here is of the wrong type.
        _ = ctx.stringMap(obj["stringData"], Path("stringData"))
        let type = ctx.string(obj["type"], Path("type")) ?? ""
        let annotations = obj["metadata"]?["annotations"]
        switch type {
        case "kubernetes.io/service-account-token":
            if (annotations?["kubernetes.io/service-account.name"]?.stringValue ?? "").isEmpty {
                ctx.add(.required(Path("metadata", "annotations").key("kubernetes.io/service-account.name")))
            }
        case "kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson":
            let key = type == "kubernetes.io/dockercfg" ? ".dockercfg" : ".dockerconfigjson"
            guard let bytes = decoded[key] else {
                ctx.add(.required(dataPath.key(key)))
                break
            }
            do {
                let parsed = try JSON.parse(bytes)
                if parsed.objectValue == nil && !parsed.isNull {
                    ctx.add(.invalid(dataPath.key(key), "<secret contents redacted>",
                                     "json: cannot unmarshal \(parsed.typeName) into Go value of type map[string]interface {}"))
                }
            } catch {
                ctx.add(.invalid(dataPath.key(key), "<secret contents redacted>", error.message))
            }
        case "kubernetes.io/basic-auth":
            if data["username"] == nil && data["password"] == nil {
                ctx.add(.required(dataPath.key("username")))
                ctx.add(.required(dataPath.key("password")))
            }
        case "kubernetes.io/ssh-auth":
            if (decoded["ssh-privatekey"] ?? []).isEmpty { ctx.add(.required(dataPath.key("ssh-privatekey"))) }
        case "kubernetes.io/tls":
            if data["tls.crt"] == nil { ctx.add(.required(dataPath.key("tls.crt"))) }
            if data["tls.key"] == nil { ctx.add(.required(dataPath.key("tls.key"))) }
        default:
            break
        }
        _ = ctx.bool(obj["immutable"], Path("immutable"))
    }

    /// Secret and binaryData values are base64 in JSON; Go's decoder rejects bad input while decoding.
    static func decodeBase64(_ v: JSON, _ p: Path, ctx: inout Context) -> [UInt8]? {
        if v.isNull { return [] }
        guard let s = v.stringValue else {
            ctx.add(.wrongType(p, expected: "string", actual: v))
            return nil
        }
        switch Base64.decode(s) {
        case .success(let bytes): return bytes
        case .failure(let offset):
            ctx.add(FieldError(kind: .typeInvalid, field: p.text, value: .omitted,
                               detail: "illegal base64 data at input byte \(offset.position)"))
            return nil
        }
    }

    private static func decodedBase64Length(_ v: JSON, _ p: Path, ctx: inout Context) -> Int {
        decodeBase64(v, p, ctx: &ctx)?.count ?? 0
    }

    // MARK: Namespace and ServiceAccount

    static func validateNamespace(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: false, rule: .dns1123Label, ctx: &ctx)
        let p = Path("spec", "finalizers")
        let spec = ctx.object(obj["spec"], Path("spec"))
        for f in ctx.stringList(spec?["finalizers"], p) ?? [] {
            for msg in NameValidation.isQualifiedName(f) { ctx.add(.invalid(p, f, msg)) }
            validateKubeFinalizerName(f, p, ctx: &ctx)
        }
    }

    static func validateServiceAccount(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        _ = ctx.objects(obj["secrets"], Path("secrets"))
        _ = ctx.objects(obj["imagePullSecrets"], Path("imagePullSecrets"))
        _ = ctx.bool(obj["automountServiceAccountToken"], Path("automountServiceAccountToken"))
    }

    // MARK: Endpoints and EndpointSlice

    static func validateEndpoints(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        let p = Path("subsets")
        for (i, subset) in ctx.objects(obj["subsets"], p) {
            let sp = p.index(i)
            let addresses = ctx.objects(subset["addresses"], sp.child("addresses"))
            let notReady = ctx.objects(subset["notReadyAddresses"], sp.child("notReadyAddresses"))
            if addresses.isEmpty && notReady.isEmpty {
                ctx.add(.required(sp, "must specify `addresses` or `notReadyAddresses`"))
            }
            for (j, a) in addresses { validateEndpointAddress(a, sp.child("addresses").index(j), ctx: &ctx) }
            for (j, a) in notReady { validateEndpointAddress(a, sp.child("notReadyAddresses").index(j), ctx: &ctx) }
            let ports = ctx.objects(subset["ports"], sp.child("ports"))
            for (j, port) in ports {
                let pp = sp.child("ports").index(j)
                let name = ctx.string(port["name"], pp.child("name")) ?? ""
                if ports.count > 1 && name.isEmpty {
                    ctx.add(.required(pp.child("name")))
                } else if !name.isEmpty {
                    for msg in NameValidation.isDNS1123Label(name) { ctx.add(.invalid(pp.child("name"), name, msg)) }
                }
                let number = ctx.int(port["port"], pp.child("port")) ?? 0
                for msg in NameValidation.isValidPortNum(number) { ctx.add(.invalid(pp.child("port"), number, msg)) }
                let proto = ctx.string(port["protocol"], pp.child("protocol")) ?? ""
                if proto.isEmpty {
                    ctx.add(.required(pp.child("protocol")))
                } else if !supportedPortProtocols.contains(proto) {
                    ctx.add(.notSupported(pp.child("protocol"), .string(proto), supportedPortProtocols))
                }
                if let ap = ctx.string(port["appProtocol"], pp.child("appProtocol")) {
                    for msg in NameValidation.isQualifiedName(ap) { ctx.add(.invalid(pp.child("appProtocol"), ap, msg)) }
                }
            }
        }
    }

    private static func validateEndpointAddress(_ a: JSON, _ p: Path, ctx: inout Context) {
        let ip = ctx.string(a["ip"], p.child("ip")) ?? ""
        for msg in NameValidation.isValidIP(ip) { ctx.add(.invalid(p.child("ip"), ip, msg)) }
        if let hostname = ctx.string(a["hostname"], p.child("hostname")), !hostname.isEmpty {
            for msg in NameValidation.isDNS1123Label(hostname) { ctx.add(.invalid(p.child("hostname"), hostname, msg)) }
        }
        if let node = ctx.string(a["nodeName"], p.child("nodeName")) {
            for msg in NameValidation.isDNS1123Subdomain(node) { ctx.add(.invalid(p.child("nodeName"), node, msg)) }
        }
        _ = ctx.object(a["targetRef"], p.child("targetRef"))
        validateNonSpecialIP(ip, p.child("ip"), ctx: &ctx)
    }

    static func validateEndpointSlice(_ obj: JSON, update: Bool, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        let addressType = ctx.string(obj["addressType"], Path("addressType")) ?? ""
        var supported = ["FQDN", "IPv4", "IPv6"]
        if update { supported = ["FQDN", "IP", "IPv4", "IPv6"] }
        if addressType.isEmpty {
            ctx.add(.required(Path("addressType")))
        } else if !supported.contains(addressType) {
            ctx.add(.notSupported(Path("addressType"), .string(addressType), supported))
        }

        let ep = Path("endpoints")
        let endpoints = ctx.objects(obj["endpoints"], ep)
        if endpoints.count > 1000 {
            ctx.add(.tooMany(ep, actual: endpoints.count, max: 1000))
        } else {
            for (i, e) in endpoints {
                let ip = ep.index(i)
                let ap = ip.child("addresses")
                let addresses = ctx.stringList(e["addresses"], ap) ?? []
                if addresses.isEmpty {
                    ctx.add(.required(ap, "must contain at least 1 address"))
                } else if addresses.count > 100 {
                    ctx.add(.tooMany(ap, actual: addresses.count, max: 100))
                }
                for (j, address) in addresses.enumerated() {
                    switch addressType {
                    case "IP", "IPv4", "IPv6":
                        guard let parsed = NameValidation.parseIP(address) else {
                            ctx.add(.invalid(ap.index(j), address, NameValidation.invalidIPMessage))
                            continue
                        }
                        if addressType == "IPv4" && !parsed.isIPv4 || addressType == "IPv6" && parsed.bytes.count != 16 {
                            ctx.add(.invalid(ap.index(j), address, addressType == "IPv4" ? "must be an IPv4 address" : "must be an IPv6 address"))
                        }
                        if addressType != "IP" { validateNonSpecialIP(address, ap.index(j), ctx: &ctx) }
                    case "FQDN":
                        validateFQDN(address, ap.index(j), ctx: &ctx)
                    default:
                        break
                    }
                }
                for key in ["deprecatedTopology"] {
                    let tp = ip.child(key)
                    if let topology = e[key]?.objectValue, topology.count > 16 {
                        ctx.add(.tooMany(tp, actual: topology.count, max: 16))
                    }
                    validateLabels(e[key], tp, ctx: &ctx)
                }
                if let hostname = ctx.string(e["hostname"], ip.child("hostname")) {
                    for msg in NameValidation.isDNS1123Label(hostname) { ctx.add(.invalid(ip.child("hostname"), hostname, msg)) }
                }
                if let conditions = ctx.object(e["conditions"], ip.child("conditions")) {
                    for key in ["ready", "serving", "terminating"] { _ = ctx.bool(conditions[key], ip.child("conditions", key)) }
                }
                _ = ctx.string(e["nodeName"], ip.child("nodeName"))
                _ = ctx.string(e["zone"], ip.child("zone"))
                _ = ctx.object(e["targetRef"], ip.child("targetRef"))
            }
        }

        let pp = Path("ports")
        let ports = ctx.objects(obj["ports"], pp)
        if ports.count > 100 {
            ctx.add(.tooMany(pp, actual: ports.count, max: 100))
            return
        }
        var names = Set<String>()
        for (i, port) in ports {
            let ip = pp.index(i)
            let name = ctx.string(port["name"], ip.child("name")) ?? ""
            if !name.isEmpty {
                for msg in NameValidation.isDNS1123Label(name) { ctx.add(.invalid(ip.child("name"), name, msg)) }
            }
            if names.contains(name) {
                ctx.add(.duplicate(ip.child("name"), .string(name)))
            } else {
                names.insert(name)
            }
            if let proto = ctx.string(port["protocol"], ip.child("protocol")) {
                if !supportedPortProtocols.contains(proto) {
                    ctx.add(.notSupported(ip.child("protocol"), .string(proto), supportedPortProtocols))
                }
            } else {
                ctx.add(.required(ip.child("protocol")))
            }
            if let ap = ctx.string(port["appProtocol"], ip.child("appProtocol")) {
                for msg in NameValidation.isQualifiedName(ap) { ctx.add(.invalid(ip.child("appProtocol"), ap, msg)) }
            }
            _ = ctx.int(port["port"], ip.child("port"))
        }
    }

    /// IsFullyQualifiedDomainName: a trailing dot is allowed; at least two labels.
    private static func validateFQDN(_ value: String, _ p: Path, ctx: inout Context) {
        var name = value
        if name.isEmpty {
            ctx.add(.required(p))
            return
        }
        if name.hasSuffix(".") { name.removeLast() }
        let errs = NameValidation.isDNS1123Subdomain(name)
        if !errs.isEmpty {
            ctx.add(.invalid(p, name, errs.joined(separator: ",")))
            return
        }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if labels.count < 2 {
            ctx.add(.invalid(p, name, "should be a domain with at least two segments separated by dots"))
            return
        }
        for label in labels {
            let errs = NameValidation.isDNS1123Label(label)
            if !errs.isEmpty {
                ctx.add(.invalid(p, label, errs.joined(separator: ",")))
                return
            }
        }
    }

    // MARK: Lease

    static func validateLease(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, kubeFinalizerCheck: false, ctx: &ctx)
        validateLeaseSpec(obj, ctx: &ctx)
    }

    static func validateLeaseSpec(_ obj: JSON, ctx: inout Context) {
        let p = Path("spec")
        guard let spec = ctx.object(obj["spec"], p) else { return }
        if let d = ctx.int(spec["leaseDurationSeconds"], p.child("leaseDurationSeconds")), d <= 0 {
            ctx.add(.invalid(p.child("leaseDurationSeconds"), d, "must be greater than 0"))
        }
        if let t = ctx.int(spec["leaseTransitions"], p.child("leaseTransitions")), t < 0 {
            ctx.add(.invalid(p.child("leaseTransitions"), t, "must be greater than or equal to 0"))
        }
        let strategy = ctx.string(spec["strategy"], p.child("strategy"))
        if let strategy {
            let sp = p.child("strategy").child("strategy")
            if !strategy.contains("/") {
                if strategy != "OldestEmulationVersion" {
                    ctx.add(.notSupported(sp, .string(strategy), ["OldestEmulationVersion"]))
                }
            } else {
                for msg in NameValidation.isQualifiedName(strategy) { ctx.add(.invalid(sp, strategy, msg)) }
            }
        }
        if let holder = ctx.string(spec["preferredHolder"], p.child("preferredHolder")), !holder.isEmpty, (strategy ?? "").isEmpty {
            ctx.add(.forbidden(p.child("preferredHolder"), "may only be specified if `strategy` is defined"))
        }
        _ = ctx.string(spec["holderIdentity"], p.child("holderIdentity"))
        _ = ctx.string(spec["acquireTime"], p.child("acquireTime"))
        _ = ctx.string(spec["renewTime"], p.child("renewTime"))
    }

    // MARK: Event

    /// legacyValidateEvent: all that core/v1 applies to Events, on create and update.
    static func validateEvent(_ obj: JSON, ctx: inout Context) {
        let meta = ctx.object(obj["metadata"], Path("metadata"))
        let namespace = meta?["namespace"]?.stringValue ?? ""
        let involved = ctx.object(obj["involvedObject"], Path("involvedObject"))
        let involvedNamespace = ctx.string(involved?["namespace"], Path("involvedObject", "namespace")) ?? ""
        let eventTime = ctx.string(obj["eventTime"], Path("eventTime")) ?? ""
        let nsPath = Path("involvedObject", "namespace")
        if eventTime.isEmpty {
            if involvedNamespace.isEmpty {
                if !namespace.isEmpty && namespace != "default" {
                    ctx.add(.invalid(nsPath, involvedNamespace, "does not match event.namespace"))
                }
            } else if namespace != involvedNamespace {
                ctx.add(.invalid(nsPath, involvedNamespace, "does not match event.namespace"))
            }
        } else {
            if involvedNamespace.isEmpty && namespace != "default" && namespace != "kube-system" {
                ctx.add(.invalid(nsPath, involvedNamespace, "does not match event.namespace"))
            }
            let controller = ctx.string(obj["reportingComponent"], Path("reportingController")) ?? ""
            if controller.isEmpty { ctx.add(.required(Path("reportingController"))) }
            for msg in NameValidation.isQualifiedName(controller) { ctx.add(.invalid(Path("reportingController"), controller, msg)) }
            let instance = ctx.string(obj["reportingInstance"], Path("reportingInstance")) ?? ""
            if instance.isEmpty { ctx.add(.required(Path("reportingInstance"))) }
            if instance.utf8.count > 128 { ctx.add(.invalid(Path("reportingInstance"), "", "can have at most 128 characters")) }
            let action = ctx.string(obj["action"], Path("action")) ?? ""
            if action.isEmpty { ctx.add(.required(Path("action"))) }
            if action.utf8.count > 128 { ctx.add(.invalid(Path("action"), "", "can have at most 128 characters")) }
            let reason = ctx.string(obj["reason"], Path("reason")) ?? ""
            if reason.isEmpty { ctx.add(.required(Path("reason"))) }
            if reason.utf8.count > 128 { ctx.add(.invalid(Path("reason"), "", "can have at most 128 characters")) }
            let message = ctx.string(obj["message"], Path("message")) ?? ""
            if message.utf8.count > 1024 { ctx.add(.invalid(Path("message"), "", "can have at most 1024 characters")) }
        }
        for msg in NameValidation.isDNS1123Subdomain(namespace) {
            ctx.add(.invalid(Path("namespace"), namespace, msg))
        }
        _ = ctx.int(obj["count"], Path("count"))
        _ = ctx.string(obj["type"], Path("type"))
    }

    // MARK: Node

    static func validateNode(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: false, rule: .dns1123Subdomain, ctx: &ctx)
        let spec = ctx.object(obj["spec"], Path("spec")) ?? .object([:])
        // Upstream puts taint errors under "metadata.taints".
        validateTaints(spec["taints"], Path("metadata", "taints"), ctx: &ctx)
        let cidrsPath = Path("spec", "podCIDRs")
        let cidrs = ctx.stringList(spec["podCIDRs"], cidrsPath) ?? []
        for (i, cidr) in cidrs.enumerated() where NameValidation.parseCIDR(cidr) == nil {
            ctx.add(.invalid(cidrsPath.index(i), cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
        }
        var seen = Set<String>()
        for (i, cidr) in cidrs.enumerated() {
            if seen.contains(cidr) { ctx.add(.duplicate(cidrsPath.index(i), .string(cidr))) }
            seen.insert(cidr)
        }
        _ = ctx.bool(spec["unschedulable"], Path("spec", "unschedulable"))
        _ = ctx.string(spec["providerID"], Path("spec", "providerID"))
    }

    private static func validateTaints(_ v: JSON?, _ p: Path, ctx: inout Context) {
        var unique: [String: Set<String>] = [:]
        for (i, taint) in ctx.objects(v, p) {
            let ip = p.index(i)
            let key = ctx.string(taint["key"], ip.child("key")) ?? ""
            for msg in NameValidation.isQualifiedName(key) { ctx.add(.invalid(ip.child("key"), key, msg)) }
            let value = ctx.string(taint["value"], ip.child("value")) ?? ""
            let errs = NameValidation.isValidLabelValue(value)
            if !errs.isEmpty { ctx.add(.invalid(ip.child("value"), value, errs.joined(separator: ";"))) }
            let effect = ctx.string(taint["effect"], ip.child("effect")) ?? ""
            if effect.isEmpty {
                ctx.add(.required(ip.child("effect")))
            } else if !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(effect) {
                ctx.add(.notSupported(ip.child("effect"), .string(effect), ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
            }
            if unique[effect]?.contains(key) == true {
                ctx.add(FieldError(kind: .duplicate, field: ip.text,
                                   value: .goSyntax("core.Taint{Key:\(GoSyntax.quote(key)), Value:\(GoSyntax.quote(value)), Effect:\(GoSyntax.quote(effect)), TimeAdded:<nil>}"),
                                   detail: "taints must be unique by key and effect pair"))
                continue
            }
            unique[effect, default: []].insert(key)
        }
    }

    static func validateNodeUpdate(new: JSON, old: JSON, ctx: inout Context) {
        validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
        let newSpec = new["spec"] ?? .object([:])
        let oldSpec = old["spec"] ?? .object([:])
        let oldCIDRs = oldSpec["podCIDRs"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let newCIDRs = newSpec["podCIDRs"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !oldCIDRs.isEmpty {
            let msg = "node updates may not change podCIDR except from \"\" to valid"
            if oldCIDRs.count != newCIDRs.count {
                ctx.add(.forbidden(Path("spec", "podCIDRs"), msg))
            } else {
                for (i, c) in oldCIDRs.enumerated() where c != newCIDRs[i] {
                    ctx.add(.forbidden(Path("spec", "podCIDRs"), msg))
                }
            }
        }
        let oldProvider = oldSpec["providerID"]?.stringValue ?? ""
        if !oldProvider.isEmpty && oldProvider != (newSpec["providerID"]?.stringValue ?? "") {
            ctx.add(.forbidden(Path("spec", "providerID"), "node updates may not change providerID except from \"\" to valid"))
        }
        validateTaints(newSpec["taints"], Path("metadata", "taints"), ctx: &ctx)
    }
}

extension Validation {
    /// Standard base64 with padding, as Go's encoding/json decodes []byte fields.
    enum Base64 {
        struct Failure: Error { var position: Int }

        private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        private static let table: [UInt8: UInt8] = {
            var t: [UInt8: UInt8] = [:]
            for (i, c) in alphabet.enumerated() { t[c] = UInt8(i) }
            return t
        }()

        static func decode(_ s: String) -> Result<[UInt8], Failure> {
            // Go's decoder skips CR and LF.
            let input = Array(s.utf8).filter { $0 != 0x0a && $0 != 0x0d }
            var out: [UInt8] = []
            out.reserveCapacity(input.count / 4 * 3)
            var i = 0
            while i < input.count {
                var quantum: [UInt8] = []
                var padding = 0
                for j in 0..<4 {
                    let pos = i + j
                    guard pos < input.count else {
                        // An incomplete final quantum: report the end of the input.
                        return .failure(Failure(position: input.count))
                    }
                    let c = input[pos]
                    if c == UInt8(ascii: "=") {
                        guard j >= 2 else { return .failure(Failure(position: pos)) }
                        padding += 1
                        continue
                    }
                    guard padding == 0, let v = table[c] else { return .failure(Failure(position: pos)) }
                    quantum.append(v)
                }
                let bits = quantum.reduce(UInt32(0)) { $0 << 6 | UInt32($1) } << (6 * UInt32(4 - quantum.count))
                let bytes = [UInt8(bits >> 16 & 0xff), UInt8(bits >> 8 & 0xff), UInt8(bits & 0xff)]
                out.append(contentsOf: bytes.prefix(quantum.count - 1))
                i += 4
                if padding > 0 && i < input.count { return .failure(Failure(position: i)) }
            }
            return .success(out)
        }

        static func encode(_ bytes: [UInt8]) -> String {
            var out: [UInt8] = []
            var i = 0
            while i < bytes.count {
                let chunk = Array(bytes[i..<min(i + 3, bytes.count)])
                let b0 = UInt32(chunk[0])
                let b1 = chunk.count > 1 ? UInt32(chunk[1]) : 0
                let b2 = chunk.count > 2 ? UInt32(chunk[2]) : 0
                let n = b0 << 16 | b1 << 8 | b2
                out.append(alphabet[Int(n >> 18 & 63)])
                out.append(alphabet[Int(n >> 12 & 63)])
                out.append(chunk.count > 1 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
                out.append(chunk.count > 2 ? alphabet[Int(n & 63)] : UInt8(ascii: "="))
                i += 3
            }
            return String(decoding: out, as: UTF8.self)
        }
    }
}
