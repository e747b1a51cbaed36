import Collections

/// One entry of `metadata.managedFields`: which fields one manager set, how, and when.
public struct ManagedFieldsEntry: Sendable, Equatable {
    /// How the manager wrote: a server-side apply, or any other write.
    public enum Operation: String, Sendable {
        case apply = "Apply"
        case update = "Update"
    }

    public var manager: String
    public var operation: Operation
    public var apiVersion: String
    /// RFC 3339, seconds precision; nil when the manager never changed the object.
    public var time: String?
    public var fields: FieldSet
    /// "" for the main resource, or e.g. "status", "scale".
    public var subresource: String

    /// An entry; `fields` in the object's `apiVersion`.
    public init(manager: String, operation: Operation, apiVersion: String, time: String? = nil,
                fields: FieldSet, subresource: String = "") {
        self.manager = manager
        self.operation = operation
        self.apiVersion = apiVersion
        self.time = time
        self.fields = fields
        self.subresource = subresource
    }

    /// The entry as stored: members in ObjectMeta's field order, empty ones left out.
    public var json: JSON {
        var o = JSONObject()
        if !manager.isEmpty { o["manager"] = .string(manager) }
        o["operation"] = .string(operation.rawValue)
        if !apiVersion.isEmpty { o["apiVersion"] = .string(apiVersion) }
        if let time { o["time"] = .string(time) }
        o["fieldsType"] = "FieldsV1"
        o["fieldsV1"] = fields.fieldsV1
        if !subresource.isEmpty { o["subresource"] = .string(subresource) }
        return .object(o)
    }

    /// Reads a stored entry, refusing what apiserver refuses.
    public init(json: JSON, index: Int = 0) throws(FieldsV1Error) {
        guard case .object(let o) = json else {
            throw FieldsV1Error("managed fields entry \(index) must be an object")
        }
        guard let op = o["operation"]?.stringValue.flatMap(Operation.init(rawValue:)) else {
            throw FieldsV1Error("operation must be `Apply` or `Update`")
        }
        let apiVersion = o["apiVersion"]?.stringValue ?? ""
        guard !apiVersion.isEmpty else { throw FieldsV1Error("apiVersion must not be empty") }
        switch o["fieldsType"]?.stringValue ?? "" {
        case "FieldsV1": break
        case "": throw FieldsV1Error("missing fieldsType in managed fields entry \(index)")
        case let other: throw FieldsV1Error("invalid fieldsType \"\(other)\" in managed fields entry \(index)")
        }
        let fields: FieldSet
        if let f = o["fieldsV1"], !f.isNull {
            fields = try FieldSet(fieldsV1: f)
        } else {
            fields = FieldSet()
        }
        self.init(manager: o["manager"]?.stringValue ?? "", operation: op, apiVersion: apiVersion,
                  time: o["time"]?.stringValue, fields: fields, subresource: o["subresource"]?.stringValue ?? "")
    }

    /// Upstream's manager identifier: the entry without fields and time, and without the
    /// apiVersion for appliers (so one applier keeps one entry across versions).
    var identity: String {
        var s = "{"
        var first = true
        func add(_ key: String, _ value: String) {
            guard !value.isEmpty else { return }
            if !first { s += "," }
            first = false
            ApplyFormat.writeString(key, into: &s)
            s += ":"
            ApplyFormat.writeString(value, into: &s)
        }
        add("manager", manager)
        add("operation", operation.rawValue)
        add("apiVersion", operation == .apply ? "" : apiVersion)
        add("subresource", subresource)
        return s + "}"
    }

    /// How apiserver names this manager in conflict messages: `"kubectl-edit" using v1`.
    var conflictName: String {
        var s = ApplyFormat.quote(manager)
        if !subresource.isEmpty { s += " with subresource \(ApplyFormat.quote(subresource))" }
        if operation == .update { s += " using \(apiVersion)" }
        return s
    }

    var timeSeconds: Int64 { time.flatMap(ApplyTimestamp.seconds) ?? 0 }
}

/// The managed fields of one object, keyed by manager identity.
struct ManagedFieldsList {
    var entries: OrderedDictionary<String, ManagedFieldsEntry> = [:]

    var isEmpty: Bool { entries.isEmpty }

    subscript(identity: String) -> ManagedFieldsEntry? {
        get { entries[identity] }
        set { entries[identity] = newValue }
    }

    /// Decodes `metadata.managedFields`; a later entry with the same identity replaces an
    /// earlier one, as upstream's map does.
    init(decoding json: JSON?) throws(FieldsV1Error) {
        guard let json, !json.isNull else { return }
        guard case .array(let items) = json else {
            throw FieldsV1Error("metadata.managedFields must be a list")
        }
        for (i, item) in items.enumerated() {
            let e = try ManagedFieldsEntry(json: item, index: i)
            entries[e.identity] = e
        }
    }

    init() {}

    /// The list as stored: Apply entries first, then by time, manager, apiVersion, subresource.
    var sortedEntries: [ManagedFieldsEntry] {
        entries.values.sorted { p, q in
            if p.operation != q.operation { return p.operation.rawValue < q.operation.rawValue }
            let ps = p.timeSeconds, qs = q.timeSeconds
            if ps != qs { return ps < qs }
            if p.manager != q.manager { return ApplyValueOrder.compareStrings(p.manager, q.manager) < 0 }
            if p.apiVersion != q.apiVersion { return ApplyValueOrder.compareStrings(p.apiVersion, q.apiVersion) < 0 }
            return ApplyValueOrder.compareStrings(p.subresource, q.subresource) < 0
        }
    }

    /// The encoded list, or nil when no manager owns anything (the field is then left out).
    var json: JSON? {
        entries.isEmpty ? nil : .array(sortedEntries.map(\.json))
    }

    mutating func removeEmpty() {
        entries.removeAll { $0.value.fields.isEmpty }
    }

    /// Keeps at most `max` Update entries by folding the oldest ones into one "ancient-changes"
    /// entry per apiVersion, like apiserver's capManagersManager.
    mutating func capUpdateManagers(max: Int) {
        var updaters = entries.filter { $0.value.operation == .update }.map(\.key)
        guard updaters.count > max else { return }
        updaters.sort { a, b in
            let ta = entries[a]?.timeSeconds ?? 0, tb = entries[b]?.timeSeconds ?? 0
            if ta != tb { return ta < tb }
            return ApplyValueOrder.compareStrings(a, b) < 0
        }
        var firstByVersion: [String: String] = [:]
        var length = updaters.count
        for id in updaters where length > max {
            guard let e = entries[id] else { continue }
            guard let first = firstByVersion[e.apiVersion] else {
                firstByVersion[e.apiVersion] = id
                continue
            }
            var bucket = ManagedFieldsEntry(manager: "ancient-changes", operation: .update, apiVersion: e.apiVersion, fields: FieldSet())
            let bucketID = bucket.identity
            if let existing = entries[bucketID] {
                bucket = existing
            } else if let firstEntry = entries.removeValue(forKey: first) {
                bucket.fields = firstEntry.fields
                bucket.time = firstEntry.time
            }
            bucket.fields = e.fields.union(bucket.fields)
            bucket.apiVersion = e.apiVersion
            bucket.time = e.time
            entries[bucketID] = bucket
            entries.removeValue(forKey: id)
            length -= 1
        }
    }
}

/// Just enough RFC 3339 to order managedFields entries by second.
enum ApplyTimestamp {
    /// Seconds since the Unix epoch of "2026-11-30T03:17:24Z" (fractions ignored, offsets applied).
    static func seconds(_ s: String) -> Int64? {
        let b = Array(s.utf8)
        func num(_ from: Int, _ len: Int) -> Int64? {
            guard from + len <= b.count else { return nil }
            var v: Int64 = 0
            for i in from..<(from + len) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int64(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20,
              let year = num(0, 4), b[4] == UInt8(ascii: "-"), let month = num(5, 2), b[7] == UInt8(ascii: "-"),
              let day = num(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = num(11, 2), b[13] == UInt8(ascii: ":"), let minute = num(14, 2), b[16] == UInt8(ascii: ":"),
              let second = num(17, 2), (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var i = 19
        if i < b.count && b[i] == UInt8(ascii: ".") {
            i += 1
            while i < b.count && b[i] >= 48 && b[i] <= 57 { i += 1 }
        }
        guard i < b.count else { return nil }
        var offset: Int64 = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            guard i + 1 == b.count else { return nil }
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard i + 6 == b.count, let oh = num(i + 1, 2), b[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2) else { return nil }
            offset = (oh * 3600 + om * 60) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
        default:
            return nil
        }
        // Days from civil (proleptic Gregorian calendar).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        return days * 86400 + hour * 3600 + minute * 60 + second - offset
    }
}
