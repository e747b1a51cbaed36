// DELETE ME: stand-ins until helpers deliver.
import APIMachinery
enum Defaults { static func apply(kind: String, group: String, to: inout JSON) {} }
enum Validation {
    static func validateCreate(kind: String, group: String, obj: JSON, namespaced: Bool) -> [APIError.Cause] { [] }
    static func validateUpdate(kind: String, group: String, new: JSON, old: JSON, namespaced: Bool) -> [APIError.Cause] { [] }
}
enum JSONPatch { static func apply(_ p: JSON, to d: JSON) throws(APIError) -> JSON { d } }
enum MergePatch { static func apply(_ p: JSON, to d: JSON) -> JSON { d } }
enum StrategicMergePatch { static func apply(_ p: JSON, to d: JSON, schema: Schema, registry: TypeRegistry) throws(APIError) -> JSON { d } }
enum KubernetesProtobuf { static func decode(_ b: [UInt8], registry: TypeRegistry) throws(APIError) -> JSON { [:] } }
extension TypeRegistry { public static let kubernetes = TypeRegistry([]) }
