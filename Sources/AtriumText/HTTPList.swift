/// Comma-separated header values (RFC 9110 §5.6.1: `If-Match`, `X-Forwarded-For`): the
/// elements without the optional whitespace around them (space and tab, nothing else), empty
/// ones dropped. Foundation's `trimmingCharacters(in: .whitespaces)` cost more than the rest of
/// a conditional write's header handling together, and trims Unicode spaces HTTP does not have.
public enum HTTPList {
    public static func elements<Text: StringProtocol>(_ value: Text) -> [Substring] where Text.SubSequence == Substring {
        value.split(separator: ",").compactMap { element in
            let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
            guard let first = element.firstIndex(where: { !isSpace($0) }),
                  let last = element.lastIndex(where: { !isSpace($0) }) else { return nil }
            return element[first...last]
        }
    }
}
