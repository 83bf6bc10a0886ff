@testable import AtriumCore
import AtriumText
import Foundation
import Testing

/// The hand-written codecs, each on its own, edge cases first.
@Suite struct UUIDTextTests {
    static let id = UUID(uuid: (0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10))

    @Test(arguments: [
        ("01234567-89ab-cdef-fedc-ba9876543210", true),
        ("01234567-89AB-CDEF-FEDC-BA9876543210", true),
        ("0123456789abcdeffedcba9876543210", false),  // PostgreSQL reads it; a path or claim may not
        ("01234567-89ab-cdef-fedc-ba987654321", false),
        ("01234567-89ab-cdef-fedc-ba98765432100", false),
        ("01234567089ab-cdef-fedc-ba9876543210", false),
        ("0123456-789ab-cdef-fedc-ba9876543210", false),
        ("01234567-89ab-cdef-fedc-ba987654321g", false),
        ("01234567-89ab-cdef-fedc-ba98765432 0", false),
        ("{01234567-89ab-cdef-fedc-ba9876543210}", false),
        ("", false),
        ("01234567-89ab-cdef-fedc-ba98765432é", false),
    ])
    func canonicalParsing(text: String, accepted: Bool) {
        let parsed = UUID(canonical: text)
        #expect((parsed != nil) == accepted, "\(text)")
        if accepted { #expect(parsed == Self.id) }
        // (Foundation's parser, sscanf underneath, also takes "…98765432 0": a space for a digit.)
    }

    @Test func printsWhatPostgreSQLPrints() {
        #expect(Self.id.lowercasedString == "01234567-89ab-cdef-fedc-ba9876543210")
        for _ in 0..<200 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(UUID(canonical: id.lowercasedString) == id)
        }
        var buffer = Array("x".utf8)
        Self.id.appendLowercased(to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "x01234567-89ab-cdef-fedc-ba9876543210")
    }

    @Test func looseParsingTakesHyphensAnywhereButNeedsThirtyTwoDigits() {
        func loose(_ text: String) -> UUID? {
            Array(text.utf8).withUnsafeBytes { UUIDText.parse($0, canonical: false) }
        }
        #expect(loose("0123456789abcdeffedcba9876543210") == Self.id)
        #expect(loose("0123-4567-89ab-cdef-fedc-ba98-7654-3210") == Self.id)
        #expect(loose("0123456789abcdeffedcba987654321") == nil)
        #expect(loose("0123456789abcdeffedcba98765432100") == nil)
        #expect(loose("0123456789abcdeffedcba987654321x") == nil)
    }
}

@Suite struct JSONPointerTests {
    @Test(arguments: [
        ("title", "title"), ("", ""), ("a/b", "a~1b"), ("m~n", "m~0n"), ("~/", "~0~1"), ("~1", "~01"), ("é/ü", "é~1ü"),
    ])
    func escapesTildeAndSlash(key: String, escaped: String) {
        #expect(JSONPointer.escape(key) == escaped)
    }
}

@Suite struct CursorCodecTests {
    let codec = CursorCodec(key: Array(repeating: 7, count: 32))
    let position = CursorCodec.Position(values: ["2026-01-01", nil, "a.b\"c"], id: UUID())

    @Test func roundTrips() throws {
        let cursor = self.codec.encode(self.position, context: "tenant/notes/-created")
        #expect(try self.codec.decode(cursor, context: "tenant/notes/-created", keys: 3) == self.position)
    }

    /// Cursors handed out before a deploy keep working after it: this one was made outside
    /// Swift from the format (base64url of the JSON, `.`, base64url of HMAC-SHA256 over the
    /// context, a newline and the first part).
    @Test func readsACursorMadeFromTheFormat() throws {
        let cursor = "eyJrIjpbIjIwMjYtMDEtMDEgMDA6MDA6MDArMDAiLG51bGxdLCJpIjoiMGI2ZjFjMWUtOGYzYS00YzJkLTllNGItNWE2ZDdjOGU5ZjAxIn0.BxO2t5leqsnThMHWPHHkUS8xyMXok9HdCxXuR9G7_vI"
        let position = try self.codec.decode(cursor, context: "t|c|-createdAt|h", keys: 2)
        #expect(position == CursorCodec.Position(values: ["2026-01-01 00:00:00+00", nil], id: try #require(UUID(uuidString: "0b6f1c1e-8f3a-4c2d-9e4b-5a6d7c8e9f01"))))
        #expect(throws: AtriumError.self) { try self.codec.decode(cursor, context: "t|c|-createdAt|i", keys: 2) }
        #expect(throws: AtriumError.self) { try self.codec.decode("é" + cursor, context: "t|c|-createdAt|h", keys: 2) }
    }

    @Test func refusesTamperedTruncatedAndForeignCursors() throws {
        let cursor = self.codec.encode(self.position, context: "ctx")
        var bad: [String] = [
            "", ".", "..", "abc", cursor + ".", "." + cursor,
            String(cursor.dropLast()), String(cursor.dropFirst()),
            String(cursor.prefix(cursor.count / 2)),
            cursor.replacingOccurrences(of: ".", with: ".."),
            String(repeating: "A", count: 5000),
        ]
        // Every single-character change of the body or the MAC.
        let characters = Array(cursor)
        for index in characters.indices where characters[index] != "." {
            var changed = characters
            changed[index] = characters[index] == "A" ? "B" : "A"
            bad.append(String(changed))
        }
        for text in bad {
            #expect(throws: AtriumError.self, "\(text.prefix(40))") { try self.codec.decode(text, context: "ctx", keys: 3) }
        }
        // Another list, another number of sort keys, another key.
        #expect(throws: AtriumError.self) { try self.codec.decode(cursor, context: "ctx2", keys: 3) }
        #expect(throws: AtriumError.self) { try self.codec.decode(cursor, context: "ctx", keys: 2) }
        #expect(throws: AtriumError.self) { try CursorCodec(key: Array(repeating: 8, count: 32)).decode(cursor, context: "ctx", keys: 3) }
    }
}

@Suite struct JSONTextTests {
    /// What `jsonb` prints, passed on, is byte for byte what the serializer writes for the parsed
    /// value: every escape PostgreSQL can print, surrogate pairs, and the characters the
    /// serializer escapes for HTML.
    @Test(arguments: [
        #"{"a": 1, "b": [true, false, null]}"#,
        #"{"s": "quote \" backslash \\ slash / newline \n return \r tab \t"}"#,
        #"{"s": "backspace \b formfeed \f bell \u0007 unit \u001f"}"#,
        #"{"s": "<script>&amp;</script>"}"#,
        #"{"s": "é ü 日本 😀"}"#,
        #"{"nested": {"deep": [[[{"x": "y"}]]]}, "n": -1.5e-7}"#,
        #"["a b", " ", "\"", "\\\\"]"#,
        #""top-level string""#,
        #"{}"#, #"[]"#,
    ])
    func compactFormIsTheSerializersForm(text: String) throws {
        var output: [UInt8] = []
        Array(text.utf8).withUnsafeBytes { JSONText.appendCompact($0, to: &output) }
        let parsed = try JSONParser.parse(text)
        #expect(String(decoding: output, as: UTF8.self) == JSONSerializer.text(parsed))
        #expect(try JSONParser.parse(output) == parsed)
    }
}
