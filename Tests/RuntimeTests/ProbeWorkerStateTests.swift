import APIMachinery
import Testing
@testable import Runtime

/// The probe worker's timing and threshold rules, driven with plain numbers (no clock at all).
@Suite struct ProbeWorkerStateTests {
    static let start = 1000.0
    typealias View = ProbeWorkerState.View

    static func spec(delay: Int = 0, period: Int = 10, success: Int = 1, failure: Int = 3) -> ProbeSpec {
        ProbeSpec(action: .tcpSocket(host: nil, port: .number(80)), initialDelaySeconds: delay, periodSeconds: period,
                  successThreshold: success, failureThreshold: failure)
    }

    static func running(_ id: String = "c1", since: Double = start, started: Bool = true) -> View {
        View(containerID: id, runningSince: since, started: started)
    }

    /// Prepares at `now` and, if asked to probe, records `outcome`; returns the step and all effects.
    static func tick(_ worker: inout ProbeWorkerState, _ view: View, at now: Double,
                     _ outcome: ProbeOutcome = .success(output: "")) -> (ProbeWorkerState.Step, [ProbeWorkerState.Effect]) {
        var (step, effects) = worker.prepare(view, now: now)
        if case .probe = step { effects += worker.record(outcome) }
        return (step, effects)
    }

    @Test func initialDelayCountsWholeSecondsSinceStart() {
        var worker = ProbeWorkerState(kind: .readiness, spec: Self.spec(delay: 5))
        let (first, effects) = worker.prepare(Self.running(), now: Self.start)
        #expect(first == .skip)
        #expect(effects == [.publish(containerID: "c1", result: .failure)], "readiness starts failed")
        #expect(worker.prepare(Self.running(), now: Self.start + 4.99).0 == .skip)
        #expect(worker.prepare(Self.running(), now: Self.start + 5).0 == .probe(containerID: "c1"))
    }

    @Test func initialResultsPerKind() {
        for (kind, initial) in [(ProbeKind.readiness, ProbeResult.failure), (.liveness, .success)] {
            var worker = ProbeWorkerState(kind: kind, spec: Self.spec())
            #expect(worker.prepare(Self.running(), now: Self.start).1 == [.publish(containerID: "c1", result: initial)])
        }
        var startup = ProbeWorkerState(kind: .startup, spec: Self.spec())
        #expect(startup.prepare(Self.running(started: false), now: Self.start).1 == [.publish(containerID: "c1", result: nil)])
    }

    @Test func readinessNeedsSuccessThresholdInARow() {
        var worker = ProbeWorkerState(kind: .readiness, spec: Self.spec(success: 2, failure: 2))
        var published: [ProbeResult?] = []
        var events: [String] = []
        let outcomes: [ProbeOutcome] = [
            .success(output: ""), .failure(output: "HTTP probe failed with statuscode: 500"), .success(output: ""),
            .success(output: ""), .failure(output: "HTTP probe failed with statuscode: 503"),
            .failure(output: "HTTP probe failed with statuscode: 503"),
        ]
        for (i, outcome) in outcomes.enumerated() {
            let (_, effects) = Self.tick(&worker, Self.running(), at: Self.start + Double(i * 10), outcome)
            for effect in effects {
                switch effect {
                case .publish(_, let result): published.append(result)
                case .event(let e): events.append(e.message)
                default: Issue.record("unexpected \(effect)")
                }
            }
        }
        // Initial failure, success after two in a row, failure after two in a row.
        #expect(published == [.failure, .success, .failure])
        #expect(events == ["Readiness probe failed: HTTP probe failed with statuscode: 500",
                           "Readiness probe failed: HTTP probe failed with statuscode: 503",
                           "Readiness probe failed: HTTP probe failed with statuscode: 503"])
    }

    @Test func livenessFailureCondemnsTheRunThenWaitsForANewOne() {
        var worker = ProbeWorkerState(kind: .liveness, spec: Self.spec(failure: 3))
        let refused = ProbeOutcome.failure(output: "dial tcp 10.244.0.5:8080: connect: connection refused")
        var effects: [ProbeWorkerState.Effect] = []
        for i in 0..<3 { effects += Self.tick(&worker, Self.running(), at: Self.start + Double(i * 10), refused).1 }
        #expect(effects.filter { if case .event = $0 { return true } else { return false } }.count == 3)
        #expect(effects.last == .containerFailed(containerID: "c1"))
        #expect(effects.contains(.publish(containerID: "c1", result: .failure)))
        #expect(effects.contains(.event(ProbeEvent(reason: "Unhealthy",
                                                   message: "Liveness probe failed: dial tcp 10.244.0.5:8080: connect: connection refused"))))

        // On hold: the condemned run is not probed again...
        #expect(worker.prepare(Self.running(), now: Self.start + 40).0 == .skip)
        // ...the restarted one is, from a fresh count and a fresh initial result.
        let (step, fresh) = worker.prepare(Self.running("c2", since: Self.start + 45), now: Self.start + 50)
        #expect(step == .probe(containerID: "c2"))
        #expect(fresh == [.forget(containerID: "c1"), .publish(containerID: "c2", result: .success)])
        #expect(worker.record(refused).contains { if case .containerFailed = $0 { return true } else { return false } } == false)
    }

    @Test func startupProbeGatesTheOthers() {
        var startup = ProbeWorkerState(kind: .startup, spec: Self.spec(failure: 30))
        var liveness = ProbeWorkerState(kind: .liveness, spec: Self.spec())
        var readiness = ProbeWorkerState(kind: .readiness, spec: Self.spec())
        let notStarted = Self.running(started: false)
        #expect(startup.prepare(notStarted, now: Self.start).0 == .probe(containerID: "c1"))
        #expect(liveness.prepare(notStarted, now: Self.start).0 == .skip)
        #expect(readiness.prepare(notStarted, now: Self.start).0 == .skip)
        #expect(startup.record(.success(output: "")) == [.publish(containerID: "c1", result: .success)])

        let started = Self.running(started: true)
        #expect(startup.prepare(started, now: Self.start + 10).0 == .skip, "startup stops once started")
        #expect(liveness.prepare(started, now: Self.start + 10).0 == .probe(containerID: "c1"))
        #expect(readiness.prepare(started, now: Self.start + 10).0 == .probe(containerID: "c1"))
    }

    @Test func startupFailureCondemnsLikeLiveness() {
        var startup = ProbeWorkerState(kind: .startup, spec: Self.spec(failure: 2))
        let view = Self.running(started: false)
        _ = Self.tick(&startup, view, at: Self.start, .failure(output: "x"))
        let (_, effects) = Self.tick(&startup, view, at: Self.start + 10, .failure(output: "x"))
        #expect(effects.last == .containerFailed(containerID: "c1"))
        #expect(effects.contains(.event(ProbeEvent(reason: "Unhealthy", message: "Startup probe failed: x"))))
    }

    @Test func erroredAttemptsLeaveCountersAlone() {
        var worker = ProbeWorkerState(kind: .liveness, spec: Self.spec(failure: 2))
        _ = Self.tick(&worker, Self.running(), at: Self.start, .failure(output: "x"))
        let (_, effects) = Self.tick(&worker, Self.running(), at: Self.start + 10,
                                     .error(message: "strconv.Atoi: parsing \"http\": invalid syntax"))
        #expect(effects == [.event(ProbeEvent(
            reason: "Unhealthy",
            message: "Liveness probe errored and resulted in unknown state: strconv.Atoi: parsing \"http\": invalid syntax"))])
        #expect(worker.resultRun == 1)
        let (_, next) = Self.tick(&worker, Self.running(), at: Self.start + 20, .failure(output: "x"))
        #expect(next.last == .containerFailed(containerID: "c1"), "the error did not reset the run of failures")
    }

    @Test func redirectWarningCountsAsSuccess() {
        var worker = ProbeWorkerState(kind: .readiness, spec: Self.spec())
        let (_, effects) = Self.tick(&worker, Self.running(), at: Self.start,
                                     .warning(output: "Probe terminated redirects, Response body: moved"))
        #expect(effects.contains(.event(ProbeEvent(reason: "ProbeWarning",
                                                   message: "Readiness probe warning: Probe terminated redirects, Response body: moved"))))
        #expect(effects.last == .publish(containerID: "c1", result: .success))
    }

    @Test func containerNotRunningOrPodFinished() {
        var worker = ProbeWorkerState(kind: .readiness, spec: Self.spec())
        #expect(worker.prepare(View(containerID: nil), now: Self.start).0 == .skip, "no container yet")
        _ = Self.tick(&worker, Self.running(), at: Self.start)
        let exited = View(containerID: "c1", terminated: true, restartPolicy: "Always")
        let (step, effects) = worker.prepare(exited, now: Self.start + 10)
        #expect(step == .skip)
        #expect(effects == [.publish(containerID: "c1", result: .failure)])
        var never = exited
        never.restartPolicy = "Never"
        #expect(worker.prepare(never, now: Self.start + 20).0 == .stop, "it will never run again")
        var done = Self.running()
        done.podPhase = "Succeeded"
        #expect(worker.prepare(done, now: Self.start + 30).0 == .stop)
    }

    @Test func deletionSilencesLivenessButNotReadiness() {
        var deleting = Self.running()
        deleting.podDeleting = true
        var liveness = ProbeWorkerState(kind: .liveness, spec: Self.spec())
        _ = liveness.prepare(Self.running(), now: Self.start)
        let (step, effects) = liveness.prepare(deleting, now: Self.start + 10)
        #expect(step == .stop)
        #expect(effects == [.publish(containerID: "c1", result: .success)])
        var readiness = ProbeWorkerState(kind: .readiness, spec: Self.spec())
        #expect(readiness.prepare(deleting, now: Self.start).0 == .probe(containerID: "c1"))
    }

    @Test func specParsingAppliesDefaults() throws {
        let container: JSON = [
            "name": "web",
            "ports": [["name": "http", "containerPort": 8080]],
            "livenessProbe": ["httpGet": ["port": "http", "path": "/healthz",
                                          "httpHeaders": [["name": "x-trace", "value": "1"]]],
                              "failureThreshold": 1, "terminationGracePeriodSeconds": 5],
            "readinessProbe": ["tcpSocket": ["port": 8080], "initialDelaySeconds": 3],
            "startupProbe": ["exec": ["command": ["cat", "/tmp/ready"]], "periodSeconds": 2],
        ]
        let liveness = try #require(ProbeSpec(container: container, kind: .liveness))
        #expect(liveness.periodSeconds == 10 && liveness.timeoutSeconds == 1 && liveness.successThreshold == 1)
        #expect(liveness.failureThreshold == 1 && liveness.terminationGracePeriodSeconds == 5)
        #expect(liveness.action == .httpGet(HTTPGetAction(port: .name("http"), path: "/healthz", headers: [("x-trace", "1")])))
        #expect(ProbeSpec(container: container, kind: .readiness)?.action == .tcpSocket(host: nil, port: .number(8080)))
        #expect(ProbeSpec(container: container, kind: .readiness)?.failureThreshold == 3)
        #expect(ProbeSpec(container: container, kind: .startup)?.periodSeconds == 2)
        #expect(ProbeSpec(container: ["name": "x"], kind: .liveness) == nil)
    }

    @Test func portResolution() throws {
        let container: JSON = ["ports": [["name": "http", "containerPort": 8080]]]
        #expect(try PortReference.name("http").resolve(in: container) == 8080)
        #expect(try PortReference.name("9090").resolve(in: container) == 9090)
        #expect(throws: ProbeConfigurationError(message: "strconv.Atoi: parsing \"metrics\": invalid syntax")) {
            try PortReference.name("metrics").resolve(in: container)
        }
        #expect(throws: ProbeConfigurationError(message: "invalid port number: 70000")) {
            try PortReference.number(70000).resolve(in: container)
        }
    }
}
