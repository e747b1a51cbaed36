extension TablePrinter {
    // MARK: deployments

    static let deploymentPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Ready", type: "string", description: "Ready pods out of the desired replicas."),
            Column(name: "Up-to-date", type: "string", description: "Pods already running the current pod template."),
            Column(name: "Available", type: "string", description: "Pods ready for at least minReadySeconds."),
            Column.age,
            Column.wide("Containers", "Names of the containers in the pod template."),
            Column.wide("Images", "Images of the containers in the pod template."),
            Column.wide("Selector", "Label selector of the pods the deployment manages."),
        ],
        row: { deployment, context in
            let (names, images) = containerCells(deployment.array("spec", "template", "spec", "containers"))
            // Unlike ReplicaSets, an empty selector prints as "" here, and a broken one as <invalid>.
            let selector = Labels.selectorString(deployment["spec"]["selector"].json) ?? "<invalid>"
            return Row(cells: [
                .string(deployment.string("metadata", "name")),
                .string("\(deployment.int("status", "readyReplicas"))/\(desiredReplicas(deployment))"),
                .int(deployment.int("status", "updatedReplicas")),
                .int(deployment.int("status", "availableReplicas")),
                .string(context.age(of: deployment)),
                .string(names),
                .string(images),
                .string(selector),
            ])
        }
    )

    /// spec.replicas, or 1 when unset (what apps/v1 defaulting stores).
    static func desiredReplicas(_ object: Fields) -> Int64 {
        object.optionalInt("spec", "replicas") ?? 1
    }

    // MARK: replicasets

    static let replicaSetPrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Desired", type: "integer", description: "Replicas the ReplicaSet should run (spec.replicas)."),
            Column(name: "Current", type: "integer", description: "Pods the ReplicaSet currently has."),
            Column(name: "Ready", type: "integer", description: "Of those, the pods that are ready."),
            Column.age,
            Column.wide("Containers", "Names of the containers in the pod template."),
            Column.wide("Images", "Images of the containers in the pod template."),
            Column.wide("Selector", "Label selector of the pods the ReplicaSet manages."),
        ],
        row: { replicaSet, context in
            let (names, images) = containerCells(replicaSet.array("spec", "template", "spec", "containers"))
            return Row(cells: [
                .string(replicaSet.string("metadata", "name")),
                .int(desiredReplicas(replicaSet)),
                .int(replicaSet.int("status", "replicas")),
                .int(replicaSet.int("status", "readyReplicas")),
                .string(context.age(of: replicaSet)),
                .string(names),
                .string(images),
                .string(Labels.formatSelector(replicaSet["spec"]["selector"].json)),
            ])
        }
    )

    // MARK: endpointslices

    static let endpointSlicePrinter = Printer(
        columns: [
            Column.name,
            Column(name: "AddressType", type: "string", description: "IPv4, IPv6 or FQDN."),
            Column(name: "Ports", type: "string", description: "Port numbers of the slice (the first three, then how many more)."),
            Column(name: "Endpoints", type: "string", description: "Endpoint addresses of the slice (the first three, then how many more)."),
            Column.age,
        ],
        row: { slice, context in
            // A port without a number means "all ports" of the endpoints; it shows its name or "*".
            let ports = slice.array("ports").map { port -> String in
                if let number = port.optionalInt("port") { return String(number) }
                return port.has("name") ? port.string("name") : "*"
            }
            let addresses = slice.array("endpoints").flatMap { endpoint in
                endpoint.array("addresses").map { $0.json.stringValue ?? "" }
            }
            return Row(cells: [
                .string(slice.string("metadata", "name")),
                .string(slice.string("addressType")),
                .string(listWithMore(ports, emptyText: "<unset>")),
                .string(listWithMore(addresses, emptyText: "<unset>")),
                .string(context.age(of: slice)),
            ])
        }
    )

    // MARK: leases

    static let leasePrinter = Printer(
        columns: [
            Column.name,
            Column(name: "Holder", type: "string", description: "Identity of the current holder of the lease."),
            Column.age,
        ],
        row: { lease, context in
            Row(cells: [
                .string(lease.string("metadata", "name")),
                .string(lease.string("spec", "holderIdentity")),
                .string(context.age(of: lease)),
            ])
        }
    )
}
