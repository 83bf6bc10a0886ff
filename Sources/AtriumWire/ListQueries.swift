public import AtriumCore
import AtriumText
import Foundation

/// The list grammar of `GET /v1/collections/{name}/records`:
/// `filter[status]=open&filter[priority][gte]=3&sort=-priority,createdAt&limit=20&cursor=…&fields=title,status&count=exact`.
/// Anything unknown or malformed is a 400 naming the parameter.
extension RecordQuery {
    public init(parameters: [(name: String, value: String)]) throws {
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
                if let limit = Int(value), (1...RecordQuery.maximumLimit).contains(limit) {
                    query.limit = limit
                } else {
                    failures.append(.init(field: "limit", reason: "must be a whole number from 1 to \(RecordQuery.maximumLimit)"))
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
                if keys.isEmpty || keys.count > RecordQuery.maximumSortKeys || keys.contains(where: { $0.isEmpty || $0 == "-" }) {
                    failures.append(.init(field: "sort", reason: "must be 1 to \(RecordQuery.maximumSortKeys) comma-separated fields, each optionally prefixed with -"))
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
        if query.filters.count > RecordQuery.maximumFilters {
            failures.append(.init(field: "filter", reason: "at most \(RecordQuery.maximumFilters) filters"))
        }
        if let fields = query.fields, fields.count > CollectionDefinition.maximumFields {
            failures.append(.init(field: "fields", reason: "at most \(CollectionDefinition.maximumFields) fields"))
        }
        guard failures.isEmpty else { throw AtriumError(.badRequest, "the query is invalid", fields: failures) }
        self = query
    }

    static func filter(name: String, value: String) -> Filter? {
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
}

/// The filters of `GET /v1/audit`.
extension AuditQuery {
    public init(parameters: [(name: String, value: String)]) throws {
        var query = AuditQuery()
        var failures: [AtriumError.FieldFailure] = []
        for (name, value) in parameters {
            switch name {
            case "collection": query.collection = value
            case "recordId":
                if let id = UUID(canonical: value) { query.recordID = id } else { failures.append(.init(field: name, reason: "must be an id")) }
            case "actor":
                if let id = UUID(canonical: value) { query.actorID = id } else { failures.append(.init(field: name, reason: "must be an id")) }
            case "operation":
                if ["create", "update", "delete"].contains(value) { query.operation = value } else {
                    failures.append(.init(field: name, reason: "must be create, update or delete"))
                }
            case "since", "until":
                guard let date = RFC3339.dateTime(value) else {
                    failures.append(.init(field: name, reason: "must be an RFC 3339 date-time"))
                    continue
                }
                if name == "since" { query.since = date } else { query.until = date }
            case "limit":
                if let limit = Int(value), (1...200).contains(limit) { query.limit = limit } else {
                    failures.append(.init(field: name, reason: "must be a whole number from 1 to 200"))
                }
            case "cursor": query.cursor = value
            default: failures.append(.init(field: name, reason: "is not a known parameter"))
            }
        }
        guard failures.isEmpty else { throw AtriumError(.badRequest, "the query is invalid", fields: failures) }
        self = query
    }
}
