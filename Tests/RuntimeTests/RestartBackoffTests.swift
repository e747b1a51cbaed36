import APIMachinery
import Testing
@testable import Runtime

@Suite struct RestartBackoffTests {
    /// A container that crashes one second after every start: the waits grow 10, 20, 40, 80,
    /// 160 s and then stay at 5 min, and the first crash restarts at once.
    @Test func crashLoopSequence() {
        var backoff = RestartBackoff()
        let key = RestartBackoff.key(podUID: "uid", container: "web")
        var now = 1000.0
        var finishedAt = now
        #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: finishedAt, now: now) == .restartNow)

        var waits: [Double] = []
        var messages: [String] = []
        for _ in 0..<7 {
            finishedAt = now + 1  // the restarted run crashes after a second
            now = finishedAt
            guard case .backOff(let until, let delay) = backoff.decide(key: key, restartPolicy: "Always", exitCode: 1,
                                                                       finishedAt: finishedAt, now: now) else {
                Issue.record("expected a back-off")
                return
            }
            #expect(until == finishedAt + delay)
            waits.append(delay)
            messages.append(KubeletMessages.crashLoopBackOff(delay: delay, container: "web",
                                                             pod: ["metadata": ["name": "p", "namespace": "ns", "uid": "u"]]))
            // Asking again before the window ends changes nothing.
            #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: finishedAt,
                                   now: until - 0.5) == .backOff(until: until, delay: delay))
            now = until
            #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: finishedAt, now: now) == .restartNow)
        }
        #expect(waits == [10, 20, 40, 80, 160, 300, 300])
        #expect(messages.first == "back-off 10s restarting failed container=web pod=p_ns(u)")
        #expect(messages.last == "back-off 5m0s restarting failed container=web pod=p_ns(u)")
        #expect(messages[3] == "back-off 1m20s restarting failed container=web pod=p_ns(u)")
    }

    @Test func tenMinutesOfHealthResetsTheSequence() {
        var backoff = RestartBackoff()
        let key = "k"
        var now = 0.0
        #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: now, now: now) == .restartNow)
        now = 1
        #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: now, now: now) == .backOff(until: 11, delay: 10))
        now = 11
        #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: 1, now: now) == .restartNow)
        #expect(backoff.currentDelay(key: key) == 20)

        // Exactly ten minutes after that restart is not yet "healthy"...
        var probe = backoff
        #expect(probe.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: 611, now: 611)
                == .backOff(until: 631, delay: 20))
        // ...a run that outlives ten minutes is, and its crash restarts at once with a 10 s window.
        #expect(backoff.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: 612, now: 612) == .restartNow)
        #expect(backoff.currentDelay(key: key) == 10)
        probe = backoff
        #expect(probe.decide(key: key, restartPolicy: "Always", exitCode: 1, finishedAt: 613, now: 613)
                == .backOff(until: 623, delay: 10))
    }

    static let policyCases: [(String, RestartBackoff.ContainerRole, Int32, Bool)] = [
        ("Always", .regular, 0, true),
        ("Always", .regular, 1, true),
        ("OnFailure", .regular, 0, false),
        ("OnFailure", .regular, 137, true),
        ("Never", .regular, 1, false),
        ("Never", .regular, 0, false),
        ("Always", .initContainer, 0, false),
        ("Always", .initContainer, 1, true),
        ("OnFailure", .initContainer, 1, true),
        ("Never", .initContainer, 1, false),
        ("Never", .sidecar, 0, true),
    ]

    @Test(arguments: policyCases)
    func restartPolicy(policy: String, role: RestartBackoff.ContainerRole, exitCode: Int32, restarts: Bool) {
        var backoff = RestartBackoff()
        let decision = backoff.decide(key: "k", restartPolicy: policy, role: role, exitCode: exitCode, finishedAt: 0, now: 0)
        #expect((decision == .restartNow) == restarts)
        if !restarts { #expect(decision == .doNotRestart) }
    }

    @Test func nothingRestartsInADeletedPod() {
        var backoff = RestartBackoff()
        #expect(backoff.decide(key: "k", restartPolicy: "Always", exitCode: 1, finishedAt: 0, now: 0, podDeleting: true)
                == .doNotRestart)
    }

    @Test func containersAreIndependentAndCollectable() {
        var backoff = RestartBackoff()
        _ = backoff.decide(key: "a", restartPolicy: "Always", exitCode: 1, finishedAt: 0, now: 0)
        #expect(backoff.decide(key: "b", restartPolicy: "Always", exitCode: 1, finishedAt: 1, now: 1) == .restartNow)
        backoff.collectGarbage(now: 600)
        #expect(backoff.currentDelay(key: "a") == 10)
        backoff.collectGarbage(now: 601)
        #expect(backoff.currentDelay(key: "a") == nil)
        #expect(backoff.currentDelay(key: "b") == 10)
        backoff.reset(key: "b")
        #expect(backoff.currentDelay(key: "b") == nil)
    }

    static let durations: [(Double, String)] = [
        (10, "10s"), (20, "20s"), (40, "40s"), (80, "1m20s"), (160, "2m40s"), (300, "5m0s"), (3600, "1h0m0s"),
        (1.5, "1.5s"), (0, "0s"), (0.25, "250ms"), (90.5, "1m30.5s"),
    ]

    @Test(arguments: durations)
    func goDurations(seconds: Double, text: String) {
        #expect(KubeletMessages.goDuration(seconds) == text)
    }
}

@Suite struct KubeletMessageTests {
    @Test func imagePullTexts() {
        #expect(KubeletMessages.errImagePull(image: "nginx:nope", error: "image not found in the local store")
                == "Failed to pull image \"nginx:nope\": image not found in the local store")
        #expect(KubeletMessages.imagePullBackOff(image: "nginx:nope", previousError: "not found")
                == "Back-off pulling image \"nginx:nope\": ErrImagePull: Failed to pull image \"nginx:nope\": not found")
        #expect(KubeletMessages.imagePullBackOff(image: "nginx:nope", previousError: nil) == "Back-off pulling image \"nginx:nope\"")
    }

    @Test func killAndBackOffTexts() {
        let pod: JSON = ["metadata": ["name": "web", "namespace": "default", "uid": "u1"]]
        #expect(KubeletMessages.probeKill(container: "web", probe: "liveness", willRestart: true)
                == "Container web failed liveness probe, will be restarted")
        #expect(KubeletMessages.probeKill(container: "web", probe: "startup", willRestart: false)
                == "Container web failed startup probe")
        #expect(KubeletMessages.backOffEvent(container: "web", pod: pod)
                == "Back-off restarting failed container web in pod web_default(u1)")
    }
}

@Suite struct PodQOSTests {
    static func pod(_ resources: [JSON]) -> JSON {
        ["spec": ["containers": .array(resources.enumerated().map { i, r in ["name": .string("c\(i)"), "resources": r] })]]
    }

    static let cases: [([JSON], String)] = [
        ([[:]], "BestEffort"),
        ([["requests": ["cpu": "0"]]], "BestEffort"),
        ([["requests": ["cpu": "100m"]]], "Burstable"),
        ([["limits": ["cpu": "1", "memory": "128Mi"]]], "Guaranteed"),
        ([["limits": ["cpu": "1", "memory": "128Mi"], "requests": ["cpu": "1000m", "memory": "134217728"]]], "Guaranteed"),
        ([["limits": ["cpu": "1", "memory": "128Mi"], "requests": ["cpu": "500m", "memory": "128Mi"]]], "Burstable"),
        ([["limits": ["cpu": "1"]]], "Burstable"),
        ([["limits": ["cpu": "1", "memory": "1Gi"]], [:]], "Burstable"),
        ([["limits": ["cpu": "0.5", "memory": "1G"]], ["limits": ["cpu": "500m", "memory": "1e9"]]], "Guaranteed"),
        ([["limits": ["cpu": "1", "memory": "1Gi", "ephemeral-storage": "1Gi"], "requests": ["ephemeral-storage": "1"]]], "Guaranteed"),
    ]

    @Test(arguments: cases)
    func classes(resources: [JSON], expected: String) {
        #expect(PodQOS.qosClass(of: Self.pod(resources)) == expected)
    }

    @Test func storedClassWins() {
        let pod = StatusFixtures.pod([StatusFixtures.container("web")], status: ["qosClass": "Guaranteed"])
        #expect(PodStatusBuilder.build(pod: pod, runtime: StatusFixtures.snapshot([]), now: StatusFixtures.t0)["qosClass"]
                == "Guaranteed")
    }

    static let amountCases: [(String, Int128)] = [
        ("100m", 100_000_000), ("1.5", 1_500_000_000), ("1Ki", 1_024_000_000_000),
        ("2e3", 2_000_000_000_000), ("1n", 1), ("0.1n", 1), ("-1", -1_000_000_000),
    ]

    @Test(arguments: amountCases)
    func amounts(text: String, nanos: Int128) {
        #expect(ResourceAmount(text: text)?.nanos == nanos)
    }

    @Test(arguments: ["", "abc", "1.2.3", "1Qi", "1e99"])
    func badAmounts(text: String) {
        #expect(ResourceAmount(text: text) == nil)
    }
}
