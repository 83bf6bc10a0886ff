/// A strict RFC 8259 parser that says where input broke and refuses what must not be stored:
/// duplicate object keys, `\u0000` and other control characters, unpaired surrogates, invalid
/// UTF-8, numbers beyond a Double's range, and documents beyond its `Limits`.
///
/// Parsing costs time linear in the input: every byte is looked at a bounded number of times and
/// duplicate keys are found with a hash set.
public struct JSONParser {
    /// Why and where parsing stopped.
    public struct Failure: Error, Sendable, CustomStringConvertible, Equatable {
        /// Broken syntax, or a well-formed document larger than the limits allow.
        public enum Kind: Sendable, Equatable {
            case syntax
            case limit
        }

        public let kind: Kind
        public let reason: String
        /// 1-based line and column of the byte where it broke.
        public let line: Int
        public let column: Int
        public let offset: Int
        public var description: String { "\(self.reason) at line \(self.line), column \(self.column)" }
    }

    /// How large a document may be, beyond its size in bytes.
    public struct Limits: Sendable, Equatable {
        /// Objects and arrays nested deeper than this are refused.
        public var maximumDepth: Int
        /// Keys one object may have.
        public var maximumKeysPerObject: Int
        /// Values in the whole document (every object, array, string, number, boolean and null).
        public var maximumValues: Int

        public init(maximumDepth: Int, maximumKeysPerObject: Int, maximumValues: Int) {
            self.maximumDepth = maximumDepth
            self.maximumKeysPerObject = maximumKeysPerObject
            self.maximumValues = maximumValues
        }

        /// For what clients send: generous for real documents, small enough that nothing built
        /// from one can be large.
        public static let request = Limits(maximumDepth: 64, maximumKeysPerObject: 10_000, maximumValues: 200_000)
        /// For text Atrium itself stored (validated when it came in, or written by PostgreSQL).
        public static let stored = Limits(maximumDepth: 256, maximumKeysPerObject: .max, maximumValues: .max)
    }

    private let bytes: [UInt8]
    private var index = 0
    private let limits: Limits
    private var values = 0

    private init(bytes: [UInt8], limits: Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    public static func parse(_ bytes: some Collection<UInt8>, limits: Limits = .request) throws(Failure) -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), limits: limits)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw parser.failure("unexpected data after the JSON value") }
        return value
    }

    public static func parse(_ text: String, limits: Limits = .request) throws(Failure) -> JSONValue {
        try self.parse(Array(text.utf8), limits: limits)
    }

    private func failure(_ reason: String, at position: Int? = nil, kind: Failure.Kind = .syntax) -> Failure {
        let offset = min(position ?? self.index, self.bytes.count)
        var line = 1
        var column = 1
        for byte in self.bytes[..<offset] {
            if byte == UInt8(ascii: "\n") {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return Failure(kind: kind, reason: reason, line: line, column: column, offset: offset)
    }

    private mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x0A, 0x0D, 0x09: self.index += 1
            default: return
            }
        }
    }

    private mutating func parseValue(depth: Int) throws(Failure) -> JSONValue {
        guard self.index < self.bytes.count else { throw self.failure("unexpected end of input") }
        self.values += 1
        guard self.values <= self.limits.maximumValues else {
            throw self.failure("more than \(self.limits.maximumValues) values in one document", kind: .limit)
        }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"):
            return .object(try self.parseObject(depth: depth + 1))
        case UInt8(ascii: "["):
            return .array(try self.parseArray(depth: depth + 1))
        case UInt8(ascii: "\""):
            return .string(try self.parseString())
        case UInt8(ascii: "t"):
            try self.expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try self.parseNumber())
        default:
            throw self.failure("unexpected character")
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(Failure) {
        let count = literal.utf8CodeUnitCount
        let matches = literal.withUTF8Buffer { expected in
            self.index + count <= self.bytes.count && self.bytes[self.index..<self.index + count].elementsEqual(expected)
        }
        guard matches else { throw self.failure("invalid literal") }
        self.index += count
    }

    private mutating func parseObject(depth: Int) throws(Failure) -> JSONObject {
        guard depth <= self.limits.maximumDepth else { throw self.failure("nested deeper than \(self.limits.maximumDepth) levels") }
        self.index += 1
        var entries: [(key: String, value: JSONValue)] = []
        // Doubles as the object's index of keys once it is large.
        var positions: [String: Int] = [:]
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "}") {
            self.index += 1
            return JSONObject()
        }
        while true {
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                throw self.failure("expected a string key")
            }
            let keyStart = self.index
            let key = try self.parseString()
            guard positions.updateValue(entries.count, forKey: key) == nil else {
                throw self.failure("duplicate key \"\(key)\"", at: keyStart)
            }
            guard entries.count < self.limits.maximumKeysPerObject else {
                throw self.failure("more than \(self.limits.maximumKeysPerObject) keys in one object", at: keyStart, kind: .limit)
            }
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ":") else {
                throw self.failure("expected ':' after a key")
            }
            self.index += 1
            self.skipWhitespace()
            entries.append((key, try self.parseValue(depth: depth)))
            self.skipWhitespace()
            guard self.index < self.bytes.count else { throw self.failure("unexpected end of input in an object") }
            if self.bytes[self.index] == UInt8(ascii: ",") {
                self.index += 1
                continue
            }
            guard self.bytes[self.index] == UInt8(ascii: "}") else { throw self.failure("expected ',' or '}'") }
            self.index += 1
            return JSONObject(distinctEntries: entries, positions: positions)
        }
    }

    private mutating func parseArray(depth: Int) throws(Failure) -> [JSONValue] {
        guard depth <= self.limits.maximumDepth else { throw self.failure("nested deeper than \(self.limits.maximumDepth) levels") }
        self.index += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "]") {
            self.index += 1
            return elements
        }
        while true {
            self.skipWhitespace()
            elements.append(try self.parseValue(depth: depth))
            self.skipWhitespace()
            guard self.index < self.bytes.count else { throw self.failure("unexpected end of input in an array") }
            if self.bytes[self.index] == UInt8(ascii: ",") {
                self.index += 1
                continue
            }
            guard self.bytes[self.index] == UInt8(ascii: "]") else { throw self.failure("expected ',' or ']'") }
            self.index += 1
            return elements
        }
    }

    private mutating func parseString() throws(Failure) -> String {
        self.index += 1
        var scalars = String.UnicodeScalarView()
        while true {
            guard self.index < self.bytes.count else { throw self.failure("unterminated string") }
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                return String(scalars)
            case UInt8(ascii: "\\"):
                scalars.append(try self.parseEscape())
            case 0x00...0x1F:
                throw self.failure(byte == 0 ? "NUL characters are not allowed" : "control characters must be escaped")
            case 0x00...0x7F:
                scalars.append(Unicode.Scalar(byte))
                self.index += 1
            default:
                scalars.append(try self.parseUTF8())
            }
        }
    }

    private mutating func parseEscape() throws(Failure) -> Unicode.Scalar {
        let start = self.index
        self.index += 1
        guard self.index < self.bytes.count else { throw self.failure("unterminated escape") }
        let letter = self.bytes[self.index]
        self.index += 1
        switch letter {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let first = try self.hexQuad()
            if first == 0 { throw self.failure("\\u0000 is not allowed (PostgreSQL text cannot hold NUL)", at: start) }
            if (0xD800...0xDBFF).contains(first) {
                guard self.index + 1 < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"), self.bytes[self.index + 1] == UInt8(ascii: "u") else {
                    throw self.failure("unpaired surrogate \\u\(String(first, radix: 16))", at: start)
                }
                self.index += 2
                let second = try self.hexQuad()
                guard (0xDC00...0xDFFF).contains(second) else { throw self.failure("unpaired surrogate", at: start) }
                return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!
            }
            guard let scalar = Unicode.Scalar(first) else { throw self.failure("unpaired surrogate", at: start) }
            return scalar
        default:
            throw self.failure("invalid escape", at: start)
        }
    }

    private mutating func hexQuad() throws(Failure) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.failure("incomplete \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.bytes[self.index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw self.failure("invalid hex digit in \\u escape")
            }
            value = value << 4 | digit
            self.index += 1
        }
        return value
    }

    /// One UTF-8 encoded scalar (2 to 4 bytes), strictly: no overlong forms, no surrogates.
    private mutating func parseUTF8() throws(Failure) -> Unicode.Scalar {
        let lead = self.bytes[self.index]
        let length: Int
        var value: UInt32
        switch lead {
        case 0xC2...0xDF: length = 2; value = UInt32(lead & 0x1F)
        case 0xE0...0xEF: length = 3; value = UInt32(lead & 0x0F)
        case 0xF0...0xF4: length = 4; value = UInt32(lead & 0x07)
        default: throw self.failure("invalid UTF-8")
        }
        guard self.index + length <= self.bytes.count else { throw self.failure("invalid UTF-8") }
        for offset in 1..<length {
            let continuation = self.bytes[self.index + offset]
            guard continuation & 0xC0 == 0x80 else { throw self.failure("invalid UTF-8") }
            value = value << 6 | UInt32(continuation & 0x3F)
        }
        let minimum: UInt32 = length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000
        guard value >= minimum, value <= 0x10FFFF, let scalar = Unicode.Scalar(value) else { throw self.failure("invalid UTF-8") }
        self.index += length
        return scalar
    }

    private mutating func parseNumber() throws(Failure) -> JSONNumber {
        let start = self.index
        if self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
        guard self.index < self.bytes.count else { throw self.failure("invalid number", at: start) }
        if self.bytes[self.index] == UInt8(ascii: "0") {
            self.index += 1
        } else if (UInt8(ascii: "1")...UInt8(ascii: "9")).contains(self.bytes[self.index]) {
            while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) { self.index += 1 }
        } else {
            throw self.failure("invalid number", at: start)
        }
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
            self.index += 1
            let digits = self.index
            while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) { self.index += 1 }
            guard self.index > digits else { throw self.failure("invalid number: digits must follow '.'", at: start) }
        }
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "e") || self.bytes[self.index] == UInt8(ascii: "E") {
            self.index += 1
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
            let digits = self.index
            while self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) { self.index += 1 }
            guard self.index > digits else { throw self.failure("invalid number: digits must follow the exponent", at: start) }
        }
        if self.index < self.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self.bytes[self.index]) {
            throw self.failure("invalid number: leading zeros are not allowed", at: start)
        }
        let text = String(decoding: self.bytes[start..<self.index], as: UTF8.self)
        guard let double = Double(text), double.isFinite else { throw self.failure("number out of range", at: start) }
        return JSONNumber(text: text, double: double)
    }
}
