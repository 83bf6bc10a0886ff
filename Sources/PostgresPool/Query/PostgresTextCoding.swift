#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AtriumText

/// Reading and writing PostgreSQL's text representations without going through `String`
/// where the hot path allows it.
///
/// The pool sets `TimeZone=UTC` and `DateStyle=ISO` on every connection, so timestamps always come
/// back as `YYYY-MM-DD HH:MM:SS[.ffffff]+00`; offsets are still honoured for safety.
@usableFromInline
package enum PostgresTextCoding {
    @usableFromInline
    package static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        if value == 0 {
            buffer.append(UInt8(ascii: "0"))
            return
        }
        var magnitude = value.magnitude
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        let start = buffer.count
        while magnitude > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(magnitude % 10))
            magnitude /= 10
        }
        buffer[start...].reverse()
    }

    package static func appendUUID(_ uuid: UUID, to buffer: inout [UInt8]) {
        UUIDText.append(uuid, to: &buffer)
    }

    static func appendTimestamp(_ date: Date, to buffer: inout [UInt8]) {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded()
        guard micros.isFinite, abs(micros) < 9.0e18 else {
            buffer.append(contentsOf: (micros < 0 ? "-infinity" : "infinity").utf8)
            return
        }
        let total = Int64(micros)
        let (days, microsOfDay) = CivilDate.floorDivide(total, 86_400_000_000)
        var (year, month, day) = CivilDate.civil(fromDays: days)
        let bc = year <= 0
        if bc { year = 1 - year }
        Self.appendPadded(year, width: 4, to: &buffer)
        buffer.append(UInt8(ascii: "-"))
        Self.appendPadded(month, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: "-"))
        Self.appendPadded(day, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: " "))
        let seconds = microsOfDay / 1_000_000
        Self.appendPadded(seconds / 3600, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        Self.appendPadded(seconds / 60 % 60, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: ":"))
        Self.appendPadded(seconds % 60, width: 2, to: &buffer)
        buffer.append(UInt8(ascii: "."))
        Self.appendPadded(microsOfDay % 1_000_000, width: 6, to: &buffer)
        buffer.append(contentsOf: "+00".utf8)
        if bc { buffer.append(contentsOf: " BC".utf8) }
    }

    private static func appendPadded(_ value: Int64, width: Int, to buffer: inout [UInt8]) {
        var digits: [UInt8] = []
        var rest = value
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        if digits.count < width {
            buffer.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: width - digits.count))
        }
        buffer.append(contentsOf: digits.reversed())
    }
}

extension PostgresTextCoding {
    package static func parseInteger(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard !bytes.isEmpty else { return nil }
        var index = 0
        var negative = false
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") {
            negative = bytes[0] == UInt8(ascii: "-")
            index = 1
        }
        guard index < bytes.count else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = negative
                ? times.subtractingReportingOverflow(Int64(digit))
                : times.addingReportingOverflow(Int64(digit))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            index += 1
        }
        return value
    }

    package static func parseUUID(_ bytes: UnsafeRawBufferPointer) -> UUID? {
        UUIDText.parse(bytes, canonical: false)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        UUIDText.hexValue(byte)
    }

    /// `bytea` in hex output format: `\x0a1b…`.
    package static func parseByteaHex(_ bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"),
              bytes.count % 2 == 0
        else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity((bytes.count - 2) / 2)
        var index = 2
        while index < bytes.count {
            guard let high = Self.hexValue(bytes[index]), let low = Self.hexValue(bytes[index + 1]) else {
                return nil
            }
            result.append(high << 4 | low)
            index += 2
        }
        return result
    }
}
