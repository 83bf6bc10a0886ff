/// Passes JSON text PostgreSQL printed (a `jsonb` value's output) on without parsing it.
public enum JSONText {
    /// Appends `text` as `JSONSerializer` would write the value it holds: whitespace between
    /// tokens dropped, and `<`, `>`, `&`, backspace and form feed as `\u` escapes.
    ///
    /// Everything else PostgreSQL prints is already the serializer's form: keys in `jsonb`
    /// order, numbers as stored, `\"`, `\\`, `\n`, `\r`, `\t` and other control characters as
    /// lower-case `\u00xx`. The text must be valid JSON (it is, coming from `jsonb`).
    public static func appendCompact(_ text: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        output.reserveCapacity(output.count + text.count)
        var inString = false
        var index = 0
        while index < text.count {
            let byte = text[index]
            index += 1
            if !inString {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    continue
                case UInt8(ascii: "\""):
                    inString = true
                default:
                    break
                }
                output.append(byte)
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = false
                output.append(byte)
            case UInt8(ascii: "\\"):
                guard index < text.count else {
                    output.append(byte)
                    continue
                }
                let escaped = text[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "b"): JSONSerializer.appendUnicodeEscape(0x08, into: &output)
                case UInt8(ascii: "f"): JSONSerializer.appendUnicodeEscape(0x0C, into: &output)
                default:
                    output.append(byte)
                    output.append(escaped)
                }
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                JSONSerializer.appendUnicodeEscape(byte, into: &output)
            default:
                output.append(byte)
            }
        }
    }
}
