#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// The one UUID text codec: PostgreSQL's output, path parameters, token claims and JSON all
/// go through it. Foundation's `uuidString` formats through `snprintf` and
/// `UUID(uuidString:)` parses through `sscanf`; these do neither.
public enum UUIDText {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends the lower-case 8-4-4-4-12 form (the one PostgreSQL prints).
    public static func append(_ uuid: UUID, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: uuid.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    buffer.append(UInt8(ascii: "-"))
                }
                buffer.append(Self.hexDigits[Int(byte >> 4)])
                buffer.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
    }

    /// Parses 32 hexadecimal digits, either case. `canonical` requires the 8-4-4-4-12 form;
    /// otherwise hyphens may stand anywhere (PostgreSQL's own output is always canonical, but
    /// its input accepts more).
    public static func parse(_ bytes: UnsafeRawBufferPointer, canonical: Bool = true) -> UUID? {
        if canonical {
            guard bytes.count == 36, bytes[8] == UInt8(ascii: "-"), bytes[13] == UInt8(ascii: "-"),
                  bytes[18] == UInt8(ascii: "-"), bytes[23] == UInt8(ascii: "-")
            else { return nil }
        }
        var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var nibbles = 0
        let complete = withUnsafeMutableBytes(of: &uuid) { raw -> Bool in
            for byte in bytes where byte != UInt8(ascii: "-") {
                let nibble = Self.nibbles[Int(byte)]
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
        let nibble = Self.nibbles[Int(byte)]
        return nibble == 0xFF ? nil : nibble
    }

    /// Each byte's value as a hex digit, 0xFF for anything else.
    private static let nibbles: [UInt8] = (0..<256).map { byte in
        switch UInt8(byte) {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt8(byte) - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt8(byte) - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt8(byte) - UInt8(ascii: "A") + 10
        default: 0xFF
        }
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

    /// Parses the canonical 8-4-4-4-12 hexadecimal form, either case.
    public init?(canonical text: some StringProtocol) {
        var text = String(text)
        guard let parsed = text.withUTF8({ UUIDText.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }
}
