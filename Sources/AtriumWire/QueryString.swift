import AtriumCore
import AtriumText

/// Query strings as ordered name/value pairs, percent-decoded (and `+` as a space).
public enum QueryString {
    /// The pairs of `query`; 400 for a name or value holding a NUL character, which no
    /// parameter takes and PostgreSQL text cannot hold. Byte by byte, without Foundation:
    /// every list request comes through here.
    public static func pairs(_ query: String?) throws -> [(name: String, value: String)] {
        guard let query, !query.isEmpty else { return [] }
        var pairs: [(name: String, value: String)] = []
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let rawName = equals.map { pair[..<$0] } ?? pair
            let name = Self.decode(rawName)
            let value = equals.map { Self.decode(pair[pair.index(after: $0)...]) } ?? ""
            guard !name.utf8.contains(0), !value.utf8.contains(0) else {
                throw AtriumError(.badRequest, "the query is invalid", fields: [.init(field: String(Substring(rawName)), reason: "must not contain NUL characters")])
            }
            pairs.append((name, value))
        }
        return pairs
    }

    /// `+` as a space and `%XX` escapes as their bytes. Text with a `%` that does not start an
    /// escape, or whose escapes do not make UTF-8, is kept as written (with `+` as a space).
    static func decode(_ text: Substring.UTF8View) -> String {
        guard text.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return String(Substring(text)) }
        var spaced: [UInt8] = []
        var decoded: [UInt8] = []
        spaced.reserveCapacity(text.count)
        decoded.reserveCapacity(text.count)
        var escapesValid = true
        var index = text.startIndex
        while index != text.endIndex {
            let byte = text[index]
            text.formIndex(after: &index)
            switch byte {
            case UInt8(ascii: "+"):
                spaced.append(UInt8(ascii: " "))
                decoded.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                spaced.append(byte)
                guard escapesValid, index != text.endIndex, let high = UUIDText.hexValue(text[index]) else {
                    escapesValid = false
                    continue
                }
                let next = text.index(after: index)
                guard next != text.endIndex, let low = UUIDText.hexValue(text[next]) else {
                    escapesValid = false
                    continue
                }
                decoded.append(high << 4 | low)
                spaced.append(text[index])
                spaced.append(text[next])
                index = text.index(after: next)
            default:
                spaced.append(byte)
                decoded.append(byte)
            }
        }
        if escapesValid, let text = String(validating: decoded, as: UTF8.self) { return text }
        return String(decoding: spaced, as: UTF8.self)
    }
}
