import AtriumCore
import Foundation

/// Query strings as ordered name/value pairs, percent-decoded (and `+` as a space).
public enum QueryString {
    /// The pairs of `query`; 400 for a name or value holding a NUL character, which no
    /// parameter takes and PostgreSQL text cannot hold.
    public static func pairs(_ query: String?) throws -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        return try query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) throws -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                let decoded = spaced.removingPercentEncoding ?? spaced
                guard !decoded.utf8.contains(0) else {
                    throw AtriumError(.badRequest, "the query is invalid", fields: [.init(field: String(parts[0]), reason: "must not contain NUL characters")])
                }
                return decoded
            }
            return (try decode(parts[0]), parts.count > 1 ? try decode(parts[1]) : "")
        }
    }
}
