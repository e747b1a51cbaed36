import APIMachinery

/// The texts the kubelet writes into container states and events, in one place so the node agent,
/// the status builder and the prober word them the same way (trainees search for them verbatim).
public enum KubeletMessages {
    /// How the kubelet names a pod in messages (`format.Pod`): `name_namespace(uid)`.
    public static func podDescription(name: String, namespace: String, uid: String) -> String {
        "\(name)_\(namespace)(\(uid))"
    }

    /// `podDescription` of a pod object.
    public static func podDescription(_ pod: JSON) -> String {
        podDescription(name: pod.name ?? "", namespace: pod.namespace ?? "", uid: pod.uid ?? "")
    }

    /// The waiting message of a container in CrashLoopBackOff.
    public static func crashLoopBackOff(delay: Double, container: String, pod: JSON) -> String {
        "back-off \(goDuration(delay)) restarting failed container=\(container) pod=\(podDescription(pod))"
    }

    /// The Warning `BackOff` event the kubelet records each time it refuses to restart yet.
    public static func backOffEvent(container: String, pod: JSON) -> String {
        "Back-off restarting failed container \(container) in pod \(podDescription(pod))"
    }

    /// The ErrImagePull waiting message (and the Warning `Failed` event): the runtime's error
    /// quoted after the image name as the kubelet's image manager words it.
    public static func errImagePull(image: String, error: String) -> String {
        "Failed to pull image \(GoQuote.quote(image)): \(error)"
    }

    /// The ImagePullBackOff waiting message: since 1.30 the kubelet repeats the failed pull's
    /// reason and message so `describe` shows why without scrolling through events.
    public static func imagePullBackOff(image: String, previousError: String?) -> String {
        let base = "Back-off pulling image \(GoQuote.quote(image))"
        guard let previousError else { return base }
        return "\(base): ErrImagePull: \(errImagePull(image: image, error: previousError))"
    }

    /// The Normal `Killing` event when a probe condemns a running container.
    /// `willRestart` is false under restartPolicy Never, where the kubelet leaves the suffix off.
    public static func probeKill(container: String, probe: String, willRestart: Bool) -> String {
        let base = "Container \(container) failed \(probe) probe"
        return willRestart ? base + ", will be restarted" : base
    }

    /// A duration as Go's `time.Duration.String()` prints it (`10s`, `1m20s`, `5m0s`, `1h0m0s`,
    /// `1.5s`, `250ms`), which is how back-off delays appear in messages.
    public static func goDuration(_ seconds: Double) -> String {
        if seconds == 0 { return "0s" }
        let sign = seconds < 0 ? "-" : ""
        let nanos = Int64((abs(seconds) * 1e9).rounded())
        if nanos < 1_000 { return sign + "\(nanos)ns" }
        if nanos < 1_000_000 { return sign + decimal(nanos, unit: 1_000) + "µs" }
        if nanos < 1_000_000_000 { return sign + decimal(nanos, unit: 1_000_000) + "ms" }
        let hours = nanos / 3_600_000_000_000
        let minutes = nanos / 60_000_000_000 % 60
        let rest = nanos % 60_000_000_000
        var text = ""
        if hours > 0 { text += "\(hours)h" }
        if hours > 0 || minutes > 0 { text += "\(minutes)m" }
        return sign + text + decimal(rest, unit: 1_000_000_000) + "s"
    }

    /// `value / unit` with the fraction's trailing zeros dropped, as Go formats durations.
    static func decimal(_ value: Int64, unit: Int64) -> String {
        let whole = value / unit
        var fraction = String(value % unit)
        let width = String(unit).count - 1
        fraction = String(repeating: "0", count: max(0, width - fraction.count)) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(whole)" : "\(whole).\(fraction)"
    }
}
