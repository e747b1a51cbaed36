/// The controllers a labnode cluster runs, in one place so the cluster and the tests agree.
public enum StandardControllers {
    public static func all(_ context: ControllerContext) -> [any Reconciler] {
        [
            DeploymentController(context),
            ReplicaSetController(context),
            KubernetesServiceController(context),
            ServiceAccountController(context),
            EndpointsController(context),
            EndpointSliceController(context),
            EndpointSliceMirroringController(context),
            LoadBalancerController(context),
            NamespaceController(context),
            GarbageCollector(context),
            Scheduler(context),
        ]
    }
}
