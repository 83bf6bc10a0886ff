/// Passes JSON text PostgreSQL printed (a `jsonb` value's output) on without parsing it.
public enum JSONText {
    /// Appends `text` as `JSONSerializer` would write the value it holds: whitespace between
    /// tokens dropped, and `<`, `>`, `&`, backspace and form feed as `\u` escapes.
    ///
    /// Everything else PostgreSQL prints is already the serializer's form: keys in `jsonb`
    /// order, numbers as stored, `\"`, `\\`, `\n`, `\r`, `\t` and other control characters as
    /// lower-case `\u00xx`. The text must be valid JSON (it is, coming from `jsonb`).
    public static func appendCompact(_ text: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        guard let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        output.reserveCapacity(output.count + text.count)
        let count = text.count
        // Bytes are copied in runs, up to each one that is dropped or rewritten: a record's
        // text is mostly runs, and one copy per run beats an append per byte.
        var runStart = 0
        func copyRun(to end: Int) {
            if end > runStart { output.append(contentsOf: UnsafeBufferPointer(start: base + runStart, count: end - runStart)) }
        }
        var inString = false
        var index = 0
        while index < count {
            let byte = base[index]
            if !inString {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                    copyRun(to: index)
                    runStart = index + 1
                case UInt8(ascii: "\""):
                    inString = true
                default:
                    break
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\""):
                inString = false
                index += 1
            case UInt8(ascii: "\\"):
                guard index + 1 < count else {
                    index += 1
                    continue
                }
                let escaped = base[index + 1]
                if escaped == UInt8(ascii: "b") || escaped == UInt8(ascii: "f") {
                    copyRun(to: index)
                    JSONSerializer.appendUnicodeEscape(escaped == UInt8(ascii: "b") ? 0x08 : 0x0C, into: &output)
                    runStart = index + 2
                }
                index += 2
            case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"):
                copyRun(to: index)
                JSONSerializer.appendUnicodeEscape(byte, into: &output)
                index += 1
                runStart = index
            default:
                index += 1
            }
        }
        copyRun(to: count)
    }
}
