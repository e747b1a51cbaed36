import APIMachinery
import Foundation

/// What the node agent reports about the machine, read once at start.
public struct HostFacts: Sendable, Equatable {
    public var cpus: Int
    public var memoryBytes: Int64
    public var ephemeralStorageBytes: Int64
    public var kernelVersion: String
    public var osImage: String
    public var machineID: String
    public var bootID: String
    public var architecture: String

    public init(cpus: Int, memoryBytes: Int64, ephemeralStorageBytes: Int64, kernelVersion: String, osImage: String,
                machineID: String, bootID: String, architecture: String = "amd64") {
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.ephemeralStorageBytes = ephemeralStorageBytes
        self.kernelVersion = kernelVersion
        self.osImage = osImage
        self.machineID = machineID
        self.bootID = bootID
        self.architecture = architecture
    }

    /// Reads this machine. `root` lets tests point at a fixture tree instead of `/`.
    public static func read(root: String = "", dataDir: String) -> HostFacts {
        func file(_ path: String) -> String {
            ((try? String(contentsOfFile: root + path, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var memory: Int64 = 0
        for line in file("/proc/meminfo").split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let kb = line.split(separator: " ").dropFirst().first.flatMap { Int64($0) } ?? 0
            memory = kb * 1024
        }
        var osImage = "Linux"
        for line in file("/etc/os-release").split(separator: "\n") where line.hasPrefix("PRETTY_NAME=") {
            osImage = String(line.dropFirst("PRETTY_NAME=".count)).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        }
        let kernel = file("/proc/sys/kernel/osrelease")
        var disk: Int64 = 0
        if let attrs = try? FileManager.default.attributesOfFileSystem(forPath: dataDir),
           let size = attrs[.systemSize] as? NSNumber {
            disk = size.int64Value
        }
        #if arch(arm64)
        let arch = "arm64"
        #else
        let arch = "amd64"
        #endif
        return HostFacts(cpus: ProcessInfo.processInfo.activeProcessorCount, memoryBytes: memory, ephemeralStorageBytes: disk,
                         kernelVersion: kernel.isEmpty ? "unknown" : kernel, osImage: osImage,
                         machineID: file("/etc/machine-id"), bootID: file("/proc/sys/kernel/random/boot_id"),
                         architecture: arch)
    }
}

/// The Node object the node agent registers and keeps fresh, with what the kubelet puts in it.
public enum NodeObject {
    /// The kubelet version the node reports; it matches the API server's version.
    public static let kubeletVersion = "v1.33.0"
    public static let maxPods: Int64 = 110

    public static func make(name: String, nodeIP: String, podCIDR: String, facts: HostFacts, ready: Bool,
                            readyMessage: String, now: Date = Date(), previous: JSON? = nil) -> JSON {
        let stamp = Timestamp.rfc3339(now)
        // What the kubelet keeps back for the system: 100Mi of memory for eviction.
        let allocatableMemory = max(0, facts.memoryBytes - 100 * 1_048_576)
        let capacity: JSON = [
            "cpu": .string(String(facts.cpus)),
            "memory": .string("\(facts.memoryBytes / 1024)Ki"),
            "ephemeral-storage": .string("\(facts.ephemeralStorageBytes / 1024)Ki"),
            "pods": .string(String(maxPods)),
            "hugepages-1Gi": "0", "hugepages-2Mi": "0",
        ]
        var allocatable = capacity
        allocatable["memory"] = .string("\(allocatableMemory / 1024)Ki")
        allocatable["ephemeral-storage"] = .string(String(facts.ephemeralStorageBytes * 9 / 10))

        func condition(_ type: String, _ status: Bool, _ reason: String, _ message: String) -> JSON {
            let old = (previous?[path: "status", "conditions"]?.arrayValue ?? []).first { $0["type"]?.stringValue == type }
            let value = status ? "True" : "False"
            let since = old?["status"]?.stringValue == value ? old?["lastTransitionTime"] ?? .string(stamp) : .string(stamp)
            return ["type": .string(type), "status": .string(value), "lastHeartbeatTime": .string(stamp),
                    "lastTransitionTime": since, "reason": .string(reason), "message": .string(message)]
        }
        let conditions: JSON = [
            condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", ready, ready ? "KubeletReady" : "KubeletNotReady", readyMessage),
        ]
        return [
            "apiVersion": "v1", "kind": "Node",
            "metadata": [
                "name": .string(name),
                "labels": [
                    "beta.kubernetes.io/arch": .string(facts.architecture), "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": .string(facts.architecture), "kubernetes.io/hostname": .string(name),
                    "kubernetes.io/os": "linux", "node-role.kubernetes.io/control-plane": "",
                ],
                "annotations": ["node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"],
            ],
            "spec": ["podCIDR": .string(podCIDR), "podCIDRs": [.string(podCIDR)]],
            "status": [
                "capacity": capacity,
                "allocatable": allocatable,
                "conditions": conditions,
                "addresses": [["type": "InternalIP", "address": .string(nodeIP)], ["type": "Hostname", "address": .string(name)]],
                "daemonEndpoints": ["kubeletEndpoint": ["Port": 10250]],
                "nodeInfo": [
                    "machineID": .string(facts.machineID), "systemUUID": .string(facts.machineID), "bootID": .string(facts.bootID),
                    "kernelVersion": .string(facts.kernelVersion), "osImage": .string(facts.osImage),
                    "containerRuntimeVersion": "labnode://0.1.0", "kubeletVersion": .string(kubeletVersion),
                    "kubeProxyVersion": .string(kubeletVersion), "operatingSystem": "linux",
                    "architecture": .string(facts.architecture),
                ],
            ],
        ]
    }

    /// The node's heartbeat Lease in kube-node-lease (what `kubectl describe node` shows as Lease).
    public static func lease(name: String, now: Date = Date(), durationSeconds: Int64 = 40) -> JSON {
        [
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": ["name": .string(name), "namespace": "kube-node-lease"],
            "spec": ["holderIdentity": .string(name), "leaseDurationSeconds": .int(durationSeconds),
                     "renewTime": .string(Timestamp.rfc3339Micro(now))],
        ]
    }
}
