import Foundation
@testable import PostgresPool
import Testing

/// PostgreSQL's text forms, decoded and encoded without Foundation's parsers.
@Suite struct TextCodingTests {
    static func timestamp(_ text: String) -> Date? {
        Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseTimestamp($0) }
    }

    @Test(arguments: [
        ("2026-12-05 13:02:08+00", 1_796_475_728.0),
        ("2026-12-05 13:02:08.5+00", 1_796_475_728.5),
        ("2026-12-05 13:02:08.123456+00", 1_796_475_728.123456),
        ("2026-12-05 13:02:08.1234569+00", 1_796_475_728.123456),  // beyond microseconds: dropped
        ("2026-12-05 14:02:08+01", 1_796_475_728.0),
        ("2026-12-05 12:32:08-00:30", 1_796_475_728.0),
        ("2026-12-05 13:02:09+00:00:01", 1_796_475_728.0),
        ("2026-12-05T13:02:08Z", 1_796_475_728.0),
        ("2026-12-05 13:02:08", 1_796_475_728.0),  // timestamp without zone: UTC
        ("2026-12-05", 1_796_428_800.0),
        ("1970-01-01 00:00:00+00", 0),
        ("1969-12-31 23:59:59.999999+00", -0.000001),
        ("2016-12-31 23:59:60+00", 1_483_228_800.0),  // a leap second is the next second
        ("2024-02-29 00:00:00+00", 1_709_164_800.0),
        ("0001-01-01 00:00:00+00 BC", -62_167_219_200.0),
    ])
    func parsesTimestamps(text: String, seconds: Double) throws {
        let date = try #require(Self.timestamp(text), "\(text)")
        #expect(abs(date.timeIntervalSince1970 - seconds) < 0.000_000_5, "\(text): \(date.timeIntervalSince1970)")
    }

    @Test(arguments: [
        "", "2026", "2026-12", "2026-13-01", "2026-00-10", "2026-12-32", "26-12-05", "2026-12-5",
        "2026-12-05 25:00:00+00", "2026-12-05 13:60:00+00", "2026-12-05 13:02:62+00", "2026-12-05 13:02",
        "2026-12-05 13:02:08.", "2026-12-05 13:02:08+1", "2026-12-05 13:02:08 AD", "2026-12-05x",
        "294277-01-01 00:00:00+00", "99999999999999999999-01-01",
    ])
    func refusesWhatPostgreSQLNeverPrints(text: String) {
        #expect(Self.timestamp(text) == nil, "\(text)")
    }

    @Test func infinitiesAndRoundTrips() throws {
        #expect(Self.timestamp("infinity") == .distantFuture)
        #expect(Self.timestamp("-infinity") == .distantPast)
        for seconds in [0.0, 1_796_475_728.123456, -62_167_219_200.0, 1_483_228_799.999999, 253_402_300_799.0] {
            var text: [UInt8] = []
            PostgresTextCoding.appendTimestamp(Date(timeIntervalSince1970: seconds), to: &text)
            let back = try #require(text.withUnsafeBytes { PostgresTextCoding.parseTimestamp($0) })
            #expect(abs(back.timeIntervalSince1970 - seconds) < 0.000_001, "\(String(decoding: text, as: UTF8.self))")
        }
    }

    @Test(arguments: [
        (#"\x"#, [UInt8]()),
        (#"\x00ff10"#, [0x00, 0xFF, 0x10]),
        (#"\xABcd"#, [0xAB, 0xCD]),
    ])
    func decodesBytea(text: String, bytes: [UInt8]) {
        #expect(Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseByteaHex($0) } == bytes)
    }

    @Test(arguments: [#""#, #"\"#, #"x00"#, #"\x0"#, #"\x0g"#, #"\\x00"#, #"\x 0"#])
    func refusesBadBytea(text: String) {
        #expect(Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseByteaHex($0) } == nil, "\(text)")
    }

    @Test(arguments: [
        ("0", 0), ("-0", 0), ("+1", 1), ("42", 42), ("-9223372036854775808", Int64.min), ("9223372036854775807", Int64.max),
    ] as [(String, Int64)])
    func parsesIntegers(text: String, value: Int64) {
        #expect(Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseInteger($0) } == value)
        var printed: [UInt8] = []
        PostgresTextCoding.appendDecimal(value, to: &printed)
        #expect(Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseInteger($0) } == Array(printed).withUnsafeBytes { PostgresTextCoding.parseInteger($0) })
    }

    @Test(arguments: ["", "-", "+", "1.0", "9223372036854775808", "-9223372036854775809", "1 ", "0x10"])
    func refusesBadIntegers(text: String) {
        #expect(Array(text.utf8).withUnsafeBytes { PostgresTextCoding.parseInteger($0) } == nil, "\(text)")
    }
}
