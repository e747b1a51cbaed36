import Foundation
import Testing

/// `kubectl exec` against pods the node agent runs, over WebSocket (kubectl 1.30 and newer).
@Suite("kubectl exec", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ExecIntegrationTests {
    /// The machine's kubectl (1.32) and the newest.
    static let versions: [String?] = [nil, "1.37"]

    @Test("exec streams, exit codes and stdin", arguments: versions)
    func execOverWebSocket(version: String?) throws {
        guard TestPaths.kubectl(version) != nil else {
            print("SKIPPED: kubectl \(version ?? "default") is not installed (scripts/setup --test installs 1.37)")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        _ = try c.kubectl(version, ["run", "busybox", "--image=busybox", "--", "sleep", "3600"])
        #expect(NodeAgentIntegrationTests.eventually {
            NodeAgentIntegrationTests.jsonpath(c, "busybox", "{.status.phase}") == "Running"
        })
        let resolv = try c.kubectl(version, ["exec", "busybox", "--", "cat", "/etc/resolv.conf"])
        #expect(resolv.code == 0 && resolv.out.contains("nameserver 10.96.0.10"), "\(resolv)")
        let failing = try c.kubectl(version, ["exec", "busybox", "--", "sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(failing.code == 3, "\(failing)")
        #expect(failing.out.contains("out") && failing.err.contains("err"), "\(failing)")
        #expect(failing.err.contains("command terminated with exit code 3"), "\(failing)")
        let echoed = try c.kubectl(version, ["exec", "-i", "busybox", "--", "cat"], stdin: "typed through stdin\n")
        #expect(echoed.code == 0 && echoed.out == "typed through stdin\n", "\(echoed)")
        let missing = try c.kubectl(version, ["exec", "busybox", "--", "no-such-command"])
        #expect(missing.code != 0, "\(missing)")
        // kubectl cp rides on exec and the container's tar, both ways.
        let local = c.dataDir + "-cp.txt"
        try "copied both ways\n".write(toFile: local, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: local); try? FileManager.default.removeItem(atPath: local + ".back") }
        let up = try c.kubectl(version, ["cp", local, "default/busybox:/tmp/in.txt"])
        #expect(up.code == 0, "\(up)")
        let down = try c.kubectl(version, ["cp", "default/busybox:/tmp/in.txt", local + ".back"])
        #expect(down.code == 0, "\(down)")
        #expect((try? String(contentsOfFile: local + ".back", encoding: .utf8)) == "copied both ways\n")
        // The command runs inside the container, with its limits on privileges.
        let inside = try c.kubectl(version, ["exec", "busybox", "--", "sh", "-c", "hostname; grep Seccomp: /proc/self/status"])
        #expect(inside.out.contains("busybox") && inside.out.contains("Seccomp:\t2"), "\(inside)")
        // Older kubectl speaks SPDY, which is not served yet: it must fail, not hang, and the
        // server must stay healthy.
        if TestPaths.kubectl("1.27") != nil {
            let old = try c.kubectl("1.27", ["exec", "busybox", "--", "true"], timeout: 30)
            #expect(old.code != 0, "\(old)")
            let after = try c.kubectl(version, ["exec", "busybox", "--", "true"])
            #expect(after.code == 0, "\(after)")
        }
    }

    /// An interactive shell under a real terminal (tmux): two commands typed, then exit.
    @Test func interactiveTerminal() throws {
        guard TestPaths.which("tmux") != nil, let kubectl = TestPaths.kubectl(nil) else {
            print("SKIPPED: tmux or kubectl missing (scripts/setup --test installs tmux)")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        _ = try c.kubectl(nil, ["run", "busybox", "--image=busybox", "--", "sleep", "3600"])
        #expect(NodeAgentIntegrationTests.eventually {
            NodeAgentIntegrationTests.jsonpath(c, "busybox", "{.status.phase}") == "Running"
        })
        let session = "lnexec\(getpid())"
        let command = "KUBECONFIG=\(c.kubeconfig) HOME=\(c.dataDir)-home nsenter --net=/run/netns/\(c.netns) \(kubectl) exec -ti busybox -- sh; echo rc=$?; sleep 60"
        _ = try Command.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "30", command])
        defer { _ = try? Command.run(["tmux", "kill-session", "-t", session]) }
        func screen() -> String { (try? Command.run(["tmux", "capture-pane", "-t", session, "-p"]).out) ?? "" }
        #expect(NodeAgentIntegrationTests.eventually(15) { screen().contains("/ #") }, "\(screen())")
        _ = try Command.run(["tmux", "send-keys", "-t", session, "echo $((6*7)); hostname", "Enter"])
        #expect(NodeAgentIntegrationTests.eventually(10) { screen().contains("42") && screen().contains("\nbusybox") }, "\(screen())")
        _ = try Command.run(["tmux", "send-keys", "-t", session, "ls /", "Enter"])
        #expect(NodeAgentIntegrationTests.eventually(10) { screen().contains("proc") && screen().contains("etc") }, "\(screen())")
        _ = try Command.run(["tmux", "send-keys", "-t", session, "exit 4", "Enter"])
        #expect(NodeAgentIntegrationTests.eventually(10) { screen().contains("rc=4") }, "\(screen())")
    }
}
