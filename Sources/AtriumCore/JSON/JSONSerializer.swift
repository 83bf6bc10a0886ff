/// Compact JSON text for a `JSONValue`: numbers as their original literals, strings escaped
/// minimally (and `<`, `>`, `&` as `\u` escapes so the text is safe to embed in HTML).
public enum JSONSerializer {
    public static func text(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        self.write(value, into: &output)
        return String(decoding: output, as: UTF8.self)
    }

    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        self.write(value, into: &output)
        return output
    }

    /// Appends the compact text of `value` to `output`.
    public static func write(_ value: JSONValue, into output: inout [UInt8]) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let bool): output.append(contentsOf: (bool ? "true" : "false").utf8)
        case .number(let number): output.append(contentsOf: number.text.utf8)
        case .string(let string): self.write(string, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                self.write(element, into: &output)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            output.append(UInt8(ascii: "{"))
            for (index, entry) in object.entries.enumerated() {
                if index > 0 { output.append(UInt8(ascii: ",")) }
                self.write(entry.key, into: &output)
                output.append(UInt8(ascii: ":"))
                self.write(entry.value, into: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    package static func write(_ string: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): output.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): output.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): output.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): output.append(contentsOf: "\\t".utf8)
            case 0x00...0x1F, UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                self.appendUnicodeEscape(byte, into: &output)
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// `\u00xx` for a byte below 0x80.
    static func appendUnicodeEscape(_ byte: UInt8, into output: inout [UInt8]) {
        output.append(contentsOf: "\\u00".utf8)
        output.append(self.hex[Int(byte >> 4)])
        output.append(self.hex[Int(byte & 0x0F)])
    }
}
