/// RFC 7386 JSON merge patch (`application/merge-patch+json`), used by `kubectl label`,
/// `annotate` and `scale`.
///
/// A null member deletes, an object member merges recursively, anything else replaces.
/// One difference from the RFC text, kept because kube-apiserver (evanphx/json-patch.v4)
/// behaves so: a value that is *added or replaced* has its null members removed all the way
/// down, including inside objects that sit in arrays. (kube would then decode the object into
/// its Go type, which turns such nulls into absent fields anyway.)
public enum MergePatch {
    /// The merged document. Total: any JSON patch applies to any JSON document.
    /// Call `validate(_:strict:)` first to refuse the bodies kube-apiserver refuses.
    public static func apply(_ patch: JSON, to doc: JSON) -> JSON {
        guard case .object(let patchObject) = patch else {
            return withoutNullMembers(patch)
        }
        var target: JSONObject
        if case .object(let o) = doc {
            target = o
        } else {
            target = [:]
        }
        for (key, value) in patchObject {
            if value.isNull {
                target.removeValue(forKey: key)
                continue
            }
            if case .object = value, let current = target[key], case .object = current {
                target[key] = .null  // keep the child uniquely referenced while it is merged
                target[key] = apply(value, to: current)
            } else {
                target[key] = withoutNullMembers(value)
            }
        }
        return .object(target)
    }

    /// Refuses merge-patch bodies the way kube-apiserver does.
    ///
    /// - a `null` body: 400 "Invalid JSON Patch";
    /// - with `strict` (the request's fieldValidation is Strict or Warn): any non-object body
    ///   is 400 "error decoding patch: json: cannot unmarshal ...";
    /// - otherwise a string, number or boolean body is 400 "Invalid JSON Patch", and an array
    ///   body is 422 (the apiserver would replace the object by the array and fail to decode it).
    public static func validate(_ patch: JSON, strict: Bool = false) throws(APIError) {
        switch patch {
        case .object:
            return
        case .null:
            throw .badRequest("Invalid JSON Patch")
        default:
            if strict {
                throw .badRequest("error decoding patch: json: cannot unmarshal \(GoFormat.jsonKind(patch)) into Go value of type map[string]interface {}")
            }
            if case .array = patch {
                let detail = "couldn't get version/kind; json parse error: json: cannot unmarshal array into Go value of type struct { APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }"
                throw APIError.invalid(kind: "", name: "", causes: [
                    APIError.Cause(reason: "FieldValueInvalid",
                                   message: "Invalid value: \(GoFormat.quote(withoutNullMembers(patch).text)): \(detail)",
                                   field: "patch"),
                ])
            }
            throw .badRequest("Invalid JSON Patch")
        }
    }

    /// The value with every null object member removed, recursively (array elements that are
    /// null stay: only members are pruned).
    static func withoutNullMembers(_ value: JSON) -> JSON {
        switch value {
        case .object(let o):
            var out = JSONObject(minimumCapacity: o.count)
            for (k, v) in o where !v.isNull {
                out[k] = withoutNullMembers(v)
            }
            return .object(out)
        case .array(let a):
            return .array(a.map(withoutNullMembers))
        default:
            return value
        }
    }
}
