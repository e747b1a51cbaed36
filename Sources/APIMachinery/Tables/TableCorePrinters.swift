extension TablePrinter {
    // MARK: services

    static let servicePrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Type", type: "string",
                   description: "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName."),
            Column(name: "Cluster-IP", type: "string", description: "The service's virtual IP inside the cluster."),
            Column(name: "External-IP", type: "string",
                   description: "Addresses the service is reachable at from outside: external IPs, load-balancer ingress, or the external name."),
            Column(name: "Port(s)", type: "string",
                   description: "Service ports as port/protocol, or port:nodePort/protocol when a node port is allocated."),
            Column.age,
            Column.wide("Selector", "Labels of the pods that back the service."),
        ],
        row: { service, context in
            let spec = service["spec"]
            // Stored services are defaulted; these fallbacks stand in for that defaulting.
            let type = spec.string("type").isEmpty ? "ClusterIP" : spec.string("type")
            var clusterIP = spec.array("clusterIPs").first?.json.stringValue ?? spec.string("clusterIP")
            if clusterIP.isEmpty { clusterIP = "<none>" }
            let ports = spec.array("ports").map { port -> String in
                let proto = port.string("protocol").isEmpty ? "TCP" : port.string("protocol")
                let nodePort = port.int("nodePort")
                return nodePort > 0 ? "\(port.int("port")):\(nodePort)/\(proto)" : "\(port.int("port"))/\(proto)"
            }.joined(separator: ",")
            return Row(cells: [
                .string(service.string("metadata", "name")),
                .string(type),
                .string(clusterIP),
                .string(serviceExternalIP(service, type: type)),
                .string(ports.isEmpty ? "<none>" : ports),
                .string(context.age(of: service)),
                .string(Labels.format(spec["selector"].json)),
            ])
        }
    )

    static func serviceExternalIP(_ service: Fields, type: String) -> String {
        let externalIPs = service.array("spec", "externalIPs").map { $0.json.stringValue ?? "" }
        switch type {
        case "ClusterIP", "NodePort":
            return externalIPs.isEmpty ? "<none>" : externalIPs.joined(separator: ",")
        case "LoadBalancer":
            // Each ingress contributes its IP, or else its hostname; duplicates collapse and the
            // result is sorted. The server prints the wide form, so nothing is shortened.
            var addresses = Set<String>()
            for ingress in service.array("status", "loadBalancer", "ingress") {
                if !ingress.string("ip").isEmpty {
                    addresses.insert(ingress.string("ip"))
                } else if !ingress.string("hostname").isEmpty {
                    addresses.insert(ingress.string("hostname"))
                }
            }
            let all = addresses.sorted() + externalIPs
            return all.isEmpty ? "<pending>" : all.joined(separator: ",")
        case "ExternalName":
            return service.string("spec", "externalName")
        default:
            return "<unknown>"
        }
    }

    // MARK: endpoints

    static let endpointsPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Endpoints", type: "string",
                   description: "Ready addresses with their ports (the first three, then how many more)."),
            Column.age,
        ],
        row: { endpoints, context in
            let subsets = endpoints.array("subsets")
            var text = "<none>"
            if !subsets.isEmpty {
                var items: [String] = []
                for subset in subsets {
                    let ips = subset.array("addresses").map { $0.string("ip") }
                    let ports = subset.array("ports")
                    if ports.isEmpty {
                        // Headless services may publish addresses without ports.
                        items += ips
                    } else {
                        for port in ports {
                            items += ips.map { joinHostPort($0, port.int("port")) }
                        }
                    }
                }
                text = listWithMore(items, emptyText: "")
            }
            return Row(cells: [.string(endpoints.string("metadata", "name")), .string(text), .string(context.age(of: endpoints))])
        }
    )

    // MARK: namespaces

    static let namespacePrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Status", type: "string", description: "The namespace's phase: Active or Terminating."),
            Column.age,
        ],
        row: { namespace, context in
            Row(cells: [
                .string(namespace.string("metadata", "name")),
                .string(namespace.string("status", "phase")),
                .string(context.age(of: namespace)),
            ])
        }
    )

    // MARK: nodes

    static let nodePrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Status", type: "string",
                   description: "Ready or NotReady from the Ready condition (Unknown without one), plus SchedulingDisabled when cordoned."),
            Column(name: "Roles", type: "string", description: "Roles taken from the node's node-role.kubernetes.io/<role> labels."),
            Column.age,
            Column(name: "Version", type: "string", description: "The kubelet version the node reports."),
            Column.wide("Internal-IP", "The node's first InternalIP address."),
            Column.wide("External-IP", "The node's first ExternalIP address."),
            Column.wide("OS-Image", "The operating system the node reports."),
            Column.wide("Kernel-Version", "The kernel version the node reports."),
            Column.wide("Container-Runtime", "The container runtime and version the node reports."),
        ],
        row: { node, context in
            var status: [String] = []
            // With several Ready conditions the last one counts, as in a map keyed by type.
            if let ready = node.array("status", "conditions").last(where: { $0.string("type") == "Ready" }) {
                status.append(ready.string("status") == "True" ? "Ready" : "NotReady")
            } else {
                status.append("Unknown")
            }
            if node.bool("spec", "unschedulable") { status.append("SchedulingDisabled") }

            var roles = Set<String>()
            for (key, value) in node["metadata"]["labels"].json.objectValue ?? [:] {
                let prefix = "node-role.kubernetes.io/"
                if key.hasPrefix(prefix) {
                    let role = String(key.dropFirst(prefix.count))
                    if !role.isEmpty { roles.insert(role) }
                } else if key == "kubernetes.io/role", let role = value.stringValue, !role.isEmpty {
                    roles.insert(role)
                }
            }

            func address(_ type: String) -> String {
                let found = node.array("status", "addresses").first { $0.string("type") == type }
                return found?.string("address") ?? "<none>"
            }
            func info(_ key: String) -> String {
                let value = node.string("status", "nodeInfo", key)
                return value.isEmpty ? "<unknown>" : value
            }
            return Row(cells: [
                .string(node.string("metadata", "name")),
                .string(status.joined(separator: ",")),
                .string(roles.isEmpty ? "<none>" : roles.sorted().joined(separator: ",")),
                .string(context.age(of: node)),
                .string(node.string("status", "nodeInfo", "kubeletVersion")),
                .string(address("InternalIP")),
                .string(address("ExternalIP")),
                .string(info("osImage")),
                .string(info("kernelVersion")),
                .string(info("containerRuntimeVersion")),
            ])
        }
    )

    // MARK: configmaps, secrets, serviceaccounts

    static let configMapPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Data", type: "string", description: "Number of keys in data and binaryData together."),
            Column.age,
        ],
        row: { configMap, context in
            Row(cells: [
                .string(configMap.string("metadata", "name")),
                .int(configMap.count("data") + configMap.count("binaryData")),
                .string(context.age(of: configMap)),
            ])
        }
    )

    static let secretPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Type", type: "string", description: "The secret's type, e.g. Opaque or kubernetes.io/tls."),
            Column(name: "Data", type: "string", description: "Number of keys in the secret's data."),
            Column.age,
        ],
        row: { secret, context in
            Row(cells: [
                .string(secret.string("metadata", "name")),
                .string(secret.string("type")),
                .int(secret.count("data")),
                .string(context.age(of: secret)),
            ])
        }
    )

    /// Name and Age only: kube-apiserver dropped the SECRETS count in 1.35, since nothing in a
    /// current cluster fills `secrets` any more (kubernetes/kubernetes#117160).
    static let serviceAccountPrinter = Printer(
        columns: [Column.name, Column.age],
        row: { account, context in
            Row(cells: [.string(account.string("metadata", "name")), .string(context.age(of: account))])
        }
    )

    // MARK: events

    static let eventPrinter = Printer(
        columns: [
            Column(name: "Last Seen", type: "string", description: "Time since the event was last observed."),
            Column(name: "Type", type: "string", description: "Normal or Warning."),
            Column(name: "Reason", type: "string", description: "Short machine-readable reason for the event."),
            Column(name: "Object", type: "string", description: "The object the event is about, as kind/name."),
            Column.wide("Subobject", "The part of the object the event is about, e.g. spec.containers{nginx}."),
            Column.wide("Source", "The component (and host) that reported the event."),
            Column(name: "Message", type: "string", description: "Human-readable description of the event."),
            Column.wide("First Seen", "Time since the event was first observed."),
            Column.wide("Count", "How many times the event was observed."),
            Column(name: "Name", type: "string", format: "name", description: "Name of the event object.", priority: 1),
        ],
        row: { event, context in
            var firstSeen = context.age(event.timestamp("firstTimestamp"))
            if event.timestamp("firstTimestamp") == nil { firstSeen = context.age(event.timestamp("eventTime")) }
            var lastSeen = context.age(event.timestamp("lastTimestamp"))
            if event.timestamp("lastTimestamp") == nil { lastSeen = firstSeen }

            var count = event.int("count")
            if event.has("series") {
                lastSeen = context.age(event.timestamp("series", "lastObservedTime"))
                count = event.int("series", "count")
            } else if count == 0 {
                // Events recorded through events.k8s.io leave count unset for a single occurrence.
                count = 1
            }

            let kind = event.string("involvedObject", "kind").lowercased()
            let name = event.string("involvedObject", "name")
            let component = event.string("source", "component").isEmpty
                ? event.string("reportingComponent") : event.string("source", "component")
            let host = event.string("source", "host").isEmpty
                ? event.string("reportingInstance") : event.string("source", "host")

            return Row(cells: [
                .string(lastSeen),
                .string(event.string("type")),
                .string(event.string("reason")),
                .string(name.isEmpty ? kind : "\(kind)/\(name)"),
                .string(event.string("involvedObject", "fieldPath")),
                .string(host.isEmpty ? component : "\(component), \(host)"),
                .string(trimSpace(event.string("message"))),
                .string(firstSeen),
                .int(count),
                .string(event.string("metadata", "name")),
            ])
        }
    )

    /// Drops leading and trailing whitespace (Go's strings.TrimSpace).
    static func trimSpace(_ text: String) -> String {
        var scalars = Substring(text).unicodeScalars
        while let first = scalars.first, first.properties.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.properties.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
