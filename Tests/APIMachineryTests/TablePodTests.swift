import Testing
@testable import APIMachinery

@Suite("Table: pods")
struct TablePodTests {
    static let oneContainer = #"{"containers":[{"name":"app","image":"nginx"}]}"#
    static let twoContainers = #"{"containers":[{"name":"app","image":"nginx"},{"name":"log","image":"busybox"}]}"#
    static let twoInits = #"{"initContainers":[{"name":"i1","image":"busybox"},{"name":"i2","image":"busybox"}],"containers":[{"name":"app","image":"nginx"}]}"#
    static let sidecar = #"{"initContainers":[{"name":"proxy","image":"envoy","restartPolicy":"Always"}],"containers":[{"name":"app","image":"nginx"}]}"#

    static let running = #"{"running":{"startedAt":"2026-11-30T03:15:20Z"}}"#
    static func waiting(_ reason: String) -> String { #"{"waiting":{"reason":"\#(reason)"}}"# }
    static func terminated(_ reason: String?, exitCode: Int = 0, signal: Int = 0) -> String {
        let r = reason.map { #""reason":"\#($0)","# } ?? ""
        return #"{"terminated":{\#(r)"exitCode":\#(exitCode),"signal":\#(signal),"finishedAt":"2026-11-30T03:16:00Z"}}"#
    }
    static func status(_ name: String, _ state: String, ready: Bool = false, restarts: Int = 0,
                       lastFinished: String? = nil, started: Bool? = nil) -> String {
        let last = lastFinished.map { #","lastState":{"terminated":{"exitCode":1,"reason":"Error","finishedAt":"\#($0)"}}"# } ?? ""
        let startedText = started.map { #","started":\#($0)"# } ?? ""
        return #"{"name":"\#(name)","state":\#(state),"ready":\#(ready),"restartCount":\#(restarts)\#(last)\#(startedText)}"#
    }

    static func pod(spec: String = oneContainer, phase: String, conditions: String = "[]", containers: [String] = [],
                    inits: [String] = [], extraStatus: String = "", extraMeta: String = "") -> String {
        #"""
        {"apiVersion":"v1","kind":"Pod",
         "metadata":{"name":"web","namespace":"default","creationTimestamp":"2026-11-30T03:15:18Z"\#(extraMeta)},
         "spec":\#(spec),
         "status":{"phase":"\#(phase)","conditions":\#(conditions),
                   "initContainerStatuses":[\#(inits.joined(separator: ","))],
                   "containerStatuses":[\#(containers.joined(separator: ","))]\#(extraStatus)}}
        """#
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        var json: String
        var ready: String
        var status: String
        var restarts: String
        var testDescription: String { label }
    }

    static let readyCondition = #"[{"type":"Initialized","status":"True"},{"type":"Ready","status":"True"}]"#
    static let initializedNotReady = #"[{"type":"Initialized","status":"True"},{"type":"Ready","status":"False"}]"#

    static let cases: [Case] = [
        Case(label: "running", json: pod(phase: "Running", containers: [status("app", running, ready: true)]),
             ready: "1/1", status: "Running", restarts: "0"),
        Case(label: "pending, not scheduled", json: pod(phase: "Pending"), ready: "0/1", status: "Pending", restarts: "0"),
        Case(label: "container creating", json: pod(phase: "Pending", containers: [status("app", waiting("ContainerCreating"))]),
             ready: "0/1", status: "ContainerCreating", restarts: "0"),
        Case(label: "image pull error", json: pod(phase: "Pending", containers: [status("app", waiting("ErrImagePull"))]),
             ready: "0/1", status: "ErrImagePull", restarts: "0"),
        Case(label: "image pull backoff", json: pod(phase: "Pending", containers: [status("app", waiting("ImagePullBackOff"))]),
             ready: "0/1", status: "ImagePullBackOff", restarts: "0"),
        Case(label: "crash loop, last restart 2m ago",
             json: pod(phase: "Running", containers: [status("app", waiting("CrashLoopBackOff"), restarts: 4,
                                                             lastFinished: "2026-11-30T03:18:18Z")]),
             ready: "0/1", status: "CrashLoopBackOff", restarts: "4 (2m ago)"),
        Case(label: "restarts without a last termination time have no suffix",
             json: pod(phase: "Running", containers: [status("app", running, ready: true, restarts: 3)]),
             ready: "1/1", status: "Running", restarts: "3"),
        Case(label: "restarts add up and the latest termination counts",
             json: pod(spec: twoContainers, phase: "Running", conditions: readyCondition, containers: [
                 status("app", running, ready: true, restarts: 1, lastFinished: "2026-11-30T03:15:30Z"),
                 status("log", running, ready: true, restarts: 2, lastFinished: "2026-11-30T03:19:08Z"),
             ]),
             ready: "2/2", status: "Running", restarts: "3 (70s ago)"),
        Case(label: "completed", json: pod(phase: "Succeeded", containers: [status("app", terminated("Completed"))]),
             ready: "0/1", status: "Completed", restarts: "0"),
        Case(label: "error", json: pod(phase: "Failed", containers: [status("app", terminated("Error", exitCode: 1))]),
             ready: "0/1", status: "Error", restarts: "0"),
        Case(label: "terminated without reason: exit code",
             json: pod(phase: "Failed", containers: [status("app", terminated(nil, exitCode: 137))]),
             ready: "0/1", status: "ExitCode:137", restarts: "0"),
        Case(label: "terminated without reason: signal",
             json: pod(phase: "Failed", containers: [status("app", terminated(nil, exitCode: 137, signal: 9))]),
             ready: "0/1", status: "Signal:9", restarts: "0"),
        Case(label: "one container done, one running, pod ready",
             json: pod(spec: twoContainers, phase: "Running", conditions: readyCondition,
                       containers: [status("app", running, ready: true), status("log", terminated("Completed"))]),
             ready: "1/2", status: "Running", restarts: "0"),
        Case(label: "one container done, one running, pod not ready",
             json: pod(spec: twoContainers, phase: "Running", conditions: initializedNotReady,
                       containers: [status("app", running, ready: true), status("log", terminated("Completed"))]),
             ready: "1/2", status: "NotReady", restarts: "0"),
        Case(label: "the first container's state wins",
             json: pod(spec: twoContainers, phase: "Pending",
                       containers: [status("app", waiting("ErrImagePull")), status("log", waiting("ContainerCreating"))]),
             ready: "0/2", status: "ErrImagePull", restarts: "0"),
        Case(label: "terminating",
             json: pod(phase: "Running", containers: [status("app", running, ready: true)],
                       extraMeta: #","deletionTimestamp":"2026-11-30T03:20:00Z""#),
             ready: "1/1", status: "Terminating", restarts: "0"),
        Case(label: "deleted after success keeps Completed",
             json: pod(phase: "Succeeded", containers: [status("app", terminated("Completed"))],
                       extraMeta: #","deletionTimestamp":"2026-11-30T03:20:00Z""#),
             ready: "0/1", status: "Completed", restarts: "0"),
        Case(label: "deleted on a lost node",
             json: pod(phase: "Running", containers: [status("app", running, ready: true)],
                       extraStatus: #","reason":"NodeLost""#, extraMeta: #","deletionTimestamp":"2026-11-30T03:20:00Z""#),
             ready: "1/1", status: "Unknown", restarts: "0"),
        Case(label: "evicted", json: pod(phase: "Failed", extraStatus: #","reason":"Evicted""#),
             ready: "0/1", status: "Evicted", restarts: "0"),
        Case(label: "scheduling gated",
             json: pod(phase: "Pending", conditions: #"[{"type":"PodScheduled","status":"False","reason":"SchedulingGated"}]"#),
             ready: "0/1", status: "SchedulingGated", restarts: "0"),
        Case(label: "first init container running",
             json: pod(spec: twoInits, phase: "Pending", containers: [status("app", waiting("PodInitializing"))],
                       inits: [status("i1", running), status("i2", waiting("PodInitializing"))]),
             ready: "0/1", status: "Init:0/2", restarts: "0"),
        Case(label: "second init container pending",
             json: pod(spec: twoInits, phase: "Pending", containers: [status("app", waiting("PodInitializing"))],
                       inits: [status("i1", terminated("Completed")), status("i2", waiting("PodInitializing"))]),
             ready: "0/1", status: "Init:1/2", restarts: "0"),
        Case(label: "init container crash loop counts init restarts",
             json: pod(spec: twoInits, phase: "Pending", containers: [status("app", waiting("PodInitializing"))],
                       inits: [status("i1", waiting("CrashLoopBackOff"), restarts: 2, lastFinished: "2026-11-30T03:19:18Z"),
                               status("i2", waiting("PodInitializing"))]),
             ready: "0/1", status: "Init:CrashLoopBackOff", restarts: "2 (60s ago)"),
        Case(label: "init container failed",
             json: pod(spec: twoInits, phase: "Pending",
                       inits: [status("i1", terminated("Error", exitCode: 1)), status("i2", waiting("PodInitializing"))]),
             ready: "0/1", status: "Init:Error", restarts: "0"),
        Case(label: "init container exit code without reason",
             json: pod(spec: twoInits, phase: "Pending", inits: [status("i1", terminated(nil, exitCode: 2))]),
             ready: "0/1", status: "Init:ExitCode:2", restarts: "0"),
        Case(label: "init container killed by a signal",
             json: pod(spec: twoInits, phase: "Pending", inits: [status("i1", terminated(nil, exitCode: 137, signal: 9))]),
             ready: "0/1", status: "Init:Signal:9", restarts: "0"),
        Case(label: "init done, app container starting",
             json: pod(spec: twoInits, phase: "Pending", containers: [status("app", waiting("PodInitializing"))],
                       inits: [status("i1", terminated("Completed")), status("i2", terminated("Completed"))]),
             ready: "0/1", status: "PodInitializing", restarts: "0"),
        Case(label: "running sidecar counts as a container",
             json: pod(spec: sidecar, phase: "Running", conditions: readyCondition,
                       containers: [status("app", running, ready: true)],
                       inits: [status("proxy", running, ready: true, restarts: 1, lastFinished: "2026-11-30T03:16:18Z", started: true)]),
             ready: "2/2", status: "Running", restarts: "1 (4m ago)"),
        Case(label: "sidecar not started yet blocks init",
             json: pod(spec: sidecar, phase: "Pending", containers: [status("app", waiting("PodInitializing"))],
                       inits: [status("proxy", running, started: false)]),
             ready: "0/2", status: "Init:0/1", restarts: "0"),
    ]

    @Test("Ready, Status and Restarts", arguments: cases)
    func podStatus(c: Case) throws {
        let cells = try tableCellTexts(tableCells(try tableResource("pods"), c.json))
        #expect(cells.count == 9)
        guard cells.count == 9 else { return }
        #expect(cells[0] == "web")
        #expect(cells[1] == c.ready, "READY")
        #expect(cells[2] == c.status, "STATUS")
        #expect(cells[3] == c.restarts, "RESTARTS")
        #expect(cells[4] == "5m", "AGE")
    }

    @Test("wide cells: IP, node, nominated node, readiness gates")
    func wideCells() throws {
        let json = #"""
        {"metadata":{"name":"web","creationTimestamp":"2026-11-30T03:15:18Z"},
         "spec":{"nodeName":"lab-node","containers":[{"name":"app"}],
                 "readinessGates":[{"conditionType":"example.com/lb"},{"conditionType":"example.com/dns"}]},
         "status":{"phase":"Running","podIP":"10.244.0.9","podIPs":[{"ip":"10.244.0.5"},{"ip":"fd00::5"}],
                   "nominatedNodeName":"other",
                   "conditions":[{"type":"example.com/lb","status":"True"},{"type":"example.com/dns","status":"False"}],
                   "containerStatuses":[{"name":"app","ready":true,"restartCount":0,"state":{"running":{}}}]}}
        """#
        let cells = try tableCellTexts(tableCells(try tableResource("pods"), json))
        #expect(Array(cells.suffix(4)) == ["10.244.0.5", "lab-node", "other", "1/2"])
    }

    @Test("wide cells fall back to podIP and print <none> when unset")
    func wideCellsEmpty() throws {
        let withPodIP = #"{"metadata":{"name":"a"},"spec":{"containers":[]},"status":{"phase":"Pending","podIP":"10.244.0.7"}}"#
        let cells = try tableCellTexts(tableCells(try tableResource("pods"), withPodIP))
        #expect(Array(cells.suffix(4)) == ["10.244.0.7", "<none>", "<none>", "<none>"])
        #expect(cells[4] == "<unknown>", "no creationTimestamp gives an unknown AGE")

        let bare = #"{"metadata":{"name":"b"},"spec":{"containers":[]},"status":{}}"#
        #expect(Array(try tableCellTexts(tableCells(try tableResource("pods"), bare)).suffix(4))
                == ["<none>", "<none>", "<none>", "<none>"])
    }

    @Test("finished pods carry a Completed row condition")
    func rowConditions() throws {
        let resource = try tableResource("pods")
        let succeeded = try JSON.parse(Self.pod(phase: "Succeeded", containers: [Self.status("app", Self.terminated("Completed"))]))
        let failed = try JSON.parse(Self.pod(phase: "Failed"))
        let running = try JSON.parse(Self.pod(phase: "Running"))
        let table = TablePrinter.table(resource: resource, objects: [succeeded, failed, running], listResourceVersion: nil,
                                       continueToken: nil, includeObject: .none, now: tableFixtureNow)
        let rows = table["rows"]?.arrayValue ?? []
        #expect(rows.count == 3)
        #expect(rows.first?[path: "conditions"]?.arrayValue?.first?["type"] == "Completed")
        #expect(rows.first?[path: "conditions"]?.arrayValue?.first?["reason"] == "Succeeded")
        #expect(rows.dropFirst().first?[path: "conditions"]?.arrayValue?.first?["reason"] == "Failed")
        #expect(rows.last?["conditions"] == nil)
    }
}
