import AtriumText
import Foundation
import PostgresPool

/// SQL text and bindings assembled piece by piece; every value is a `$n` parameter.
struct SQLBuilder {
    var sql = ""
    var bindings = PostgresBindings()

    mutating func bind(_ value: some PostgresEncodable) -> String {
        self.bindings.append(value)
        return "$\(self.bindings.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: self.sql, bindings: self.bindings) }
}

/// A field as SQL: a system column or an expression over `data`, with its SQL type.
struct QueryTerm {
    enum Kind { case uuid, integer, number, boolean, datetime, date, text, json, array }

    let name: String
    let sql: String
    /// The SQL type values are cast to.
    let type: String
    let kind: Kind
    let nullable: Bool
    let field: FieldDefinition?

    /// The `record_values` column that indexes it, for indexed data fields.
    var indexColumn: String? {
        guard let field, field.isIndexed else { return nil }
        switch self.kind {
        case .integer, .number, .boolean: return "num_value"
        case .datetime, .date: return "time_value"
        case .text, .array, .uuid: return "text_value"
        case .json: return nil
        }
    }

    static func resolve(_ name: String, in definition: CollectionDefinition) -> QueryTerm? {
        switch name {
        case "id": return QueryTerm(name: name, sql: "r.record_id", type: "uuid", kind: .uuid, nullable: false, field: nil)
        case "version": return QueryTerm(name: name, sql: "r.version", type: "bigint", kind: .integer, nullable: false, field: nil)
        case "createdAt": return QueryTerm(name: name, sql: "r.created_at", type: "timestamptz", kind: .datetime, nullable: false, field: nil)
        case "updatedAt": return QueryTerm(name: name, sql: "r.updated_at", type: "timestamptz", kind: .datetime, nullable: false, field: nil)
        case "createdBy": return QueryTerm(name: name, sql: "r.created_by", type: "uuid", kind: .uuid, nullable: false, field: nil)
        case "updatedBy": return QueryTerm(name: name, sql: "r.updated_by", type: "uuid", kind: .uuid, nullable: false, field: nil)
        default: break
        }
        // Field names are validated at definition time ([A-Za-z][A-Za-z0-9_]*), so quoting them
        // as SQL literals is safe; they come from the definition, never from the request.
        guard let field = definition.field(name) else { return nil }
        let text = "(r.data->>'\(field.name)')"
        switch field.type {
        case .string, .text, .enumeration: return QueryTerm(name: name, sql: "(\(text) COLLATE \"C\")", type: "text", kind: .text, nullable: true, field: field)
        case .reference: return QueryTerm(name: name, sql: "(\(text) COLLATE \"C\")", type: "text", kind: .uuid, nullable: true, field: field)
        case .integer: return QueryTerm(name: name, sql: "(\(text)::numeric)", type: "numeric", kind: .integer, nullable: true, field: field)
        case .number: return QueryTerm(name: name, sql: "(\(text)::numeric)", type: "numeric", kind: .number, nullable: true, field: field)
        case .boolean: return QueryTerm(name: name, sql: "((r.data->'\(field.name)')::boolean)", type: "boolean", kind: .boolean, nullable: true, field: field)
        case .datetime: return QueryTerm(name: name, sql: "(\(text)::timestamptz)", type: "timestamptz", kind: .datetime, nullable: true, field: field)
        case .date: return QueryTerm(name: name, sql: "(\(text)::date)", type: "date", kind: .date, nullable: true, field: field)
        case .json: return QueryTerm(name: name, sql: "(r.data->'\(field.name)')", type: "jsonb", kind: .json, nullable: true, field: field)
        case .array: return QueryTerm(name: name, sql: "(r.data->'\(field.name)')", type: "jsonb", kind: .array, nullable: true, field: field)
        }
    }

    /// The value as text PostgreSQL can cast to `type`, or why it cannot be one.
    func literal(_ value: String) -> Result<String, QueryProblem> {
        switch self.kind {
        case .uuid:
            guard let id = UUID(canonical: value) else { return .failure("must be an id") }
            return .success(id.lowercasedString)
        case .integer:
            guard let number = Int64(value), abs(Double(number)) <= RecordValidator.maximumSafeInteger else { return .failure("must be an integer") }
            return .success(String(number))
        case .number:
            guard let number = Double(value), number.isFinite, value.allSatisfy({ "0123456789.-+eE".contains($0) }) else { return .failure("must be a number") }
            return .success(value)
        case .boolean:
            guard value == "true" || value == "false" else { return .failure("must be true or false") }
            return .success(value)
        case .datetime:
            guard let date = RFC3339.dateTime(value) else { return .failure("must be an RFC 3339 date-time") }
            return .success(RFC3339.string(date))
        case .date:
            guard RFC3339.date(value) != nil else { return .failure("must be a date like 2030-01-02") }
            return .success(value)
        case .text, .array:
            return .success(value)
        case .json:
            return .failure("json fields can only be filtered with exists")
        }
    }

    /// The value as stored in `record_values` (booleans as 0/1, dates as midnight UTC).
    func indexLiteral(_ literal: String) -> String {
        switch self.kind {
        case .boolean: return literal == "true" ? "1" : "0"
        case .date: return literal + "T00:00:00Z"
        default: return literal
        }
    }

    var indexType: String {
        switch self.indexColumn {
        case "num_value": "numeric"
        case "time_value": "timestamptz"
        default: "text"
        }
    }
}

extension RecordQuery.Operator {
    func applies(to kind: QueryTerm.Kind, system: Bool) -> Bool {
        switch self {
        case .eq, .ne, .in: return kind != .json && kind != .array
        case .lt, .lte, .gt, .gte: return [.integer, .number, .datetime, .date, .text].contains(kind)
        case .contains: return kind == .text || kind == .array
        case .prefix: return kind == .text
        case .exists: return !system
        }
    }

    var comparison: String {
        switch self {
        case .lt: "<"
        case .lte: "<="
        case .gt: ">"
        case .gte: ">="
        default: "="
        }
    }
}

/// Why a query parameter cannot be used.
struct QueryProblem: Error, ExpressibleByStringLiteral {
    let reason: String
    init(stringLiteral value: String) { self.reason = value }
    init(_ reason: String) { self.reason = reason }
}
