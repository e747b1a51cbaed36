/// Namespace for the built-in type tables; each group's file adds one function.
enum KubernetesTypes {
    /// Every definition labnode knows, in a stable order (meta first, then by group).
    static func all() -> [TypeDefinition] {
        meta() + coreV1() + coreV1Pod() + coreV1Volumes() + appsV1() + otherGroups()
    }
}

extension TypeRegistry {
    /// The Kubernetes types labnode serves, with their dependencies, as upstream names and
    /// numbers them (OpenAPI definition names, JSON names, k8s.io/api protobuf field numbers).
    public static let kubernetes = TypeRegistry(KubernetesTypes.all())
}
