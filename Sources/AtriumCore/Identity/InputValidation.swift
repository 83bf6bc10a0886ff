import Foundation

/// Checks of user input shared by the identity services; each returns a reason or nil.
enum InputValidation {
    static func email(_ email: String) -> String? {
        let bytes = email.utf8.count
        guard bytes >= 3, bytes <= 254 else { return "must be 3 to 254 bytes" }
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return "must be an email address" }
        guard !email.contains(where: { $0.isWhitespace || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
            return "must not contain spaces or control characters"
        }
        return nil
    }

    static func tenantName(_ name: String) -> String? {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 200 else { return "must be 1 to 200 characters" }
        guard trimmed == name else { return "must not start or end with spaces" }
        guard !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            return "must not contain control characters"
        }
        return nil
    }

    static func slug(_ slug: String) -> String? {
        let bytes = Array(slug.utf8)
        guard (1...63).contains(bytes.count) else { return "must be 1 to 63 characters" }
        let allowed = bytes.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: "-") }
        guard allowed, bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else {
            return "must be lower-case letters, digits and inner hyphens"
        }
        return nil
    }

    /// A slug made from a display name: `Acme Corp.` → `acme-corp`.
    static func slug(from name: String) -> String {
        var slug = ""
        var pendingHyphen = false
        for scalar in name.lowercased().unicodeScalars {
            if (scalar.value >= 0x61 && scalar.value <= 0x7A) || (scalar.value >= 0x30 && scalar.value <= 0x39) {
                if pendingHyphen && !slug.isEmpty { slug.append("-") }
                slug.unicodeScalars.append(scalar)
                pendingHyphen = false
            } else {
                pendingHyphen = true
            }
            if slug.utf8.count >= 50 { break }
        }
        return slug.isEmpty ? "tenant" : slug
    }

    static func keyName(_ name: String) -> String? {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, name.count <= 100 else { return "must be 1 to 100 characters" }
        return nil
    }
}
