/// A list request: filters, sort, page size, cursor, sparse fields and counting.
///
/// `filter[status]=open&filter[priority][gte]=3&sort=-priority,createdAt&limit=20&cursor=…&fields=title,status&count=exact`
public struct RecordQuery: Sendable, Hashable {
    public enum Operator: String, Sendable, CaseIterable {
        case eq, ne, lt, lte, gt, gte, `in`, contains, prefix, exists
    }

    public struct Filter: Sendable, Hashable {
        public var field: String
        public var op: Operator
        public var value: String
        /// The query parameter, for error messages.
        public var parameter: String
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

    /// Parses query parameters; anything unknown or malformed is a 400 naming the parameter.
    public static func parse(_ parameters: [(name: String, value: String)]) throws -> RecordQuery {
        var query = RecordQuery()
        var failures: [AtriumError.FieldFailure] = []
        var seen = Set<String>()
        for (name, value) in parameters {
            if !name.hasPrefix("filter[") {
                guard seen.insert(name).inserted else {
                    failures.append(.init(field: name, reason: "may be given once"))
                    continue
                }
            }
            switch name {
            case "limit":
                if let limit = Int(value), (1...Self.maximumLimit).contains(limit) {
                    query.limit = limit
                } else {
                    failures.append(.init(field: "limit", reason: "must be a whole number from 1 to \(Self.maximumLimit)"))
                }
            case "cursor":
                query.cursor = value
            case "count":
                if let count = Count(rawValue: value) { query.count = count } else {
                    failures.append(.init(field: "count", reason: "must be exact or estimated"))
                }
            case "fields":
                let names = value.split(separator: ",").map(String.init)
                if names.isEmpty { failures.append(.init(field: "fields", reason: "must list at least one field")) }
                query.fields = Set(names)
            case "sort":
                let keys = value.split(separator: ",", omittingEmptySubsequences: false)
                if keys.isEmpty || keys.count > Self.maximumSortKeys || keys.contains(where: { $0.isEmpty || $0 == "-" }) {
                    failures.append(.init(field: "sort", reason: "must be 1 to \(Self.maximumSortKeys) comma-separated fields, each optionally prefixed with -"))
                } else {
                    query.sort = keys.map { $0.hasPrefix("-") ? (String($0.dropFirst()), true) : (String($0), false) }
                    if Set(query.sort.map(\.field)).count != query.sort.count {
                        failures.append(.init(field: "sort", reason: "must not name a field twice"))
                    }
                }
            default:
                if let filter = Self.filter(name: name, value: value) {
                    query.filters.append(filter)
                } else {
                    failures.append(.init(field: name, reason: name.hasPrefix("filter[")
                        ? "must look like filter[field]=value or filter[field][op]=value with op one of \(Operator.allCases.map(\.rawValue).joined(separator: ", "))"
                        : "is not a known parameter"))
                }
            }
        }
        if query.filters.count > Self.maximumFilters {
            failures.append(.init(field: "filter", reason: "at most \(Self.maximumFilters) filters"))
        }
        if let fields = query.fields, fields.count > CollectionDefinition.maximumFields {
            failures.append(.init(field: "fields", reason: "at most \(CollectionDefinition.maximumFields) fields"))
        }
        guard failures.isEmpty else { throw AtriumError(.validation, "the query is invalid", fields: failures).asBadRequest }
        return query
    }

    private static func filter(name: String, value: String) -> Filter? {
        guard name.hasPrefix("filter["), name.hasSuffix("]") else { return nil }
        let inner = name.dropFirst("filter[".count).dropLast()
        let parts = inner.split(separator: "]", omittingEmptySubsequences: false)
        // "status" or "priority][gte" (the "[" of the second bracket remains on the operator).
        if parts.count == 1 {
            guard !parts[0].isEmpty, !parts[0].contains("[") else { return nil }
            return Filter(field: String(parts[0]), op: .eq, value: value, parameter: name)
        }
        guard parts.count == 2, !parts[0].isEmpty, parts[1].hasPrefix("["), let op = Operator(rawValue: String(parts[1].dropFirst())) else {
            return nil
        }
        return Filter(field: String(parts[0]), op: op, value: value, parameter: name)
    }

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

extension AtriumError {
    /// Query-string problems are 400s (the request itself is malformed), not 422s.
    var asBadRequest: AtriumError {
        var copy = AtriumError(.badRequest, self.message, fields: self.fields)
        copy.reason = self.reason
        return copy
    }
}
