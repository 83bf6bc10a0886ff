/// A JSON document as parsed: object keys keep their order, numbers keep their literal text.
///
/// Records are stored exactly as validated, so the value validated and the text sent to
/// PostgreSQL must be the same thing; a `[String: Any]` from Foundation would quietly drop
/// duplicate keys, round numbers and accept what jsonb then rejects.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The kind, for error messages.
    public var kind: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let object) = self { return object }
        return nil
    }
}

/// A JSON number with its literal text (what is stored) and its value as a Double (what is compared).
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    public let text: String
    public let double: Double

    public init(text: String, double: Double) {
        self.text = text
        self.double = double
    }

    public init(_ integer: Int64) {
        self.text = String(integer)
        self.double = Double(integer)
    }

    public init(_ double: Double) {
        self.text = double.rounded() == double && abs(double) < 1e15 ? String(Int64(double)) : "\(double)"
        self.double = double
    }

    /// The exact integer, when the literal is one (no fraction, no exponent) and fits in 64 bits.
    public var integer: Int64? {
        guard !self.text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            // 2.0 and 1e3 are integral values too.
            guard self.double.rounded() == self.double, abs(self.double) <= 9_007_199_254_740_991 else { return nil }
            return Int64(self.double)
        }
        return Int64(self.text)
    }

    public var description: String { self.text }
}

/// A JSON object whose keys keep the order they arrived in; keys are unique.
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var entries: [(key: String, value: JSONValue)]

    public init() {
        self.entries = []
    }

    public init(_ entries: [(key: String, value: JSONValue)]) {
        self.entries = []
        for (key, value) in entries { self[key] = value }
    }

    public subscript(key: String) -> JSONValue? {
        get { self.entries.first { $0.key == key }?.value }
        set {
            if let index = self.entries.firstIndex(where: { $0.key == key }) {
                if let newValue { self.entries[index].value = newValue } else { self.entries.remove(at: index) }
            } else if let newValue {
                self.entries.append((key, newValue))
            }
        }
    }

    public var keys: [String] { self.entries.map(\.key) }
    public var count: Int { self.entries.count }
    public var isEmpty: Bool { self.entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        self.entries.makeIterator()
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries.count == rhs.entries.count && lhs.entries.allSatisfy { rhs[$0.key] == $0.value }
    }

    public func hash(into hasher: inout Hasher) {
        for (key, value) in self.entries.sorted(by: { $0.key < $1.key }) {
            hasher.combine(key)
            hasher.combine(value)
        }
    }
}
