import Foundation
import Testing
@testable import Networking

@Suite("IPAM")
struct IPAMTests {
    let subnet = IPv4.CIDR("10.244.0.0/24")

    @Test("allocates from .2, skips the gateway, and is idempotent per pod")
    func firstAllocations() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        #expect(ipam.gateway == IPv4.Address(10, 244, 0, 1))
        #expect(ipam.capacity == 253)
        #expect(try ipam.allocate(podUID: "a") == IPv4.Address(10, 244, 0, 2))
        #expect(try ipam.allocate(podUID: "b") == IPv4.Address(10, 244, 0, 3))
        #expect(try ipam.allocate(podUID: "a") == IPv4.Address(10, 244, 0, 2))
        #expect(try String(contentsOfFile: scratch.path + "/10.244.0.3", encoding: .utf8) == "b\n")
    }

    @Test("allocations survive a restart, and allocation continues after the last one (round robin)")
    func persistence() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let first = try IPAM(subnet: #require(subnet), directory: scratch.path)
        _ = try first.allocate(podUID: "a")
        _ = try first.allocate(podUID: "b")
        _ = try first.allocate(podUID: "c")
        #expect(try first.release(podUID: "b") == IPv4.Address(10, 244, 0, 3))

        let second = try IPAM(subnet: #require(subnet), directory: scratch.path)
        #expect(second.list() == [
            IPAMAllocation(podUID: "a", address: IPv4.Address(10, 244, 0, 2)),
            IPAMAllocation(podUID: "c", address: IPv4.Address(10, 244, 0, 4)),
        ])
        // .3 was just freed; it is not reused until the range wraps.
        #expect(try second.allocate(podUID: "d") == IPv4.Address(10, 244, 0, 5))
    }

    @Test("the range wraps around to freed addresses")
    func wrapAround() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(IPv4.CIDR("10.1.0.0/29")), directory: scratch.path)
        #expect(ipam.capacity == 5)  // .2 ... .6
        for pod in ["a", "b", "c", "d", "e"] { _ = try ipam.allocate(podUID: pod) }
        try ipam.release(podUID: "b")
        #expect(try ipam.allocate(podUID: "f") == IPv4.Address(10, 1, 0, 3))
    }

    @Test("200 parallel allocations get 200 distinct addresses, all persisted")
    func concurrentAllocations() async throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        let results = try await withThrowingTaskGroup(of: IPv4.Address.self) { group in
            for i in 0..<200 {
                group.addTask { try ipam.allocate(podUID: "pod-\(i)") }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(results).count == 200)
        #expect(results.allSatisfy { $0 != ipam.gateway && ipam.subnet.contains($0) })
        let files = try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { IPv4.Address($0) != nil }
        #expect(files.count == 200)
        #expect(try IPAM(subnet: #require(subnet), directory: scratch.path).list().count == 200)
    }

    @Test("exhaustion is an error that names the subnet")
    func exhaustion() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        for i in 0..<253 { _ = try ipam.allocate(podUID: "pod-\(i)") }
        let error = try #require(throws: IPAMError.self) { try ipam.allocate(podUID: "one-too-many") }
        #expect(error == .exhausted(subnet: try #require(subnet), capacity: 253))
        #expect(error.description.contains("10.244.0.0/24"))
        try ipam.release(podUID: "pod-17")
        #expect(try ipam.allocate(podUID: "one-too-many") == IPv4.Address(10, 244, 0, 19))
    }

    @Test("reconcile frees what is not kept, on disk too")
    func reconcile() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        for pod in ["a", "b", "c"] { _ = try ipam.allocate(podUID: pod) }
        let freed = try ipam.reconcile(keep: ["b"])
        #expect(freed.map(\.podUID) == ["a", "c"])
        #expect(ipam.list().map(\.podUID) == ["b"])
        #expect(try IPAM(subnet: #require(subnet), directory: scratch.path).list().map(\.podUID) == ["b"])
    }

    @Test("release of an unknown pod is nil; a half-written file from a crash is cleaned at load")
    func releaseUnknownAndCrashLeftovers() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        try Data().write(to: URL(fileURLWithPath: scratch.path + "/10.244.0.2"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: scratch.path + "/notes.txt"))
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        #expect(try ipam.release(podUID: "ghost") == nil)
        #expect(ipam.list().isEmpty)
        #expect(try ipam.allocate(podUID: "a") == IPv4.Address(10, 244, 0, 2))
        #expect(FileManager.default.fileExists(atPath: scratch.path + "/notes.txt"))
    }

    @Test("an address another process reserved on disk after we loaded is skipped, not shared")
    func reservedBehindOurBack() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        try "other\n".write(toFile: scratch.path + "/10.244.0.2", atomically: false, encoding: .utf8)
        #expect(try ipam.allocate(podUID: "a") == IPv4.Address(10, 244, 0, 3))
        #expect(ipam.address(podUID: "other") == IPv4.Address(10, 244, 0, 2))
    }

    @Test("pod UIDs that would break the file format are refused", arguments: ["", "a/b", "a\nb", "a b"])
    func invalidUIDs(_ uid: String) throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        let ipam = try IPAM(subnet: #require(subnet), directory: scratch.path)
        #expect(throws: IPAMError.invalidPodUID(uid)) { try ipam.allocate(podUID: uid) }
    }

    @Test("a subnet without room for a gateway and a pod is refused")
    func tooSmall() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.cleanup() }
        #expect(throws: IPAMError.self) { try IPAM(subnet: #require(IPv4.CIDR("10.0.0.0/31")), directory: scratch.path) }
    }
}

@Suite("IPv4")
struct IPv4Tests {
    @Test(arguments: [
        ("10.244.0.0/16", "10.244.0.0/24"),
        ("10.244.7.9/16", "10.244.0.0/24"),
        ("10.0.0.0/8", "10.0.0.0/24"),
        ("10.244.3.0/24", "10.244.3.0/24"),
        ("10.244.3.128/25", "10.244.3.128/25"),
    ])
    func podSubnetIsFirstSlash24(cluster: String, expected: String) throws {
        #expect(try #require(IPv4.CIDR(cluster)).firstSlash24.description == expected)
    }

    @Test(arguments: ["10.0.0", "10.0.0.256", "010.0.0.1", "a.b.c.d", "10.0.0.1/33", "10.0.0.1/", "10.0.0.1/-1"])
    func rejectsBadText(_ text: String) {
        #expect(IPv4.CIDR(text) == nil && (text.contains("/") || IPv4.Address(text) == nil))
    }

    @Test func maskAndBroadcast() throws {
        let cidr = try #require(IPv4.CIDR("10.244.0.1/24"))
        #expect(cidr.network == IPv4.Address(10, 244, 0, 0))
        #expect(cidr.broadcast == IPv4.Address(10, 244, 0, 255))
        #expect(cidr.contains(IPv4.Address(10, 244, 0, 77)))
        #expect(!cidr.contains(IPv4.Address(10, 244, 1, 1)))
    }
}
