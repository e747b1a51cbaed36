import Foundation
import Testing
@testable import Networking

/// A stand-in /proc/sys: a directory whose files are the keys that "exist".
struct FakeProcSys {
    let scratch: ScratchDirectory
    var sysctl: ProcSysctl { ProcSysctl(root: scratch.path) }

    init(_ values: [String: String]) throws {
        scratch = try ScratchDirectory()
        for (key, value) in values {
            let path = scratch.path + "/" + key
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try (value + "\n").write(toFile: path, atomically: false, encoding: .utf8)
        }
    }

    func value(_ key: String) -> String? {
        (try? String(contentsOfFile: scratch.path + "/" + key, encoding: .utf8))?.trimmingCharacters(in: .newlines)
    }
}

@Suite("Sysctl")
struct SysctlTests {
    @Test("reads trim the newline; a missing key reads as nil and cannot be written")
    func readWrite() throws {
        let proc = try FakeProcSys(["net/ipv4/ip_forward": "0"])
        defer { proc.scratch.cleanup() }
        #expect(try proc.sysctl.read("net/ipv4/ip_forward") == "0")
        try proc.sysctl.write("net/ipv4/ip_forward", value: "1")
        #expect(proc.value("net/ipv4/ip_forward") == "1")
        #expect(try proc.sysctl.read("net/bridge/bridge-nf-call-iptables") == nil)
        let error = try #require(throws: SystemCallError.self) {
            try proc.sysctl.write("net/bridge/bridge-nf-call-iptables", value: "1")
        }
        #expect(error.errnoName == "ENOENT")
    }

    @Test("keys that escape the root are refused", arguments: ["../etc/passwd", "net/../../x", "", "net//ipv4"])
    func badKeys(_ key: String) throws {
        let proc = try FakeProcSys([:])
        defer { proc.scratch.cleanup() }
        #expect(throws: SystemCallError.self) { try proc.sysctl.read(key) }
    }

    @Test("the journal records the first original only, skips optional missing keys, and restores")
    func journal() throws {
        let proc = try FakeProcSys(["net/ipv4/ip_forward": "0", "net/ipv4/conf/cni0/route_localnet": "0"])
        defer { proc.scratch.cleanup() }
        let journal = try SysctlJournal(sysctl: proc.sysctl)
        #expect(try journal.set("net/ipv4/ip_forward", to: "1"))
        #expect(try journal.set("net/ipv4/ip_forward", to: "2"))
        #expect(try journal.set("net/bridge/bridge-nf-call-iptables", to: "1", required: false) == false)
        #expect(throws: SystemCallError.self) { try journal.set("net/bridge/bridge-nf-call-iptables", to: "1") }
        try journal.set("net/ipv4/conf/cni0/route_localnet", to: "1")
        #expect(journal.originalValues == ["net/ipv4/ip_forward": "0", "net/ipv4/conf/cni0/route_localnet": "0"])
        #expect(proc.value("net/ipv4/ip_forward") == "2")
        try journal.restoreAll()
        #expect(proc.value("net/ipv4/ip_forward") == "0")
        #expect(proc.value("net/ipv4/conf/cni0/route_localnet") == "0")
        #expect(journal.originalValues.isEmpty)
    }

    @Test("a value already right is not recorded (nothing to undo)")
    func alreadySet() throws {
        let proc = try FakeProcSys(["net/ipv4/ip_forward": "1"])
        defer { proc.scratch.cleanup() }
        let journal = try SysctlJournal(sysctl: proc.sysctl)
        try journal.set("net/ipv4/ip_forward", to: "1")
        #expect(journal.originalValues.isEmpty)
    }

    @Test("originals survive a restart through the record file, so restore does not 'restore' our own value")
    func recordSurvivesRestart() throws {
        let proc = try FakeProcSys(["net/ipv4/ip_forward": "0", "net/ipv4/conf/cni0/route_localnet": "0"])
        defer { proc.scratch.cleanup() }
        let record = proc.scratch.path + "/record.json"
        try SysctlJournal(sysctl: proc.sysctl, recordPath: record).set("net/ipv4/ip_forward", to: "1")
        try SysctlJournal(sysctl: proc.sysctl, recordPath: record).set("net/ipv4/conf/cni0/route_localnet", to: "1")

        let afterRestart = try SysctlJournal(sysctl: proc.sysctl, recordPath: record)
        try afterRestart.set("net/ipv4/ip_forward", to: "1")
        #expect(afterRestart.originalValues["net/ipv4/ip_forward"] == "0")
        // The bridge (and its conf directory) is gone by the time `labnode down` restores.
        try FileManager.default.removeItem(atPath: proc.scratch.path + "/net/ipv4/conf/cni0")
        try afterRestart.restoreAll()
        #expect(proc.value("net/ipv4/ip_forward") == "0")
        #expect(!FileManager.default.fileExists(atPath: record))
    }
}
