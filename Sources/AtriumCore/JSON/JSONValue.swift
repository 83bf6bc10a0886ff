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
///
/// Small objects are searched linearly (a handful of comparisons beats hashing); from
/// `indexThreshold` keys on, a dictionary of positions makes every lookup constant-time, so
/// reading, comparing and patching an object costs time linear in its size, however many keys
/// a client sends.
public struct JSONObject: Sendable, Hashable, Sequence {
    public private(set) var entries: [(key: String, value: JSONValue)]
    /// Where each key sits in `entries`; only for objects of `indexThreshold` keys or more.
    private var positions: [String: Int]?

    static let indexThreshold = 16

    public init() {
        self.entries = []
        self.positions = nil
    }

    /// An object of `entries` in order; a repeated key keeps its first position and last value.
    public init(_ entries: [(key: String, value: JSONValue)]) {
        self.init()
        self.entries.reserveCapacity(entries.count)
        for (key, value) in entries { self[key] = value }
    }

    /// An object of entries whose keys are known to be distinct (the parser checked them).
    init(distinctEntries entries: [(key: String, value: JSONValue)], positions: [String: Int]? = nil) {
        self.entries = entries
        if entries.count >= Self.indexThreshold {
            self.positions = positions ?? Self.index(entries)
        } else {
            self.positions = nil
        }
    }

    private static func index(_ entries: [(key: String, value: JSONValue)]) -> [String: Int] {
        var positions = [String: Int](minimumCapacity: entries.count)
        for (offset, entry) in entries.enumerated() { positions[entry.key] = offset }
        return positions
    }

    private func position(of key: String) -> Int? {
        if let positions { return positions[key] }
        return self.entries.firstIndex { $0.key == key }
    }

    /// The value of `key`. Setting nil removes the key, which costs time linear in the size of
    /// the object (later keys move up).
    public subscript(key: String) -> JSONValue? {
        get { self.position(of: key).map { self.entries[$0].value } }
        set {
            if let index = self.position(of: key) {
                if let newValue {
                    self.entries[index].value = newValue
                } else {
                    self.entries.remove(at: index)
                    self.positions = self.entries.count >= Self.indexThreshold ? Self.index(self.entries) : nil
                }
            } else if let newValue {
                self.entries.append((key, newValue))
                if self.positions != nil {
                    self.positions![key] = self.entries.count - 1
                } else if self.entries.count >= Self.indexThreshold {
                    self.positions = Self.index(self.entries)
                }
            }
        }
    }

    public var keys: [String] { self.entries.map(\.key) }
    public var count: Int { self.entries.count }
    public var isEmpty: Bool { self.entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: JSONValue)]> {
        self.entries.makeIterator()
    }

    /// Equal when both have the same keys with equal values, in any order.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.entries.count == rhs.entries.count && lhs.entries.allSatisfy { rhs[$0.key] == $0.value }
    }

    public func hash(into hasher: inout Hasher) {
        // Order-independent, like ==: combine each entry's own hash commutatively.
        var combined = 0
        for (key, value) in self.entries {
            var entry = Hasher()
            entry.combine(key)
            entry.combine(value)
            combined ^= entry.finalize()
        }
        hasher.combine(self.entries.count)
        hasher.combine(combined)
    }
}
