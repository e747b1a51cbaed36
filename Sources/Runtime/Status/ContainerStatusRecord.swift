import APIMachinery

/// One entry of `containerStatuses`/`initContainerStatuses` while the builder works on it:
/// typed, so phase and conditions are computed from values rather than JSON lookups.
struct ContainerStatusRecord: Sendable, Equatable {
    enum State: Sendable, Equatable {
        case waiting(reason: String, message: String?)
        case running(startedAt: Double)
        case terminated(ContainerTermination)
    }

    var name: String
    var state: State
    var lastState: ContainerTermination?
    var ready = false
    var restartCount: Int
    var image: String
    var imageID: String
    var containerID: String?
    var started = false
    /// Present only for containers the runtime has run, as the kubelet reports them.
    var resources: JSON?
    var volumeMounts: [JSON] = []

    var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    var terminated: ContainerTermination? {
        if case .terminated(let t) = state { return t }
        return nil
    }

    var isWaiting: Bool {
        if case .waiting = state { return true }
        return false
    }

    /// The scheme prefix the kubelet puts on runtime IDs (`containerd://...`); ours names labnode.
    static let idScheme = "labnode://"

    static func qualifiedID(_ id: String) -> String {
        id.contains("://") ? id : idScheme + id
    }

    /// The runtime's own ID, without any `scheme://`.
    static func bareID(_ id: String) -> String {
        guard let range = id.range(of: "://") else { return id }
        return String(id[range.upperBound...])
    }

    // MARK: JSON

    var json: JSON {
        var o: JSONObject = ["name": .string(name)]
        o["state"] = ContainerStatusRecord.stateJSON(state)
        o["lastState"] = lastState.map { ContainerStatusRecord.stateJSON(.terminated($0)) } ?? .object([:])
        o["ready"] = .bool(ready)
        o["restartCount"] = .int(Int64(restartCount))
        o["image"] = .string(image)
        o["imageID"] = .string(imageID)
        if let containerID { o["containerID"] = .string(ContainerStatusRecord.qualifiedID(containerID)) }
        o["started"] = .bool(started)
        if let resources { o["resources"] = resources }
        if !volumeMounts.isEmpty { o["volumeMounts"] = .array(volumeMounts) }
        return .object(o)
    }

    static func stateJSON(_ state: State) -> JSON {
        switch state {
        case .waiting(let reason, let message):
            var w: JSONObject = [:]
            if !reason.isEmpty { w["reason"] = .string(reason) }
            if let message, !message.isEmpty { w["message"] = .string(message) }
            return ["waiting": .object(w)]
        case .running(let startedAt):
            return ["running": ["startedAt": .string(Timestamp.format(startedAt))]]
        case .terminated(let t):
            // Field order of Go's ContainerStateTerminated.
            var o: JSONObject = ["exitCode": .int(Int64(t.exitCode))]
            if let signal = t.signal, signal != 0 { o["signal"] = .int(Int64(signal)) }
            if !t.reason.isEmpty { o["reason"] = .string(t.reason) }
            if let message = t.message, !message.isEmpty { o["message"] = .string(message) }
            o["startedAt"] = timeJSON(t.startedAt)
            o["finishedAt"] = timeJSON(t.finishedAt)
            if !t.containerID.isEmpty { o["containerID"] = .string(qualifiedID(t.containerID)) }
            return ["terminated": .object(o)]
        }
    }

    /// metav1.Time: the zero time serializes as null.
    static func timeJSON(_ t: Double) -> JSON {
        t <= Timestamp.goZeroTime ? .null : .string(Timestamp.format(t))
    }

    /// Reads back a status the kubelet (or we) wrote earlier; nil when it has no usable state.
    init?(json: JSON) {
        guard let name = json["name"]?.stringValue else { return nil }
        self.name = name
        guard let state = ContainerStatusRecord.parseState(json["state"]) else { return nil }
        self.state = state
        if case .terminated(let t)? = ContainerStatusRecord.parseState(json["lastState"]) { lastState = t }
        ready = json["ready"]?.boolValue ?? false
        restartCount = Int(json["restartCount"]?.intValue ?? 0)
        image = json["image"]?.stringValue ?? ""
        imageID = json["imageID"]?.stringValue ?? ""
        containerID = json["containerID"]?.stringValue
        started = json["started"]?.boolValue ?? false
        resources = json["resources"]
        volumeMounts = json["volumeMounts"]?.arrayValue ?? []
    }

    init(name: String, state: State, lastState: ContainerTermination? = nil, restartCount: Int = 0,
         image: String, imageID: String = "", containerID: String? = nil) {
        self.name = name
        self.state = state
        self.lastState = lastState
        self.restartCount = restartCount
        self.image = image
        self.imageID = imageID
        self.containerID = containerID
    }

    static func parseState(_ json: JSON?) -> State? {
        guard let json else { return nil }
        if let w = json["waiting"], w.objectValue != nil {
            return .waiting(reason: w["reason"]?.stringValue ?? "", message: w["message"]?.stringValue)
        }
        if let r = json["running"], r.objectValue != nil {
            return .running(startedAt: r["startedAt"]?.stringValue.flatMap(Timestamp.parse) ?? Timestamp.goZeroTime)
        }
        if let t = json["terminated"], t.objectValue != nil {
            let id = t["containerID"]?.stringValue ?? ""
            let signal = t["signal"]?.intValue.map { Int32(truncatingIfNeeded: $0) }
            return .terminated(ContainerTermination(
                containerID: id,
                exitCode: Int32(truncatingIfNeeded: t["exitCode"]?.intValue ?? 0),
                signal: signal,
                reason: t["reason"]?.stringValue ?? "",
                message: t["message"]?.stringValue,
                startedAt: t["startedAt"]?.stringValue.flatMap(Timestamp.parse) ?? Timestamp.goZeroTime,
                finishedAt: t["finishedAt"]?.stringValue.flatMap(Timestamp.parse) ?? Timestamp.goZeroTime))
        }
        return nil
    }
}
