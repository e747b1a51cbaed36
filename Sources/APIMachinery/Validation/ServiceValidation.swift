import Collections

// Service validation after pkg/apis/core/validation (ValidateService, ValidateServiceUpdate)
// and the IP-family checks the service registry makes before allocating (alloc.go).

extension Validation {
    static let supportedServiceTypes = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]

    /// The fields of a Service spec that the checks below look at, read once with type checks.
    private struct ServiceSpec {
        var type = ""
        var clusterIP = ""
        var clusterIPs: [String] = []
        var ipFamilies: [String] = []
        var ipFamilyPolicy: String?
        var selector: [(key: String, value: String)]?
        var externalName = ""
        var externalTrafficPolicy = ""
        var healthCheckNodePort: Int64 = 0
        var loadBalancerClass: String?
        var allocateLoadBalancerNodePorts: Bool?

        var isHeadless: Bool { clusterIPs.count == 1 && clusterIPs[0] == "None" }
        var externallyAccessible: Bool {
            type == "LoadBalancer" || type == "NodePort" || (type == "ClusterIP" && hasExternalIPs)
        }
        var hasExternalIPs = false
        var needsHealthCheck: Bool { type == "LoadBalancer" && externalTrafficPolicy == "Local" }

        init(_ spec: JSON, _ p: Path, ctx: inout Context) {
            type = ctx.string(spec["type"], p.child("type")) ?? ""
            clusterIP = ctx.string(spec["clusterIP"], p.child("clusterIP")) ?? ""
            clusterIPs = ctx.stringList(spec["clusterIPs"], p.child("clusterIPs")) ?? []
            ipFamilies = ctx.stringList(spec["ipFamilies"], p.child("ipFamilies")) ?? []
            ipFamilyPolicy = ctx.string(spec["ipFamilyPolicy"], p.child("ipFamilyPolicy"))
            selector = ctx.stringMap(spec["selector"], p.child("selector"))
            externalName = ctx.string(spec["externalName"], p.child("externalName")) ?? ""
            externalTrafficPolicy = ctx.string(spec["externalTrafficPolicy"], p.child("externalTrafficPolicy")) ?? ""
            healthCheckNodePort = ctx.int(spec["healthCheckNodePort"], p.child("healthCheckNodePort")) ?? 0
            loadBalancerClass = ctx.string(spec["loadBalancerClass"], p.child("loadBalancerClass"))
            allocateLoadBalancerNodePorts = ctx.bool(spec["allocateLoadBalancerNodePorts"], p.child("allocateLoadBalancerNodePorts"))
            hasExternalIPs = !(spec["externalIPs"]?.arrayValue?.isEmpty ?? true)
        }

        /// Reads without recording errors (for the "old" object of an update).
        init(quiet spec: JSON) {
            var scratch = Context()
            self.init(spec, Path("spec"), ctx: &scratch)
        }
    }

    /// The checks the registry makes while initialising IP families, before validation proper.
    /// On a single-stack IPv4 lab cluster, dual-stack and IPv6 requests are refused here.
    static func serviceAllocationErrors(_ obj: JSON) -> [FieldError] {
        var ctx = Context()
        let spec = obj["spec"] ?? .object([:])
        let s = ServiceSpec(quiet: spec)
        if s.type == "ExternalName" { return [] }
        let headlessSelectorless = s.clusterIP == "None" && (s.selector ?? []).isEmpty
        if headlessSelectorless { return [] }
        if s.ipFamilyPolicy == "RequireDualStack" {
            ctx.add(.invalid(Path("spec", "ipFamilyPolicy"), "RequireDualStack", "this cluster is not configured for dual-stack services"))
        }
        for (i, family) in s.ipFamilies.enumerated() where family != "IPv4" {
            ctx.add(.invalid(Path("spec", "ipFamilies").index(i), family, "not configured on this cluster"))
        }
        return ctx.errors
    }

    /// ValidateService.
    static func validateService(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1035Label, ctx: &ctx)
        let metaPath = Path("metadata")
        let annotations = obj["metadata"]?["annotations"]
        if let mode = annotations?["service.kubernetes.io/topology-mode"]?.stringValue,
           let hints = annotations?["service.kubernetes.io/topology-aware-hints"]?.stringValue, mode != hints {
            ctx.add(.invalid(metaPath.child("annotations").key("service.kubernetes.io/topology-mode"), mode,
                             "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified"))
        }

        let p = Path("spec")
        let spec = ctx.object(obj["spec"], p) ?? .object([:])
        let s = ServiceSpec(spec, p, ctx: &ctx)
        let ports = ctx.objects(spec["ports"], p.child("ports"))

        if ports.isEmpty && !s.isHeadless && s.type != "ExternalName" {
            ctx.add(.required(p.child("ports")))
        }
        switch s.type {
        case "LoadBalancer":
            if s.isHeadless {
                ctx.add(.invalid(p.child("clusterIPs").index(0), s.clusterIPs[0], "may not be set to 'None' for LoadBalancer services"))
            }
        case "NodePort":
            if s.isHeadless {
                ctx.add(.invalid(p.child("clusterIPs").index(0), s.clusterIPs[0], "may not be set to 'None' for NodePort services"))
            }
        case "ExternalName":
            if !s.clusterIPs.isEmpty { ctx.add(.forbidden(p.child("clusterIPs"), "may not be set for ExternalName services")) }
            if !s.ipFamilies.isEmpty { ctx.add(.forbidden(p.child("ipFamilies"), "may not be set for ExternalName services")) }
            if s.ipFamilyPolicy != nil { ctx.add(.forbidden(p.child("ipFamilyPolicy"), "may not be set for ExternalName services")) }
            var cname = s.externalName
            if cname.hasSuffix(".") { cname.removeLast() }
            if cname.isEmpty {
                ctx.add(.required(p.child("externalName")))
            } else {
                for msg in NameValidation.isDNS1123Subdomain(cname) { ctx.add(.invalid(p.child("externalName"), cname, msg)) }
            }
        default:
            break
        }

        var portNames = Set<String>()
        for (i, port) in ports {
            validateServicePort(port, requireName: ports.count > 1, names: &portNames, p.child("ports").index(i), ctx: &ctx)
        }
        if let selector = s.selector {
            validateLabels(.object(JSONObject(uniqueKeysWithValues: selector.map { ($0.key, JSON.string($0.value)) })), p.child("selector"), ctx: &ctx)
        }

        let affinity = ctx.string(spec["sessionAffinity"], p.child("sessionAffinity")) ?? ""
        if affinity.isEmpty {
            ctx.add(.required(p.child("sessionAffinity")))
        } else if affinity != "ClientIP" && affinity != "None" {
            ctx.add(.notSupported(p.child("sessionAffinity"), .string(affinity), ["ClientIP", "None"]))
        }
        let configPath = p.child("sessionAffinityConfig")
        let config = ctx.object(spec["sessionAffinityConfig"], configPath)
        if affinity == "ClientIP" {
            let clientIP = config.flatMap { ctx.object($0["clientIP"], configPath.child("clientIP")) }
            let timeout = clientIP.flatMap { ctx.int($0["timeoutSeconds"], configPath.child("clientIP", "timeoutSeconds")) }
            if config == nil {
                ctx.add(.required(configPath, "when session affinity type is ClientIP"))
            } else if clientIP == nil {
                ctx.add(.required(configPath.child("clientIP"), "when session affinity type is ClientIP"))
            } else if let timeout {
                if timeout <= 0 || timeout > 86400 {
                    ctx.add(.invalid(configPath.child("clientIP", "timeoutSeconds"), timeout, "must be greater than 0 and less than 86400"))
                }
            } else {
                ctx.add(.required(configPath.child("clientIP", "timeoutSeconds"), "when session affinity type is ClientIP"))
            }
        } else if affinity == "None" && config != nil {
            ctx.add(.forbidden(configPath, "must not be set when session affinity is None"))
        }

        ctx.add(clusterIPsRelatedFieldErrors(s))

        for (i, ip) in (ctx.stringList(spec["externalIPs"], p.child("externalIPs")) ?? []).enumerated() {
            let ipPath = p.child("externalIPs").index(i)
            let errs = NameValidation.isValidIP(ip)
            if errs.isEmpty {
                validateNonSpecialIP(ip, ipPath, ctx: &ctx)
            } else {
                for msg in errs { ctx.add(.invalid(ipPath, ip, msg)) }
            }
        }

        if s.type.isEmpty {
            ctx.add(.required(p.child("type")))
        } else if !supportedServiceTypes.contains(s.type) {
            ctx.add(.notSupported(p.child("type"), .string(s.type), supportedServiceTypes))
        }
        if s.type == "ClusterIP" {
            for (i, port) in ports where (port["nodePort"]?.intValue ?? 0) != 0 {
                ctx.add(.forbidden(p.child("ports").index(i).child("nodePort"), "may not be used when `type` is 'ClusterIP'"))
            }
        }
        var seenNodePorts = Set<String>()
        for (i, port) in ports {
            guard let np = port["nodePort"]?.intValue, np != 0 else { continue }
            let key = "\(port["protocol"]?.stringValue ?? "")/\(np)"
            if seenNodePorts.contains(key) { ctx.add(.duplicate(p.child("ports").index(i).child("nodePort"), .int(np))) }
            seenNodePorts.insert(key)
        }
        var seenPorts = Set<String>()
        for (i, port) in ports {
            let proto = port["protocol"]?.stringValue ?? ""
            let number = port["port"]?.intValue ?? 0
            let key = "\(proto)/\(number)"
            if seenPorts.contains(key) {
                ctx.add(.duplicate(p.child("ports").index(i), .goSyntax(
                    "core.ServicePort{Name:\"\", Protocol:\(GoSyntax.quote(proto)), AppProtocol:(*string)(nil), Port:\(number), TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}")))
            }
            seenPorts.insert(key)
        }

        let ranges = ctx.stringList(spec["loadBalancerSourceRanges"], p.child("loadBalancerSourceRanges")) ?? []
        if !ranges.isEmpty {
            // Upstream spells this path with a capital L.
            let rp = p.child("LoadBalancerSourceRanges")
            if s.type != "LoadBalancer" { ctx.add(.forbidden(rp, "may only be used when `type` is 'LoadBalancer'")) }
            for (i, r) in ranges.enumerated() {
                let value = trimSpace(r)
                if NameValidation.parseCIDR(value) == nil {
                    ctx.add(.invalid(rp.index(i), value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
                }
            }
        } else if let val = annotations?["service.beta.kubernetes.io/load-balancer-source-ranges"]?.stringValue {
            let ap = metaPath.child("annotations").key("service.beta.kubernetes.io/load-balancer-source-ranges")
            if s.type != "LoadBalancer" { ctx.add(.forbidden(ap, "may only be used when `type` is 'LoadBalancer'")) }
            let trimmed = trimSpace(val)
            if !trimmed.isEmpty {
                for cidr in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
                    let value = trimSpace(String(cidr))
                    if NameValidation.parseCIDR(value) == nil {
                        ctx.add(.invalid(ap, value, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
                    }
                }
            }
        }

        if s.allocateLoadBalancerNodePorts != nil && s.type != "LoadBalancer" {
            ctx.add(.forbidden(p.child("allocateLoadBalancerNodePorts"), "may only be used when `type` is 'LoadBalancer'"))
        }
        if s.type == "LoadBalancer" && s.allocateLoadBalancerNodePorts == nil {
            // Upstream reports this one without the "spec." prefix.
            ctx.add(.required(Path("allocateLoadBalancerNodePorts")))
        }

        if s.type == "LoadBalancer" {
            if let cls = s.loadBalancerClass {
                for msg in NameValidation.isQualifiedName(cls) { ctx.add(.invalid(p.child("loadBalancerClass"), cls, msg)) }
            }
        } else if s.loadBalancerClass != nil {
            ctx.add(.forbidden(p.child("loadBalancerClass"), "may only be used when `type` is 'LoadBalancer'"))
        }

        if !s.externallyAccessible {
            if !s.externalTrafficPolicy.isEmpty {
                ctx.add(.invalid(p.child("externalTrafficPolicy"), s.externalTrafficPolicy, "may only be set for externally-accessible services"))
            }
        } else if s.externalTrafficPolicy.isEmpty {
            ctx.add(.required(p.child("externalTrafficPolicy")))
        } else if s.externalTrafficPolicy != "Cluster" && s.externalTrafficPolicy != "Local" {
            ctx.add(.notSupported(p.child("externalTrafficPolicy"), .string(s.externalTrafficPolicy), ["Cluster", "Local"]))
        }
        if !s.needsHealthCheck {
            if s.healthCheckNodePort != 0 {
                ctx.add(.invalid(p.child("healthCheckNodePort"), s.healthCheckNodePort,
                                 "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"))
            }
        } else if s.healthCheckNodePort != 0 {
            // A zero port is allocated after validation by the node-port allocator, so it is not an error here.
            for msg in NameValidation.isValidPortNum(s.healthCheckNodePort) {
                ctx.add(.invalid(p.child("healthCheckNodePort"), s.healthCheckNodePort, msg))
            }
        }

        let itp = ctx.string(spec["internalTrafficPolicy"], p.child("internalTrafficPolicy"))
        if itp == nil && ["NodePort", "LoadBalancer", "ClusterIP"].contains(s.type) {
            ctx.add(.required(p.child("internalTrafficPolicy")))
        }
        if let itp, itp != "Cluster" && itp != "Local" {
            ctx.add(.notSupported(p.child("internalTrafficPolicy"), .string(itp), ["Cluster", "Local"]))
        }
        if let td = ctx.string(spec["trafficDistribution"], p.child("trafficDistribution")), td != "PreferClose" {
            ctx.add(.notSupported(p.child("trafficDistribution"), .string(td), ["PreferClose"]))
        }
        _ = ctx.bool(spec["publishNotReadyAddresses"], p.child("publishNotReadyAddresses"))
        _ = ctx.string(spec["loadBalancerIP"], p.child("loadBalancerIP"))
    }

    private static func validateServicePort(_ port: JSON, requireName: Bool, names: inout Set<String>, _ p: Path, ctx: inout Context) {
        let name = ctx.string(port["name"], p.child("name")) ?? ""
        if requireName && name.isEmpty {
            ctx.add(.required(p.child("name")))
        } else if !name.isEmpty {
            for msg in NameValidation.isDNS1123Label(name) { ctx.add(.invalid(p.child("name"), name, msg)) }
            if names.contains(name) {
                ctx.add(.duplicate(p.child("name"), .string(name)))
            } else {
                names.insert(name)
            }
        }
        let number = ctx.int(port["port"], p.child("port")) ?? 0
        for msg in NameValidation.isValidPortNum(number) { ctx.add(.invalid(p.child("port"), number, msg)) }
        let proto = ctx.string(port["protocol"], p.child("protocol")) ?? ""
        if proto.isEmpty {
            ctx.add(.required(p.child("protocol")))
        } else if !supportedPortProtocols.contains(proto) {
            ctx.add(.notSupported(p.child("protocol"), .string(proto), supportedPortProtocols))
        }
        validatePortNumOrName(port["targetPort"], p.child("targetPort"), ctx: &ctx)
        if let ap = ctx.string(port["appProtocol"], p.child("appProtocol")) {
            for msg in NameValidation.isQualifiedName(ap) { ctx.add(.invalid(p.child("appProtocol"), ap, msg)) }
        }
        _ = ctx.int(port["nodePort"], p.child("nodePort"))
    }

    /// ValidateServiceClusterIPsRelatedFields.
    private static func clusterIPsRelatedFieldErrors(_ s: ServiceSpec) -> [FieldError] {
        if s.type == "ExternalName" { return [] }
        var errs: [FieldError] = []
        let p = Path("spec")
        let ipsPath = p.child("clusterIPs")
        let ipsValue = BadValue.goSyntax(GoSyntax.stringSlice(s.clusterIPs))
        if !s.clusterIP.isEmpty {
            if s.clusterIPs.isEmpty {
                errs.append(.required(ipsPath))
            } else if s.clusterIPs[0] != s.clusterIP {
                errs.append(.invalid(ipsPath, ipsValue, "first value must match `clusterIP`"))
            }
        } else if !s.clusterIPs.isEmpty {
            errs.append(.invalid(ipsPath, ipsValue, "must be empty when `clusterIP` is not specified"))
        }
        var seen = Set<String>()
        for (i, family) in s.ipFamilies.enumerated() {
            if family != "IPv4" && family != "IPv6" {
                errs.append(.notSupported(p.child("ipFamilies").index(i), .string(family), ["IPv4", "IPv6"]))
            }
            if seen.contains(family) { errs.append(.duplicate(p.child("ipFamilies").index(i), .string(family))) }
            seen.insert(family)
        }
        if let policy = s.ipFamilyPolicy, !["PreferDualStack", "RequireDualStack", "SingleStack"].contains(policy) {
            errs.append(.notSupported(p.child("ipFamilyPolicy"), .string(policy), ["PreferDualStack", "RequireDualStack", "SingleStack"]))
        }
        var invalidIPs = false
        for (i, ip) in s.clusterIPs.enumerated() {
            if i == 0 && ip == "None" {
                if s.clusterIPs.count > 1 {
                    invalidIPs = true
                    errs.append(.invalid(ipsPath, ipsValue, "'None' must be the first and only value"))
                }
                continue
            }
            let msgs = NameValidation.isValidIP(ip)
            if !msgs.isEmpty { invalidIPs = true }
            for msg in msgs { errs.append(.invalid(ipsPath.index(i), ip, msg)) }
        }
        if s.clusterIPs.count > 2 {
            errs.append(.invalid(ipsPath, ipsValue, "may only hold up to 2 values"))
        }
        if invalidIPs { return errs }
        let parsed = s.clusterIPs.map { NameValidation.parseIP($0) }
        if s.clusterIPs.count > 1 {
            let v4 = parsed.filter { $0?.isIPv4 == true }.count
            let v6 = parsed.filter { $0?.isIPv4 == false }.count
            if !(v4 >= 1 && v6 >= 1) {
                errs.append(.invalid(ipsPath, ipsValue, "may specify no more than one IP for each IP family"))
            }
        }
        if !s.isHeadless && !s.clusterIPs.isEmpty && !s.ipFamilies.isEmpty {
            for (i, ip) in parsed.enumerated() where i < s.ipFamilies.count {
                guard let ip else { continue }
                if s.ipFamilies[i] == "IPv4" && !ip.isIPv4 {
                    errs.append(.invalid(ipsPath.index(i), s.clusterIPs[i], "expected an IPv4 value as indicated by `ipFamilies[\(i)]`"))
                }
                if s.ipFamilies[i] == "IPv6" && ip.isIPv4 {
                    errs.append(.invalid(ipsPath.index(i), s.clusterIPs[i], "expected an IPv6 value as indicated by `ipFamilies[\(i)]`"))
                }
            }
        }
        return errs
    }

    /// ValidateNonSpecialIP: endpoint and external IPs may not be unspecified, loopback or link-local.
    static func validateNonSpecialIP(_ value: String, _ p: Path, ctx: inout Context) {
        guard let ip = NameValidation.parseIP(value) else {
            ctx.add(.invalid(p, value, "must be a valid IP address"))
            return
        }
        if ip.isUnspecified { ctx.add(.invalid(p, value, "may not be unspecified (\(value))")) }
        if ip.isLoopback { ctx.add(.invalid(p, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)")) }
        if ip.isLinkLocalUnicast { ctx.add(.invalid(p, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)")) }
        if ip.isLinkLocalMulticast { ctx.add(.invalid(p, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")) }
    }

    /// ValidateServiceUpdate: cluster IPs and families may not change (except to or from
    /// ExternalName, or adding/removing a secondary), nor a LoadBalancer's class.
    static func validateServiceUpdate(new: JSON, old: JSON, ctx: inout Context) {
        validateObjectMetaUpdate(new: new, old: old, ctx: &ctx)
        let n = ServiceSpec(quiet: new["spec"] ?? .object([:]))
        let o = ServiceSpec(quiet: old["spec"] ?? .object([:]))
        let ipsPath = Path("spec", "clusterIPs")
        let newIPs = BadValue.goSyntax(GoSyntax.stringSlice(n.clusterIPs))
        if n.type != "ExternalName" && o.type != "ExternalName" && !(n.isHeadless && o.isHeadless) {
            if o.clusterIPs.count == n.clusterIPs.count {
                for (i, ip) in o.clusterIPs.enumerated() where ip != n.clusterIPs[i] {
                    ctx.add(.invalid(ipsPath.index(i), newIPs, "may not change once set"))
                }
            } else if o.clusterIPs.count > n.clusterIPs.count {
                if n.clusterIPs.isEmpty { ctx.add(.invalid(ipsPath.index(0), newIPs, "primary clusterIP can not be unset")) }
                if !o.clusterIPs.isEmpty && !n.clusterIPs.isEmpty && n.clusterIPs[0] != o.clusterIPs[0] {
                    ctx.add(.invalid(ipsPath.index(0), newIPs, "may not change once set"))
                }
                if n.clusterIPs.count == 1 && n.ipFamilyPolicy != "SingleStack" {
                    ctx.add(.invalid(Path("spec", "ipFamilyPolicy"), policyValue(n.ipFamilyPolicy),
                                     "must be set to 'SingleStack' when releasing the secondary clusterIP"))
                }
            } else if !o.clusterIPs.isEmpty && n.clusterIPs[0] != o.clusterIPs[0] {
                ctx.add(.invalid(ipsPath.index(0), newIPs, "may not change once set"))
            }
        }
        if n.type != "ExternalName" && o.type != "ExternalName" && n.isHeadless == o.isHeadless && !n.isHeadless {
            let famPath = Path("spec", "ipFamilies")
            let newFams = BadValue.goSyntax("[]core.IPFamily{" + n.ipFamilies.map(GoSyntax.quote).joined(separator: ", ") + "}")
            if o.ipFamilies.count == n.ipFamilies.count {
                for (i, f) in o.ipFamilies.enumerated() where f != n.ipFamilies[i] {
                    ctx.add(.invalid(famPath.index(0), newFams, "may not change once set"))
                }
            } else if o.ipFamilies.count > n.ipFamilies.count {
                if n.clusterIPs.isEmpty { ctx.add(.invalid(famPath.index(0), newFams, "primary ipFamily can not be unset")) }
                if !n.ipFamilies.isEmpty && n.ipFamilies[0] != o.ipFamilies[0] {
                    ctx.add(.invalid(famPath.index(0), newIPs, "may not change once set"))
                }
                if n.ipFamilies.count == 1 && n.ipFamilyPolicy != "SingleStack" {
                    ctx.add(.invalid(Path("spec", "ipFamilyPolicy"), policyValue(n.ipFamilyPolicy),
                                     "must be set to 'SingleStack' when releasing the secondary ipFamily"))
                }
            } else if !o.ipFamilies.isEmpty && !n.ipFamilies.isEmpty && n.ipFamilies[0] != o.ipFamilies[0] {
                ctx.add(.invalid(famPath.index(0), newIPs, "may not change once set"))
            }
        }
        if o.type == "LoadBalancer" && n.type == "LoadBalancer" && o.loadBalancerClass != n.loadBalancerClass {
            ctx.add(.invalid(Path("spec", "loadBalancerClass"), n.loadBalancerClass.map { .string($0) } ?? .goSyntax("null"), "may not change once set"))
        }
        if o.needsHealthCheck && n.needsHealthCheck && o.healthCheckNodePort != n.healthCheckNodePort {
            ctx.add(.forbidden(Path("spec", "healthCheckNodePort"), fieldImmutable))
        }
        validateService(new, ctx: &ctx)
    }

    private static func policyValue(_ p: String?) -> BadValue {
        p.map { .string($0) } ?? .goSyntax("null")
    }
}
