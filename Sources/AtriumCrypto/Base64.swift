/// Base64 without padding, in the URL-safe alphabet (JWS, opaque tokens) or the standard one
/// (PHC password strings). Decoding is strict: wrong characters, padding or leftover bits fail.
public enum Base64 {
    public enum Alphabet: Sendable {
        case standard
        case url

        fileprivate var characters: [UInt8] {
            switch self {
            case .standard: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
            case .url: Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
            }
        }
    }

    private static let standardTable = Self.decodingTable(.standard)
    private static let urlTable = Self.decodingTable(.url)

    private static func decodingTable(_ alphabet: Alphabet) -> [UInt8] {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.characters.enumerated() {
            table[Int(character)] = UInt8(value)
        }
        return table
    }

    // The generic entry points are inlinable so that a caller in another module gets them
    // specialized: unspecialized, every byte went through the collection's witness table
    // (reading a list cursor cost ~20 µs in the profile, more than the page's statement).
    @inlinable
    public static func encode(_ bytes: some Collection<UInt8>, alphabet: Alphabet = .url) -> String {
        withContiguousBytes(bytes) { Self.encode(buffer: $0, alphabet: alphabet) }
    }

    @usableFromInline
    static func encode(buffer input: UnsafeBufferPointer<UInt8>, alphabet: Alphabet) -> String {
        let characters = alphabet.characters
        var output: [UInt8] = []
        output.reserveCapacity((input.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= input.count {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output.append(characters[Int(chunk >> 18 & 63)])
            output.append(characters[Int(chunk >> 12 & 63)])
            output.append(characters[Int(chunk >> 6 & 63)])
            output.append(characters[Int(chunk & 63)])
            index += 3
        }
        let remaining = input.count - index
        if remaining == 1 {
            let chunk = UInt32(input[index]) << 16
            output.append(characters[Int(chunk >> 18 & 63)])
            output.append(characters[Int(chunk >> 12 & 63)])
        } else if remaining == 2 {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output.append(characters[Int(chunk >> 18 & 63)])
            output.append(characters[Int(chunk >> 12 & 63)])
            output.append(characters[Int(chunk >> 6 & 63)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    @inlinable
    public static func decode(_ text: some StringProtocol, alphabet: Alphabet = .url) -> [UInt8]? {
        Self.decode(utf8: Array(text.utf8), alphabet: alphabet)
    }

    /// Decodes text given as its UTF-8 bytes.
    @inlinable
    public static func decode(utf8 input: some Collection<UInt8>, alphabet: Alphabet = .url) -> [UInt8]? {
        withContiguousBytes(input) { Self.decode(buffer: $0, alphabet: alphabet) }
    }

    @usableFromInline
    static func decode(buffer input: UnsafeBufferPointer<UInt8>, alphabet: Alphabet) -> [UInt8]? {
        let table = alphabet == .url ? Self.urlTable : Self.standardTable
        guard input.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in input {
            let value = table[Int(character)]
            guard value != 0xFF else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        // Leftover bits must be zero, or two different strings would decode to the same bytes.
        guard accumulator & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return output
    }
}
