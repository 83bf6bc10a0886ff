#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AtriumText

extension PostgresTextCoding {
    /// Parses `timestamptz`, `timestamp` (read as UTC) and `date` text in ISO style.
    package static func parseTimestamp(_ bytes: UnsafeRawBufferPointer) -> Date? {
        if Self.equals(bytes, "infinity") { return .distantFuture }
        if Self.equals(bytes, "-infinity") { return .distantPast }
        var cursor = ByteCursor(bytes: bytes)
        guard let year = cursor.number(minDigits: 4),
              cursor.take(UInt8(ascii: "-")), let month = cursor.number(minDigits: 2, maxDigits: 2),
              cursor.take(UInt8(ascii: "-")), let day = cursor.number(minDigits: 2, maxDigits: 2),
              (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var micros: Int64 = 0
        if cursor.take(UInt8(ascii: " ")) || cursor.take(UInt8(ascii: "T")) {
            guard let hour = cursor.number(minDigits: 2, maxDigits: 2),
                  cursor.take(UInt8(ascii: ":")), let minute = cursor.number(minDigits: 2, maxDigits: 2),
                  cursor.take(UInt8(ascii: ":")), let second = cursor.number(minDigits: 2, maxDigits: 2),
                  hour <= 24, minute < 60, second < 61
            else { return nil }
            micros = ((hour * 60 + minute) * 60 + second) * 1_000_000
            if cursor.take(UInt8(ascii: ".")) {
                var scale: Int64 = 100_000
                var fraction: Int64 = 0
                var digits = 0
                while let digit = cursor.digit() {
                    if scale > 0 {
                        fraction += digit * scale
                        scale /= 10
                    }
                    digits += 1
                }
                guard digits > 0 else { return nil }
                micros += fraction
            }
            if let sign = cursor.peek(), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                cursor.advance()
                guard let offsetHours = cursor.number(minDigits: 2, maxDigits: 2) else { return nil }
                var offset = offsetHours * 3600
                if cursor.take(UInt8(ascii: ":")) {
                    guard let offsetMinutes = cursor.number(minDigits: 2, maxDigits: 2) else { return nil }
                    offset += offsetMinutes * 60
                    if cursor.take(UInt8(ascii: ":")) {
                        guard let offsetSeconds = cursor.number(minDigits: 2, maxDigits: 2) else { return nil }
                        offset += offsetSeconds
                    }
                }
                // The text is local time at that offset; subtract it to get UTC.
                micros -= (sign == UInt8(ascii: "+") ? offset : -offset) * 1_000_000
            } else if cursor.take(UInt8(ascii: "Z")) {
                // UTC.
            }
        }
        var era = year
        if cursor.take(UInt8(ascii: " ")) {
            guard cursor.take(UInt8(ascii: "B")), cursor.take(UInt8(ascii: "C")) else { return nil }
            era = 1 - year
        }
        // PostgreSQL's own range ends in year 294276 for timestamps (5874897 for dates); past
        // it, microseconds since 1970 no longer fit in 64 bits.
        guard cursor.isAtEnd, abs(era) <= 294_276 else { return nil }
        let days = CivilDate.days(year: era, month: month, day: day)
        let (dayMicros, overflow) = days.multipliedReportingOverflow(by: 86_400_000_000)
        guard !overflow else { return nil }
        let (totalMicros, overflowed) = dayMicros.addingReportingOverflow(micros)
        guard !overflowed else { return nil }
        return Date(timeIntervalSince1970: Double(totalMicros) / 1_000_000)
    }

    static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            bytes.elementsEqual(expected)
        }
    }
}

/// A forward-only reader over a byte buffer for small text parsers.
struct ByteCursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var isAtEnd: Bool { self.index >= self.bytes.count }

    func peek() -> UInt8? {
        self.index < self.bytes.count ? self.bytes[self.index] : nil
    }

    mutating func advance() {
        self.index += 1
    }

    mutating func take(_ byte: UInt8) -> Bool {
        guard self.peek() == byte else { return false }
        self.index += 1
        return true
    }

    mutating func digit() -> Int64? {
        guard let byte = self.peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
        self.index += 1
        return Int64(byte - UInt8(ascii: "0"))
    }

    mutating func number(minDigits: Int, maxDigits: Int = 9) -> Int64? {
        var value: Int64 = 0
        var count = 0
        while count < maxDigits, let digit = self.digit() {
            value = value * 10 + digit
            count += 1
        }
        return count >= minDigits ? value : nil
    }
}
