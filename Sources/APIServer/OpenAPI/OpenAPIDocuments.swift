import APIMachinery

/// The OpenAPI documents labnode serves, generated once at start from its type registry.
///
/// - `/openapi/v3` → `v3IndexJSON`; `/openapi/v3/<path>` → `v3Document(path:)` (kubectl ≥1.29
///   for `explain` and to learn that the server validates fields itself, and 1.27/1.28 for `explain`).
/// - `/openapi/v2` → `v2Protobuf` with Content-Type
///   `application/com.github.proto-openapi.spec.v2.v1.0+protobuf` (kubectl 1.27/1.28), or `v2JSON`
///   for `Accept: application/json`.
///
/// Every document is deterministic: object keys are sorted, so the same registry always gives the
/// same bytes and the same index hashes, and any change to the registry changes the hash kubectl
/// caches the document under.
public struct OpenAPIDocuments: Sendable {
    /// The OpenAPI `info.version` used when none is given.
    public static let defaultVersion = "v1.33.0"

    /// `{"paths":{"api/v1":{"serverRelativeURL":"/openapi/v3/api/v1?hash=HEX"},...}}`.
    public let v3Index: JSON
    /// `v3Index`, serialized.
    public let v3IndexJSON: [UInt8]
    /// The content hash of each v3 document, as it appears in the index URL.
    public let v3Hashes: [String: String]
    /// The swagger 2.0 document as JSON.
    public let v2JSON: [UInt8]
    /// The swagger 2.0 document as a gnostic `openapi.v2.Document` protobuf message.
    public let v2Protobuf: [UInt8]
    /// What the registry lacked (placeholders served, dangling references), or an encoding
    /// failure. Empty when the registry describes everything the resources need; log it otherwise.
    public let problems: [String]

    private let v3Documents: [String: [UInt8]]

    /// The v3 document paths, e.g. ["api/v1", "apis/apps/v1"], sorted.
    public var v3Paths: [String] { v3Documents.keys.sorted() }

    /// The serialized OpenAPI 3.0 document of one group-version: "api/v1", "apis/apps/v1", ...
    /// (a leading "/" is tolerated). Nil when no served resource belongs to that group-version.
    public func v3Document(path: String) -> [UInt8]? {
        v3Documents[path.hasPrefix("/") ? String(path.dropFirst()) : path]
    }

    /// Builds every document for `resources`, describing their kinds with `registry`.
    /// - Parameter version: the `info.version` to report, normally the server's gitVersion.
    public init(registry: TypeRegistry, resources: [ResourceInfo], version: String = OpenAPIDocuments.defaultVersion) {
        let groupVersions = OpenAPIRoutes.build(resources: resources, registry: registry)
            .sorted { $0.key < $1.key }.map(\.value)
        let catalog = OpenAPICatalog(registry: registry, needs: groupVersions.flatMap(\.needs))
        var problems = catalog.problems
        let info: JSON = ["title": "Kubernetes", "version": .string(version)]

        // OpenAPI 3: one document per group-version, holding only the schemas its paths reach.
        let v3Schemas = OpenAPISchemaRenderer(catalog: catalog, dialect: .v3)
        let v3Paths = OpenAPIPathRenderer(schemas: v3Schemas)
        var documents: [String: [UInt8]] = [:]
        var hashes: [String: String] = [:]
        var index = JSONObject()
        for gv in groupVersions {
            var paths = JSONObject()
            for path in gv.paths { paths[path.path] = v3Paths.pathItem(path) }
            var schemas = JSONObject()
            for name in catalog.closure(of: gv.roots) {
                if let schema = v3Schemas.definition(name) { schemas[name] = schema }
            }
            let document: JSON = [
                "openapi": "3.0.0",
                "info": info,
                "paths": .object(paths),
                "components": ["schemas": .object(schemas)],
            ]
            let bytes = Self.sortingKeys(document).serialized()
            let hash = Self.contentHash(bytes)
            documents[gv.documentPath] = bytes
            hashes[gv.documentPath] = hash
            index[gv.documentPath] = ["serverRelativeURL": .string("/openapi/v3/\(gv.documentPath)?hash=\(hash)")]
        }
        let v3Index = Self.sortingKeys(["paths": .object(index)])

        // Swagger 2.0: one document for everything, with every registry definition (as upstream).
        let v2Schemas = OpenAPISchemaRenderer(catalog: catalog, dialect: .v2)
        let v2Paths = OpenAPIPathRenderer(schemas: v2Schemas)
        var paths = JSONObject()
        for gv in groupVersions {
            for path in gv.paths { paths[path.path] = v2Paths.pathItem(path) }
        }
        var definitions = JSONObject()
        let roots = groupVersions.flatMap(\.roots) + registry.definitions.keys.sorted()
        for name in catalog.closure(of: roots) {
            if let schema = v2Schemas.definition(name) { definitions[name] = schema }
        }
        let swagger = Self.sortingKeys([
            "swagger": "2.0",
            "info": info,
            "paths": .object(paths),
            "definitions": .object(definitions),
        ])
        let protobuf: [UInt8]
        do {
            protobuf = try GnosticOpenAPIv2.encode(swagger)
        } catch {
            protobuf = []
            problems.append(error.description)
        }

        self.v3Index = v3Index
        self.v3IndexJSON = v3Index.serialized()
        self.v3Hashes = hashes
        self.v3Documents = documents
        self.v2JSON = swagger.serialized()
        self.v2Protobuf = protobuf
        self.problems = problems
    }

    /// The same value with every object's keys in ascending order (array order is kept), so
    /// output does not depend on the order definitions or fields were registered in.
    static func sortingKeys(_ value: JSON) -> JSON {
        switch value {
        case .object(let o):
            var sorted = JSONObject(minimumCapacity: o.count)
            for key in o.keys.sorted() {
                if let v = o[key] { sorted[key] = sortingKeys(v) }
            }
            return .object(sorted)
        case .array(let a):
            return .array(a.map(sortingKeys))
        default:
            return value
        }
    }

    /// 64-bit FNV-1a of the document, as 16 upper-case hex digits. kubectl only needs the
    /// URL to change whenever the document does; this is not a security boundary.
    static func contentHash(_ bytes: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            hash ^= UInt64(b)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let digits = String(hash, radix: 16, uppercase: true)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
