/// RFC 7396 JSON Merge Patch.
enum MergePatch {
    /// The target with the patch applied, in one pass over each object: time linear in the
    /// sizes of both. Keys keep the target's order; new keys follow in the patch's order.
    static func apply(_ patch: JSONValue, to target: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        let base = target.objectValue ?? JSONObject()
        var merged: [(key: String, value: JSONValue)] = []
        merged.reserveCapacity(base.count + changes.count)
        for (key, value) in base {
            guard let change = changes[key] else {
                merged.append((key, value))
                continue
            }
            if change != .null { merged.append((key, self.apply(change, to: value))) }
        }
        for (key, change) in changes where change != .null && base[key] == nil {
            merged.append((key, self.apply(change, to: .null)))
        }
        return .object(JSONObject(distinctEntries: merged))
    }
}
