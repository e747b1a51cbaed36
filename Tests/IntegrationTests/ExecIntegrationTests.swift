import Foundation
import Testing

/// `kubectl exec`, `attach`, `run -it`, `cp` and `port-forward` against pods the node agent
/// runs, with every kubectl a classroom may have: SPDY/3.1 (1.27-1.29, and newer ones told
/// not to use WebSockets), WebSocket (1.30+), port-forward raw SPDY (1.30) and inside
/// WebSocket messages (1.31+).
@Suite("kubectl exec, attach and port-forward", .serialized, .enabled(if: Capability.canCreateNetns && Capability.hasBinary))
struct ExecIntegrationTests {
    static func runningBusybox(_ c: ClusterFixture) throws {
        try #require(try c.up().code == 0)
        _ = try c.kubectl(nil, ["run", "busybox", "--image=busybox", "--", "sleep", "3600"])
        #expect(NodeAgentIntegrationTests.eventually {
            NodeAgentIntegrationTests.jsonpath(c, "busybox", "{.status.phase}") == "Running"
        })
    }

    /// The kubectl builds and transports exercised, those present on this machine.
    static let transports: [(version: String?, env: [String: String], label: String)] = [
        (nil, [:], "WebSocket (machine's kubectl)"),
        ("1.37", [:], "WebSocket (newest)"),
        ("1.27", [:], "SPDY 1.27"),
        ("1.28", [:], "SPDY 1.28"),
        ("1.29", [:], "SPDY 1.29"),
        (nil, ["KUBECTL_REMOTE_COMMAND_WEBSOCKETS": "false"], "SPDY fallback"),
    ]

    @Test func execOverEveryTransport() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try Self.runningBusybox(c)
        for t in Self.transports {
            guard TestPaths.kubectl(t.version) != nil else {
                print("SKIPPED: kubectl \(t.version ?? "") is not installed (scripts/setup --test installs 1.37)")
                continue
            }
            let resolv = try c.kubectl(t.version, ["exec", "busybox", "--", "cat", "/etc/resolv.conf"], env: t.env)
            #expect(resolv.code == 0 && resolv.out.contains("nameserver 10.96.0.10"), "\(t.label): \(resolv)")
            let failing = try c.kubectl(t.version, ["exec", "busybox", "--", "sh", "-c", "echo out; echo err >&2; exit 3"], env: t.env)
            #expect(failing.code == 3 && failing.out.contains("out") && failing.err.contains("err"), "\(t.label): \(failing)")
            #expect(failing.err.contains("command terminated with exit code 3"), "\(t.label): \(failing)")
            let echoed = try c.kubectl(t.version, ["exec", "-i", "busybox", "--", "cat"], stdin: "typed through stdin\n", env: t.env)
            #expect(echoed.code == 0 && echoed.out == "typed through stdin\n", "\(t.label): \(echoed)")
            let missing = try c.kubectl(t.version, ["exec", "busybox", "--", "no-such-command"], env: t.env)
            #expect(missing.code != 0 && missing.err.contains("no-such-command"), "\(t.label): \(missing)")
        }
        let wrong = try c.kubectl("1.27", ["exec", "busybox", "-c", "nope", "--", "true"])
        #expect(wrong.code != 0 && wrong.err.contains("container nope is not valid for pod busybox"), "\(wrong)")
        // kubectl cp rides on exec and the container's tar, both ways, on both transports.
        for version in [nil, "1.27"] as [String?] {
            let local = c.dataDir + "-cp.txt"
            try "copied both ways\n".write(toFile: local, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(atPath: local); try? FileManager.default.removeItem(atPath: local + ".back") }
            let up = try c.kubectl(version, ["cp", local, "default/busybox:/tmp/in.txt"])
            #expect(up.code == 0, "\(up)")
            let down = try c.kubectl(version, ["cp", "default/busybox:/tmp/in.txt", local + ".back"])
            #expect(down.code == 0, "\(down)")
            #expect((try? String(contentsOfFile: local + ".back", encoding: .utf8)) == "copied both ways\n")
        }
        // The command runs inside the container, with its limits on privileges.
        let inside = try c.kubectl(nil, ["exec", "busybox", "--", "sh", "-c", "hostname; grep Seccomp: /proc/self/status"])
        #expect(inside.out.contains("busybox") && inside.out.contains("Seccomp:\t2"), "\(inside)")

        // A client that vanishes mid-command: the command is killed, no zombie stays in the
        // container (it would keep the pod from ever stopping), and the server stays healthy.
        func leftovers() -> String {
            (try? c.kubectl(nil, ["exec", "busybox", "--", "ps", "-o", "pid,stat,args"]).out) ?? "?"
        }
        for version in [nil, "1.27"] as [String?] {
            let session = try c.background(version, ["exec", "busybox", "--", "sleep", "777"])
            #expect(NodeAgentIntegrationTests.eventually(15) { leftovers().contains("sleep 777") }, "\(leftovers())")
            session.finish(SIGKILL)
            #expect(NodeAgentIntegrationTests.eventually(15) { !leftovers().contains("sleep 777") && !leftovers().contains("[sleep]") },
                    "\(leftovers())")
        }
        let down = try c.labnode(["down"], timeout: 40)
        #expect(down.code == 0 && !(down.out + down.err).contains("killed"), "\(down)")
    }

    /// Interactive shells under a real terminal (tmux), over WebSocket and SPDY: two
    /// commands typed, terminal line endings, resize, exit status.
    @Test(arguments: [nil, "1.27"] as [String?])
    func interactiveTerminal(version: String?) throws {
        guard TestPaths.which("tmux") != nil, let kubectl = TestPaths.kubectl(version) else {
            print("SKIPPED: tmux or kubectl \(version ?? "") missing (scripts/setup --test installs tmux)")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        try Self.runningBusybox(c)
        let tmux = TmuxSession(c, "\(kubectl) exec -ti busybox -- sh")
        defer { tmux.end() }
        #expect(NodeAgentIntegrationTests.eventually(15) { tmux.screen().contains("/ #") }, "\(tmux.screen())")
        tmux.type("echo $((6*7)); hostname")
        #expect(NodeAgentIntegrationTests.eventually(10) { tmux.screen().contains("42") && tmux.screen().contains("\nbusybox") },
                "\(tmux.screen())")
        tmux.type("ls /")
        #expect(NodeAgentIntegrationTests.eventually(10) { tmux.screen().contains("proc") && tmux.screen().contains("etc") },
                "\(tmux.screen())")
        // What reached the terminal, byte for byte: a terminal's line endings.
        #expect(tmux.raw().contains("proc") && tmux.raw().contains("\r\n"), "\(tmux.raw().debugDescription)")
        // The terminal's size went through (tmux's window is 120x30).
        tmux.type("stty size")
        #expect(NodeAgentIntegrationTests.eventually(10) { tmux.screen().contains("30 120") }, "\(tmux.screen())")
        tmux.type("exit 4")
        #expect(NodeAgentIntegrationTests.eventually(10) { tmux.screen().contains("rc=4") }, "\(tmux.screen())")
    }

    /// `kubectl run -i/-it --rm` and `kubectl attach`, over WebSocket and SPDY.
    @Test func attach() throws {
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        for version in [nil, "1.27"] as [String?] {
            let name = "once-\(version?.replacingOccurrences(of: ".", with: "-") ?? "ws")"
            let r = try c.kubectl(version, ["run", name, "-i", "--rm", "--image=busybox", "--restart=Never", "--",
                                            "sh", "-c", "while read l; do echo got:$l; done; echo bye"],
                                  stdin: "a\nb\n", timeout: 90)
            #expect(r.code == 0 && r.out.contains("got:a\ngot:b\nbye"), "\(r)")
            #expect(NodeAgentIntegrationTests.eventually(30) {
                (try? c.kubectl(nil, ["get", "pod", name]))?.err.contains("NotFound") == true
            }, "--rm deletes the pod")
        }
        // A terminal session as in the chapter's `kubectl run -it --rm ... -- sh`.
        if TestPaths.which("tmux") != nil, let kubectl = TestPaths.kubectl(nil) {
            let tmux = TmuxSession(c, "\(kubectl) run -it --rm shell --image=busybox --restart=Never -- sh")
            defer { tmux.end() }
            #expect(NodeAgentIntegrationTests.eventually(30) { tmux.screen().contains("try pressing enter") }, "\(tmux.screen())")
            tmux.type("echo attached-$((6*7))")
            #expect(NodeAgentIntegrationTests.eventually(10) { tmux.screen().contains("attached-42") }, "\(tmux.screen())")
            tmux.type("exit 5")
            #expect(NodeAgentIntegrationTests.eventually(30) { tmux.screen().contains("rc=5") }, "\(tmux.screen())")
        } else {
            print("SKIPPED: the tmux part of attach (scripts/setup --test installs tmux)")
        }
        // `kubectl attach` to a container that writes on its own shows its new output.
        _ = try c.kubectl(nil, ["run", "counter", "--image=busybox", "--", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"])
        #expect(NodeAgentIntegrationTests.eventually { NodeAgentIntegrationTests.jsonpath(c, "counter", "{.status.phase}") == "Running" })
        for version in [nil, "1.27"] as [String?] {
            let session = try c.background(version, ["attach", "counter"])
            #expect(NodeAgentIntegrationTests.eventually(15) { session.out.components(separatedBy: "tick").count > 3 },
                    "\(session.out)\n\(session.err)")
            session.finish()
        }
    }

    /// port-forward to a pod through a Service name, several connections at once, on every
    /// port-forward transport; a refused port is reported, not fatal to the server.
    @Test(arguments: ["1.30", nil, "1.37"] as [String?])
    func portForward(version: String?) throws {
        guard TestPaths.kubectl(version) != nil else {
            print("SKIPPED: kubectl \(version ?? "") is not installed")
            return
        }
        let c = try ClusterFixture()
        defer { c.stop() }
        try #require(try c.up().code == 0)
        _ = try c.kubectl(nil, ["create", "deployment", "nginx", "--image=nginx"])
        _ = try c.kubectl(nil, ["expose", "deployment", "nginx", "--port=8080", "--target-port=80"])
        #expect(NodeAgentIntegrationTests.eventually {
            (try? c.kubectl(nil, ["get", "pods", "-l", "app=nginx", "-o", "jsonpath={.items[0].status.containerStatuses[0].ready}"]))?.out == "true"
        })
        let forward = try c.background(version, ["port-forward", "svc/nginx", ":8080"])
        defer { forward.finish() }
        func localPort() -> String? {
            forward.out.split(separator: "\n").first { $0.hasPrefix("Forwarding from 127.0.0.1:") }
                .map { String($0.dropFirst("Forwarding from 127.0.0.1:".count).prefix { $0.isNumber }) }
        }
        #expect(NodeAgentIntegrationTests.eventually(20) { localPort() != nil }, "\(forward.out)\n\(forward.err)")
        let port = try #require(localPort())
        let parallel = try c.inNetns(["sh", "-c", "for i in 1 2 3 4; do curl -s -m 10 http://127.0.0.1:\(port)/ > /tmp/lnpf-$$-$i & done; wait; "
                                        + "cat /tmp/lnpf-$$-*; rm -f /tmp/lnpf-$$-*"])
        #expect(parallel.out.components(separatedBy: "Welcome to nginx!").count - 1 == 8, "\(parallel)")
        let pod = try c.kubectl(nil, ["get", "pods", "-l", "app=nginx", "-o", "jsonpath={.items[0].metadata.name}"]).out
        let refused = try c.background(version, ["port-forward", "pod/\(pod)", ":81"])
        defer { refused.finish() }
        #expect(NodeAgentIntegrationTests.eventually(20) { refused.out.contains("Forwarding from 127.0.0.1:") })
        let refusedPort = refused.out.split(separator: "\n").first { $0.hasPrefix("Forwarding from 127.0.0.1:") }
            .map { String($0.dropFirst("Forwarding from 127.0.0.1:".count).prefix { $0.isNumber }) } ?? "0"
        _ = try c.inNetns(["curl", "-s", "-m", "5", "http://127.0.0.1:\(refusedPort)/"])
        #expect(NodeAgentIntegrationTests.eventually(10) { refused.err.contains("connection refused") }, "\(refused.err)")
        // The first forward still serves.
        let again = try c.inNetns(["curl", "-s", "-m", "10", "http://127.0.0.1:\(port)/"])
        #expect(again.out.contains("Welcome to nginx!"), "\(again)")
    }
}

/// A command under a real terminal: tmux, with what the terminal received also kept raw.
final class TmuxSession {
    let name = "lnt\(getpid())\(UInt32.random(in: 0...UInt32.max))"
    let rawPath: String

    init(_ c: ClusterFixture, _ command: String) {
        rawPath = c.dataDir + "-\(name).raw"
        let full = "KUBECONFIG=\(c.kubeconfig) HOME=\(c.dataDir)-home nsenter --net=/run/netns/\(c.netns) \(command); echo rc=$?; sleep 60"
        _ = try? Command.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "30", full])
        _ = try? Command.run(["tmux", "pipe-pane", "-o", "-t", name, "cat >> \(rawPath)"])
    }

    func screen() -> String { (try? Command.run(["tmux", "capture-pane", "-t", name, "-p"]).out) ?? "" }
    func raw() -> String { (try? String(contentsOfFile: rawPath, encoding: .utf8)) ?? "" }
    func type(_ line: String) { _ = try? Command.run(["tmux", "send-keys", "-t", name, line, "Enter"]) }

    func end() {
        _ = try? Command.run(["tmux", "kill-session", "-t", name])
        try? FileManager.default.removeItem(atPath: rawPath)
    }
}
