/// The types a collection field can have.
public enum FieldType: String, Sendable, CaseIterable {
    /// Short text (at most 1000 characters).
    case string
    /// Long text.
    case text
    /// A whole number within ±(2^53 − 1), exact in JavaScript.
    case integer
    /// A finite number.
    case number
    case boolean
    /// An RFC 3339 timestamp with a time zone, e.g. `2030-01-02T03:04:05Z`.
    case datetime
    /// A calendar date, `YYYY-MM-DD`.
    case date
    /// One of `values`.
    case enumeration = "enum"
    /// The id of a record in `collection`, of the same tenant.
    case reference
    /// Any JSON value.
    case json
    /// An array of strings.
    case array
}

/// One field of a collection and its constraints.
public struct FieldDefinition: Sendable, Hashable {
    public var name: String
    public var type: FieldType
    public var required = false
    /// No two records of the collection may share the value.
    public var unique = false
    /// Filters on the field use an index.
    public var indexed = false
    /// Applied when a new record omits the field.
    public var defaultValue: JSONValue?
    /// Bounds for integer and number fields.
    public var minimum: Double?
    public var maximum: Double?
    /// Bounds on characters (string, text) or items (array).
    public var minLength: Int?
    public var maxLength: Int?
    /// A pattern the value must match (string, text), compiled once when the definition is read.
    public var pattern: SafeRegex?
    /// Allowed values of an enum field.
    public var values: [String]?
    /// Target collection of a reference field.
    public var collection: String?

    public init(name: String, type: FieldType) {
        self.name = name
        self.type = type
    }

    /// Values stored in `record_values`: indexed fields and every reference (to find referrers).
    var isIndexed: Bool { self.indexed || self.type == .reference }

    /// The longest value the field takes, in characters (strings have a default; text has none).
    var effectiveMaxLength: Int? {
        self.maxLength ?? (self.type == .string ? Self.maximumStringLength : nil)
    }

    /// The most steps checking this field's pattern can take on one value: nil without a pattern
    /// or, for text without `maxLength`, unbounded (`Int.max`).
    var patternCost: Int? {
        guard let pattern else { return nil }
        guard let length = self.effectiveMaxLength else { return .max }
        return pattern.cost(forLength: length)
    }

    /// What the patterns of one record may cost together, in matcher steps (a few nanoseconds
    /// each). A collection whose patterns could cost more is refused when it is defined, so one
    /// record costs at most this however its values are chosen.
    public static let patternBudget = 250_000

    public static let maximumStringLength = 1000
    public static let maximumArrayItemLength = 1000
    /// Longest value that fits a btree index entry comfortably (PostgreSQL's limit is ~2700 bytes).
    static let maximumIndexedBytes = 1000
}

/// Who may perform one operation on a collection's records.
public struct AccessRule: Sendable, Hashable {
    /// The least role.
    public var role: Role
    /// Only on records the caller created (for callers below admin).
    public var own: Bool

    public init(role: Role, own: Bool = false) {
        self.role = role
        self.own = own
    }

    /// Whether `principal` is held to its own records: admins and owners look after the whole
    /// tenant's data, so "own" binds members, viewers and keys of those roles only.
    public func restrictsToOwn(_ principal: Principal) -> Bool {
        self.own && principal.role < .admin
    }
}

/// The rules of a collection, per operation.
public struct CollectionRules: Sendable, Hashable {
    public var read = AccessRule(role: .viewer)
    public var create = AccessRule(role: .member)
    public var update = AccessRule(role: .member)
    public var delete = AccessRule(role: .member)

    public init() {}
}

/// A collection's schema and rules.
public struct CollectionDefinition: Sendable, Hashable {
    public var name: String
    public var fields: [FieldDefinition]
    public var rules: CollectionRules

    public init(name: String, fields: [FieldDefinition], rules: CollectionRules = CollectionRules()) {
        self.name = name
        self.fields = fields
        self.rules = rules
    }

    public func field(_ name: String) -> FieldDefinition? {
        self.fields.first { $0.name == name }
    }

    /// System fields every record has; field names may not use them.
    public static let systemFields: Set<String> = ["id", "version", "createdAt", "createdBy", "updatedAt", "updatedBy"]
    public static let maximumFields = 100
}

/// A collection as stored: its id, version and definition.
public struct StoredCollection: Sendable, Hashable {
    public let id: UUID
    public let tenantID: UUID
    public let version: Int64
    public let definition: CollectionDefinition
    public let createdAt: Date
    public let updatedAt: Date

    public var name: String { self.definition.name }
}

public import Foundation
