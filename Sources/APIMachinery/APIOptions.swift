/// Options of list and watch requests (`?labelSelector=...&limit=...&watch=true`).
public struct ListOptions: Sendable {
    public var labelSelector = LabelSelector.everything
    public var fieldSelector = FieldSelector()
    public var limit: Int?
    public var continueToken: String?
    public var resourceVersion: String?
    public var resourceVersionMatch: String?
    public var allowWatchBookmarks = false
    public var sendInitialEvents: Bool?
    public var timeoutSeconds: Int?

    public init(labelSelector: LabelSelector = .everything, fieldSelector: FieldSelector = FieldSelector(),
                resourceVersion: String? = nil) {
        self.labelSelector = labelSelector
        self.fieldSelector = fieldSelector
        self.resourceVersion = resourceVersion
    }
}

/// Options shared by create, update and patch.
public struct WriteOptions: Sendable {
    public enum FieldValidation: String, Sendable { case strict = "Strict", warn = "Warn", ignore = "Ignore" }

    public var dryRun = false
    public var fieldManager: String?
    public var fieldValidation = FieldValidation.warn
    public var force = false

    public init(fieldManager: String? = nil) { self.fieldManager = fieldManager }
}

/// Body or query of a DELETE.
public struct DeleteOptions: Sendable {
    public var gracePeriodSeconds: Int64?
    public var propagationPolicy: String?
    public var preconditionUID: String?
    public var preconditionResourceVersion: String?
    public var dryRun = false

    public init(propagationPolicy: String? = nil, preconditionUID: String? = nil, gracePeriodSeconds: Int64? = nil) {
        self.propagationPolicy = propagationPolicy
        self.preconditionUID = preconditionUID
        self.gracePeriodSeconds = gracePeriodSeconds
    }
}

public enum PatchType: String, Sendable {
    case json = "application/json-patch+json"
    case merge = "application/merge-patch+json"
    case strategic = "application/strategic-merge-patch+json"
    case apply = "application/apply-patch+yaml"
}

/// One page of a list.
public struct ListResult: Sendable {
    public var items: [JSON]
    public var resourceVersion: Int64
    public var continueToken: String?

    public init(items: [JSON], resourceVersion: Int64, continueToken: String? = nil) {
        self.items = items
        self.resourceVersion = resourceVersion
        self.continueToken = continueToken
    }
}

/// What a DELETE did.
public enum DeleteResult: Sendable {
    /// The object is gone; the last state is returned.
    case deleted(JSON)
    /// Deletion started (finalizers or a grace period remain); the object as it is now.
    case pending(JSON)

    public var object: JSON {
        switch self { case .deleted(let o), .pending(let o): o }
    }
}

/// One event of a watch, as `{"type": ..., "object": ...}` on the wire.
public struct APIWatchEvent: Sendable {
    public enum EventType: String, Sendable { case added = "ADDED", modified = "MODIFIED", deleted = "DELETED", bookmark = "BOOKMARK", error = "ERROR" }
    public var type: EventType
    public var object: JSON

    public init(type: EventType, object: JSON) {
        self.type = type
        self.object = object
    }

    public var json: JSON { ["type": .string(type.rawValue), "object": object] }
}
