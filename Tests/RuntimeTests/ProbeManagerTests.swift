import APIMachinery
import Testing
@testable import Runtime

@Suite struct ProbeRequestTests {
    @Test func httpRequestAsTheKubeletBuildsIt() throws {
        let container: JSON = ["name": "web", "ports": [["name": "http", "containerPort": 8080]]]
        let action = HTTPGetAction(port: .name("http"), path: "/healthz?full=1",
                                   headers: [("x-request-id", "42"), ("host", "example.test")])
        let request = try HTTPProbeRequest.make(action: action, container: container, podIP: "10.244.0.5", kubeVersion: "1.33")
        #expect(request.url == "http://10.244.0.5:8080/healthz?full=1")
        #expect(request.target == "/healthz?full=1")
        #expect(request.hostHeader == "example.test")
        #expect(request.headers == [.init(name: "User-Agent", value: "kube-probe/1.33"),
                                    .init(name: "X-Request-Id", value: "42"), .init(name: "Accept", value: "*/*")])

        let custom = HTTPGetAction(scheme: "HTTP", host: "fd00::5", port: .number(80),
                                   headers: [("User-Agent", "mine"), ("Accept", "")])
        let other = try HTTPProbeRequest.make(action: custom, container: container, podIP: "10.244.0.5", kubeVersion: "1.33")
        #expect(other.url == "http://[fd00::5]:80", "an empty path stays empty in the URL")
        #expect(other.target == "/")
        #expect(other.headers == [.init(name: "User-Agent", value: "mine")], "an empty Accept removes the default")
    }

    @Test func execCommandsExpandLiteralEnv() async {
        let runner = FakeProbeRunner()
        let container: JSON = ["name": "db", "env": [["name": "DIR", "value": "/data"], ["name": "FILE", "value": "$(DIR)/ok"],
                                                     ["name": "SECRET", "valueFrom": ["secretKeyRef": ["name": "s", "key": "k"]]]]]
        let spec = ProbeSpec(action: .exec(command: ["test", "-f", "$(FILE)", "$(SECRET)", "$$(DIR)"]), timeoutSeconds: 2)
        let outcome = await ProbeExecution.run(spec, target: ProbeTarget(podUID: "u", podIP: "10.244.0.5", container: container,
                                                                         containerID: "c1"),
                                               runner: runner, kubeVersion: "1.33")
        #expect(outcome == .success(output: ""))
        #expect(runner.calls == [.exec(ExecProbeRequest(podUID: "u", containerName: "db", containerID: "c1",
                                                        command: ["test", "-f", "/data/ok", "$(SECRET)", "$(DIR)"]),
                                       timeout: 2)])
    }

    @Test(arguments: [
        (ExecProbeResult.exited(code: 0, output: "fine"), ProbeOutcome.success(output: "fine")),
        (.exited(code: 1, output: "cat: can't open '/tmp/healthy': No such file or directory"),
         .failure(output: "cat: can't open '/tmp/healthy': No such file or directory")),
        (.timedOut, .failure(output: "command \"cat /tmp/healthy\" timed out")),
        (.couldNotRun(message: "container not found"), .error(message: "container not found")),
    ])
    func execResults(result: ExecProbeResult, outcome: ProbeOutcome) async {
        let runner = SocketProbeRunner(exec: { _, _ in result })
        let request = ExecProbeRequest(podUID: "u", containerName: "c", containerID: "id", command: ["cat", "/tmp/healthy"])
        #expect(await runner.exec(request, timeout: 1) == outcome)
    }

    @Test func configurationErrorsAreRetriedWithoutTheRunner() async {
        let runner = FakeProbeRunner()
        let spec = ProbeSpec(action: .tcpSocket(host: nil, port: .name("metrics")))
        let outcome = await ProbeExecution.run(spec, target: ProbeTarget(podUID: "u", podIP: "10.244.0.5",
                                                                         container: ["name": "c"], containerID: "c1"),
                                               runner: runner, kubeVersion: "1.33")
        #expect(outcome == .error(message: "strconv.Atoi: parsing \"metrics\": invalid syntax"))
        #expect(runner.calls.isEmpty)
    }

    @Test func unsupportedKindsSaySo() async {
        let runner = SocketProbeRunner()
        #expect(await runner.grpc(host: "10.244.0.5", port: 9000, service: nil, timeout: 1)
                == .error(message: "gRPC probes are not supported by labnode"))
        let exec = await runner.exec(ExecProbeRequest(podUID: "u", containerName: "c", containerID: "i", command: ["true"]), timeout: 1)
        guard case .error = exec else {
            Issue.record("exec without a handler must error, got \(exec)")
            return
        }
    }
}

/// Drains a manager's notifications as they come, so a test can wait for a particular one.
actor NotificationRecorder {
    private(set) var seen: [ProbeManager.Notification] = []
    private var waiters: [(ProbeManager.Notification, CheckedContinuation<Void, Never>)] = []
    private var consumer: Task<Void, Never>?

    init(_ manager: ProbeManager) {
        let stream = manager.notifications
        consumer = nil
        Task { await self.start(stream) }
    }

    private func start(_ stream: AsyncStream<ProbeManager.Notification>) {
        consumer = Task {
            for await n in stream { self.record(n) }
        }
    }

    private func record(_ n: ProbeManager.Notification) {
        seen.append(n)
        let ready = waiters.filter { $0.0 == n }
        waiters.removeAll { $0.0 == n }
        for (_, c) in ready { c.resume() }
    }

    /// Returns once `n` has been seen `count` times in total.
    func waitFor(_ n: ProbeManager.Notification, count: Int = 1) async {
        while seen.filter({ $0 == n }).count < count {
            await withCheckedContinuation { waiters.append((n, $0)) }
        }
    }

    /// Everything, after the manager has shut down (its stream ended).
    func all() async -> [ProbeManager.Notification] {
        await consumer?.value
        return seen
    }
}

/// The manager driven by a manual clock: every tick is explicit, nothing sleeps for real.
@Suite struct ProbeManagerTests {
    static let t0 = 1_767_225_600.0
    static let uid = "pod-uid-1"

    static func pod(status: JSON, restartPolicy: String = "Always") -> JSON {
        [
            "metadata": ["name": "web", "namespace": "default", "uid": .string(uid)],
            "spec": [
                "restartPolicy": .string(restartPolicy),
                "containers": [[
                    "name": "web", "image": "nginx",
                    "ports": [["name": "http", "containerPort": 8080]],
                    "readinessProbe": ["httpGet": ["path": "/ready", "port": "http"], "initialDelaySeconds": 5,
                                       "periodSeconds": 10],
                    "livenessProbe": ["tcpSocket": ["port": 8080], "periodSeconds": 5, "failureThreshold": 2,
                                      "terminationGracePeriodSeconds": 3],
                ]],
            ],
            "status": status,
        ]
    }

    static func runningStatus(id: String = "c1", since: Double = t0, started: Bool = true) -> JSON {
        [
            "phase": "Running", "podIP": "10.244.0.5",
            "containerStatuses": [["name": "web", "containerID": .string("labnode://\(id)"), "started": .bool(started),
                                   "state": ["running": ["startedAt": .string(Timestamp.format(since))]]]],
        ]
    }

    /// Advances the clock and waits until both workers are asleep again.
    static func step(_ clock: ManualWallClock, by seconds: Double) async {
        clock.advance(by: seconds)
        await clock.waitForSleepers(2)
    }

    @Test func readinessAndLivenessOverTime() async {
        let clock = ManualWallClock(now: Self.t0)
        let runner = FakeProbeRunner()
        let manager = ProbeManager(runner: runner, clock: clock)
        let recorder = NotificationRecorder(manager)
        await manager.update(pod: Self.pod(status: Self.runningStatus()))
        await clock.waitForSleepers(2)

        // t0: readiness is inside its initial delay, liveness probed once and passed.
        #expect(await manager.results(podUID: Self.uid)["web"] == ContainerProbeResults(containerID: "c1", readiness: false))
        #expect(await manager.result(podUID: Self.uid, container: "web", kind: .liveness) == .success)
        #expect(runner.calls.count == 1)

        // t0+10: the readiness probe's first real attempt passes.
        await Self.step(clock, by: 5)
        await Self.step(clock, by: 5)
        #expect(await manager.results(podUID: Self.uid)["web"]?.readiness == true)
        let http = runner.calls.compactMap { call -> HTTPProbeRequest? in
            if case .httpGet(let request, _) = call { return request }
            return nil
        }
        #expect(http.map(\.url) == ["http://10.244.0.5:8080/ready"])
        #expect(http.first?.headers.first == .init(name: "User-Agent", value: "kube-probe/1.33"))

        // From t0+15 the port refuses: two failures in a row condemn the container.
        runner.respond { call in
            if case .tcpSocket = call { return .failure(output: "dial tcp 10.244.0.5:8080: connect: connection refused") }
            return .success(output: "")
        }
        await Self.step(clock, by: 5)
        #expect(await manager.result(podUID: Self.uid, container: "web", kind: .liveness) == .success, "one failure is below the threshold")
        await Self.step(clock, by: 5)
        #expect(await manager.result(podUID: Self.uid, container: "web", kind: .liveness) == .failure)

        // The agent restarts it: a new run starts over with the initial results. Its status
        // wakes the readiness worker at once (no verdict for this run yet), inside the delay.
        runner.respond { _ in .success(output: "") }
        let readinessChanges = await recorder.seen.filter { $0 == .resultChanged(podUID: Self.uid, container: "web", kind: .readiness) }.count
        await manager.update(pod: Self.pod(status: Self.runningStatus(id: "c2", since: Self.t0 + 21)))
        await recorder.waitFor(.resultChanged(podUID: Self.uid, container: "web", kind: .readiness), count: readinessChanges + 1)
        await clock.waitForSleepers(2)
        #expect(await manager.results(podUID: Self.uid)["web"] == ContainerProbeResults(containerID: "c2", readiness: false))
        await Self.step(clock, by: 5)
        #expect(await manager.result(podUID: Self.uid, container: "web", kind: .liveness) == .success)

        await manager.shutdown()
        let notifications = await recorder.all()
        let failures = notifications.compactMap { n -> ProbeManager.ProbeFailure? in
            if case .containerFailed(let f) = n { return f }
            return nil
        }
        #expect(failures == [ProbeManager.ProbeFailure(
            podUID: Self.uid, container: "web", containerID: "c1", kind: .liveness, willRestart: true,
            killMessage: "Container web failed liveness probe, will be restarted", gracePeriodSeconds: 3)])
        let events = notifications.compactMap { n -> String? in
            if case .event(_, _, let path, let e) = n { return "\(path) \(e.type) \(e.reason) \(e.message)" }
            return nil
        }
        #expect(events == Array(repeating: "spec.containers{web} Warning Unhealthy Liveness probe failed: "
                                + "dial tcp 10.244.0.5:8080: connect: connection refused", count: 2))
        #expect(notifications.contains(.resultChanged(podUID: Self.uid, container: "web", kind: .readiness)))
    }

    /// A container that starts between ticks gets its readiness verdict right away, not at the next tick.
    @Test func newRunIsProbedForReadinessAtOnce() async {
        let clock = ManualWallClock(now: Self.t0)
        let runner = FakeProbeRunner()
        let manager = ProbeManager(runner: runner, clock: clock)
        let recorder = NotificationRecorder(manager)
        var pod = Self.pod(status: ["phase": "Pending"])
        pod[path: "spec", "containers"] = [["name": "web", "image": "nginx",
                                            "readinessProbe": ["httpGet": ["path": "/", "port": 80], "periodSeconds": 30]]]
        await manager.update(pod: pod)
        await clock.waitForSleepers(1)
        clock.advance(by: 2)
        pod["status"] = Self.runningStatus(since: Self.t0 + 1)
        await manager.update(pod: pod)
        await recorder.waitFor(.resultChanged(podUID: Self.uid, container: "web", kind: .readiness), count: 2)
        #expect(await manager.results(podUID: Self.uid)["web"] == ContainerProbeResults(containerID: "c1", readiness: true))
        #expect(clock.now == Self.t0 + 2, "no tick was needed")
        await manager.shutdown()
        #expect(await recorder.all() == [.resultChanged(podUID: Self.uid, container: "web", kind: .readiness),
                                         .resultChanged(podUID: Self.uid, container: "web", kind: .readiness)])
    }

    @Test func workersStopWithThePod() async {
        let clock = ManualWallClock(now: Self.t0)
        let manager = ProbeManager(runner: FakeProbeRunner(), clock: clock)
        await manager.update(pod: Self.pod(status: Self.runningStatus()))
        await clock.waitForSleepers(2)
        await manager.remove(podUID: Self.uid)
        #expect(await manager.results(podUID: Self.uid).isEmpty)
        // Cancelled sleepers leave the clock.
        for _ in 0..<1000 where clock.sleeperCount > 0 { await Task.yield() }
        #expect(clock.sleeperCount == 0)
    }

    @Test func startupGatesAndNeverMeansNoRestart() async {
        let clock = ManualWallClock(now: Self.t0)
        let runner = FakeProbeRunner { _ in .failure(output: "HTTP probe failed with statuscode: 503") }
        let manager = ProbeManager(runner: runner, clock: clock)
        var pod = Self.pod(status: Self.runningStatus(started: false), restartPolicy: "Never")
        pod[path: "spec", "containers"] = [[
            "name": "web", "image": "nginx",
            "startupProbe": ["httpGet": ["path": "/started", "port": 8080], "periodSeconds": 1, "failureThreshold": 3],
            "livenessProbe": ["httpGet": ["path": "/alive", "port": 8080]],
        ]]
        await manager.update(pod: pod)
        await clock.waitForSleepers(2)
        for _ in 0..<2 { await Self.step(clock, by: 1) }
        await manager.shutdown()
        var failures: [ProbeManager.ProbeFailure] = []
        for await n in manager.notifications { if case .containerFailed(let f) = n { failures.append(f) } }
        #expect(failures.map(\.killMessage) == ["Container web failed startup probe"])
        #expect(failures.first?.gracePeriodSeconds == 30)
        let paths = runner.calls.compactMap { call -> String? in
            if case .httpGet(let request, _) = call { return request.path }
            return nil
        }
        #expect(paths == ["/started", "/started", "/started"], "liveness waits for the startup probe")
    }
}
