public import AtriumCore
import AtriumText

/// Records' entity tags (RFC 9110): the version, quoted, always strong.
public enum EntityTag {
    /// The `ETag` of a record at `version`.
    public static func of(version: Int64) -> String {
        "\"\(version)\""
    }

    /// What an `If-Match` header requires: `*` is any version; otherwise the versions of its
    /// strong tags. Weak tags never match (If-Match compares strongly), and tags that are no
    /// record's ETag add nothing, so a header of only those matches no version.
    public static func condition(ifMatch header: String) -> VersionCondition {
        var versions = Set<Int64>()
        for tag in Self.tags(header) {
            if tag == "*" { return .any }
            if let version = Self.version(strong: tag) { versions.insert(version) }
        }
        return .oneOf(versions)
    }

    /// Whether an `If-None-Match` header names `version` (weak comparison; `*` names any).
    public static func matches(ifNoneMatch header: String, version: Int64) -> Bool {
        Self.tags(header).contains { tag in
            tag == "*" || Self.version(strong: tag.hasPrefix("W/") ? tag.dropFirst(2) : tag) == version
        }
    }

    /// The version in `"N"`, exactly as `of(version:)` writes it (no sign, no leading zeros).
    static func version(strong tag: Substring) -> Int64? {
        guard tag.count >= 3, tag.first == "\"", tag.last == "\"" else { return nil }
        let digits = tag.dropFirst().dropLast()
        guard let version = Int64(digits), String(version) == digits else { return nil }
        return version
    }

    static func tags(_ header: String) -> [Substring] {
        HTTPList.elements(header)
    }
}
