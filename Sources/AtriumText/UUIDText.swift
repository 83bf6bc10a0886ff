#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The one UUID text codec: PostgreSQL's output, path parameters, token claims and JSON all
/// go through it. Foundation's `uuidString` formats through `snprintf` and
/// `UUID(uuidString:)` parses through `sscanf`; these do neither.
public enum UUIDText {
    /// Appends the lower-case 8-4-4-4-12 form (the one PostgreSQL prints). Written into 36
    /// bytes on the stack and appended once: this runs for every id of every record answered.
    public static func append(_ uuid: UUID, to buffer: inout [UInt8]) {
        var text: (UInt64, UInt64, UInt64, UInt64, UInt32) = (0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &text) { output in
            withUnsafeBytes(of: uuid.uuid) { bytes in
                var offset = 0
                for index in 0..<16 {
                    if index == 4 || index == 6 || index == 8 || index == 10 {
                        output[offset] = UInt8(ascii: "-")
                        offset += 1
                    }
                    output[offset] = Self.hexDigit(bytes[index] >> 4)
                    output[offset + 1] = Self.hexDigit(bytes[index] & 0x0F)
                    offset += 2
                }
            }
            buffer.append(contentsOf: UnsafeBufferPointer(start: output.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 36))
        }
    }

    @inline(__always)
    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? value &+ UInt8(ascii: "0") : value &+ (UInt8(ascii: "a") &- 10)
    }

    /// Parses 32 hexadecimal digits, either case. `canonical` requires the 8-4-4-4-12 form;
    /// otherwise hyphens may stand anywhere (PostgreSQL's own output is always canonical, but
    /// its input accepts more).
    public static func parse(_ bytes: UnsafeRawBufferPointer, canonical: Bool = true) -> UUID? {
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if canonical {
            guard bytes.count == 36, bytes[8] == UInt8(ascii: "-"), bytes[13] == UInt8(ascii: "-"),
                  bytes[18] == UInt8(ascii: "-"), bytes[23] == UInt8(ascii: "-")
            else { return nil }
            // Fixed positions: each byte's two digits, one hyphen further after bytes 4, 6, 8, 10.
            var invalid: UInt8 = 0
            withUnsafeMutableBytes(of: &uuid) { raw in
                for index in 0..<16 {
                    let offset = 2 * index + (index >= 4 ? 1 : 0) + (index >= 6 ? 1 : 0) + (index >= 8 ? 1 : 0) + (index >= 10 ? 1 : 0)
                    let high = Self.nibble(bytes[offset])
                    let low = Self.nibble(bytes[offset + 1])
                    invalid |= (high | low) & 0xF0
                    raw[index] = high << 4 | low
                }
            }
            return invalid == 0 ? UUID(uuid: uuid) : nil
        }
        var nibbles = 0
        let complete = withUnsafeMutableBytes(of: &uuid) { raw -> Bool in
            for byte in bytes where byte != UInt8(ascii: "-") {
                let nibble = Self.nibble(byte)
                guard nibbles < 32, nibble != 0xFF else { return false }
                raw[nibbles >> 1] |= nibbles & 1 == 0 ? nibble << 4 : nibble
                nibbles += 1
            }
            return nibbles == 32
        }
        return complete ? UUID(uuid: uuid) : nil
    }

    /// A hexadecimal digit's value, nil for anything else.
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        let nibble = Self.nibble(byte)
        return nibble == 0xFF ? nil : nibble
    }

    /// A byte's value as a hex digit, 0xFF for anything else.
    @inline(__always)
    private static func nibble(_ byte: UInt8) -> UInt8 {
        let digit = byte &- UInt8(ascii: "0")
        if digit < 10 { return digit }
        let letter = (byte | 0x20) &- UInt8(ascii: "a")
        return letter < 6 ? letter &+ 10 : 0xFF
    }
}

extension UUID {
    /// The lower-case form PostgreSQL prints.
    public var lowercasedString: String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(36)
        UUIDText.append(self, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the lower-case form to `buffer`.
    public func appendLowercased(to buffer: inout [UInt8]) {
        UUIDText.append(self, to: &buffer)
    }

    /// Parses the canonical 8-4-4-4-12 hexadecimal form, either case. Inlinable, so that it is
    /// specialized for the caller's string type in other modules.
    @inlinable
    public init?(canonical text: some StringProtocol) {
        var text = String(text)
        guard let parsed = text.withUTF8({ UUIDText.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }
}
