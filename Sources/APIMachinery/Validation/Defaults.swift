import Collections

/// The values kube-apiserver fills in before it validates and stores an object, so that
/// `kubectl get -o yaml` shows what a real cluster shows.
///
/// `apply` covers, for a create: the API type defaults (pkg/apis/*/v1/defaults.go and the
/// generated `+default` markers), the registry strategies' PrepareForCreate (status reset,
/// Namespace finalizer, Service cluster-IP normalisation and IP families), the ServiceAccount
/// and Priority admission plugins for Pods, name generation from `generateName`, and the
/// clearing of `metadata.namespace` on cluster-scoped kinds. It allocates nothing: cluster IPs,
/// node ports and tokens are left to their controllers.
///
/// Every edit checks the JSON type it touches; a field of the wrong type is left as it is for
/// `Validation` to report.
public enum Defaults {
    /// Defaults for a newly created object.
    public static func apply(kind: String, group: String, to obj: inout JSON) {
        guard obj.objectValue != nil else { return }
        Edit.object(&obj, "metadata", create: true) { meta in
            let name = meta["name"]?.stringValue ?? ""
            if name.isEmpty, let base = meta["generateName"]?.stringValue, !base.isEmpty {
                meta["name"] = .string(Names.generate(prefix: base))
            }
        }
        clearNamespaceIfClusterScoped(kind: kind, group: group, &obj)
        applyTypeDefaults(kind: kind, group: group, &obj)

        switch (group, kind) {
        case ("", "Pod"):
            Edit.object(&obj, "spec", create: true) { spec in
                admitServiceAccount(&spec)
                admitPriority(&spec)
            }
            // Status cannot be set on create; the strategy starts every pod Pending.
            obj["status"] = ["phase": "Pending", "qosClass": .string(qosClass(obj["spec"] ?? .object([:])))]
        case ("", "Service"):
            Edit.object(&obj, "spec", create: true) { spec in
                let clusterIP = spec["clusterIP"]?.stringValue ?? ""
                if !clusterIP.isEmpty && (spec["clusterIPs"]?.arrayValue?.isEmpty ?? true) {
                    spec["clusterIPs"] = [.string(clusterIP)]
                }
                initIPFamilies(&spec, oldPolicy: nil)
            }
            obj["status"] = ["loadBalancer": [:]]
        case ("apps", "Deployment"):
            Edit.object(&obj, "metadata", create: true) { $0["generation"] = 1 }
            obj["status"] = .object([:])
        case ("apps", "ReplicaSet"):
            Edit.object(&obj, "metadata", create: true) { $0["generation"] = 1 }
            obj["status"] = ["replicas": 0]
        case ("", "Namespace"):
            Edit.object(&obj, "spec", create: true) { spec in
                let current = spec["finalizers"]
                guard current == nil || current?.isNull == true || current?.arrayValue != nil else { return }
                var finalizers = current?.arrayValue ?? []
                if !finalizers.contains(.string("kubernetes")) { finalizers.append("kubernetes") }
                spec["finalizers"] = .array(finalizers)
            }
            obj["status"] = ["phase": "Active"]
        default:
            break
        }
    }

    /// Defaults for an update of `old` by `obj` (PUT, PATCH, apply of the main resource):
    /// the system metadata and allocated Service values carry over from `old`, status stays as
    /// stored (it changes only through the status subresource), spec changes bump
    /// `metadata.generation` where upstream does, then the type defaults apply.
    public static func applyForUpdate(kind: String, group: String, to obj: inout JSON, old: JSON) {
        guard obj.objectValue != nil else { return }
        carryOverMetadata(&obj, old: old)
        clearNamespaceIfClusterScoped(kind: kind, group: group, &obj)

        switch (group, kind) {
        case ("", "Service"):
            Edit.object(&obj, "spec", create: true) { spec in
                let oldSpec = old["spec"] ?? .object([:])
                patchAllocatedValues(&spec, old: oldSpec)
                normalizeClusterIPs(&spec, old: oldSpec)
                dropTypeDependentFields(&spec, old: oldSpec)
            }
        default:
            break
        }

        applyTypeDefaults(kind: kind, group: group, &obj)

        switch (group, kind) {
        case ("", "Service"):
            Edit.object(&obj, "spec", create: true) { spec in
                initIPFamilies(&spec, oldPolicy: old["spec"]?["ipFamilyPolicy"]?.stringValue)
            }
            keepStatus(&obj, old: old)
            if obj["spec"]?["type"]?.stringValue != "LoadBalancer" {
                Edit.object(&obj, "status", create: true) { $0["loadBalancer"] = .object([:]) }
            }
        case ("", "Pod"), ("", "Node"):
            keepStatus(&obj, old: old)
        case ("", "Namespace"):
            Edit.object(&obj, "spec", create: true) { $0["finalizers"] = old["spec"]?["finalizers"] }
            keepStatus(&obj, old: old)
        case ("apps", "Deployment"), ("apps", "ReplicaSet"):
            keepStatus(&obj, old: old)
            var changed = !Validation.semanticallyEqual(obj["spec"], old["spec"])
            if kind == "Deployment" {
                changed = changed || !Validation.semanticallyEqual(obj["metadata"]?["annotations"], old["metadata"]?["annotations"])
            }
            if changed {
                let gen = (old["metadata"]?["generation"]?.intValue ?? 0) &+ 1
                Edit.object(&obj, "metadata", create: true) { $0["generation"] = .int(gen) }
            }
        default:
            break
        }
    }

    /// For a write to the status subresource: only status may change, so spec (and the system
    /// metadata) come from the stored object.
    public static func applyForStatusUpdate(kind: String, group: String, to obj: inout JSON, old: JSON) {
        guard obj.objectValue != nil else { return }
        carryOverMetadata(&obj, old: old)
        obj["spec"] = old["spec"]
        applyTypeDefaults(kind: kind, group: group, &obj)
    }

    // MARK: Type defaults (decoding defaults: same on create and update)

    static func applyTypeDefaults(kind: String, group: String, _ obj: inout JSON) {
        switch (group, kind) {
        case ("", "Pod"):
            Edit.object(&obj, "spec", create: true) { spec in
                podSpec(&spec)
                podOnly(&spec)
            }
        case ("", "PodTemplate"):
            Edit.object(&obj, "template", create: true) { template(&$0) }
        case ("apps", "Deployment"):
            Edit.object(&obj, "spec", create: true) { spec in
                Edit.defaultValue(&spec, "replicas", 1)
                Edit.object(&spec, "strategy", create: true) { strategy in
                    Edit.defaultString(&strategy, "type", "RollingUpdate")
                    if strategy["type"]?.stringValue == "RollingUpdate" {
                        Edit.object(&strategy, "rollingUpdate", create: true) { ru in
                            Edit.defaultValue(&ru, "maxUnavailable", "25%")
                            Edit.defaultValue(&ru, "maxSurge", "25%")
                        }
                    }
                }
                Edit.defaultValue(&spec, "revisionHistoryLimit", 10)
                Edit.defaultValue(&spec, "progressDeadlineSeconds", 600)
                Edit.object(&spec, "template", create: true) { template(&$0) }
            }
        case ("apps", "ReplicaSet"):
            Edit.object(&obj, "spec", create: true) { spec in
                Edit.defaultValue(&spec, "replicas", 1)
                Edit.object(&spec, "template", create: true) { template(&$0) }
            }
        case ("", "Service"):
            Edit.object(&obj, "spec", create: true) { service(&$0) }
            if obj["spec"]?["type"]?.stringValue == "LoadBalancer" {
                Edit.object(&obj, "status", create: false) { status in
                    Edit.object(&status, "loadBalancer", create: false) { lb in
                        Edit.eachObject(&lb, "ingress") { ing in
                            if let ip = ing["ip"]?.stringValue, !ip.isEmpty { Edit.defaultValue(&ing, "ipMode", "VIP") }
                        }
                    }
                }
            }
        case ("", "Namespace"):
            let name = obj["metadata"]?["name"]?.stringValue ?? ""
            if !name.isEmpty {
                Edit.object(&obj, "metadata", create: true) { meta in
                    Edit.object(&meta, "labels", create: true) { $0["kubernetes.io/metadata.name"] = .string(name) }
                }
            }
            if obj["status"] != nil {
                Edit.object(&obj, "status", create: false) { Edit.defaultString(&$0, "phase", "Active") }
            }
        case ("", "Secret"):
            Edit.defaultString(&obj, "type", "Opaque")
            mergeStringData(&obj)
        case ("", "Endpoints"):
            Edit.eachObject(&obj, "subsets") { subset in
                Edit.eachObject(&subset, "ports") { Edit.defaultString(&$0, "protocol", "TCP") }
            }
        case ("discovery.k8s.io", "EndpointSlice"):
            Edit.eachObject(&obj, "ports") { port in
                Edit.defaultValue(&port, "name", "")
                Edit.defaultValue(&port, "protocol", "TCP")
            }
        case ("", "Node"):
            Edit.object(&obj, "status", create: false) { status in
                if status["allocatable"] == nil || status["allocatable"]?.isNull == true, let cap = status["capacity"], cap.objectValue != nil {
                    status["allocatable"] = cap
                }
            }
        default:
            break
        }
    }

    /// SetDefaults_PodSpec and the defaults of everything a PodSpec contains.
    static func podSpec(_ spec: inout JSON) {
        Edit.defaultString(&spec, "dnsPolicy", "ClusterFirst")
        Edit.defaultString(&spec, "restartPolicy", "Always")
        Edit.defaultValue(&spec, "securityContext", .object([:]))
        Edit.defaultValue(&spec, "terminationGracePeriodSeconds", 30)
        Edit.defaultString(&spec, "schedulerName", "default-scheduler")
        for key in ["containers", "initContainers", "ephemeralContainers"] {
            Edit.eachObject(&spec, key) { container(&$0) }
        }
        Edit.eachObject(&spec, "volumes") { volume(&$0) }
    }

    /// SetDefaults_Pod: what only Pods (not templates) get.
    static func podOnly(_ spec: inout JSON) {
        for key in ["containers", "initContainers"] {
            Edit.eachObject(&spec, key) { c in
                Edit.object(&c, "resources", create: false) { res in
                    guard let limits = res["limits"]?.objectValue else { return }
                    var requests = res["requests"]?.objectValue ?? [:]
                    if res["requests"] != nil && res["requests"]?.objectValue == nil && res["requests"]?.isNull == false { return }
                    for (k, v) in limits where requests[k] == nil { requests[k] = v }
                    res["requests"] = .object(requests)
                }
            }
        }
        Edit.defaultValue(&spec, "enableServiceLinks", true)
        if spec["hostNetwork"]?.boolValue == true {
            for key in ["containers", "initContainers"] {
                Edit.eachObject(&spec, key) { c in
                    Edit.eachObject(&c, "ports") { port in
                        if (port["hostPort"]?.intValue ?? 0) == 0, let cp = port["containerPort"]?.intValue {
                            port["hostPort"] = .int(cp)
                        }
                    }
                }
            }
        }
    }

    static func template(_ tmpl: inout JSON) {
        Edit.object(&tmpl, "spec", create: true) { podSpec(&$0) }
    }

    static func container(_ c: inout JSON) {
        Edit.defaultString(&c, "imagePullPolicy", .string(pullPolicy(forImage: c["image"]?.stringValue ?? "")))
        Edit.defaultString(&c, "terminationMessagePath", "/dev/termination-log")
        Edit.defaultString(&c, "terminationMessagePolicy", "File")
        Edit.eachObject(&c, "ports") { Edit.defaultString(&$0, "protocol", "TCP") }
        Edit.eachObject(&c, "env") { env in
            Edit.object(&env, "valueFrom", create: false) { from in
                Edit.object(&from, "fieldRef", create: false) { Edit.defaultString(&$0, "apiVersion", "v1") }
            }
        }
        for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
            Edit.object(&c, key, create: false) { probe(&$0) }
        }
        Edit.object(&c, "lifecycle", create: false) { lifecycle in
            for key in ["postStart", "preStop"] {
                Edit.object(&lifecycle, key, create: false) { handler(&$0) }
            }
        }
        Edit.defaultValue(&c, "resources", .object([:]))
        Edit.object(&c, "resources", create: false) { res in
            for key in ["limits", "requests"] {
                Edit.object(&res, key, create: false) { list in
                    guard var o = list.objectValue else { return }
                    for (k, v) in o {
                        if let s = Validation.Quantity.canonicalString(fromNumber: v) { o[k] = .string(s) }
                    }
                    list = .object(o)
                }
            }
        }
    }

    /// SetDefaults_Probe and the handler defaults.
    static func probe(_ p: inout JSON) {
        Edit.defaultNonZero(&p, "timeoutSeconds", 1)
        Edit.defaultNonZero(&p, "periodSeconds", 10)
        Edit.defaultNonZero(&p, "successThreshold", 1)
        Edit.defaultNonZero(&p, "failureThreshold", 3)
        handler(&p)
    }

    static func handler(_ h: inout JSON) {
        Edit.object(&h, "httpGet", create: false) { get in
            Edit.defaultString(&get, "path", "/")
            Edit.defaultString(&get, "scheme", "HTTP")
        }
        Edit.object(&h, "grpc", create: false) { Edit.defaultValue(&$0, "service", "") }
    }

    private static let volumeSourceKeys = [
        "emptyDir", "hostPath", "gitRepo", "gcePersistentDisk", "awsElasticBlockStore", "secret", "nfs", "iscsi", "glusterfs",
        "flocker", "persistentVolumeClaim", "rbd", "cinder", "cephfs", "quobyte", "downwardAPI", "fc", "flexVolume", "configMap",
        "azureFile", "vsphereVolume", "photonPersistentDisk", "portworxVolume", "azureDisk", "storageos", "projected", "scaleIO",
        "csi", "ephemeral", "image",
    ]

    static func volume(_ v: inout JSON) {
        if !volumeSourceKeys.contains(where: { v[$0] != nil && v[$0]?.isNull == false }) {
            v["emptyDir"] = .object([:])
        }
        for key in ["secret", "configMap", "downwardAPI", "projected"] {
            Edit.object(&v, key, create: false) { Edit.defaultValue(&$0, "defaultMode", 420) }
        }
        Edit.object(&v, "hostPath", create: false) { Edit.defaultValue(&$0, "type", "") }
        Edit.object(&v, "downwardAPI", create: false) { d in
            Edit.eachObject(&d, "items") { item in
                Edit.object(&item, "fieldRef", create: false) { Edit.defaultString(&$0, "apiVersion", "v1") }
            }
        }
        Edit.object(&v, "projected", create: false) { projected in
            Edit.eachObject(&projected, "sources") { source in
                Edit.object(&source, "serviceAccountToken", create: false) { Edit.defaultValue(&$0, "expirationSeconds", 3600) }
                Edit.object(&source, "downwardAPI", create: false) { d in
                    Edit.eachObject(&d, "items") { item in
                        Edit.object(&item, "fieldRef", create: false) { Edit.defaultString(&$0, "apiVersion", "v1") }
                    }
                }
            }
        }
        Edit.object(&v, "ephemeral", create: false) { e in
            Edit.object(&e, "volumeClaimTemplate", create: false) { t in
                Edit.object(&t, "spec", create: false) { Edit.defaultValue(&$0, "volumeMode", "Filesystem") }
            }
        }
    }

    /// IfNotPresent unless the image names the "latest" tag, or no tag and no digest.
    public static func pullPolicy(forImage image: String) -> String {
        guard !image.isEmpty else { return "IfNotPresent" }
        var name = Substring(image)
        if let at = name.firstIndex(of: "@") {
            // A digest; a tag may still precede it.
            name = name[..<at]
            let lastComponent = name.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
            if let colon = lastComponent.lastIndex(of: ":") {
                return lastComponent[lastComponent.index(after: colon)...] == "latest" ? "Always" : "IfNotPresent"
            }
            return "IfNotPresent"
        }
        let components = name.split(separator: "/", omittingEmptySubsequences: false)
        let lastComponent = components.last ?? ""
        // An unparsable reference (upper case repository, empty component) gets no tag upstream.
        let repoPart = lastComponent.split(separator: ":").first ?? ""
        if components.dropFirst().contains(where: { $0.isEmpty }) || repoPart.contains(where: { $0.isUppercase }) || repoPart.isEmpty {
            return "IfNotPresent"
        }
        if let colon = lastComponent.lastIndex(of: ":") {
            return lastComponent[lastComponent.index(after: colon)...] == "latest" ? "Always" : "IfNotPresent"
        }
        return "Always"
    }

    // MARK: Pod admission

    /// The ServiceAccount admission plugin's defaulting (it also mounts a token; not here).
    static func admitServiceAccount(_ spec: inout JSON) {
        var name = spec["serviceAccountName"]?.stringValue ?? ""
        if name.isEmpty { name = spec["serviceAccount"]?.stringValue ?? "" }
        if name.isEmpty { name = "default" }
        // Wrong JSON types are left for Validation to report.
        if Edit.isStringOrUnset(spec["serviceAccountName"]) { spec["serviceAccountName"] = .string(name) }
        if Edit.isStringOrUnset(spec["serviceAccount"]) { spec["serviceAccount"] = spec["serviceAccountName"] }
    }

    /// The Priority admission plugin with no PriorityClass objects but the two built-in ones.
    static func admitPriority(_ spec: inout JSON) {
        let className = spec["priorityClassName"]?.stringValue ?? ""
        let priority: Int64
        switch className {
        case "system-node-critical": priority = 2_000_001_000
        case "system-cluster-critical": priority = 2_000_000_000
        default: priority = 0
        }
        Edit.defaultValue(&spec, "priority", .int(priority))
        Edit.defaultValue(&spec, "preemptionPolicy", "PreemptLowerPriority")
    }

    /// qos.GetPodQOS over cpu and memory.
    static func qosClass(_ spec: JSON) -> String {
        var anySet = false
        var guaranteed = true
        let containers = (spec["containers"]?.arrayValue ?? []) + (spec["initContainers"]?.arrayValue ?? [])
        for c in containers {
            let limits = c["resources"]?["limits"]?.objectValue ?? [:]
            let requests = c["resources"]?["requests"]?.objectValue ?? [:]
            func value(_ q: JSON?) -> Double { q.flatMap { Validation.quantity($0) } ?? 0 }
            for r in ["cpu", "memory"] {
                if value(limits[r]) != 0 || value(requests[r]) != 0 { anySet = true }
                if value(limits[r]) == 0 { guaranteed = false }
                if value(requests[r]) != value(limits[r]) { guaranteed = false }
            }
        }
        if !anySet { return "BestEffort" }
        return guaranteed ? "Guaranteed" : "Burstable"
    }

    // MARK: Service

    /// SetDefaults_Service.
    static func service(_ spec: inout JSON) {
        Edit.defaultString(&spec, "sessionAffinity", "None")
        if spec["sessionAffinity"]?.stringValue == "None" {
            spec["sessionAffinityConfig"] = nil
        }
        if spec["sessionAffinity"]?.stringValue == "ClientIP" {
            let timeout = spec["sessionAffinityConfig"]?["clientIP"]?["timeoutSeconds"]
            if timeout == nil || timeout?.isNull == true {
                spec["sessionAffinityConfig"] = ["clientIP": ["timeoutSeconds": 10800]]
            }
        }
        Edit.defaultString(&spec, "type", "ClusterIP")
        Edit.eachObject(&spec, "ports") { port in
            Edit.defaultString(&port, "protocol", "TCP")
            let target = port["targetPort"]
            let unset = target == nil || target?.isNull == true || target?.intValue == 0 || target?.stringValue == ""
            if unset, let p = port["port"], p.intValue != nil {
                port["targetPort"] = p
            }
        }
        let type = spec["type"]?.stringValue ?? ""
        let hasExternalIPs = !(spec["externalIPs"]?.arrayValue?.isEmpty ?? true)
        let externallyAccessible = type == "LoadBalancer" || type == "NodePort" || (type == "ClusterIP" && hasExternalIPs)
        if externallyAccessible { Edit.defaultString(&spec, "externalTrafficPolicy", "Cluster") }
        if ["NodePort", "LoadBalancer", "ClusterIP"].contains(type) {
            Edit.defaultValue(&spec, "internalTrafficPolicy", "Cluster")
        }
        if type == "LoadBalancer" {
            Edit.defaultValue(&spec, "allocateLoadBalancerNodePorts", true)
        }
    }

    /// The family fields the registry's allocator initialises on a single-stack IPv4 cluster.
    static func initIPFamilies(_ spec: inout JSON, oldPolicy: String?) {
        guard spec["type"]?.stringValue != "ExternalName" else { return }
        let clusterIP = spec["clusterIP"]?.stringValue ?? ""
        let selectorless = spec["selector"]?.objectValue?.isEmpty ?? true
        let headlessSelectorless = clusterIP == "None" && selectorless
        if spec["ipFamilyPolicy"] == nil || spec["ipFamilyPolicy"]?.isNull == true {
            if let oldPolicy {
                spec["ipFamilyPolicy"] = .string(oldPolicy)
            } else {
                spec["ipFamilyPolicy"] = headlessSelectorless ? "RequireDualStack" : "SingleStack"
            }
        }
        guard let policy = spec["ipFamilyPolicy"]?.stringValue else { return }
        if spec["ipFamilies"] != nil && spec["ipFamilies"]?.arrayValue == nil && spec["ipFamilies"]?.isNull == false { return }
        var families = spec["ipFamilies"]?.arrayValue ?? []
        // Families follow the given cluster IPs.
        for (i, ip) in (spec["clusterIPs"]?.arrayValue ?? []).enumerated() {
            guard let s = ip.stringValue, s != "None" else { break }
            if i >= families.count, let parsed = NameValidation.parseIP(s) {
                families.append(parsed.isIPv4 ? "IPv4" : "IPv6")
            }
        }
        if families.isEmpty { families = ["IPv4"] }
        if headlessSelectorless && families.count < 2 && policy != "SingleStack" {
            families.append(families[0] == "IPv4" ? "IPv6" : "IPv4")
        }
        spec["ipFamilies"] = .array(families)
    }

    /// patchAllocatedValues: a client that resubmits its original YAML keeps the cluster IP
    /// and node ports it was given.
    static func patchAllocatedValues(_ spec: inout JSON, old: JSON) {
        let newType = spec["type"]?.stringValue ?? "ClusterIP"
        let oldType = old["type"]?.stringValue ?? "ClusterIP"
        if newType != "ExternalName" && oldType != "ExternalName" {
            if (spec["clusterIP"]?.stringValue ?? "").isEmpty, let ip = old["clusterIP"], ip.stringValue != nil {
                spec["clusterIP"] = ip
            }
            if (spec["clusterIPs"]?.arrayValue?.isEmpty ?? true), let ips = old["clusterIPs"]?.arrayValue, !ips.isEmpty {
                spec["clusterIPs"] = .array(ips)
            }
        }
        let needsNodePort: (String) -> Bool = { $0 == "NodePort" || $0 == "LoadBalancer" }
        if needsNodePort(oldType) && needsNodePort(newType) {
            let usedOld = Set((old["ports"]?.arrayValue ?? []).compactMap { $0["nodePort"]?.intValue }.filter { $0 != 0 })
            let usedNew = Set((spec["ports"]?.arrayValue ?? []).compactMap { $0["nodePort"]?.intValue }.filter { $0 != 0 })
            let used = usedOld.intersection(usedNew)
            var byName: [String: Int64] = [:]
            for p in old["ports"]?.arrayValue ?? [] {
                byName[p["name"]?.stringValue ?? ""] = p["nodePort"]?.intValue ?? 0
            }
            Edit.eachObject(&spec, "ports") { port in
                if (port["nodePort"]?.intValue ?? 0) == 0, let np = byName[port["name"]?.stringValue ?? ""], np != 0, !used.contains(np) {
                    port["nodePort"] = .int(np)
                }
            }
        }
        let needsHC: (JSON) -> Bool = { $0["type"]?.stringValue == "LoadBalancer" && $0["externalTrafficPolicy"]?.stringValue == "Local" }
        if needsHC(old) && needsHC(spec) && (spec["healthCheckNodePort"]?.intValue ?? 0) == 0, let hc = old["healthCheckNodePort"] {
            spec["healthCheckNodePort"] = hc
        }
    }

    /// normalizeClusterIPs for an update: keep clusterIP and clusterIPs in step.
    static func normalizeClusterIPs(_ spec: inout JSON, old: JSON) {
        let oldIP = old["clusterIP"]?.stringValue ?? ""
        let newIP = spec["clusterIP"]?.stringValue ?? ""
        let oldIPs = old["clusterIPs"]?.arrayValue ?? []
        let newIPs = spec["clusterIPs"]?.arrayValue ?? []
        if !oldIPs.isEmpty && newIPs.isEmpty && oldIP == newIP {
            spec["clusterIPs"] = .array(oldIPs)
        }
        if oldIP != newIP {
            let same = Validation.semanticallyEqual(spec["clusterIPs"], old["clusterIPs"])
            if !oldIP.isEmpty && newIP.isEmpty {
                if same { spec["clusterIPs"] = nil }
            } else if same {
                spec["clusterIPs"] = [.string(newIP)]
            }
        }
    }

    /// dropTypeDependentFields: fields that only made sense for the old type are wiped when the
    /// client did not touch them.
    static func dropTypeDependentFields(_ spec: inout JSON, old: JSON) {
        let newType = spec["type"]?.stringValue ?? "ClusterIP"
        let oldType = old["type"]?.stringValue ?? "ClusterIP"
        func same(_ key: String) -> Bool { Validation.semanticallyEqual(spec[key], old[key]) }
        if oldType != "ExternalName" && newType == "ExternalName" {
            if same("clusterIP") && same("clusterIPs") {
                spec["clusterIP"] = nil
                spec["clusterIPs"] = nil
            }
            if same("ipFamilies") { spec["ipFamilies"] = nil }
            if same("ipFamilyPolicy") { spec["ipFamilyPolicy"] = nil }
        }
        let needsNodePort: (String) -> Bool = { $0 == "NodePort" || $0 == "LoadBalancer" }
        if needsNodePort(oldType) && !needsNodePort(newType) {
            let newPorts = (spec["ports"]?.arrayValue ?? []).map { $0["nodePort"]?.intValue ?? 0 }
            let oldPorts = (old["ports"]?.arrayValue ?? []).map { $0["nodePort"]?.intValue ?? 0 }
            if newPorts == oldPorts {
                Edit.eachObject(&spec, "ports") { $0["nodePort"] = nil }
            }
        }
        let oldHC = oldType == "LoadBalancer" && old["externalTrafficPolicy"]?.stringValue == "Local"
        let newHC = newType == "LoadBalancer" && spec["externalTrafficPolicy"]?.stringValue == "Local"
        if oldHC && !newHC && same("healthCheckNodePort") { spec["healthCheckNodePort"] = nil }
        if oldType == "LoadBalancer" && newType != "LoadBalancer" {
            if same("allocateLoadBalancerNodePorts") { spec["allocateLoadBalancerNodePorts"] = nil }
            if same("loadBalancerClass") { spec["loadBalancerClass"] = nil }
        }
        let accessible: (JSON, String) -> Bool = { s, t in
            t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !(s["externalIPs"]?.arrayValue?.isEmpty ?? true))
        }
        if accessible(old, oldType) && !accessible(spec, newType) && same("externalTrafficPolicy") {
            spec["externalTrafficPolicy"] = nil
        }
    }

    // MARK: Shared pieces

    /// Secret stringData is write-only: it is merged into data (base64) and dropped.
    static func mergeStringData(_ obj: inout JSON) {
        guard let stringData = obj["stringData"]?.objectValue else { return }
        if obj["data"] != nil && obj["data"]?.objectValue == nil && obj["data"]?.isNull == false { return }
        var data = obj["data"]?.objectValue ?? [:]
        for (k, v) in stringData {
            guard let s = v.stringValue else { return }
            data[k] = .string(Validation.Base64.encode(Array(s.utf8)))
        }
        obj["data"] = .object(data)
        obj["stringData"] = nil
    }

    private static func clearNamespaceIfClusterScoped(kind: String, group: String, _ obj: inout JSON) {
        guard let info = Resources.find(group: group, kind: kind), !info.namespaced else { return }
        Edit.object(&obj, "metadata", create: false) { meta in
            if meta["namespace"] != nil { meta["namespace"] = nil }
        }
    }

    /// rest.BeforeUpdate: uid, creationTimestamp, generation and the deletion fields come from
    /// the stored object.
    private static func carryOverMetadata(_ obj: inout JSON, old: JSON) {
        guard let oldMeta = old["metadata"], oldMeta.objectValue != nil else { return }
        Edit.object(&obj, "metadata", create: true) { meta in
            if (meta["uid"]?.stringValue ?? "").isEmpty, let uid = oldMeta["uid"] { meta["uid"] = uid }
            if let created = oldMeta["creationTimestamp"], !created.isNull { meta["creationTimestamp"] = created }
            if let deleted = oldMeta["deletionTimestamp"], !deleted.isNull { meta["deletionTimestamp"] = deleted }
            if meta["deletionGracePeriodSeconds"] == nil || meta["deletionGracePeriodSeconds"]?.isNull == true,
               let grace = oldMeta["deletionGracePeriodSeconds"], !grace.isNull {
                meta["deletionGracePeriodSeconds"] = grace
            }
            meta["generation"] = oldMeta["generation"]
        }
    }

    private static func keepStatus(_ obj: inout JSON, old: JSON) {
        obj["status"] = old["status"]
    }

    /// Small, type-safe edits on dynamic JSON. Nothing here writes into a value of the wrong type.
    enum Edit {
        /// Runs `body` on the object at `key`; creates it when absent (or null) if `create`.
        static func object(_ json: inout JSON, _ key: String, create: Bool, _ body: (inout JSON) -> Void) {
            guard json.objectValue != nil else { return }
            var child: JSON
            switch json[key] {
            case .object?: child = json[key] ?? .object([:])
            case nil, .null?:
                guard create else { return }
                child = .object([:])
            default: return
            }
            // Parking null in the slot keeps the member's position and releases its storage,
            // so `body` edits the child without a copy.
            json[key] = .null
            body(&child)
            json[key] = child
        }

        /// Runs `body` on each object element of the list at `key`.
        static func eachObject(_ json: inout JSON, _ key: String, _ body: (inout JSON) -> Void) {
            guard var list = json[key]?.arrayValue else { return }
            json[key] = .null
            for i in list.indices where list[i].objectValue != nil {
                body(&list[i])
            }
            json[key] = .array(list)
        }

        /// Go pointer fields: set when absent or null.
        static func defaultValue(_ json: inout JSON, _ key: String, _ value: JSON) {
            guard json.objectValue != nil else { return }
            if json[key] == nil || json[key]?.isNull == true { json[key] = value }
        }

        /// Go string fields: the empty string also counts as unset.
        static func defaultString(_ json: inout JSON, _ key: String, _ value: JSON) {
            guard json.objectValue != nil else { return }
            if json[key] == nil || json[key]?.isNull == true || json[key]?.stringValue == "" { json[key] = value }
        }

        static func isStringOrUnset(_ v: JSON?) -> Bool {
            v == nil || v?.isNull == true || v?.stringValue != nil
        }

        /// Go integer fields: zero also counts as unset.
        static func defaultNonZero(_ json: inout JSON, _ key: String, _ value: JSON) {
            guard json.objectValue != nil else { return }
            if json[key] == nil || json[key]?.isNull == true || json[key]?.intValue == 0 { json[key] = value }
        }
    }
}
