import Foundation
import Testing
@testable import Runtime

@Suite struct CPUMathTests {
    @Test(arguments: [
        (Int64?.none, Int64(2)), (0, 2), (1, 2), (2, 2), (100, 102), (250, 256), (1000, 1024), (1500, 1536), (300_000, 262_144),
    ])
    func sharesFromRequest(_ millis: Int64?, _ shares: Int64) {
        #expect(CPUMath.shares(requestMillis: millis) == shares)
    }

    @Test(arguments: [(Int64?.none, Int64?.none), (0, nil), (5, 1000), (10, 1000), (250, 25_000), (500, 50_000), (1500, 150_000)])
    func quotaFromLimit(_ millis: Int64?, _ quota: Int64?) {
        #expect(CPUMath.quota(limitMillis: millis) == quota)
    }

    @Test(arguments: [(Int64(2), Int64(1)), (3, 2), (256, 35), (512, 59), (1024, 100), (2048, 174), (102_400, 4429), (262_144, 10_000)])
    func weightFromShares(_ shares: Int64, _ weight: Int64) {
        #expect(CPUMath.weight(shares: shares) == weight)
    }
}

@Suite struct CgroupManagerTests {
    static let resources = CgroupResources(cpuRequestMillis: 250, cpuLimitMillis: 500, memoryLimitBytes: 20 << 20, pidsLimit: 100)

    /// A hybrid host like the lab machines: one directory per v1 controller plus "unified".
    func makeHybrid(_ root: String, combinedCPU: Bool = false) throws {
        let fm = FileManager.default
        for name in ["memory", "pids", "blkio", "devices", "unified"] {
            try fm.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
        }
        if combinedCPU {
            try fm.createDirectory(atPath: root + "/cpu,cpuacct", withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: root + "/cpu", withDestinationPath: "cpu,cpuacct")
            try fm.createSymbolicLink(atPath: root + "/cpuacct", withDestinationPath: "cpu,cpuacct")
        } else {
            try fm.createDirectory(atPath: root + "/cpu", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: root + "/cpuacct", withIntermediateDirectories: true)
        }
    }

    @Test func v1HybridWritesKubeletValues() async throws {
        try await withScratchDirectory { root in
            try makeHybrid(root)
            let manager = try CgroupManager(root: root, emulateKernelFiles: true)
            #expect(manager.layout == .v1(hybrid: true))
            let paths = try manager.create(pod: "pod-uid", container: "web", resources: Self.resources)
            #expect(Set(paths) == Set(["cpu", "cpuacct", "devices", "memory", "pids"].map { "\(root)/\($0)/labnode/pod-uid/web" }))
            let devices = root + "/devices/labnode/pod-uid/web/"
            #expect(try readTestFile(devices + "devices.deny") == "a\n")
            let allowed = try readTestFile(devices + "devices.allow").split(separator: "\n")
            #expect(allowed.first == "c *:* m")
            #expect(allowed.contains("c 1:3 rwm"))
            #expect(allowed.contains("c 136:* rwm"))
            #expect(!allowed.contains("a"))
            let cpu = root + "/cpu/labnode/pod-uid/web/"
            #expect(try readTestFile(cpu + "cpu.shares") == "256")
            #expect(try readTestFile(cpu + "cpu.cfs_period_us") == "100000")
            #expect(try readTestFile(cpu + "cpu.cfs_quota_us") == "50000")
            let memory = root + "/memory/labnode/pod-uid/web/"
            #expect(try readTestFile(memory + "memory.limit_in_bytes") == "20971520")
            #expect(try readTestFile(memory + "memory.swappiness") == "0")
            #expect(try readTestFile(root + "/pids/labnode/pod-uid/web/pids.max") == "100")
            #expect(!FileManager.default.fileExists(atPath: root + "/unified/labnode"))

            try manager.update(pod: "pod-uid", container: "web", resources: CgroupResources())
            #expect(try readTestFile(cpu + "cpu.shares") == "2")
            #expect(try readTestFile(cpu + "cpu.cfs_quota_us") == "-1")
            #expect(try readTestFile(memory + "memory.limit_in_bytes") == "-1")
            #expect(try readTestFile(root + "/pids/labnode/pod-uid/web/pids.max") == "max")

            try manager.addProcess(4321, pod: "pod-uid", container: "web")
            #expect(try readTestFile(memory + "cgroup.procs") == "4321")

            try manager.remove(pod: "pod-uid", container: "web")
            try manager.removePod("pod-uid")
            try manager.removeParent()
            for controller in ["cpu", "cpuacct", "devices", "memory", "pids"] {
                #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/" + controller).isEmpty)
            }
            // Idempotent.
            try manager.remove(pod: "pod-uid", container: "web")
        }
    }

    @Test func v1ReadsUsageAndOOMKills() async throws {
        try await withScratchDirectory { root in
            try makeHybrid(root)
            let manager = try CgroupManager(root: root, emulateKernelFiles: true)
            try manager.create(pod: "p", container: "c", resources: CgroupResources())
            let memory = root + "/memory/labnode/p/c/"
            try writeTestFile(memory + "memory.usage_in_bytes", "1048576\n")
            try writeTestFile(memory + "memory.limit_in_bytes", "9223372036854771712\n")
            try writeTestFile(memory + "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
            try writeTestFile(root + "/cpuacct/labnode/p/c/cpuacct.usage", "123456789\n")
            try writeTestFile(root + "/pids/labnode/p/c/pids.current", "4\n")
            let stats = try manager.stats(pod: "p", container: "c")
            #expect(stats == CgroupStats(memoryUsageBytes: 1_048_576, memoryLimitBytes: nil, cpuUsageNanoseconds: 123_456_789, pids: 4, oomKills: 3))
        }
    }

    @Test func combinedCPUHierarchyIsCreatedOnce() async throws {
        try await withScratchDirectory { root in
            try makeHybrid(root, combinedCPU: true)
            let manager = try CgroupManager(root: root, emulateKernelFiles: true)
            let paths = try manager.create(pod: "p", container: "c", resources: Self.resources, devices: .all)
            #expect(paths.count == 4)
            #expect(try readTestFile(root + "/devices/labnode/p/c/devices.allow") == "a\n")
            #expect(!FileManager.default.fileExists(atPath: root + "/devices/labnode/p/c/devices.deny"))
            #expect(paths.contains("\(root)/cpu,cpuacct/labnode/p/c"))
            #expect(try readTestFile(root + "/cpu,cpuacct/labnode/p/c/cpu.shares") == "256")
        }
    }

    @Test func nestsUnderLabnodesOwnCgroups() async throws {
        try await withScratchDirectory { root in
            try makeHybrid(root)
            try FileManager.default.createDirectory(atPath: root + "/memory/process_api/abc", withIntermediateDirectories: true)
            let own = CgroupManager.currentCgroups("9:name=systemd:/\n4:memory:/process_api/abc\n1:cpu:/\n0::/\n")
            #expect(own == ["name=systemd": "/", "memory": "/process_api/abc", "cpu": "/", "": "/"])
            let manager = try CgroupManager(root: root, parent: "labnode-test", nestUnder: own, emulateKernelFiles: true)
            let paths = try manager.create(pod: "p", container: "c", resources: Self.resources)
            #expect(paths.contains("\(root)/memory/process_api/abc/labnode-test/p/c"))
            #expect(paths.contains("\(root)/cpu/labnode-test/p/c"))
        }
    }

    @Test func v2EnablesControllersAndWritesLimits() async throws {
        try await withScratchDirectory { root in
            try writeTestFile(root + "/cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
            let manager = try CgroupManager(root: root, emulateKernelFiles: true)
            #expect(manager.layout == .v2)
            let paths = try manager.create(pod: "p", container: "c", resources: Self.resources)
            #expect(paths == [root + "/labnode/p/c"])
            #expect(try readTestFile(root + "/cgroup.subtree_control") == "+cpu +memory +pids")
            #expect(try readTestFile(root + "/labnode/cgroup.subtree_control") == "+cpu +memory +pids")
            #expect(try readTestFile(root + "/labnode/p/cgroup.subtree_control") == "+cpu +memory +pids")
            let dir = root + "/labnode/p/c/"
            #expect(try readTestFile(dir + "cpu.weight") == "35")
            #expect(try readTestFile(dir + "cpu.max") == "50000 100000")
            #expect(try readTestFile(dir + "memory.max") == "20971520")
            #expect(try readTestFile(dir + "memory.swap.max") == "0")
            #expect(try readTestFile(dir + "pids.max") == "100")

            try manager.update(pod: "p", container: "c", resources: CgroupResources(cpuRequestMillis: 1000))
            #expect(try readTestFile(dir + "cpu.weight") == "100")
            #expect(try readTestFile(dir + "cpu.max") == "max 100000")
            #expect(try readTestFile(dir + "memory.max") == "max")

            try writeTestFile(dir + "memory.current", "2048\n")
            try writeTestFile(dir + "cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
            try writeTestFile(dir + "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n")
            try writeTestFile(dir + "pids.current", "2\n")
            let stats = try manager.stats(pod: "p", container: "c")
            #expect(stats == CgroupStats(memoryUsageBytes: 2048, memoryLimitBytes: nil, cpuUsageNanoseconds: 1_500_000, pids: 2, oomKills: 1))

            try manager.remove(pod: "p", container: "c")
            try manager.removePod("p")
            #expect(!FileManager.default.fileExists(atPath: root + "/labnode/p"))
        }
    }

    @Test func refusesBadNamesAndEmptyRoots() async throws {
        try await withScratchDirectory { root in
            #expect(throws: RuntimeSyscallError.self) { try CgroupManager(root: root) }
            try makeHybrid(root)
            let manager = try CgroupManager(root: root, emulateKernelFiles: true)
            for bad in ["", "..", "a/b", "."] {
                #expect(throws: RuntimeSyscallError.self) { try manager.create(pod: bad, container: "c", resources: .init()) }
                #expect(throws: RuntimeSyscallError.self) { try manager.remove(pod: "p", container: bad) }
            }
            #expect(throws: RuntimeSyscallError.self) { try CgroupManager(root: root, parent: "../escape") }
        }
    }
}
