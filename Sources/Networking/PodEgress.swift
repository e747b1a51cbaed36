import Foundation

/// Masquerade for pod traffic leaving the node, as the CNI bridge plugin's `ipMasq` does: pods
/// have addresses from the cluster range that nothing outside the node routes back to, so a
/// packet from a pod to anything outside the cluster range and not out through the bridge
/// leaves with the node's address.
///
/// One rule in the nat table's POSTROUTING chain, added through the `iptables` command (the
/// service proxy owns the rest of netfilter); checked with `-C` first so repeated starts add
/// it once, and deleted when labnode stops.
public struct PodEgress: Sendable {
    /// Runs an iptables command (arguments after the binary) and returns its exit status and
    /// standard error; tests record the calls instead.
    public typealias Runner = @Sendable ([String]) throws -> (status: Int32, error: String)

    public let podSubnet: String
    public let clusterCIDR: String
    public let bridge: String
    let run: Runner

    public init(podSubnet: String, clusterCIDR: String, bridge: String, run: Runner? = nil) {
        self.podSubnet = podSubnet
        self.clusterCIDR = clusterCIDR
        self.bridge = bridge
        self.run = run ?? PodEgress.iptables
    }

    /// The rule, without the `-A`/`-C`/`-D` that says what to do with it.
    public var rule: [String] {
        ["POSTROUTING", "-s", podSubnet, "!", "-d", clusterCIDR, "!", "-o", bridge,
         "-m", "comment", "--comment", "labnode: pod traffic leaving the node", "-j", "MASQUERADE"]
    }

    /// Adds the rule unless it is there already.
    public func ensure() throws {
        if try run(["-t", "nat", "-C"] + rule).status == 0 { return }
        let added = try run(["-t", "nat", "-A"] + rule)
        guard added.status == 0 else {
            throw PodEgressError(message: "iptables -t nat -A \(rule.joined(separator: " ")) failed: \(added.error)")
        }
    }

    /// Deletes the rule if it is there.
    public func remove() throws {
        while try run(["-t", "nat", "-C"] + rule).status == 0 {
            let deleted = try run(["-t", "nat", "-D"] + rule)
            guard deleted.status == 0 else {
                throw PodEgressError(message: "iptables -t nat -D failed: \(deleted.error)")
            }
        }
    }

    static let iptablesPaths = ["/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"]

    /// The real runner: the iptables binary, waited for on the calling thread.
    public static let iptables: Runner = { arguments in
        guard let binary = iptablesPaths.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw PodEgressError(message: "iptables is not installed, so pods cannot reach past the node (apt-get install iptables)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-w", "5"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

public struct PodEgressError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}
