/// A list request: filters, sort, page size, cursor, sparse fields and counting.
public struct RecordQuery: Sendable, Hashable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq, ne, lt, lte, gt, gte, `in`, contains, prefix, exists
    }

    public struct Filter: Sendable, Hashable {
        public var field: String
        public var op: Operator
        public var value: String
        /// What the caller called it, for error messages.
        public var parameter: String

        public init(field: String, op: Operator, value: String, parameter: String) {
            self.field = field
            self.op = op
            self.value = value
            self.parameter = parameter
        }
    }

    public enum Count: String, Sendable {
        case exact, estimated
    }

    public var filters: [Filter] = []
    public var sort: [(field: String, descending: Bool)] = []
    public var limit = 20
    public var cursor: String?
    public var fields: Set<String>?
    public var count: Count?

    public static let defaultLimit = 20
    public static let maximumLimit = 100
    public static let maximumSortKeys = 3
    /// Filters one list may have: each indexed one is a subquery PostgreSQL must plan.
    public static let maximumFilters = 20

    public init() {}

    public static func == (lhs: RecordQuery, rhs: RecordQuery) -> Bool {
        lhs.filters == rhs.filters && lhs.sort.map(\.field) == rhs.sort.map(\.field) && lhs.sort.map(\.descending) == rhs.sort.map(\.descending)
            && lhs.limit == rhs.limit && lhs.cursor == rhs.cursor && lhs.fields == rhs.fields && lhs.count == rhs.count
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.filters)
        hasher.combine(self.limit)
        hasher.combine(self.cursor)
    }
}
