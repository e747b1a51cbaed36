import Collections

// Container validation (regular and init containers, ports, env, mounts, probes, resources),
// after pkg/apis/core/validation. Called from `validatePodSpec`.

extension Validation {
    // MARK: Containers

    /// validateContainers; returns the container names (for the init-container duplicate check).
    static func validateContainers(_ v: JSON?, volumes: [String: String], podClaims: Set<String>, grace: Int64?,
                                           _ p: Path, restartPolicy: String, ctx: inout Context) -> [String] {
        let list = ctx.objects(v, p)
        if list.isEmpty && ((v?.arrayValue?.isEmpty ?? true)) {
            ctx.add(.required(p))
            return []
        }
        var names = Set<String>()
        var ordered: [String] = []
        for (i, c) in list {
            let cp = p.index(i)
            let name = validateContainerCommon(c, volumes: volumes, podClaims: podClaims, cp, restartPolicy: restartPolicy, ctx: &ctx)
            if names.contains(name) {
                ctx.add(.duplicate(cp.child("name"), .string(name)))
            } else {
                names.insert(name)
            }
            ordered.append(name)
            if let lifecycle = ctx.object(c["lifecycle"], cp.child("lifecycle")) {
                validateLifecycle(lifecycle, grace: grace, cp.child("lifecycle"), ctx: &ctx)
            }
            validateProbe(c["livenessProbe"], grace: grace, cp.child("livenessProbe"), successMustBeOne: true, ctx: &ctx)
            validateProbe(c["readinessProbe"], grace: grace, cp.child("readinessProbe"), readiness: true, ctx: &ctx)
            validateProbe(c["startupProbe"], grace: grace, cp.child("startupProbe"), successMustBeOne: true, ctx: &ctx)
            if Context.present(c["restartPolicy"]) != nil {
                ctx.add(.forbidden(cp.child("restartPolicy"), "may not be set for non-init containers"))
            }
        }
        checkHostPortConflicts(list.map(\.item), indexes: list.map(\.index), p, ctx: &ctx)
        return ordered
    }

    static func validateInitContainers(_ v: JSON?, regular: [String], volumes: [String: String], podClaims: Set<String>,
                                               grace: Int64?, _ p: Path, restartPolicy: String, ctx: inout Context) {
        var names = Set(regular)
        for (i, c) in ctx.objects(v, p) {
            let cp = p.index(i)
            let name = validateContainerCommon(c, volumes: volumes, podClaims: podClaims, cp, restartPolicy: restartPolicy, ctx: &ctx)
            var restartAlways = false
            if let rp = ctx.string(c["restartPolicy"], cp.child("restartPolicy")) {
                if rp != "Always" { ctx.add(.notSupported(cp.child("restartPolicy"), .string(rp), ["Always"])) }
                restartAlways = rp == "Always"
            }
            if names.contains(name) {
                ctx.add(.duplicate(cp.child("name"), .string(name)))
            } else if !name.isEmpty {
                names.insert(name)
            }
            checkHostPortConflicts([c], indexes: [i], p, ctx: &ctx)
            if restartAlways {
                if let lifecycle = ctx.object(c["lifecycle"], cp.child("lifecycle")) {
                    validateLifecycle(lifecycle, grace: grace, cp.child("lifecycle"), ctx: &ctx)
                }
                validateProbe(c["livenessProbe"], grace: grace, cp.child("livenessProbe"), successMustBeOne: true, ctx: &ctx)
                validateProbe(c["readinessProbe"], grace: grace, cp.child("readinessProbe"), readiness: true, ctx: &ctx)
                validateProbe(c["startupProbe"], grace: grace, cp.child("startupProbe"), successMustBeOne: true, ctx: &ctx)
            } else {
                for key in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] where Context.present(c[key]) != nil {
                    ctx.add(.forbidden(cp.child(key), "may not be set for init containers without restartPolicy=Always"))
                }
            }
        }
    }

    static func validateEphemeralContainers(_ v: JSON?, _ p: Path, ctx: inout Context) {
        // Ephemeral containers only arrive through the ephemeralcontainers subresource, which
        // labnode does not serve; on create and template they are refused by the callers.
        _ = ctx.array(v, p)
    }

    /// AccumulateUniqueHostPorts: the same protocol/hostIP/hostPort may appear only once.
    static func checkHostPortConflicts(_ containers: [JSON], indexes: [Int], _ p: Path, ctx: inout Context) {
        var seen = Set<String>()
        for (n, c) in containers.enumerated() {
            for (pi, port) in (c["ports"]?.arrayValue ?? []).enumerated() {
                guard let hp = port["hostPort"]?.intValue, hp != 0 else { continue }
                let key = "\(port["protocol"]?.stringValue ?? "")/\(port["hostIP"]?.stringValue ?? "")/\(hp)"
                if seen.contains(key) {
                    ctx.add(.duplicate(p.index(indexes[n]).child("ports").index(pi).child("hostPort"), .string(key)))
                } else {
                    seen.insert(key)
                }
            }
        }
    }

    /// validateContainerCommon; returns the container's name.
    static func validateContainerCommon(_ c: JSON, volumes: [String: String], podClaims: Set<String>, _ p: Path,
                                                restartPolicy: String, ctx: inout Context) -> String {
        let name = ctx.string(c["name"], p.child("name")) ?? ""
        if name.isEmpty {
            ctx.add(.required(p.child("name")))
        } else {
            for msg in NameValidation.isDNS1123Label(name) { ctx.add(.invalid(p.child("name"), name, msg)) }
        }
        if (ctx.string(c["image"], p.child("image")) ?? "").isEmpty {
            ctx.add(.required(p.child("image")))
        }
        let tmp = ctx.string(c["terminationMessagePolicy"], p.child("terminationMessagePolicy")) ?? ""
        switch tmp {
        case "File", "FallbackToLogsOnError": break
        case "": ctx.add(.required(p.child("terminationMessagePolicy")))
        default: ctx.add(.notSupported(p.child("terminationMessagePolicy"), .string(tmp), ["File", "FallbackToLogsOnError"]))
        }
        _ = ctx.string(c["terminationMessagePath"], p.child("terminationMessagePath"))
        _ = ctx.stringList(c["command"], p.child("command"))
        _ = ctx.stringList(c["args"], p.child("args"))
        _ = ctx.string(c["workingDir"], p.child("workingDir"))
        for key in ["stdin", "stdinOnce", "tty"] { _ = ctx.bool(c[key], p.child(key)) }

        validateContainerPorts(c["ports"], p.child("ports"), ctx: &ctx)
        validateEnv(c["env"], p.child("env"), ctx: &ctx)
        validateEnvFrom(c["envFrom"], p.child("envFrom"), ctx: &ctx)
        let deviceNames = Dictionary((c["volumeDevices"]?.arrayValue ?? []).compactMap { d -> (String, String)? in
            guard let n = d["name"]?.stringValue else { return nil }
            return (n, d["devicePath"]?.stringValue ?? "")
        }, uniquingKeysWith: { _, last in last })
        validateVolumeMounts(c["volumeMounts"], devices: deviceNames, volumes: volumes, container: c, p.child("volumeMounts"), ctx: &ctx)
        validateVolumeDevices(c["volumeDevices"], volumes: volumes, p.child("volumeDevices"), ctx: &ctx)
        let pull = ctx.string(c["imagePullPolicy"], p.child("imagePullPolicy")) ?? ""
        switch pull {
        case "Always", "IfNotPresent", "Never": break
        case "": ctx.add(.required(p.child("imagePullPolicy")))
        default: ctx.add(.notSupported(p.child("imagePullPolicy"), .string(pull), ["Always", "IfNotPresent", "Never"]))
        }
        if let res = ctx.object(c["resources"], p.child("resources")) {
            validateResourceRequirements(res, podClaims: podClaims, p.child("resources"), ctx: &ctx)
        }
        validateResizePolicy(c["resizePolicy"], p.child("resizePolicy"), restartPolicy: restartPolicy, ctx: &ctx)
        if let sc = ctx.object(c["securityContext"], p.child("securityContext")) {
            validateSecurityContext(sc, p.child("securityContext"), ctx: &ctx)
        }
        return name
    }

    static func validateContainerPorts(_ v: JSON?, _ p: Path, ctx: inout Context) {
        var names = Set<String>()
        for (i, port) in ctx.objects(v, p) {
            let ip = p.index(i)
            let name = ctx.string(port["name"], ip.child("name")) ?? ""
            if !name.isEmpty {
                let msgs = NameValidation.isValidPortName(name)
                if !msgs.isEmpty {
                    for msg in msgs { ctx.add(.invalid(ip.child("name"), name, msg)) }
                } else if names.contains(name) {
                    ctx.add(.duplicate(ip.child("name"), .string(name)))
                } else {
                    names.insert(name)
                }
            }
            let cport = ctx.int(port["containerPort"], ip.child("containerPort")) ?? 0
            if cport == 0 {
                ctx.add(.required(ip.child("containerPort")))
            } else {
                for msg in NameValidation.isValidPortNum(cport) { ctx.add(.invalid(ip.child("containerPort"), cport, msg)) }
            }
            let hport = ctx.int(port["hostPort"], ip.child("hostPort")) ?? 0
            if hport != 0 {
                for msg in NameValidation.isValidPortNum(hport) { ctx.add(.invalid(ip.child("hostPort"), hport, msg)) }
            }
            _ = ctx.string(port["hostIP"], ip.child("hostIP"))
            let proto = ctx.string(port["protocol"], ip.child("protocol")) ?? ""
            if proto.isEmpty {
                ctx.add(.required(ip.child("protocol")))
            } else if !supportedPortProtocols.contains(proto) {
                ctx.add(.notSupported(ip.child("protocol"), .string(proto), supportedPortProtocols))
            }
        }
    }

    static func validateEnv(_ v: JSON?, _ p: Path, ctx: inout Context) {
        for (i, ev) in ctx.objects(v, p) {
            let ip = p.index(i)
            let name = ctx.string(ev["name"], ip.child("name")) ?? ""
            if name.isEmpty {
                ctx.add(.required(ip.child("name")))
            } else {
                for msg in NameValidation.isEnvVarName(name) { ctx.add(.invalid(ip.child("name"), name, msg)) }
            }
            let value = ctx.string(ev["value"], ip.child("value")) ?? ""
            guard let from = ctx.object(ev["valueFrom"], ip.child("valueFrom")) else { continue }
            let fp = ip.child("valueFrom")
            var sources = 0
            if let fr = ctx.object(from["fieldRef"], fp.child("fieldRef")) {
                sources += 1
                validateObjectFieldSelector(fr, supported: ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                                                            "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"],
                                            fp.child("fieldRef"), ctx: &ctx)
            }
            if let rr = ctx.object(from["resourceFieldRef"], fp.child("resourceFieldRef")) {
                sources += 1
                validateResourceFieldSelector(rr, fp.child("resourceFieldRef"), volume: false, ctx: &ctx)
            }
            for key in ["configMapKeyRef", "secretKeyRef"] {
                guard let ref = ctx.object(from[key], fp.child(key)) else { continue }
                sources += 1
                let rp = fp.child(key)
                let refName = ctx.string(ref["name"], rp.child("name")) ?? ""
                for msg in NameValidation.isDNS1123Subdomain(refName) { ctx.add(.invalid(rp.child("name"), refName, msg)) }
                let refKey = ctx.string(ref["key"], rp.child("key")) ?? ""
                if refKey.isEmpty {
                    ctx.add(.required(rp.child("key")))
                } else {
                    for msg in NameValidation.isConfigMapKey(refKey) { ctx.add(.invalid(rp.child("key"), refKey, msg)) }
                }
                _ = ctx.bool(ref["optional"], rp.child("optional"))
            }
            if sources == 0 {
                ctx.add(.invalid(fp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
            } else if !value.isEmpty {
                ctx.add(.invalid(fp, "", "may not be specified when `value` is not empty"))
            } else if sources > 1 {
                ctx.add(.invalid(fp, "", "may not have more than one field specified at a time"))
            }
        }
    }

    static func validateObjectFieldSelector(_ fs: JSON, supported: [String], _ p: Path, ctx: inout Context) {
        let apiVersion = ctx.string(fs["apiVersion"], p.child("apiVersion")) ?? ""
        if apiVersion.isEmpty {
            ctx.add(.required(p.child("apiVersion")))
            return
        }
        let fieldPath = ctx.string(fs["fieldPath"], p.child("fieldPath")) ?? ""
        if fieldPath.isEmpty {
            ctx.add(.required(p.child("fieldPath")))
            return
        }
        // podshelper.ConvertDownwardAPIFieldLabel, then the subscript and expression checks.
        let convertible: Set<String> = ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
                                        "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName", "spec.schedulerName",
                                        "status.phase", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"]
        let converting = "error converting fieldPath: "
        if apiVersion != "v1" {
            ctx.add(.invalid(p.child("fieldPath"), fieldPath, converting + "unsupported pod version: \(apiVersion)"))
            return
        }
        if let (base, key) = splitSubscriptedPath(fieldPath) {
            switch base {
            case "metadata.annotations":
                for msg in NameValidation.isQualifiedName(key.lowercased()) { ctx.add(.invalid(p, key.lowercased(), msg)) }
            case "metadata.labels":
                for msg in NameValidation.isQualifiedName(key) { ctx.add(.invalid(p, key, msg)) }
            default:
                ctx.add(.invalid(p.child("fieldPath"), fieldPath, converting + "field label does not support subscript: \(fieldPath)"))
            }
            return
        }
        let internalPath = fieldPath == "spec.host" ? "spec.nodeName" : fieldPath
        guard convertible.contains(internalPath) else {
            ctx.add(.invalid(p.child("fieldPath"), fieldPath, converting + "field label not supported: \(fieldPath)"))
            return
        }
        if !supported.contains(internalPath) {
            ctx.add(.notSupported(p.child("fieldPath"), .string(internalPath), supported))
        }
    }

    /// fieldpath.SplitMaybeSubscriptedPath: "metadata.labels['app']" -> ("metadata.labels", "app").
    static func splitSubscriptedPath(_ fieldPath: String) -> (String, String)? {
        guard fieldPath.hasSuffix("']") else { return nil }
        let trimmed = String(fieldPath.dropLast(2))
        guard let r = trimmed.firstRange(of: "['") else { return nil }
        let base = String(trimmed[..<r.lowerBound])
        guard !base.isEmpty else { return nil }
        return (base, String(trimmed[r.upperBound...]))
    }

    static func validateResourceFieldSelector(_ fs: JSON, _ p: Path, volume: Bool, ctx: inout Context) {
        let supported = ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu", "requests.ephemeral-storage", "requests.memory"]
        let container = ctx.string(fs["containerName"], p.child("containerName")) ?? ""
        let resource = ctx.string(fs["resource"], p.child("resource")) ?? ""
        if volume && container.isEmpty {
            ctx.add(.required(p.child("containerName")))
        } else if resource.isEmpty {
            ctx.add(.required(p.child("resource")))
        } else if !supported.contains(resource) && !resource.hasPrefix("requests.hugepages-") && !resource.hasPrefix("limits.hugepages-") {
            ctx.add(.notSupported(p.child("resource"), .string(resource), supported))
        }
        if let d = Context.present(fs["divisor"]), quantity(d) == nil {
            ctx.add(.invalid(p.child("divisor"), .string(d.stringValue ?? d.text), Quantity.formatError))
        }
    }

    static func validateEnvFrom(_ v: JSON?, _ p: Path, ctx: inout Context) {
        for (i, ev) in ctx.objects(v, p) {
            let ip = p.index(i)
            if let prefix = ctx.string(ev["prefix"], ip.child("prefix")), !prefix.isEmpty {
                for msg in NameValidation.isEnvVarName(prefix) { ctx.add(.invalid(ip.child("prefix"), prefix, msg)) }
            }
            var sources = 0
            for key in ["configMapRef", "secretRef"] {
                guard let ref = ctx.object(ev[key], ip.child(key)) else { continue }
                sources += 1
                let name = ctx.string(ref["name"], ip.child(key, "name")) ?? ""
                if name.isEmpty {
                    ctx.add(.required(ip.child(key, "name")))
                } else {
                    for msg in NameValidation.NameRule.dns1123Subdomain.check(name, prefix: true) {
                        ctx.add(.invalid(ip.child(key, "name"), name, msg))
                    }
                }
            }
            if sources == 0 {
                ctx.add(.invalid(p, "", "must specify one of: `configMapRef` or `secretRef`"))
            } else if sources > 1 {
                ctx.add(.invalid(p, "", "may not have more than one field specified at a time"))
            }
        }
    }

    static func validateVolumeMounts(_ v: JSON?, devices: [String: String], volumes: [String: String], container: JSON,
                                             _ p: Path, ctx: inout Context) {
        var mountPoints = Set<String>()
        let privileged = container["securityContext"]?["privileged"]?.boolValue ?? false
        for (i, m) in ctx.objects(v, p) {
            let ip = p.index(i)
            let name = ctx.string(m["name"], ip.child("name")) ?? ""
            if name.isEmpty { ctx.add(.required(ip.child("name"))) }
            if volumes[name] == nil { ctx.add(.notFound(ip.child("name"), .string(name))) }
            let mountPath = ctx.string(m["mountPath"], ip.child("mountPath")) ?? ""
            if mountPath.isEmpty { ctx.add(.required(ip.child("mountPath"))) }
            if mountPoints.contains(mountPath) { ctx.add(.invalid(ip.child("mountPath"), mountPath, "must be unique")) }
            mountPoints.insert(mountPath)
            if devices[name] != nil { ctx.add(.invalid(ip.child("name"), name, "must not already exist in volumeDevices")) }
            if devices.values.contains(mountPath) {
                ctx.add(.invalid(ip.child("mountPath"), mountPath, "must not already exist as a path in volumeDevices"))
            }
            let subPath = ctx.string(m["subPath"], ip.child("subPath")) ?? ""
            let subPathExpr = ctx.string(m["subPathExpr"], ip.child("subPathExpr")) ?? ""
            if volumes[name] == "image" {
                if !subPath.isEmpty { ctx.add(.invalid(ip.child("subPath"), subPath, "not allowed in image volume sources")) }
                if !subPathExpr.isEmpty { ctx.add(.invalid(ip.child("subPathExpr"), subPathExpr, "not allowed in image volume sources")) }
            }
            // Upstream names the list here, not the element.
            if !subPath.isEmpty { validateLocalDescendingPath(subPath, p.child("subPath"), ctx: &ctx) }
            if !subPathExpr.isEmpty {
                if !subPath.isEmpty {
                    ctx.add(.invalid(ip.child("subPathExpr"), subPathExpr, "subPathExpr and subPath are mutually exclusive"))
                }
                validateLocalDescendingPath(subPathExpr, p.child("subPathExpr"), ctx: &ctx)
            }
            let readOnly = ctx.bool(m["readOnly"], ip.child("readOnly")) ?? false
            let propagation = ctx.string(m["mountPropagation"], ip.child("mountPropagation"))
            if let propagation {
                let supported = ["Bidirectional", "HostToContainer", "None"]
                if !supported.contains(propagation) {
                    ctx.add(.notSupported(p.child("mountPropagation"), .string(propagation), supported))
                }
                if propagation == "Bidirectional" && !privileged {
                    ctx.add(.forbidden(p.child("mountPropagation"), "Bidirectional mount propagation is available only to privileged containers"))
                }
            }
            if let rro = ctx.string(m["recursiveReadOnly"], ip.child("recursiveReadOnly")) {
                switch rro {
                case "Disabled": break
                case "Enabled", "IfPossible":
                    if !readOnly { ctx.add(.forbidden(p.child("recursiveReadOnly"), "may only be specified when readOnly is true")) }
                    if let propagation, propagation != "None" {
                        ctx.add(.forbidden(p.child("recursiveReadOnly"), "may only be specified when mountPropagation is None or not specified"))
                    }
                default:
                    ctx.add(.notSupported(p.child("recursiveReadOnly"), .string(rro), ["Disabled", "Enabled", "IfPossible"]))
                }
            }
        }
    }

    static func validateVolumeDevices(_ v: JSON?, volumes: [String: String], _ p: Path, ctx: inout Context) {
        var names = Set<String>()
        var paths = Set<String>()
        for (i, d) in ctx.objects(v, p) {
            let ip = p.index(i)
            let name = ctx.string(d["name"], ip.child("name")) ?? ""
            let path = ctx.string(d["devicePath"], ip.child("devicePath")) ?? ""
            if name.isEmpty { ctx.add(.required(ip.child("name"))) }
            if names.contains(name) { ctx.add(.invalid(ip.child("name"), name, "must be unique")) }
            if let source = volumes[name] {
                if source != "persistentVolumeClaim" && source != "ephemeral" {
                    ctx.add(.invalid(ip.child("name"), name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
                }
            } else {
                ctx.add(.notFound(ip.child("name"), .string(name)))
            }
            if path.isEmpty { ctx.add(.required(ip.child("devicePath"))) }
            if paths.contains(path) { ctx.add(.invalid(ip.child("devicePath"), path, "must be unique")) }
            if path.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
                ctx.add(.invalid(ip.child("devicePath"), path, "can not contain backsteps ('..')"))
            } else {
                paths.insert(path)
            }
            if !name.isEmpty { names.insert(name) }
        }
    }

    static func validateResizePolicy(_ v: JSON?, _ p: Path, restartPolicy: String, ctx: inout Context) {
        var seen = Set<String>()
        for (i, policy) in ctx.objects(v, p) {
            let name = ctx.string(policy["resourceName"], p.index(i).child("resourceName")) ?? ""
            let rp = ctx.string(policy["restartPolicy"], p.index(i).child("restartPolicy")) ?? ""
            if seen.contains(name) { ctx.add(.duplicate(p.index(i), .string(name))) }
            seen.insert(name)
            switch name {
            case "cpu", "memory": break
            case "": ctx.add(.required(p))
            default: ctx.add(.notSupported(p, .string(name), ["cpu", "memory"]))
            }
            switch rp {
            case "NotRequired", "RestartContainer": break
            case "": ctx.add(.required(p))
            default: ctx.add(.notSupported(p, .string(rp), ["NotRequired", "RestartContainer"]))
            }
            if restartPolicy == "Never" && rp != "NotRequired" {
                ctx.add(.invalid(p, rp, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
            }
        }
    }

    // MARK: Probes and lifecycle handlers

    static func validateProbe(_ v: JSON?, grace: Int64?, _ p: Path, successMustBeOne: Bool = false, readiness: Bool = false,
                                      ctx: inout Context) {
        guard let probe = ctx.object(v, p) else { return }
        validateHandler(probe, grace: grace, p, lifecycle: false, ctx: &ctx)
        for key in ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"] {
            if let n = ctx.int(probe[key], p.child(key)), n < 0 {
                ctx.add(.invalid(p.child(key), n, isNegativeErrorMsg))
            }
        }
        if let t = ctx.int(probe["terminationGracePeriodSeconds"], p.child("terminationGracePeriodSeconds")) {
            if t <= 0 { ctx.add(.invalid(p.child("terminationGracePeriodSeconds"), t, "must be greater than 0")) }
            if readiness { ctx.add(.invalid(p.child("terminationGracePeriodSeconds"), t, "must not be set for readinessProbes")) }
        }
        if successMustBeOne {
            let s = probe["successThreshold"]?.intValue ?? 0
            if s != 1 { ctx.add(.invalid(p.child("successThreshold"), s, "must be 1")) }
        }
    }

    static func validateLifecycle(_ lifecycle: JSON, grace: Int64?, _ p: Path, ctx: inout Context) {
        for key in ["postStart", "preStop"] {
            if let h = ctx.object(lifecycle[key], p.child(key)) {
                validateHandler(h, grace: grace, p.child(key), lifecycle: true, ctx: &ctx)
            }
        }
    }

    static func validateHandler(_ h: JSON, grace: Int64?, _ p: Path, lifecycle: Bool, ctx: inout Context) {
        let kinds = lifecycle ? ["exec", "httpGet", "tcpSocket", "sleep"] : ["exec", "httpGet", "tcpSocket", "grpc"]
        var count = 0
        for key in kinds {
            guard let action = Context.present(h[key]) else { continue }
            if count > 0 {
                ctx.add(.forbidden(p.child(key), "may not specify more than 1 handler type"))
                continue
            }
            count += 1
            guard let action = ctx.object(action, p.child(key)) else { continue }
            let ap = p.child(key)
            switch key {
            case "exec":
                if (ctx.stringList(action["command"], ap.child("command")) ?? []).isEmpty { ctx.add(.required(ap.child("command"))) }
            case "httpGet":
                if (ctx.string(action["path"], ap.child("path")) ?? "").isEmpty { ctx.add(.required(ap.child("path"))) }
                validatePortNumOrName(action["port"], ap.child("port"), ctx: &ctx)
                let scheme = ctx.string(action["scheme"], ap.child("scheme")) ?? ""
                if scheme != "HTTP" && scheme != "HTTPS" {
                    ctx.add(.notSupported(ap.child("scheme"), .string(scheme), ["HTTP", "HTTPS"]))
                }
                for (_, header) in ctx.objects(action["httpHeaders"], ap.child("httpHeaders")) {
                    let name = header["name"]?.stringValue ?? ""
                    for msg in NameValidation.isHTTPHeaderName(name) { ctx.add(.invalid(ap.child("httpHeaders"), name, msg)) }
                }
            case "tcpSocket":
                validatePortNumOrName(action["port"], ap.child("port"), ctx: &ctx)
            case "grpc":
                let port = ctx.int(action["port"], ap.child("port")) ?? 0
                for msg in NameValidation.isValidPortNum(port) { ctx.add(.invalid(ap.child("port"), port, msg)) }
            case "sleep":
                let seconds = ctx.int(action["seconds"], ap.child("seconds")) ?? 0
                if let grace, seconds < 0 || seconds > grace {
                    ctx.add(.invalid(ap, seconds, "must be non-negative and less than terminationGracePeriodSeconds (\(grace))"))
                }
            default: break
            }
        }
        if count == 0 {
            ctx.add(.required(p, "must specify a handler type"))
        }
    }

    /// ValidatePortNumOrName for an IntOrString port.
    static func validatePortNumOrName(_ v: JSON?, _ p: Path, ctx: inout Context) {
        switch ctx.intOrString(v, p) {
        case .string(let s)?:
            for msg in NameValidation.isValidPortName(s) { ctx.add(.invalid(p, s, msg)) }
        case .int(let i)?:
            for msg in NameValidation.isValidPortNum(i) { ctx.add(.invalid(p, i, msg)) }
        case nil:
            // An absent IntOrString is the integer 0.
            for msg in NameValidation.isValidPortNum(0) { ctx.add(.invalid(p, Int64(0), msg)) }
        }
    }

    // MARK: Resources

    /// A quantity's value from JSON (string, or a number as YAML clients send).
    static func quantity(_ v: JSON) -> Double? {
        if let s = v.stringValue, case .success(let d) = Quantity.parse(s) { return d }
        return v.doubleValue
    }

    static let standardContainerResources: Set<String> = ["cpu", "memory", "ephemeral-storage"]
    static let standardResources: Set<String> = [
        "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
        "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "services", "replicationcontrollers",
        "resourcequotas", "secrets", "configmaps", "persistentvolumeclaims", "storage", "requests.storage",
        "services.nodeports", "services.loadbalancers",
    ]

    static func isHugePages(_ name: String) -> Bool { name.hasPrefix("hugepages-") }
    static func isNative(_ name: String) -> Bool { !name.contains("/") || name.contains("kubernetes.io/") }
    static func isOvercommitAllowed(_ name: String) -> Bool { isNative(name) && !isHugePages(name) }

    static func validateResourceRequirements(_ res: JSON, podClaims: Set<String>, _ p: Path, ctx: inout Context) {
        let limits = ctx.object(res["limits"], p.child("limits"))
        let requests = ctx.object(res["requests"], p.child("requests"))
        var limitValues: [String: (Double, String)] = [:]
        var hasCPUOrMemory = false
        var hasHugePages = false
        for (name, q) in limits?.objectValue ?? [:] {
            let qp = p.child("limits").key(name)
            validateContainerResourceName(name, qp, ctx: &ctx)
            if let value = validateQuantityValue(name, q, qp, ctx: &ctx) { limitValues[name] = value }
            if isHugePages(name) { hasHugePages = true }
            if name == "cpu" || name == "memory" { hasCPUOrMemory = true }
        }
        for (name, q) in requests?.objectValue ?? [:] {
            let qp = p.child("requests").key(name)
            validateContainerResourceName(name, qp, ctx: &ctx)
            let value = validateQuantityValue(name, q, qp, ctx: &ctx)
            if let value, let limit = limitValues[name] {
                if value.0 != limit.0 && !isOvercommitAllowed(name) {
                    ctx.add(.invalid(p.child("requests"), value.1, "must be equal to \(name) limit of \(limit.1)"))
                } else if value.0 > limit.0 {
                    ctx.add(.invalid(p.child("requests"), value.1, "must be less than or equal to \(name) limit of \(limit.1)"))
                }
            } else if limits?[name] == nil && !isOvercommitAllowed(name) {
                ctx.add(.required(p.child("limits"), "Limit must be set for non overcommitable resources"))
            }
            if isHugePages(name) { hasHugePages = true }
            if name == "cpu" || name == "memory" { hasCPUOrMemory = true }
        }
        if hasHugePages && !hasCPUOrMemory {
            ctx.add(.forbidden(p, "HugePages require cpu or memory"))
        }
        for (i, claim) in ctx.objects(res["claims"], p.child("claims")) {
            let name = ctx.string(claim["name"], p.child("claims").index(i).child("name")) ?? ""
            if name.isEmpty {
                ctx.add(.required(p.child("claims").index(i)))
            } else if !podClaims.contains(name) {
                let known = podClaims.isEmpty ? " which is empty" : ": " + podClaims.sorted().joined(separator: ", ")
                ctx.add(FieldError(kind: .notFound, field: p.child("claims").index(i).text, value: .string(name),
                                   detail: "must be one of the names in pod.spec.resourceClaims" + known))
            }
        }
    }

    /// A ResourceList outside containers (pod overhead): names and quantities only.
    static func validateResourceList(_ list: JSON, _ p: Path, container: Bool, ctx: inout Context) {
        for (name, q) in list.objectValue ?? [:] {
            let qp = p.key(name)
            validateContainerResourceName(name, qp, ctx: &ctx)
            _ = validateQuantityValue(name, q, qp, ctx: &ctx)
        }
    }

    static func validateContainerResourceName(_ name: String, _ p: Path, ctx: inout Context) {
        let qualified = NameValidation.isQualifiedName(name)
        for msg in qualified { ctx.add(.invalid(p, name, msg)) }
        if !qualified.isEmpty { return }
        if !name.contains("/") {
            if !standardResources.contains(name) && !isHugePages(name) {
                ctx.add(.invalid(p, name, "must be a standard resource type or fully qualified"))
            }
            if !standardContainerResources.contains(name) && !isHugePages(name) {
                ctx.add(.invalid(p, name, "must be a standard resource for containers"))
            }
        } else if !isNative(name) {
            if name.hasPrefix("requests.") || !NameValidation.isQualifiedName("requests." + name).isEmpty {
                ctx.add(.invalid(p, name, "doesn't follow extended resource name standard"))
            }
        }
    }

    /// Parses and checks one quantity; returns its value and text when it parses.
    static func validateQuantityValue(_ name: String, _ q: JSON, _ p: Path, ctx: inout Context) -> (Double, String)? {
        let text: String
        let value: Double
        if let s = q.stringValue {
            switch Quantity.parse(s) {
            case .success(let v): value = v
            case .failure(let e):
                ctx.add(.invalid(p, s, e.message))
                return nil
            }
            text = s
        } else if let d = q.doubleValue, let s = Quantity.canonicalString(fromNumber: q) {
            value = d
            text = s
        } else {
            ctx.add(.wrongType(p, expected: "string", actual: q))
            return nil
        }
        if value < 0 {
            ctx.add(.invalid(p, text, isNegativeErrorMsg))
        }
        if !isNative(name) && value.rounded() != value {
            ctx.add(.invalid(p, .goSyntax(text), "must be an integer"))
        }
        return (value, text)
    }
}
