/// The controllers a labnode cluster runs, in one place so the cluster and the tests agree.
public enum StandardControllers {
    public static func all(_ context: ControllerContext) -> [any Reconciler] {
        apiServer(context) + [
            DeploymentController(context),
            ReplicaSetController(context),
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

    /// What kube-apiserver runs itself rather than kube-controller-manager: these keep running
    /// when `--disable controllers` leaves the others out.
    public static func apiServer(_ context: ControllerContext) -> [any Reconciler] {
        [KubernetesServiceController(context)]
    }
}
