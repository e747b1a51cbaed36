import Collections

// Pod, PodSpec and PodTemplateSpec validation, after pkg/apis/core/validation. Checks run in
// upstream's order so a list of several errors reads the same as kube-apiserver's.

extension Validation {
    struct PodOptions {
        /// The spec belongs to a Pod, not a template embedded in a workload.
        var resourceIsPod: Bool
    }

    static let supportedPortProtocols = ["SCTP", "TCP", "UDP"]

    // MARK: Pod and templates

    /// ValidatePodCreate.
    static func validatePodCreate(_ obj: JSON, ctx: inout Context) {
        validatePodMetadataAndSpec(obj, ctx: &ctx)
        let specPath = Path("spec")
        if let spec = Context.present(obj["spec"]), spec.objectValue != nil {
            if let eph = spec["ephemeralContainers"]?.arrayValue, !eph.isEmpty {
                ctx.add(.forbidden(specPath.child("ephemeralContainers"), "cannot be set on create"))
            }
            if let node = spec["nodeName"]?.stringValue, !node.isEmpty,
               let gates = spec["schedulingGates"]?.arrayValue, !gates.isEmpty {
                ctx.add(.forbidden(specPath.child("nodeName"), "cannot be set until all schedulingGates have been cleared"))
            }
        }
    }

    /// validatePodMetadataAndSpec: shared by create and update.
    static func validatePodMetadataAndSpec(_ obj: JSON, ctx: inout Context) {
        validateObjectMeta(obj, requiresNamespace: true, rule: .dns1123Subdomain, ctx: &ctx)
        let specPath = Path("spec")
        // A missing spec decodes to an empty PodSpec upstream; validate that so the errors match.
        let spec: JSON
        if Context.present(obj["spec"]) == nil {
            spec = .object([:])
        } else if let s = ctx.object(obj["spec"], specPath) {
            spec = s
        } else {
            return
        }
        validatePodSpec(spec, specPath, opts: PodOptions(resourceIsPod: true), ctx: &ctx)

        let sa = spec["serviceAccountName"]?.stringValue ?? ""
        if sa.isEmpty {
            for (vi, vol) in (spec["volumes"]?.arrayValue ?? []).enumerated() {
                guard let sources = vol["projected"]?["sources"]?.arrayValue else { continue }
                for (si, source) in sources.enumerated() where Context.present(source["serviceAccountToken"]) != nil {
                    ctx.add(.forbidden(specPath.child("volumes").index(vi).child("projected", "sources").index(si).child("serviceAccountToken"),
                                       "must not be specified when serviceAccountName is not set"))
                }
            }
        }
        for key in ["containers", "initContainers"] {
            for (i, c) in (spec[key]?.arrayValue ?? []).enumerated() {
                if let image = c["image"]?.stringValue, image != trimSpace(image) {
                    ctx.add(.invalid(specPath.child(key).index(i).child("image"), image, "must not have leading or trailing whitespace"))
                }
            }
        }
    }

    /// ValidatePodTemplateSpec: labels, annotations and the spec of an embedded template.
    static func validatePodTemplateSpec(_ tmpl: JSON, _ p: Path, ctx: inout Context) {
        let meta = ctx.object(tmpl["metadata"], p.child("metadata")) ?? .object([:])
        validateLabels(meta["labels"], p.child("labels"), ctx: &ctx)
        validateAnnotations(meta["annotations"], p.child("annotations"), ctx: &ctx)
        let spec = ctx.object(tmpl["spec"], p.child("spec")) ?? .object([:])
        validatePodSpec(spec, p.child("spec"), opts: PodOptions(resourceIsPod: false), ctx: &ctx)
        if let eph = spec["ephemeralContainers"]?.arrayValue, !eph.isEmpty {
            ctx.add(.forbidden(p.child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
        }
    }

    // MARK: PodSpec

    static func validatePodSpec(_ spec: JSON, _ p: Path, opts: PodOptions, ctx: inout Context) {
        let grace = ctx.int(spec["terminationGracePeriodSeconds"], p.child("terminationGracePeriodSeconds"))
        if Context.present(spec["terminationGracePeriodSeconds"]) == nil {
            ctx.add(.required(p.child("terminationGracePeriodSeconds")))
        }
        let restartPolicy = ctx.string(spec["restartPolicy"], p.child("restartPolicy")) ?? ""
        let volumes = validateVolumes(spec["volumes"], p.child("volumes"), ctx: &ctx)
        let podClaims = validatePodResourceClaims(spec["resourceClaims"], p.child("resourceClaims"), ctx: &ctx)
        let containers = validateContainers(spec["containers"], volumes: volumes, podClaims: podClaims, grace: grace,
                                            p.child("containers"), restartPolicy: restartPolicy, ctx: &ctx)
        validateInitContainers(spec["initContainers"], regular: containers, volumes: volumes, podClaims: podClaims,
                               grace: grace, p.child("initContainers"), restartPolicy: restartPolicy, ctx: &ctx)
        validateEphemeralContainers(spec["ephemeralContainers"], p.child("ephemeralContainers"), ctx: &ctx)

        let hostNetwork = ctx.bool(spec["hostNetwork"], p.child("hostNetwork")) ?? false
        if hostNetwork {
            for (ci, c) in (spec["containers"]?.arrayValue ?? []).enumerated() {
                for (pi, port) in (c["ports"]?.arrayValue ?? []).enumerated() {
                    let hp = port["hostPort"]?.intValue ?? 0
                    let cp = port["containerPort"]?.intValue ?? 0
                    if (opts.resourceIsPod || hp != 0) && hp != cp {
                        ctx.add(.invalid(p.child("containers").index(ci).child("ports").index(pi).child("hostPort"), hp,
                                         "must match `containerPort` when `hostNetwork` is true"))
                    }
                }
            }
        }

        switch restartPolicy {
        case "Always", "OnFailure", "Never": break
        case "": ctx.add(.required(p.child("restartPolicy")))
        default: ctx.add(.notSupported(p.child("restartPolicy"), .string(restartPolicy), ["Always", "OnFailure", "Never"]))
        }
        let dnsPolicy = ctx.string(spec["dnsPolicy"], p.child("dnsPolicy")) ?? ""
        switch dnsPolicy {
        case "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None": break
        case "": ctx.add(.required(p.child("dnsPolicy")))
        default:
            ctx.add(.notSupported(p.child("dnsPolicy"), .string(dnsPolicy), ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]))
        }
        validateLabels(spec["nodeSelector"], p.child("nodeSelector"), ctx: &ctx)
        validatePodSecurityContext(spec, p, ctx: &ctx)
        for (i, s) in ctx.objects(spec["imagePullSecrets"], p.child("imagePullSecrets")) {
            if let o = s.objectValue, o.keys.contains(where: { $0 != "name" }) {
                ctx.add(.invalid(p.child("imagePullSecrets").index(i), .goSyntax("core.LocalObjectReference{Name:\(GoSyntax.quote(s["name"]?.stringValue ?? ""))}"), "only name may be set"))
            }
        }
        _ = ctx.object(spec["affinity"], p.child("affinity"))
        validatePodDNSConfig(spec["dnsConfig"], dnsPolicy: dnsPolicy, p.child("dnsConfig"), ctx: &ctx)
        for (i, gate) in ctx.objects(spec["readinessGates"], p.child("readinessGates")) {
            let t = ctx.string(gate["conditionType"], p.child("readinessGates").index(i).child("conditionType")) ?? ""
            for msg in NameValidation.isQualifiedName(t) {
                ctx.add(.invalid(p.child("readinessGates").index(i).child("conditionType"), t, msg))
            }
        }
        var seenGates = Set<String>()
        for (i, gate) in ctx.objects(spec["schedulingGates"], p.child("schedulingGates")) {
            let name = ctx.string(gate["name"], p.child("schedulingGates").index(i).child("name")) ?? ""
            for msg in NameValidation.isQualifiedName(name) {
                ctx.add(.invalid(p.child("schedulingGates").index(i), name, msg))
            }
            if seenGates.contains(name) { ctx.add(.duplicate(p.child("schedulingGates").index(i), .string(name))) }
            seenGates.insert(name)
        }
        _ = ctx.array(spec["topologySpreadConstraints"], p.child("topologySpreadConstraints"))

        if let sa = ctx.string(spec["serviceAccountName"], p.child("serviceAccountName")), !sa.isEmpty {
            for msg in NameValidation.isDNS1123Subdomain(sa) {
                ctx.add(.invalid(p.child("serviceAccountName"), sa, msg))
            }
        }
        _ = ctx.string(spec["serviceAccount"], p.child("serviceAccount"))
        if let node = ctx.string(spec["nodeName"], p.child("nodeName")), !node.isEmpty {
            for msg in NameValidation.isDNS1123Subdomain(node) {
                ctx.add(.invalid(p.child("nodeName"), node, msg))
            }
        }
        if let ads = ctx.int(spec["activeDeadlineSeconds"], p.child("activeDeadlineSeconds")), ads < 1 || ads > Int64(Int32.max) {
            ctx.add(.invalid(p.child("activeDeadlineSeconds"), ads, NameValidation.inclusiveRangeError(1, Int64(Int32.max))))
        }
        for key in ["hostname", "subdomain"] {
            if let v = ctx.string(spec[key], p.child(key)), !v.isEmpty {
                for msg in NameValidation.isDNS1123Label(v) {
                    ctx.add(.invalid(p.child(key), v, msg))
                }
            }
        }
        validateTolerations(spec["tolerations"], p.child("tolerations"), ctx: &ctx)
        for (i, alias) in ctx.objects(spec["hostAliases"], p.child("hostAliases")) {
            let ap = p.child("hostAliases").index(i)
            let ip = ctx.string(alias["ip"], ap.child("ip")) ?? ""
            for msg in NameValidation.isValidIP(ip) { ctx.add(.invalid(ap.child("ip"), ip, msg)) }
            for (j, h) in (ctx.stringList(alias["hostnames"], ap.child("hostnames")) ?? []).enumerated() {
                for msg in NameValidation.isDNS1123Subdomain(h) {
                    ctx.add(.invalid(ap.child("hostnames").index(j), h, msg))
                }
            }
        }
        if let pcn = ctx.string(spec["priorityClassName"], p.child("priorityClassName")), !pcn.isEmpty {
            for msg in NameValidation.isDNS1123Subdomain(pcn) {
                ctx.add(.invalid(p.child("priorityClassName"), pcn, msg))
            }
        }
        _ = ctx.int(spec["priority"], p.child("priority"))
        if let rcn = ctx.string(spec["runtimeClassName"], p.child("runtimeClassName")) {
            for msg in NameValidation.isDNS1123Subdomain(rcn) {
                ctx.add(.invalid(p.child("runtimeClassName"), rcn, msg))
            }
        }
        if let pp = ctx.string(spec["preemptionPolicy"], p.child("preemptionPolicy")) {
            switch pp {
            case "PreemptLowerPriority", "Never": break
            case "": ctx.add(.required(p.child("preemptionPolicy")))
            default: ctx.add(.notSupported(p.child("preemptionPolicy"), .string(pp), ["PreemptLowerPriority", "Never"]))
            }
        }
        if let overhead = ctx.object(spec["overhead"], p.child("overhead")) {
            validateResourceList(overhead, p.child("overhead", "limits"), container: true, ctx: &ctx)
        }
        if let os = ctx.object(spec["os"], p.child("os")) {
            let name = ctx.string(os["name"], p.child("os", "name")) ?? ""
            if name.isEmpty {
                ctx.add(.required(p.child("os", "name"), "cannot be empty"))
            } else if name != "linux" && name != "windows" {
                ctx.add(.notSupported(p.child("os"), .string(name), ["linux", "windows"]))
            }
        }
        for key in ["hostPID", "hostIPC", "enableServiceLinks", "automountServiceAccountToken", "shareProcessNamespace", "setHostnameAsFQDN", "hostUsers"] {
            _ = ctx.bool(spec[key], p.child(key))
        }
        _ = ctx.string(spec["schedulerName"], p.child("schedulerName"))
    }

    // MARK: Volumes

    /// Volume sources in upstream's checking order: (JSON key, path used when more than one
    /// type is given, path used for the source's own checks). The odd paths are upstream's.
    static let volumeSources: [(key: String, forbiddenPath: String, checkPath: String)] = [
        ("emptyDir", "emptyDir", "emptyDir"), ("hostPath", "hostPath", "hostPath"), ("gitRepo", "gitRepo", "gitRepo"),
        ("gcePersistentDisk", "gcePersistentDisk", "persistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore", "awsElasticBlockStore"),
        ("secret", "secret", "secret"), ("nfs", "nfs", "nfs"), ("iscsi", "iscsi", "iscsi"), ("glusterfs", "glusterfs", "glusterfs"),
        ("flocker", "flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim", "persistentVolumeClaim"),
        ("rbd", "rbd", "rbd"), ("cinder", "cinder", "cinder"), ("cephfs", "cephFS", "cephfs"), ("quobyte", "quobyte", "quobyte"),
        ("downwardAPI", "downwarAPI", "downwardAPI"), ("fc", "fc", "fc"), ("flexVolume", "flexVolume", "flexVolume"),
        ("configMap", "configMap", "configMap"), ("azureFile", "azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume", "vsphereVolume"),
        ("photonPersistentDisk", "photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume", "portworxVolume"),
        ("azureDisk", "azureDisk", "azureDisk"), ("storageos", "storageos", "storageos"), ("projected", "projected", "projected"),
        ("scaleIO", "scaleIO", "scaleIO"), ("csi", "csi", "csi"), ("ephemeral", "ephemeral", "ephemeral"), ("image", "image", "image"),
    ]

    static let fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

    /// ValidateVolumes; returns the valid volumes by name with their source type (for mounts).
    static func validateVolumes(_ v: JSON?, _ p: Path, ctx: inout Context) -> [String: String] {
        var vols: [String: String] = [:]
        for (i, vol) in ctx.objects(v, p) {
            let ip = p.index(i)
            var el = Context()
            let name = el.string(vol["name"], ip.child("name")) ?? ""
            let source = validateVolumeSource(vol, ip, ctx: &el)
            if name.isEmpty {
                el.add(.required(ip.child("name")))
            } else {
                for msg in NameValidation.isDNS1123Label(name) { el.add(.invalid(ip.child("name"), name, msg)) }
            }
            if vols[name] != nil { el.add(.duplicate(ip.child("name"), .string(name))) }
            if el.errors.isEmpty {
                vols[name] = source ?? ""
            } else {
                ctx.add(el.errors)
            }
        }
        return vols
    }

    static func validateVolumeSource(_ vol: JSON, _ p: Path, ctx: inout Context) -> String? {
        var found: String?
        for s in volumeSources {
            guard let src = Context.present(vol[s.key]) else { continue }
            if found != nil {
                ctx.add(.forbidden(p.child(s.forbiddenPath), "may not specify more than 1 volume type"))
                continue
            }
            found = s.key
            guard let src = ctx.object(src, p.child(s.key)) else { continue }
            let sp = p.child(s.checkPath)
            switch s.key {
            case "emptyDir":
                if let limit = Context.present(src["sizeLimit"]), let q = quantity(limit), q < 0 {
                    ctx.add(.forbidden(p.child("emptyDir", "sizeLimit"), "SizeLimit field must be a valid resource quantity"))
                }
            case "hostPath":
                let path = ctx.string(src["path"], sp.child("path")) ?? ""
                if path.isEmpty {
                    ctx.add(.required(sp.child("path")))
                    continue
                }
                validatePathNoBacksteps(path, sp.child("path"), ctx: &ctx)
                if let t = ctx.string(src["type"], sp.child("type")) {
                    let supported = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket"]
                    if !supported.contains(t) { ctx.add(.notSupported(sp.child("type"), .string(t), supported)) }
                }
            case "secret":
                if (ctx.string(src["secretName"], sp.child("secretName")) ?? "").isEmpty {
                    ctx.add(.required(sp.child("secretName")))
                }
                validateFileMode(src["defaultMode"], sp.child("defaultMode"), ctx: &ctx)
                validateKeyToPaths(src["items"], sp.child("items"), ctx: &ctx)
            case "configMap":
                if (ctx.string(src["name"], sp.child("name")) ?? "").isEmpty {
                    ctx.add(.required(sp.child("name")))
                }
                validateFileMode(src["defaultMode"], sp.child("defaultMode"), ctx: &ctx)
                validateKeyToPaths(src["items"], sp.child("items"), ctx: &ctx)
            case "persistentVolumeClaim":
                if (ctx.string(src["claimName"], sp.child("claimName")) ?? "").isEmpty {
                    ctx.add(.required(sp.child("claimName")))
                }
            case "nfs":
                if (ctx.string(src["server"], sp.child("server")) ?? "").isEmpty { ctx.add(.required(sp.child("server"))) }
                let path = ctx.string(src["path"], sp.child("path")) ?? ""
                if path.isEmpty { ctx.add(.required(sp.child("path"))) }
                if !path.hasPrefix("/") { ctx.add(.invalid(sp.child("path"), path, "must be an absolute path")) }
            case "downwardAPI":
                validateFileMode(src["defaultMode"], sp.child("defaultMode"), ctx: &ctx)
                for (_, item) in ctx.objects(src["items"], sp.child("items")) {
                    validateDownwardAPIFile(item, sp, ctx: &ctx)
                }
            case "projected":
                validateFileMode(src["defaultMode"], sp.child("defaultMode"), ctx: &ctx)
                validateProjectionSources(src, sp, ctx: &ctx)
            case "csi":
                if (ctx.string(src["driver"], sp.child("driver")) ?? "").isEmpty { ctx.add(.required(sp.child("driver"))) }
            case "gitRepo":
                if (ctx.string(src["repository"], sp.child("repository")) ?? "").isEmpty { ctx.add(.required(sp.child("repository"))) }
            default:
                break
            }
        }
        if found == nil {
            ctx.add(.required(p, "must specify a volume type"))
        }
        return found
    }

    static func validateFileMode(_ v: JSON?, _ p: Path, ctx: inout Context) {
        if let mode = ctx.int(v, p), mode < 0 || mode > 0o777 {
            ctx.add(.invalid(p, mode, fileModeErrorMsg))
        }
    }

    static func validateKeyToPaths(_ v: JSON?, _ p: Path, ctx: inout Context) {
        for (i, kp) in ctx.objects(v, p) {
            let ip = p.index(i)
            if (ctx.string(kp["key"], ip.child("key")) ?? "").isEmpty { ctx.add(.required(ip.child("key"))) }
            let path = ctx.string(kp["path"], ip.child("path")) ?? ""
            if path.isEmpty { ctx.add(.required(ip.child("path"))) }
            validateLocalNonReservedPath(path, ip.child("path"), ctx: &ctx)
            validateFileMode(kp["mode"], ip.child("mode"), ctx: &ctx)
        }
    }

    static func validateDownwardAPIFile(_ item: JSON, _ p: Path, ctx: inout Context) {
        let path = ctx.string(item["path"], p.child("path")) ?? ""
        if path.isEmpty { ctx.add(.required(p.child("path"))) }
        validateLocalNonReservedPath(path, p.child("path"), ctx: &ctx)
        let fieldRef = ctx.object(item["fieldRef"], p.child("fieldRef"))
        let resourceRef = ctx.object(item["resourceFieldRef"], p.child("resourceFieldRef"))
        if let fieldRef {
            validateObjectFieldSelector(fieldRef, supported: ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid"],
                                        p.child("fieldRef"), ctx: &ctx)
            if resourceRef != nil {
                ctx.add(.invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
            }
        } else if let resourceRef {
            validateResourceFieldSelector(resourceRef, p.child("resourceFieldRef"), volume: true, ctx: &ctx)
        } else {
            ctx.add(.required(p, "one of fieldRef and resourceFieldRef is required"))
        }
        validateFileMode(item["mode"], p.child("mode"), ctx: &ctx)
    }

    static func validateProjectionSources(_ src: JSON, _ p: Path, ctx: inout Context) {
        var allPaths = Set<String>()
        for (i, source) in ctx.objects(src["sources"], p.child("sources")) {
            let sp = p.child("sources").index(i)
            var count = 0
            for key in ["secret", "configMap"] {
                guard let s = ctx.object(source[key], sp.child(key)) else { continue }
                count += 1
                let name = ctx.string(s["name"], sp.child(key, "name")) ?? ""
                if name.isEmpty { ctx.add(.required(sp.child(key, "name"))) }
                validateKeyToPaths(s["items"], sp.child(key, "items"), ctx: &ctx)
                for item in s["items"]?.arrayValue ?? [] {
                    guard let path = item["path"]?.stringValue, !path.isEmpty else { continue }
                    if allPaths.contains(path) {
                        ctx.add(.invalid(p, name, "conflicting duplicate paths"))
                    }
                    allPaths.insert(path)
                }
            }
            if let d = ctx.object(source["downwardAPI"], sp.child("downwardAPI")) {
                count += 1
                for (_, item) in ctx.objects(d["items"], sp.child("downwardAPI", "items")) {
                    validateDownwardAPIFile(item, sp.child("downwardAPI"), ctx: &ctx)
                    if let path = item["path"]?.stringValue, !path.isEmpty {
                        if allPaths.contains(path) { ctx.add(.invalid(p, path, "conflicting duplicate paths")) }
                        allPaths.insert(path)
                    }
                }
            }
            if let t = ctx.object(source["serviceAccountToken"], sp.child("serviceAccountToken")) {
                count += 1
                let tp = sp.child("serviceAccountToken")
                let exp = ctx.int(t["expirationSeconds"], tp.child("expirationSeconds")) ?? 0
                if exp < 600 {
                    ctx.add(.invalid(tp.child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
                }
                if exp > 1 << 32 {
                    ctx.add(.invalid(tp.child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
                }
                let path = ctx.string(t["path"], tp.child("path")) ?? ""
                if path.isEmpty {
                    ctx.add(.required(p.child("path")))
                } else {
                    validateLocalNonReservedPath(path, p.child("path"), ctx: &ctx)
                }
            }
            if ctx.object(source["clusterTrustBundle"], sp.child("clusterTrustBundle")) != nil {
                count += 1
            }
            if count > 1 {
                ctx.add(.forbidden(sp, "may not specify more than 1 volume type per source"))
            }
        }
    }

    static func validatePathNoBacksteps(_ path: String, _ p: Path, ctx: inout Context) {
        if path.split(separator: "/", omittingEmptySubsequences: false).contains("..") {
            ctx.add(.invalid(p, path, "must not contain '..'"))
        }
    }

    static func validateLocalDescendingPath(_ path: String, _ p: Path, ctx: inout Context) {
        if path.hasPrefix("/") { ctx.add(.invalid(p, path, "must be a relative path")) }
        validatePathNoBacksteps(path, p, ctx: &ctx)
    }

    static func validateLocalNonReservedPath(_ path: String, _ p: Path, ctx: inout Context) {
        validateLocalDescendingPath(path, p, ctx: &ctx)
        if path.hasPrefix("..") && !path.hasPrefix("../") {
            ctx.add(.invalid(p, path, "must not start with '..'"))
        }
    }

    static func validatePodResourceClaims(_ v: JSON?, _ p: Path, ctx: inout Context) -> Set<String> {
        var names = Set<String>()
        for (i, claim) in ctx.objects(v, p) {
            let name = ctx.string(claim["name"], p.index(i).child("name")) ?? ""
            if name.isEmpty {
                ctx.add(.required(p.index(i).child("name")))
            } else if names.contains(name) {
                ctx.add(.duplicate(p.index(i).child("name"), .string(name)))
            } else {
                for msg in NameValidation.isDNS1123Label(name) { ctx.add(.invalid(p.index(i).child("name"), name, msg)) }
                names.insert(name)
            }
        }
        return names
    }

    // MARK: Security

    static func validateSecurityContext(_ sc: JSON, _ p: Path, ctx: inout Context) {
        let privileged = ctx.bool(sc["privileged"], p.child("privileged"))
        for key in ["runAsUser", "runAsGroup"] {
            if let id = ctx.int(sc[key], p.child(key)), id < 0 || id > Int64(Int32.max) {
                ctx.add(.invalid(p.child(key), id, NameValidation.inclusiveRangeError(0, Int64(Int32.max))))
            }
        }
        if let pm = ctx.string(sc["procMount"], p.child("procMount")) {
            if pm != "Default" && pm != "Unmasked" {
                ctx.add(.notSupported(p.child("procMount"), .string(pm), ["Default", "Unmasked"]))
            } else if pm == "Unmasked" {
                ctx.add(.invalid(p.child("procMount"), pm, "`hostUsers` must be false to use `Unmasked`"))
            }
        }
        validateSeccompProfile(sc["seccompProfile"], p.child("seccompProfile"), ctx: &ctx)
        if let ape = ctx.bool(sc["allowPrivilegeEscalation"], p.child("allowPrivilegeEscalation")), !ape {
            if privileged == true {
                ctx.add(.invalid(p, .goSyntax(sc.text), "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
            }
            let adds = sc["capabilities"]?["add"]?.arrayValue?.compactMap(\.stringValue) ?? []
            if adds.contains("CAP_SYS_ADMIN") {
                ctx.add(.invalid(p, .goSyntax(sc.text), "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
            }
        }
        for key in ["readOnlyRootFilesystem", "runAsNonRoot"] { _ = ctx.bool(sc[key], p.child(key)) }
        if let caps = ctx.object(sc["capabilities"], p.child("capabilities")) {
            _ = ctx.stringList(caps["add"], p.child("capabilities", "add"))
            _ = ctx.stringList(caps["drop"], p.child("capabilities", "drop"))
        }
        validateAppArmorProfile(sc["appArmorProfile"], p.child("appArmorProfile"), ctx: &ctx)
    }

    static func validateSeccompProfile(_ v: JSON?, _ p: Path, ctx: inout Context) {
        guard let profile = ctx.object(v, p) else { return }
        let t = ctx.string(profile["type"], p.child("type")) ?? ""
        switch t {
        case "Localhost", "RuntimeDefault", "Unconfined": break
        case "": ctx.add(.required(p.child("type"), "type is required when seccompProfile is set"))
        default: ctx.add(.notSupported(p.child("type"), .string(t), ["Localhost", "RuntimeDefault", "Unconfined"]))
        }
    }

    static func validateAppArmorProfile(_ v: JSON?, _ p: Path, ctx: inout Context) {
        guard let profile = ctx.object(v, p) else { return }
        let t = ctx.string(profile["type"], p.child("type")) ?? ""
        let local = ctx.string(profile["localhostProfile"], p.child("localhostProfile"))
        switch t {
        case "Localhost":
            if local == nil || trimSpace(local ?? "").isEmpty {
                ctx.add(.required(p.child("localhostProfile"), "must be set when AppArmor type is Localhost"))
            }
        case "RuntimeDefault", "Unconfined":
            if let local { ctx.add(.invalid(p.child("localhostProfile"), local, "can only be set when AppArmor type is Localhost")) }
        case "": ctx.add(.required(p.child("type"), "type is required when appArmorProfile is set"))
        default: ctx.add(.notSupported(p.child("type"), .string(t), ["Localhost", "RuntimeDefault", "Unconfined"]))
        }
    }

    static func validatePodSecurityContext(_ spec: JSON, _ specPath: Path, ctx: inout Context) {
        let p = specPath.child("securityContext")
        guard let sc = ctx.object(spec["securityContext"], p) else { return }
        for key in ["fsGroup", "runAsUser", "runAsGroup"] {
            if let id = ctx.int(sc[key], p.child(key)), id < 0 || id > Int64(Int32.max) {
                ctx.add(.invalid(p.child(key), id, NameValidation.inclusiveRangeError(0, Int64(Int32.max))))
            }
        }
        for (i, g) in (ctx.array(sc["supplementalGroups"], p.child("supplementalGroups")) ?? []).enumerated() {
            if let id = ctx.int(g, p.child("supplementalGroups").index(i)), id < 0 || id > Int64(Int32.max) {
                ctx.add(.invalid(p.child("supplementalGroups").index(i), id, NameValidation.inclusiveRangeError(0, Int64(Int32.max))))
            }
        }
        if spec["shareProcessNamespace"]?.boolValue == true && spec["hostPID"]?.boolValue == true {
            ctx.add(.invalid(p.child("shareProcessNamespace"), .bool(true), "ShareProcessNamespace and HostPID cannot both be enabled"))
        }
        var sysctlNames = Set<String>()
        for (i, s) in ctx.objects(sc["sysctls"], p.child("sysctls")) {
            let np = p.child("sysctls").index(i).child("name")
            let name = ctx.string(s["name"], np) ?? ""
            if name.isEmpty {
                ctx.add(.required(np))
            } else if !isValidSysctlName(name) {
                ctx.add(.invalid(np, name, "must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$"))
            } else if sysctlNames.contains(name) {
                ctx.add(.duplicate(np, .string(name)))
            }
            sysctlNames.insert(name)
        }
        if let policy = ctx.string(sc["fsGroupChangePolicy"], p.child("fsGroupChangePolicy")),
           policy != "Always" && policy != "OnRootMismatch" {
            ctx.add(.notSupported(p.child("fsGroupChangePolicy"), .string(policy), ["Always", "OnRootMismatch"]))
        }
        validateSeccompProfile(sc["seccompProfile"], p.child("seccompProfile"), ctx: &ctx)
        validateAppArmorProfile(sc["appArmorProfile"], p.child("appArmorProfile"), ctx: &ctx)
        if let policy = ctx.string(sc["supplementalGroupsPolicy"], p.child("supplementalGroupsPolicy")),
           policy != "Merge" && policy != "Strict" {
            ctx.add(.notSupported(p.child("supplementalGroupsPolicy"), .string(policy), ["Merge", "Strict"]))
        }
        if let policy = ctx.string(sc["seLinuxChangePolicy"], p.child("seLinuxChangePolicy")),
           policy != "MountOption" && policy != "Recursive" {
            ctx.add(.notSupported(p.child("seLinuxChangePolicy"), .string(policy), ["MountOption", "Recursive"]))
        }
    }

    static func isValidSysctlName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count <= 253, !bytes.isEmpty else { return false }
        let segments = bytes.split(omittingEmptySubsequences: false) { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "/") }
        return segments.allSatisfy { seg in
            guard let f = seg.first, let l = seg.last else { return false }
            func alnum(_ b: UInt8) -> Bool { (b >= 97 && b <= 122) || (b >= 48 && b <= 57) }
            return alnum(f) && alnum(l) && seg.allSatisfy { alnum($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        }
    }

    static func validatePodDNSConfig(_ v: JSON?, dnsPolicy: String, _ p: Path, ctx: inout Context) {
        let config = ctx.object(v, p)
        if dnsPolicy == "None" {
            guard let config else {
                ctx.add(.required(p, "must provide `dnsConfig` when `dnsPolicy` is None"))
                return
            }
            if (config["nameservers"]?.arrayValue ?? []).isEmpty {
                ctx.add(.required(p.child("nameservers"), "must provide at least one DNS nameserver when `dnsPolicy` is None"))
                return
            }
        }
        guard let config else { return }
        let servers = ctx.stringList(config["nameservers"], p.child("nameservers")) ?? []
        if servers.count > 3 {
            ctx.add(.invalid(p.child("nameservers"), .goSyntax(GoSyntax.stringSlice(servers)), "must not have more than 3 nameservers"))
        }
        for (i, ns) in servers.enumerated() {
            for msg in NameValidation.isValidIP(ns) { ctx.add(.invalid(p.child("nameservers").index(i), ns, msg)) }
        }
        let searches = ctx.stringList(config["searches"], p.child("searches")) ?? []
        if searches.count > 32 {
            ctx.add(.invalid(p.child("searches"), .goSyntax(GoSyntax.stringSlice(searches)), "must not have more than 32 search paths"))
        }
        if searches.joined(separator: " ").utf8.count > 2048 {
            ctx.add(.invalid(p.child("searches"), .goSyntax(GoSyntax.stringSlice(searches)),
                             "must not have more than 2048 characters (including spaces) in the search list"))
        }
        for (i, search) in searches.enumerated() where search != "." {
            // RelaxedDNSSearchValidation (on by default since 1.33) also allows underscores.
            var s = search
            if s.hasSuffix(".") { s.removeLast() }
            let underscoreFree = underscoreTolerant(s)
            for _ in NameValidation.isDNS1123Subdomain(underscoreFree) {
                ctx.add(.invalid(p.child("searches").index(i), s,
                                 NameValidation.regexError("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                                                           "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*", "example.com")))
                break
            }
        }
        for (i, option) in ctx.objects(config["options"], p.child("options")) {
            if (ctx.string(option["name"], p.child("options").index(i).child("name")) ?? "").isEmpty {
                ctx.add(.required(p.child("options").index(i), "must not be empty"))
            }
        }
    }

    // MARK: Tolerations

    static func validateTolerations(_ v: JSON?, _ p: Path, ctx: inout Context) {
        for (i, t) in ctx.objects(v, p) {
            let ip = p.index(i)
            let key = ctx.string(t["key"], ip.child("key")) ?? ""
            let op = ctx.string(t["operator"], ip.child("operator")) ?? ""
            let value = ctx.string(t["value"], ip.child("value")) ?? ""
            let effect = ctx.string(t["effect"], ip.child("effect")) ?? ""
            let seconds = ctx.int(t["tolerationSeconds"], ip.child("tolerationSeconds"))
            if !key.isEmpty {
                for msg in NameValidation.isQualifiedName(key) { ctx.add(.invalid(ip.child("key"), key, msg)) }
            }
            if key.isEmpty && op != "Exists" {
                ctx.add(.invalid(ip.child("operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""))
            }
            if seconds != nil && effect != "NoExecute" {
                ctx.add(.invalid(ip.child("effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
            }
            switch op {
            case "Equal", "":
                let errs = NameValidation.isValidLabelValue(value)
                if !errs.isEmpty { ctx.add(.invalid(ip.child("operator"), value, errs.joined(separator: ";"))) }
            case "Exists":
                if !value.isEmpty { ctx.add(.invalid(ip.child("operator"), value, "value must be empty when `operator` is 'Exists'")) }
            default:
                ctx.add(.notSupported(ip.child("operator"), .string(op), ["Equal", "Exists"]))
            }
            if !effect.isEmpty && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(effect) {
                ctx.add(.notSupported(ip.child("effect"), .string(effect), ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
            }
        }
    }
}

extension Validation {
    /// Go's strings.TrimSpace for ASCII whitespace.
    static func trimSpace(_ s: String) -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}" }
        guard let start = s.firstIndex(where: { !ws($0) }), let end = s.lastIndex(where: { !ws($0) }) else { return "" }
        return String(s[start...end])
    }

    /// Drops one leading underscore per label and maps inner underscores to '-', so the
    /// underscore-tolerant DNS search rule can reuse the subdomain check.
    fileprivate static func underscoreTolerant(_ s: String) -> String {
        s.split(separator: ".", omittingEmptySubsequences: false).map { label -> String in
            var l = Substring(label)
            if l.hasPrefix("_") { l = l.dropFirst() }
            return String(l.map { $0 == "_" ? "-" : $0 })
        }.joined(separator: ".")
    }
}
