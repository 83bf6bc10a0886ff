@testable import AtriumCore
@testable import AtriumText
import Foundation
import Testing

@Suite struct RFC3339Tests {
    @Test(arguments: [
        ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05.000Z"),
        ("2030-01-02t03:04:05z", "2030-01-02T03:04:05.000Z"),
        ("2030-01-02T03:04:05.678+02:00", "2030-01-02T01:04:05.678Z"),
        ("2030-01-02T00:30:00-01:00", "2030-01-02T01:30:00.000Z"),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000Z"),
        ("2030-01-02T03:04:05.123456789Z", "2030-01-02T03:04:05.123Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
        // A stored .123 must not come back as .122 (binary floating point).
        ("2030-01-02T03:04:05.123Z", "2030-01-02T03:04:05.123Z"),
    ])
    func dateTimesParseAndPrintInUTC(text: String, printed: String) throws {
        let date = try #require(RFC3339.dateTime(text))
        #expect(RFC3339.string(date) == printed)
        #expect(RFC3339.dateTime(printed).map(RFC3339.string) == printed)
    }

    @Test(arguments: [
        "2030-01-02", "2030-01-02T03:04:05", "2030-01-02 03:04:05Z", "2030-13-02T03:04:05Z", "2023-02-29T00:00:00Z",
        "2030-01-02T24:00:00Z", "2030-01-02T03:60:00Z", "2030-01-02T03:04:60Z", "2030-01-02T03:04:05.Z",
        "2030-01-02T03:04:05.1234567890Z", "2030-01-02T03:04:05+0200", "2030-01-02T03:04:05+24:00", "30-01-02T03:04:05Z",
        "2030-01-02T03:04:05Z ", "+2030-01-02T03:04:05Z", "",
        // Rounding or an offset would carry these out of four-digit years.
        "9999-12-31T23:59:59.9999999Z", "9999-12-31T23:30:00-01:00", "0001-01-01T00:00:00+01:00",
    ])
    func malformedOrUnprintableDateTimesAreRefused(text: String) {
        #expect(RFC3339.dateTime(text) == nil, "\(text)")
    }

    @Test(arguments: [("2030-01-02", true), ("2024-02-29", true), ("2023-02-29", false), ("2030-1-02", false), ("2030-01-02T00:00:00Z", false), ("0000-01-01", false)])
    func fullDates(text: String, valid: Bool) {
        #expect((RFC3339.date(text) != nil) == valid, "\(text)")
    }
}
