import APIMachinery
import Testing
@testable import Runtime

/// One moment in a pod's life and what kubectl must show for it.
struct Lifecycle: CustomTestStringConvertible, Sendable {
    var name: String
    var pod: JSON
    var runtime: PodRuntimeSnapshot
    var phase: String
    /// `kubectl get pods` READY and STATUS cells.
    var ready: String
    var status: String
    /// The Ready condition as `True` or `False/Reason`.
    var readyCondition: String
    /// The state of the first regular container (`waiting:Reason`, `running`, `terminated:Reason:code`).
    var containerState: String
    var testDescription: String { name }
}

private typealias F = StatusFixtures

/// The table of lifecycles, shared with nothing else.
enum LifecycleCases {
    fileprivate static let all: [Lifecycle] = [
        Lifecycle(name: "being created, no sandbox yet",
                  pod: F.pod([F.container("web")]), runtime: F.snapshot([], sandbox: false),
                  phase: "Pending", ready: "0/1", status: "ContainerCreating",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:ContainerCreating"),
        Lifecycle(name: "running without readiness probe is ready",
                  pod: F.pod([F.container("web")]), runtime: F.snapshot([F.running("web")]),
                  phase: "Running", ready: "1/1", status: "Running", readyCondition: "True", containerState: "running"),
        Lifecycle(name: "running, readiness probe not passed yet",
                  pod: F.pod([F.container("web", readiness: true)]), runtime: F.snapshot([F.running("web")]),
                  phase: "Running", ready: "0/1", status: "Running",
                  readyCondition: "False/ContainersNotReady", containerState: "running"),
        Lifecycle(name: "running, readiness passed for this run",
                  pod: F.pod([F.container("web", readiness: true)]),
                  runtime: F.snapshot([F.running("web", id: "abc")],
                                      probes: ["web": ContainerProbeResults(containerID: "abc", readiness: true)]),
                  phase: "Running", ready: "1/1", status: "Running", readyCondition: "True", containerState: "running"),
        Lifecycle(name: "readiness of an earlier run does not count",
                  pod: F.pod([F.container("web", readiness: true)]),
                  runtime: F.snapshot([F.running("web", id: "new", restarts: 1)],
                                      probes: ["web": ContainerProbeResults(containerID: "old", readiness: true)]),
                  phase: "Running", ready: "0/1", status: "Running",
                  readyCondition: "False/ContainersNotReady", containerState: "running"),
        Lifecycle(name: "startup probe not passed gates readiness",
                  pod: F.pod([F.container("web", startup: true)]),
                  runtime: F.snapshot([F.running("web", id: "abc")],
                                      probes: ["web": ContainerProbeResults(containerID: "abc", startup: nil)]),
                  phase: "Running", ready: "0/1", status: "Running",
                  readyCondition: "False/ContainersNotReady", containerState: "running"),
        Lifecycle(name: "crash loop back-off",
                  pod: F.pod([F.container("web")]),
                  runtime: F.snapshot([F.waiting("web", reason: "CrashLoopBackOff",
                                                 message: "back-off 40s restarting failed container=web pod=web_default(x)",
                                                 restarts: 3, last: F.termination("web", code: 1, run: 3))]),
                  phase: "Running", ready: "0/1", status: "CrashLoopBackOff",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:CrashLoopBackOff"),
        Lifecycle(name: "completed under Never",
                  pod: F.pod([F.container("job")], restartPolicy: "Never"), runtime: F.snapshot([F.exited("job", code: 0)]),
                  phase: "Succeeded", ready: "0/1", status: "Completed",
                  readyCondition: "False/PodCompleted", containerState: "terminated:Completed:0"),
        Lifecycle(name: "failed under Never",
                  pod: F.pod([F.container("job")], restartPolicy: "Never"), runtime: F.snapshot([F.exited("job", code: 2)]),
                  phase: "Failed", ready: "0/1", status: "Error",
                  readyCondition: "False/PodFailed", containerState: "terminated:Error:2"),
        Lifecycle(name: "completed under OnFailure",
                  pod: F.pod([F.container("job")], restartPolicy: "OnFailure"), runtime: F.snapshot([F.exited("job", code: 0)]),
                  phase: "Succeeded", ready: "0/1", status: "Completed",
                  readyCondition: "False/PodCompleted", containerState: "terminated:Completed:0"),
        Lifecycle(name: "failure under OnFailure is about to restart",
                  pod: F.pod([F.container("job")], restartPolicy: "OnFailure"), runtime: F.snapshot([F.exited("job", code: 1)]),
                  phase: "Running", ready: "0/1", status: "Error",
                  readyCondition: "False/ContainersNotReady", containerState: "terminated:Error:1"),
        Lifecycle(name: "exit 0 under Always is about to restart",
                  pod: F.pod([F.container("web")]), runtime: F.snapshot([F.exited("web", code: 0)]),
                  phase: "Running", ready: "0/1", status: "Completed",
                  readyCondition: "False/ContainersNotReady", containerState: "terminated:Completed:0"),
        Lifecycle(name: "finished under Always once the agent calls the pod terminal",
                  pod: F.pod([F.container("web")]), runtime: F.snapshot([F.exited("web", code: 0)], terminal: true),
                  phase: "Succeeded", ready: "0/1", status: "Completed",
                  readyCondition: "False/PodCompleted", containerState: "terminated:Completed:0"),
        Lifecycle(name: "OOM killed under Never",
                  pod: F.pod([F.container("hog")], restartPolicy: "Never"),
                  runtime: F.snapshot([F.exited("hog", code: 137, oom: true)]),
                  phase: "Failed", ready: "0/1", status: "OOMKilled",
                  readyCondition: "False/PodFailed", containerState: "terminated:OOMKilled:137"),
        Lifecycle(name: "process could not start",
                  pod: F.pod([F.container("web")], restartPolicy: "Never"),
                  runtime: F.snapshot([F.exited("web", code: 128, reason: "ContainerCannotRun")]),
                  phase: "Failed", ready: "0/1", status: "ContainerCannotRun",
                  readyCondition: "False/PodFailed", containerState: "terminated:ContainerCannotRun:128"),
        Lifecycle(name: "image missing: ErrImagePull",
                  pod: F.pod([F.container("web", image: "nginx:nope")]),
                  runtime: F.snapshot([F.waiting("web", reason: "ErrImagePull",
                                                 message: KubeletMessages.errImagePull(image: "nginx:nope", error: "not found"))]),
                  phase: "Pending", ready: "0/1", status: "ErrImagePull",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:ErrImagePull"),
        Lifecycle(name: "image missing: then ImagePullBackOff",
                  pod: F.pod([F.container("web", image: "nginx:nope")]),
                  runtime: F.snapshot([F.waiting("web", reason: "ImagePullBackOff",
                                                 message: KubeletMessages.imagePullBackOff(image: "nginx:nope", previousError: "not found"))]),
                  phase: "Pending", ready: "0/1", status: "ImagePullBackOff",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:ImagePullBackOff"),
        Lifecycle(name: "missing config map",
                  pod: F.pod([F.container("web")]),
                  runtime: F.snapshot([F.waiting("web", reason: "CreateContainerConfigError",
                                                 message: "configmap \"settings\" not found")]),
                  phase: "Pending", ready: "0/1", status: "CreateContainerConfigError",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:CreateContainerConfigError"),
        Lifecycle(name: "init container not started",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")]),
                  runtime: F.snapshot([]),
                  phase: "Pending", ready: "0/1", status: "Init:0/1",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:PodInitializing"),
        Lifecycle(name: "init container running",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")]),
                  runtime: F.snapshot([F.running("setup")]),
                  phase: "Pending", ready: "0/1", status: "Init:0/1",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:PodInitializing"),
        Lifecycle(name: "init done, main being created",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")]),
                  runtime: F.snapshot([F.exited("setup", code: 0), ContainerObservation(name: "web", state: .creating)]),
                  phase: "Pending", ready: "0/1", status: "PodInitializing",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:PodInitializing"),
        Lifecycle(name: "init done, main running",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")]),
                  runtime: F.snapshot([F.exited("setup", code: 0), F.running("web")]),
                  phase: "Running", ready: "1/1", status: "Running", readyCondition: "True", containerState: "running"),
        Lifecycle(name: "init failed under Never",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")], restartPolicy: "Never"),
                  runtime: F.snapshot([F.exited("setup", code: 1)]),
                  phase: "Failed", ready: "0/1", status: "Init:Error",
                  readyCondition: "False/PodFailed", containerState: "waiting:PodInitializing"),
        Lifecycle(name: "init failing in a crash loop",
                  pod: F.pod([F.container("web")], initContainers: [F.container("setup", image: "busybox")]),
                  runtime: F.snapshot([F.waiting("setup", reason: "CrashLoopBackOff", message: "back-off 10s ...", restarts: 1,
                                                 last: F.termination("setup", code: 1))]),
                  phase: "Pending", ready: "0/1", status: "Init:CrashLoopBackOff",
                  readyCondition: "False/ContainersNotReady", containerState: "waiting:PodInitializing"),
        Lifecycle(name: "sidecar started beside the main container",
                  pod: F.pod([F.container("web")], initContainers: [F.container("proxy", restartPolicy: "Always")]),
                  runtime: F.snapshot([F.running("proxy"), F.running("web")]),
                  phase: "Running", ready: "2/2", status: "Running", readyCondition: "True", containerState: "running"),
        Lifecycle(name: "deleted while running",
                  pod: F.pod([F.container("web")], deleting: true), runtime: F.snapshot([F.running("web")]),
                  phase: "Running", ready: "1/1", status: "Terminating", readyCondition: "True", containerState: "running"),
    ]
}

@Suite struct PodStatusBuilderTests {
    @Test(arguments: LifecycleCases.all)
    func lifecycle(_ c: Lifecycle) {
        let pod = F.withStatus(c.pod, c.runtime)
        let status = pod["status"] ?? .null
        #expect(status["phase"]?.stringValue == c.phase)
        #expect(F.conditionSummary(status, "Ready") == c.readyCondition)
        let firstName = c.pod[path: "spec", "containers"]?.arrayValue?.first?["name"]?.stringValue ?? ""
        #expect(F.stateSummary(F.containerStatus(status, firstName)) == c.containerState)
        let cells = F.tableCells(pod)
        #expect(cells.status == c.status)
        #expect(cells.ready == c.ready)
    }

    @Test func runningContainerStatusHasEveryField() {
        let pod = F.pod([F.container("web")])
        let status = PodStatusBuilder.build(pod: pod, runtime: F.snapshot([F.running("web", id: "c0ffee")]), now: F.t0 + 30)
        let expected: JSON = [
            "name": "web",
            "state": ["running": ["startedAt": "2026-01-01T00:00:05Z"]],
            "lastState": [:],
            "ready": true,
            "restartCount": 0,
            "image": "docker.io/library/nginx:latest",
            "imageID": "docker.io/library/nginx@sha256:0123",
            "containerID": "labnode://c0ffee",
            "started": true,
            "resources": [:],
        ]
        #expect(status["containerStatuses"]?.arrayValue?.first == expected)
        #expect(status["podIP"] == "10.244.0.5")
        #expect(status["podIPs"] == [["ip": "10.244.0.5"]])
        #expect(status["hostIP"] == "192.168.1.10")
        #expect(status["hostIPs"] == [["ip": "192.168.1.10"]])
        #expect(status["startTime"] == "2026-01-01T00:00:30Z")
        #expect(status["qosClass"] == "BestEffort")
        #expect(status["conditions"]?.arrayValue?.map { $0["type"]?.stringValue ?? "" }
                == ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"])
        #expect(F.condition(status, "Ready")?["lastProbeTime"] == .null)
    }

    @Test func crashLoopKeepsTheCrashedRunAsLastState() {
        let crashed = ContainerTermination(containerID: "run2", exitCode: 1, startedAt: F.t0 + 40, finishedAt: F.t0 + 41)
        let message = KubeletMessages.crashLoopBackOff(delay: 40, container: "web", pod: F.pod([]))
        let pod = F.withStatus(F.pod([F.container("web")]),
                               F.snapshot([F.waiting("web", reason: "CrashLoopBackOff", message: message, restarts: 2, last: crashed)]),
                               now: F.t0 + 50)
        let status = F.containerStatus(pod["status"] ?? .null, "web")
        #expect(status?[path: "state", "waiting", "message"]
                == .string("back-off 40s restarting failed container=web pod=web_default(\(F.podUID))"))
        #expect(status?["lastState"] == ["terminated": [
            "exitCode": 1, "reason": "Error", "startedAt": "2026-01-01T00:00:40Z", "finishedAt": "2026-01-01T00:00:41Z",
            "containerID": "labnode://run2"]])
        #expect(status?["containerID"] == "labnode://run2", "the kubelet keeps reporting the crashed run's ID")
        #expect(status?["restartCount"] == 2)
        #expect(F.tableCells(pod, now: F.t0 + 101).restarts == "2 (60s ago)")
    }

    /// The node agent's loop for a container that dies a second after each start, with the
    /// back-off deciding restarts: what `get pods` and the waiting message show after each crash.
    @Test func crashLoopWithGrowingBackoff() {
        var pod = F.pod([F.container("web")])
        var backoff = RestartBackoff()
        var now = F.t0
        var restarts = 0
        var last: ContainerTermination?
        var seen: [String] = []
        for run in 0..<6 {
            // The run starts now and crashes one second later.
            let crash = ContainerTermination(containerID: "run\(run)", exitCode: 1, startedAt: now, finishedAt: now + 1)
            now += 1
            switch backoff.decide(key: "web", restartPolicy: "Always", exitCode: 1, finishedAt: crash.finishedAt, now: now) {
            case .restartNow:
                seen.append("restart")
            case .backOff(let until, let delay):
                let message = KubeletMessages.crashLoopBackOff(delay: delay, container: "web", pod: pod)
                pod = F.withStatus(pod, F.snapshot([F.waiting("web", reason: "CrashLoopBackOff", message: message,
                                                              restarts: restarts, last: crash)]), now: now)
                let cells = F.tableCells(pod, now: now)
                seen.append("\(cells.status) \(cells.restarts) \(KubeletMessages.goDuration(delay))")
                #expect(F.containerStatus(pod["status"] ?? .null, "web")?[path: "state", "waiting", "message"] == .string(message))
                now = until
                #expect(backoff.decide(key: "web", restartPolicy: "Always", exitCode: 1, finishedAt: crash.finishedAt,
                                       now: now) == .restartNow)
            case .doNotRestart:
                Issue.record("Always must restart")
            }
            restarts += 1
            last = crash
            pod = F.withStatus(pod, F.snapshot([F.running("web", id: "run\(run + 1)", at: now, restarts: restarts, last: last)]),
                               now: now)
            #expect(F.tableCells(pod, now: now).status == "Running")
        }
        #expect(seen == ["restart", "CrashLoopBackOff 1 (0s ago) 10s", "CrashLoopBackOff 2 (0s ago) 20s",
                         "CrashLoopBackOff 3 (0s ago) 40s", "CrashLoopBackOff 4 (0s ago) 1m20s", "CrashLoopBackOff 5 (0s ago) 2m40s"])
        #expect(pod[path: "status", "phase"] == "Running")
    }

    @Test func unreadyContainersAreListedInSpecOrder() {
        let pod = F.pod([F.container("zeta", readiness: true), F.container("alpha", readiness: true)])
        let status = PodStatusBuilder.build(pod: pod, runtime: F.snapshot([F.running("zeta"), F.running("alpha")]), now: F.t0)
        #expect(F.condition(status, "ContainersReady")?["message"] == "containers with unready status: [zeta alpha]")
        #expect(F.condition(status, "Ready")?["message"] == "containers with unready status: [zeta alpha]")
        #expect(status["containerStatuses"]?.arrayValue?.map { $0["name"]?.stringValue ?? "" } == ["alpha", "zeta"],
                "regular container statuses are sorted by name")
    }

    @Test func initContainerMessagesAndReadiness() {
        let pod = F.pod([F.container("web")], initContainers: [F.container("one"), F.container("two")])
        let status = PodStatusBuilder.build(pod: pod, runtime: F.snapshot([F.exited("one", code: 0), F.running("two")]), now: F.t0)
        #expect(F.condition(status, "Initialized")?["message"] == "containers with incomplete status: [two]")
        let one = F.containerStatus(status, "one", init: true)
        #expect(one?["ready"] == true && one?["started"] == false, "a finished init container is ready, not started")
        #expect(F.containerStatus(status, "two", init: true)?["started"] == true)
        #expect(status["initContainerStatuses"]?.arrayValue?.map { $0["name"]?.stringValue ?? "" } == ["one", "two"])
        #expect(F.tableCells(F.withStatus(pod, F.snapshot([F.exited("one", code: 0), F.running("two")]))).status == "Init:1/2")
    }

    @Test func transitionTimesSurviveUnchangedConditions() {
        let pod = F.pod([F.container("web", readiness: true)])
        let first = F.withStatus(pod, F.snapshot([F.running("web", id: "a")]), now: F.t0 + 10)
        let second = F.withStatus(first, F.snapshot([F.running("web", id: "a")],
                                                    probes: ["web": ContainerProbeResults(containerID: "a", readiness: true)]),
                                  now: F.t0 + 20)
        let before = first["status"] ?? .null
        let after = second["status"] ?? .null
        for type in ["PodReadyToStartContainers", "Initialized", "PodScheduled"] {
            #expect(F.condition(after, type)?["lastTransitionTime"] == "2026-01-01T00:00:10Z", "\(type) did not change")
        }
        for type in ["Ready", "ContainersReady"] {
            #expect(F.condition(before, type)?["status"] == "False")
            #expect(F.condition(after, type)?["status"] == "True")
            #expect(F.condition(after, type)?["lastTransitionTime"] == "2026-01-01T00:00:20Z", "\(type) flipped")
        }
        #expect(after["startTime"] == "2026-01-01T00:00:10Z", "startTime is set once")
    }

    @Test func terminalPhaseIsFinal() {
        let pod = F.pod([F.container("job")], restartPolicy: "Never")
        let done = F.withStatus(pod, F.snapshot([F.exited("job", code: 0)]))
        // A confused runtime report afterwards must not bring the pod back.
        let later = F.withStatus(done, F.snapshot([F.running("job")]))
        #expect(later[path: "status", "phase"] == "Succeeded")
    }

    @Test func readinessGatesAndForeignConditions() {
        var pod = F.pod([F.container("web")], extraSpec: ["readinessGates": [["conditionType": "example.com/lb"]]])
        let snap = F.snapshot([F.running("web")])
        var status = PodStatusBuilder.build(pod: pod, runtime: snap, now: F.t0)
        #expect(F.condition(status, "Ready")?["message"]
                == "corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
        #expect(F.conditionSummary(status, "Ready") == "False/ReadinessGatesNotReady")
        pod["status"] = ["conditions": [["type": "example.com/lb", "status": "True"]]]
        status = PodStatusBuilder.build(pod: pod, runtime: snap, now: F.t0)
        #expect(F.conditionSummary(status, "Ready") == "True")
        #expect(status["conditions"]?.arrayValue?.first?["type"] == "example.com/lb", "conditions the kubelet does not own come first")
    }

    @Test func containerLostAcrossARestartIsPresumedDead() {
        let pod = F.withStatus(F.pod([F.container("web")]), F.snapshot([F.running("web", id: "a")]))
        // labnode restarted and its runtime no longer knows the container.
        let after = F.withStatus(pod, F.snapshot([]))
        let web = F.containerStatus(after["status"] ?? .null, "web")
        #expect(web?[path: "lastState", "terminated", "reason"] == "ContainerStatusUnknown")
        #expect(web?[path: "lastState", "terminated", "exitCode"] == 137)
        #expect(web?["restartCount"] == 1)
        #expect(after[path: "status", "phase"] == "Running", "not back to Pending")
        #expect(after[path: "status", "podIP"] == "10.244.0.5", "the pod keeps its address")
    }

    @Test func volumeMountsAndHostNetwork() {
        var web = F.container("web")
        web["volumeMounts"] = [["name": "token", "mountPath": "/var/run/secrets", "readOnly": true],
                               ["name": "data", "mountPath": "/data"]]
        let pod = F.pod([web], extraSpec: ["hostNetwork": true])
        let status = PodStatusBuilder.build(
            pod: pod, runtime: PodRuntimeSnapshot(sandboxReady: true, hostIPs: ["192.168.1.10"], containers: [F.running("web")]),
            now: F.t0)
        #expect(status["podIP"] == "192.168.1.10", "host-network pods use the node's address")
        #expect(F.containerStatus(status, "web")?["volumeMounts"] == [
            ["name": "token", "mountPath": "/var/run/secrets", "readOnly": true, "recursiveReadOnly": "Disabled"],
            ["name": "data", "mountPath": "/data"],
        ])
    }
}
