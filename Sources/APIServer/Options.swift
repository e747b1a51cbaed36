import APIMachinery

/// Options of list and watch requests (`?labelSelector=...&limit=...&watch=true`).
extension ListOptions {
    public init(query: Query) throws(APIError) {
        self.init()
        if let s = query["labelSelector"] { labelSelector = try LabelSelector.parse(s) }
        if let s = query["fieldSelector"] { fieldSelector = try FieldSelector.parse(s) }
        if let s = query["limit"], !s.isEmpty {
            guard let n = Int(s), n >= 0 else { throw APIError.badRequest("invalid value for limit: \(s)") }
            limit = n == 0 ? nil : n
        }
        continueToken = query["continue"].flatMap { $0.isEmpty ? nil : $0 }
        resourceVersion = query["resourceVersion"].flatMap { $0.isEmpty ? nil : $0 }
        resourceVersionMatch = query["resourceVersionMatch"].flatMap { $0.isEmpty ? nil : $0 }
        allowWatchBookmarks = query["allowWatchBookmarks"] == "true" || query["allowWatchBookmarks"] == "1"
        if let s = query["sendInitialEvents"] { sendInitialEvents = s == "true" || s == "1" }
        if let s = query["timeoutSeconds"], !s.isEmpty {
            guard let n = Int(s), n >= 0 else { throw APIError.badRequest("invalid value for timeoutSeconds: \(s)") }
            timeoutSeconds = n
        }
        if let rv = resourceVersion, Int64(rv) == nil {
            throw APIError.badRequest("invalid resource version: \(rv)")
        }
    }
}

/// Options shared by create, update and patch.
extension WriteOptions {
    public init(query: Query, userAgent: String?) throws(APIError) {
        self.init()
        for d in query.all("dryRun") where !d.isEmpty {
            guard d == "All" else { throw APIError.badRequest("Invalid dry run value: \(d); the only valid value is All") }
            dryRun = true
        }
        if let m = query["fieldManager"], !m.isEmpty {
            guard m.count <= 128 else {
                throw APIError.invalid(kind: "PatchOptions", name: "", causes: [
                    .init(reason: "FieldValueTooLong", message: "Too long: may not be longer than 128", field: "fieldManager")])
            }
            fieldManager = m
        } else if let ua = userAgent {
            // apiserver names an unnamed manager after the client's program name.
            fieldManager = String(ua.split(separator: "/").first ?? "unknown")
        }
        if let v = query["fieldValidation"], !v.isEmpty {
            guard let fv = FieldValidation(rawValue: v) else {
                throw APIError.badRequest("fieldValidation must be one of Ignore, Warn, or Strict, got \(v)")
            }
            fieldValidation = fv
        }
        if let f = query["force"] { force = f == "true" || f == "1" }
    }
}

/// Body or query of a DELETE.
extension DeleteOptions {
    public init(query: Query, body: JSON?) throws(APIError) {
        self.init()
        if let g = query["gracePeriodSeconds"], let n = Int64(g) { gracePeriodSeconds = n }
        if let p = query["propagationPolicy"] { propagationPolicy = p }
        if query.all("dryRun").contains("All") { dryRun = true }
        if let body, case .object = body {
            if let g = body["gracePeriodSeconds"]?.intValue { gracePeriodSeconds = g }
            if let p = body["propagationPolicy"]?.stringValue { propagationPolicy = p }
            if body["orphanDependents"]?.boolValue == true, propagationPolicy == nil { propagationPolicy = "Orphan" }
            preconditionUID = body[path: "preconditions", "uid"]?.stringValue
            preconditionResourceVersion = body[path: "preconditions", "resourceVersion"]?.stringValue
            if body["dryRun"]?.arrayValue?.contains("All") == true { dryRun = true }
        }
        if let p = propagationPolicy, !["Orphan", "Background", "Foreground"].contains(p) {
            throw APIError.invalid(kind: "DeleteOptions", name: "", causes: [
                .init(reason: "FieldValueNotSupported",
                      message: "Unsupported value: \"\(p)\": supported values: \"Foreground\", \"Background\", \"Orphan\"",
                      field: "propagationPolicy")])
        }
    }
}
