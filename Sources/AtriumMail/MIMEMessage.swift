public import AtriumCore
public import Foundation

/// An RFC 5322 message of `multipart/alternative` text and HTML, 7-bit clean: bodies in
/// quoted-printable, non-ASCII header text in RFC 2047 encoded words, every line ending in CRLF
/// and at most 78 characters before it.
public struct MIMEMessage: Sendable {
    public let mail: OutgoingMail
    public let from: MailAddress
    public let date: Date

    public init(mail: OutgoingMail, from: MailAddress, date: Date = Date()) {
        self.mail = mail
        self.from = from
        self.date = date
    }

    /// `<mail-id@domain-of-from>`: stable across attempts, so a receiver can drop duplicates.
    public var messageID: String {
        "<\(self.mail.id.uuidString.lowercased())@\(self.from.domain)>"
    }

    /// The message as sent after DATA (before dot-stuffing).
    public func rendered() -> String {
        let boundary = "=_atrium_" + self.mail.id.uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        var lines: [String] = []
        lines.append(Self.header("From", self.from.headerValue))
        lines.append(Self.header("To", "<\(self.mail.recipient)>"))
        lines.append(Self.header("Subject", EncodedWord.encode(self.mail.subject)))
        lines.append("Date: " + Self.rfc5322Date(self.date))
        lines.append("Message-ID: " + self.messageID)
        lines.append("MIME-Version: 1.0")
        lines.append("Auto-Submitted: auto-generated")
        lines.append("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
        lines.append("")
        lines.append("This is a multi-part message in MIME format.")
        for (type, body) in [("text/plain", self.mail.text), ("text/html", self.mail.html)] {
            lines.append("--" + boundary)
            lines.append("Content-Type: \(type); charset=utf-8")
            lines.append("Content-Transfer-Encoding: quoted-printable")
            lines.append("")
            lines.append(QuotedPrintable.encode(body))
        }
        lines.append("--" + boundary + "--")
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    /// `Name: value`, folded before 78 characters at spaces between encoded words.
    static func header(_ name: String, _ value: String) -> String {
        var output = name + ":"
        var lineLength = output.count
        for word in value.split(separator: " ", omittingEmptySubsequences: false) {
            if lineLength + 1 + word.count > 78, lineLength > name.count + 1 {
                output += "\r\n"
                lineLength = 0
            }
            output += " " + word
            lineLength += 1 + word.count
        }
        return output
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }
}

/// A sender: `Name <address>` or a bare address.
public struct MailAddress: Sendable, Equatable {
    public let name: String?
    public let address: String

    /// Parses `Atrium <no-reply@example.com>` or `no-reply@example.com`.
    public init?(parsing text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let open = trimmed.lastIndex(of: "<"), trimmed.hasSuffix(">") {
            let name = trimmed[..<open].trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            self.name = name.isEmpty ? nil : name
            self.address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
        } else {
            self.name = nil
            self.address = trimmed
        }
        let parts = self.address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              self.address.unicodeScalars.allSatisfy({ $0.isASCII && $0.value > 32 && $0 != "<" && $0 != ">" })
        else { return nil }
    }

    public var domain: String { String(self.address.split(separator: "@").last ?? "localhost") }

    var headerValue: String {
        guard let name else { return "<\(self.address)>" }
        let plain = name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil || $0 == " " || $0 == "-" || $0 == ".") }
        return (plain ? name : EncodedWord.encode(name, always: true)) + " <\(self.address)>"
    }
}

/// RFC 2045 quoted-printable: lines of at most 76 characters, soft breaks `=`, UTF-8 bytes
/// outside printable ASCII as `=XX`; line breaks become CRLF.
public enum QuotedPrintable {
    public static func encode(_ text: String) -> String {
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        var lines: [String] = []
        for line in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            let bytes = Array(line.utf8)
            var output = ""
            var length = 0
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                var piece: String
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\t"):
                    // Whitespace at the end of a line would be stripped in transit.
                    piece = isLast ? Self.escape(byte) : String(UnicodeScalar(byte))
                case 33...60, 62...126:
                    piece = String(UnicodeScalar(byte))
                default:
                    piece = Self.escape(byte)
                }
                // A line starting with "." is safe after dot-stuffing, but "From " and "." are
                // escaped anyway for receivers that mangle them.
                if length == 0, byte == UInt8(ascii: ".") { piece = Self.escape(byte) }
                if length + piece.count > 75 {
                    output += "=\r\n"
                    length = 0
                }
                output += piece
                length += piece.count
            }
            lines.append(output)
        }
        return lines.joined(separator: "\r\n")
    }

    static func escape(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF")
        return "=" + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 15)])
    }

    /// Decodes quoted-printable text (for tests and the file transport's readers).
    public static func decode(_ text: String) -> String {
        var bytes: [UInt8] = []
        let input = Array(text.utf8)
        var index = 0
        while index < input.count {
            let byte = input[index]
            if byte == UInt8(ascii: "=") {
                if index + 2 < input.count, input[index + 1] == 13, input[index + 2] == 10 {
                    index += 3
                    continue
                }
                if index + 1 < input.count, input[index + 1] == 10 {
                    index += 2
                    continue
                }
                if index + 2 < input.count, let value = UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16) {
                    bytes.append(value)
                    index += 3
                    continue
                }
            }
            bytes.append(byte)
            index += 1
        }
        return String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
    }
}

/// RFC 2047 encoded words (`=?utf-8?B?…?=`) for header text that is not plain ASCII.
enum EncodedWord {
    static func encode(_ text: String, always: Bool = false) -> String {
        let printable = text.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 32 && $0.value < 127 }
        if printable && !always && !text.contains("=?") { return text }
        // Each word's encoded form stays under 66 characters (so "Subject: " and a word fit a
        // line): up to 39 bytes, split only between characters.
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 39 {
                words.append("=?utf-8?B?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?utf-8?B?" + Data(chunk).base64EncodedString() + "?=") }
        return words.joined(separator: " ")
    }
}
