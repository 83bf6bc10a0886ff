public import Foundation

/// Strict RFC 3339 date-times (`2030-01-02T03:04:05.678+02:00`) and full dates (`2030-01-02`).
public enum RFC3339 {
    public static func dateTime(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            index += count
            return value
        }
        func take(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), take("-"), let month = digits(2), take("-"), let day = digits(2),
              Self.isValidDate(year: year, month: month, day: day), take("Tt"),
              let hour = digits(2), take(":"), let minute = digits(2), take(":"), let second = digits(2),
              hour < 24, minute < 60, second < 60
        else { return nil }
        var fraction = 0.0
        if take(".") {
            let start = index
            var scale = 0.1
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                fraction += Double(bytes[index] - UInt8(ascii: "0")) * scale
                scale /= 10
                index += 1
            }
            guard index > start, index - start <= 9 else { return nil }
        }
        var offset = 0
        if take("Zz") {
            offset = 0
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            index += 1
            guard let hours = digits(2), take(":"), let minutes = digits(2), hours < 24, minutes < 60 else { return nil }
            offset = sign * (hours * 3600 + minutes * 60)
        } else {
            return nil
        }
        guard index == bytes.count else { return nil }
        let days = Self.daysSinceEpoch(year: year, month: month, day: day)
        let seconds = Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
        // Only instants that can be written back (in UTC, to the microsecond) with four-digit
        // years: an offset or rounding must not carry 9999-12-31 into year 10000, or 0001-01-01
        // back into year 0.
        guard Self.printable.contains((seconds * 1_000_000).rounded()) else { return nil }
        return Date(timeIntervalSince1970: seconds)
    }

    /// Microseconds since 1970 of 0001-01-01T00:00:00Z up to the end of 9999-12-31.
    static let printable = -62_135_596_800_000_000.0 ..< 253_402_300_800_000_000.0

    public static func date(_ text: String) -> Date? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard text.utf8.count == 10, parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
              text.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              Self.isValidDate(year: year, month: month, day: day)
        else { return nil }
        return Date(timeIntervalSince1970: Double(Self.daysSinceEpoch(year: year, month: month, day: day) * 86_400))
    }

    static func isValidDate(year: Int, month: Int, day: Int) -> Bool {
        guard year >= 1, (1...12).contains(month), day >= 1 else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return day <= lengths[month - 1]
    }

    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        Int(CivilDate.days(year: Int64(year), month: Int64(month), day: Int64(day)))
    }

    /// `2030-01-02T03:04:05.678Z`: UTC, milliseconds truncated. The date is first rounded to
    /// microseconds (PostgreSQL's precision), so a stored `.123` never prints as `.122` through
    /// binary floating point, as Foundation's ISO 8601 style does.
    public static func string(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        self.write(date, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func write(_ date: Date, into output: inout [UInt8]) {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        // Outside years 1-9999 (not produced by PostgreSQL timestamps Atrium writes) fall back.
        guard micros.isFinite, Self.printable.contains(micros) else {
            output.append(contentsOf: date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)).utf8)
            return
        }
        // Far from 1970 a Double no longer holds microseconds (about 30 µs apart at year 9999,
        // 1 µs before 1902), and `Date` keeps its time from 2001, so a time printed and read
        // back goes through two roundings and can land a microsecond or more under the
        // millisecond it printed as (1827-12-31T23:59:59.999Z read back as …59.998999);
        // flooring allows for three steps of the coarser of the two. Between about 1934 and
        // 2038 a step is under a quarter of a microsecond and the slack is 0.
        let precision = max(date.timeIntervalSince1970.ulp, date.timeIntervalSinceReferenceDate.ulp) * 1_000_000
        let slack = precision >= 0.25 ? (3 * precision).rounded(.up) : 0
        let lastPrintable: Int64 = 253_402_300_799_999_999
        let (days, microsOfDay) = CivilDate.floorDivide(min(Int64(micros) + Int64(slack), lastPrintable), 86_400_000_000)
        let (year, month, day) = CivilDate.civil(fromDays: days)
        let milliseconds = microsOfDay / 1000
        // `yyyy-mm-ddThh:mm:ss.mmmZ`, 24 bytes, written on the stack and appended once.
        var text: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &text) { buffer in
            var offset = 0
            func digits(_ value: Int64, _ count: Int) {
                var rest = value
                for position in stride(from: offset + count - 1, through: offset, by: -1) {
                    buffer[position] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                }
                offset += count
            }
            func mark(_ character: Unicode.Scalar) {
                buffer[offset] = UInt8(ascii: character)
                offset += 1
            }
            digits(year, 4)
            mark("-")
            digits(month, 2)
            mark("-")
            digits(day, 2)
            mark("T")
            digits(milliseconds / 3_600_000, 2)
            mark(":")
            digits(milliseconds / 60_000 % 60, 2)
            mark(":")
            digits(milliseconds / 1000 % 60, 2)
            mark(".")
            digits(milliseconds % 1000, 3)
            mark("Z")
            output.append(contentsOf: UnsafeBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: offset))
        }
    }
}
