/// Kubernetes resource quantities ("100m", "64Mi", "1G", "2") as numbers, for components that
/// compare or divide them (the scheduler's fit check, the downward API).
public enum Quantity {
    /// The value, or nil when the text is not a valid quantity (the same parser validation uses).
    public static func parse(_ text: String) -> Double? {
        try? Validation.Quantity.parse(text).get()
    }
}
