import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

/// The list query compiler: a `RecordQuery` on a collection as the statements that answer it.
extension RecordStore {
    struct QueryPlan {
        let page: PostgresQuery
        let count: PostgresQuery?
        let sortKeys: Int
        /// What a cursor of this list is bound to.
        let context: String
        /// Sorted by one indexed field: the records with a value alone, in the page's order and
        /// columns. When they fill the page (it returns more than the page size) they are the
        /// page, and PostgreSQL plans this in about half the time of the whole page's statement,
        /// which is planned for its values on every request and there cost more than running it.
        var valuedFirst: PostgresQuery?

        /// The page is prepared only when its plan is the sort's index whatever the values
        /// (see `plannedForItsValues`): then PostgreSQL should keep to that plan.
        var pageHasOnePlan: Bool { self.page.isPrepared }
    }

    /// The record columns of a page, qualified (`r.record_id`, …).
    static let listColumns = StoredRecord.columns.split(separator: ",").map { "r." + $0.trimmingCharacters(in: .whitespaces) }

    /// The statements of a list: the page, and the count if asked. `cursors` reads the cursor
    /// the list continues from.
    static func plan(_ query: RecordQuery, collection: StoredCollection, principal: Principal, cursors: CursorCodec) throws -> QueryPlan {
        var failures: [AtriumError.FieldFailure] = []
        let definition = collection.definition
        var where_ = SQLBuilder()
        let tenant = where_.bind(principal.tenant.tenantID)
        let collectionID = where_.bind(collection.id)
        where_.sql = "r.tenant_id = \(tenant) AND r.collection_id = \(collectionID)"
        let ownOnly = definition.rules.read.restrictsToOwn(principal)
        if ownOnly {
            where_.sql += " AND r.created_by = \(where_.bind(Actor(principal).id))"
        }
        var filterSignature: [String] = []
        // Tests on one indexed scalar field share a subquery, so a range (gte and lt) is one
        // index range scan and the planner estimates the pair together.
        var indexedTests: [(term: QueryTerm, tests: [String])] = []
        for filter in query.filters {
            guard let term = QueryTerm.resolve(filter.field, in: definition) else {
                failures.append(.init(field: filter.parameter, reason: "\(filter.field) is not a field of \(definition.name)"))
                continue
            }
            guard filter.op.applies(to: term.kind, system: term.field == nil) else {
                failures.append(.init(field: filter.parameter, reason: "\(filter.op.rawValue) does not apply to \(term.field?.type.rawValue ?? "this system field")"))
                continue
            }
            switch Self.condition(filter, term: term, into: &where_) {
            case .success(.plain(let sql)):
                where_.sql += " AND " + sql
            case .success(.indexed(let test)):
                if term.kind != .array, let index = indexedTests.firstIndex(where: { $0.term.name == term.name }) {
                    indexedTests[index].tests.append(test)
                } else {
                    indexedTests.append((term, [test]))
                }
            case .failure(let problem):
                failures.append(.init(field: filter.parameter, reason: problem.reason))
            }
            filterSignature.append("\(filter.field)\u{0}\(filter.op.rawValue)\u{0}\(filter.value)")
        }
        for (term, tests) in indexedTests {
            where_.sql += """
                 AND r.record_id IN (SELECT v.record_id FROM atrium.record_values v
                WHERE v.tenant_id = \(tenant) AND v.collection_id = \(collectionID) AND v.field = \(where_.bind(term.name)) AND \(tests.joined(separator: " AND ")))
                """
        }
        if let fields = query.fields {
            for name in fields.sorted() where definition.field(name) == nil {
                failures.append(.init(field: "fields", reason: "\(name) is not a field of \(definition.name)"))
            }
        }
        let sort = query.sort.isEmpty ? [(field: "createdAt", descending: true)] : query.sort
        var terms: [(QueryTerm, Bool)] = []
        for key in sort {
            guard let term = QueryTerm.resolve(key.field, in: definition), term.kind != .json, term.kind != .array else {
                failures.append(.init(field: "sort", reason: "cannot sort by \(key.field)"))
                continue
            }
            terms.append((term, key.descending))
        }
        guard failures.isEmpty else { throw AtriumError(.badRequest, "the query is invalid", fields: failures) }

        let context = [
            principal.tenant.tenantID.lowercasedString, collection.id.lowercasedString,
            sort.map { ($0.descending ? "-" : "") + $0.field }.joined(separator: ","),
            Hex.encode(SHA256.hash(filterSignature.sorted().joined(separator: "\u{1}"))),
        ].joined(separator: "|")

        var count: PostgresQuery?
        if let kind = query.count {
            let text = kind == .exact
                ? "SELECT count(*)::int8, NULL::uuid FROM atrium.records r WHERE \(where_.sql)"
                : """
                  SELECT count(*)::int8, (array_agg(s.record_id ORDER BY s.sample DESC))[1] FROM (
                    SELECT r.record_id, \(Self.sampleKey) AS sample FROM atrium.records r WHERE \(where_.sql)
                    ORDER BY \(Self.sampleKey) LIMIT \(Self.estimateSample + 1)
                  ) s
                  """
            count = PostgresQuery(unsafeSQL: text, bindings: where_.bindings)
        }

        // The id breaks ties in the direction of the last key, so that sorting by a system
        // field walks its (…, field, record_id) index in one direction.
        let tieDescending = terms.last?.1 ?? false
        var page = where_
        let position = try query.cursor.map { try cursors.decode($0, context: context, keys: terms.count) }
        let keys = terms.map { "(\($0.0.sql))::text" }.joined(separator: ", ")
        // The page size is written into the statement, not bound: PostgreSQL plans a bound
        // LIMIT as if it kept a tenth of the rows, so the generic plan of a prepared page looked
        // dearer than one made for the values, and every page was planned again (more of
        // PostgreSQL's CPU than running it). Sizes are 1 to `maximumLimit`, so the statements
        // a client's page sizes add to a connection's cache are few.
        let limit = String(query.limit + 1)
        var columns = Self.listColumns
        if let fields = query.fields {
            // Sparse fieldsets narrow the data where it is printed, so the page is still
            // written from PostgreSQL's text (jsonb keeps its own key order either way).
            columns[columns.count - 1] = "(SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(r.data) e WHERE e.key = ANY(\(page.bind(fields.sorted()))::text[])) AS data"
        }
        if terms.count == 1, let column = terms[0].0.indexColumn {
            let (whole, valued) = Self.byIndexedField(
                terms[0].0, column: column, descending: terms[0].1, after: position, columns: columns, limit: limit,
                tenant: tenant, collection: collectionID, into: &page
            )
            page.sql = whole
            let valuedFirst = valued.map { Self.plannedForItsValues(PostgresQuery(unsafeSQL: $0, bindings: page.bindings)) }
            return QueryPlan(page: Self.plannedForItsValues(page.query), count: count, sortKeys: 1, context: context, valuedFirst: valuedFirst)
        }
        if let position {
            page.sql += " AND " + Self.after(position, terms: terms, tieDescending: tieDescending, into: &page)
        }
        let order = terms.map { term, descending in
            "\(term.sql) \(descending ? "DESC" : "ASC")\(term.nullable ? " NULLS LAST" : "")"
        } + ["r.record_id \(tieDescending ? "DESC" : "ASC")"]
        page.sql = """
            SELECT \(columns.joined(separator: ", "))\(keys.isEmpty ? "" : ", " + keys) FROM atrium.records r
            WHERE \(page.sql)
            ORDER BY \(order.joined(separator: ", "))
            LIMIT \(limit)
            """
        // A filter, or the reader's own records only, can make another index the better one
        // for some values (a rare creator, a narrow time range) and not for others: planned
        // for them each time. Without one, the plan is the sort's index whatever the values.
        let statement = query.filters.isEmpty && !ownOnly ? page.query : Self.plannedForItsValues(page.query)
        return QueryPlan(page: statement, count: count, sortKeys: terms.count, context: context)
    }

    /// A page whose best plan depends on the values it is run with: planned for them each time
    /// (unnamed) rather than prepared. A prepared statement soon runs a generic plan, made
    /// without the tenant or the filter's values, so it cannot tell "status=open in a tenant of
    /// a million records" (walk the sort's index, a few dozen rows) from "status=rare" (fetch
    /// the few matches, then sort) or from a tenant of a hundred records; the wrong choice
    /// reads a large tenant's whole collection for every page. Planning costs a fraction of
    /// that; lists without filters or an indexed sort stay prepared and run the generic plan
    /// from the first page (asked for: PostgreSQL's own choice kept planning them wherever one
    /// tenant held most records): the sort's index (or, for a sort by an unindexed field, the
    /// collection's rows).
    private static func plannedForItsValues(_ query: PostgresQuery) -> PostgresQuery {
        var query = query
        query.isPrepared = false
        return query
    }

    /// A page sorted by one indexed field, walked from its `record_values` index: records with
    /// a value in index order (an index range from the cursor, stopping at the page's end),
    /// then — only when those run out before the page is full — records without one, by id.
    /// Sorting by the field's expression on `records` would read and sort every matching
    /// record of the collection for each page. `builder.sql` holds the records' conditions.
    /// Returns the page's statement and, unless the cursor is past every record with a value,
    /// the statement of those records alone (`QueryPlan.valuedFirst`), with the same parameters.
    private static func byIndexedField(
        _ term: QueryTerm, column: String, descending: Bool, after position: CursorCodec.Position?, columns: [String], limit: String,
        tenant: String, collection: String, into builder: inout SQLBuilder
    ) -> (page: String, valued: String?) {
        let conditions = builder.sql
        let field = builder.bind(term.name)
        let direction = descending ? "DESC" : "ASC"
        let comparison = descending ? "<" : ">"
        var valued = "s.tenant_id = \(tenant) AND s.collection_id = \(collection) AND s.field = \(field) AND s.\(column) IS NOT NULL AND \(conditions)"
        var missing = """
            \(conditions) AND NOT EXISTS (SELECT FROM atrium.record_values s WHERE s.tenant_id = r.tenant_id AND s.collection_id = r.collection_id
                AND s.field = \(field) AND s.record_id = r.record_id)
            """
        if let position {
            let id = builder.bind(position.id)
            if let value = position.values[0] {
                valued += " AND (s.\(column), s.record_id) \(comparison) (\(builder.bind(term.indexLiteral(value)))::\(term.indexType), \(id)::uuid)"
            } else {
                // The cursor is among the records without a value, which come after all others.
                valued += " AND false"
                missing += " AND r.record_id \(comparison) \(id)::uuid"
            }
        }
        let names = columns.map { $0.hasPrefix("r.") ? String($0.dropFirst(2)) : "data" } + ["sort_key"]
        let select = "SELECT \(columns.joined(separator: ", ")), (\(term.sql))::text AS sort_key"
        let valuedOnly = """
            \(select)
            FROM atrium.record_values s
            JOIN atrium.records r ON r.tenant_id = s.tenant_id AND r.collection_id = s.collection_id AND r.record_id = s.record_id
            WHERE \(valued)
            ORDER BY s.\(column) \(direction), s.record_id \(direction)
            LIMIT \(limit)
            """
        let cursorAmongMissing = position.map { $0.values[0] == nil } ?? false
        // Records without a value are read only when the valued ones cannot fill the page: the
        // count of `valued` makes their branch a one-time filter, checked before any row is read.
        let page = """
            WITH valued AS MATERIALIZED (
                \(select), s.\(column) AS sort_value, 0 AS part
                FROM atrium.record_values s
                JOIN atrium.records r ON r.tenant_id = s.tenant_id AND r.collection_id = s.collection_id AND r.record_id = s.record_id
                WHERE \(valued)
                ORDER BY s.\(column) \(direction), s.record_id \(direction)
                LIMIT \(limit)
            )
            SELECT \(names.map { "p." + $0 }.joined(separator: ", ")) FROM (
                SELECT * FROM valued
                UNION ALL
                (\(select), NULL::\(term.indexType), 1 FROM atrium.records r
                 WHERE \(missing) AND (SELECT count(*) FROM valued) < \(limit)
                 ORDER BY r.record_id \(direction)
                 LIMIT \(limit))
            ) p
            ORDER BY p.part, p.sort_value \(direction), p.record_id \(direction)
            LIMIT \(limit)
            """
        return (page, cursorAmongMissing ? nil : valuedOnly)
    }

    /// A filter as SQL: a condition on the record, or (for indexed fields) a test on the
    /// field's `record_values` rows, which have an index.
    enum Condition {
        case plain(String)
        case indexed(String)
    }

    /// One filter as SQL. Indexed fields go through `record_values` so their index is used.
    private static func condition(_ filter: RecordQuery.Filter, term: QueryTerm, into builder: inout SQLBuilder) -> Result<Condition, QueryProblem> {
        if filter.op == .exists {
            guard filter.value == "true" || filter.value == "false" else { return .failure("must be true or false") }
            let check = "r.data ? \(builder.bind(term.name))"
            return .success(.plain(filter.value == "true" ? check : "NOT (\(check))"))
        }
        let values: [String]
        if filter.op == .in {
            values = filter.value.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard (1...100).contains(values.count) else { return .failure("must list 1 to 100 comma-separated values") }
        } else {
            values = [filter.value]
        }
        var literals: [String] = []
        for value in values {
            let elementKind = term.kind == .array ? QueryTerm.Kind.text : term.kind
            let element = QueryTerm(name: term.name, sql: term.sql, type: term.type, kind: elementKind, nullable: term.nullable, field: term.field)
            switch element.literal(value) {
            case .success(let literal): literals.append(literal)
            case .failure(let problem): return .failure(problem)
            }
        }
        if let column = term.indexColumn, filter.op != .ne {
            let indexValues = literals.map(term.indexLiteral)
            var test: String
            switch filter.op {
            case .in:
                test = "v.\(column) = ANY(\(builder.bind(indexValues))::\(term.indexType)[])"
            case .prefix:
                test = "v.\(column) >= \(builder.bind(indexValues[0]))"
                if let upper = Self.prefixUpperBound(indexValues[0]) { test += " AND v.\(column) < \(builder.bind(upper))" }
            default:
                test = "v.\(column) \(filter.op.comparison) \(builder.bind(indexValues[0]))::\(term.indexType)"
            }
            return .success(.indexed("(\(test))"))
        }
        switch filter.op {
        case .ne:
            return .success(.plain("\(term.sql) IS DISTINCT FROM \(builder.bind(literals[0]))::\(term.type)"))
        case .in:
            return .success(.plain("\(term.sql) = ANY(\(builder.bind(literals))::\(term.type)[])"))
        case .contains:
            if term.kind == .array { return .success(.plain("\(term.sql) ? \(builder.bind(literals[0]))")) }
            return .success(.plain("strpos(\(term.sql), \(builder.bind(literals[0]))) > 0"))
        case .prefix:
            return .success(.plain("starts_with(\(term.sql), \(builder.bind(literals[0])))"))
        default:
            return .success(.plain("\(term.sql) \(filter.op.comparison) \(builder.bind(literals[0]))::\(term.type)"))
        }
    }

    /// The smallest string greater than every string starting with `prefix` (byte order).
    static func prefixUpperBound(_ prefix: String) -> String? {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            var next = last.value + 1
            if next == 0xD800 { next = 0xE000 }
            if let scalar = Unicode.Scalar(next) {
                scalars.append(scalar)
                return String(String.UnicodeScalarView(scalars))
            }
        }
        return nil
    }

    /// Keyset condition: rows after `position` in the sort order (missing values sort last).
    private static func after(
        _ position: CursorCodec.Position, terms: [(QueryTerm, Bool)], tieDescending: Bool, into builder: inout SQLBuilder
    ) -> String {
        let id = builder.bind(position.id)
        // Keys that are never missing and all run one way compare as a row, which a btree
        // index on those columns answers with a range scan.
        if terms.allSatisfy({ !$0.0.nullable && $0.1 == tieDescending }), position.values.allSatisfy({ $0 != nil }) {
            var left = terms.map(\.0.sql)
            var right = zip(terms, position.values).map { "\(builder.bind($1!))::\($0.0.type)" }
            left.append("r.record_id")
            right.append("\(id)::uuid")
            return "(\(left.joined(separator: ", "))) \(tieDescending ? "<" : ">") (\(right.joined(separator: ", ")))"
        }
        return Self.after(position, terms: terms, index: 0, tie: "r.record_id \(tieDescending ? "<" : ">") \(id)::uuid", into: &builder)
    }

    private static func after(_ position: CursorCodec.Position, terms: [(QueryTerm, Bool)], index: Int, tie: String, into builder: inout SQLBuilder) -> String {
        guard index < terms.count else { return tie }
        let (term, descending) = terms[index]
        let comparison = descending ? "<" : ">"
        let rest = Self.after(position, terms: terms, index: index + 1, tie: tie, into: &builder)
        guard let value = position.values[index] else {
            // After a missing value come only other missing values.
            return "(\(term.sql) IS NULL AND \(rest))"
        }
        let bound = "\(builder.bind(value))::\(term.type)"
        let after = "\(term.sql) \(comparison) \(bound) OR (\(term.sql) = \(bound) AND \(rest))"
        return term.nullable ? "(\(term.sql) IS NULL OR \(after))" : "(\(after))"
    }

    /// Matching records counted exactly before `count=estimated` estimates.
    package static let estimateSample = 1000

    /// The random last seven bytes of a record id, in the order of `records_sample_idx`
    /// (migration 019): the same expression, so that PostgreSQL walks that index.
    static let sampleKey = "substring(uuid_send(r.record_id), 10, 7)"

    /// `count=estimated`: exact up to `estimateSample` matching records; beyond, estimated from
    /// how far into their range the first `estimateSample + 1` sample keys (`sampleKey`, in
    /// their order) reach.
    ///
    /// The last bytes of a record id are random (version 7 ids begin with the time, version 4
    /// ones, which older records have, are random throughout), so the k-th smallest key of N
    /// lies near k/N of the range, and `estimateSample / u`, with u that fraction for k =
    /// `estimateSample + 1`, is an unbiased estimate of N with a relative error of about
    /// 1/√1000 ≈ 3 %. Everything it uses is the tenant's own rows: PostgreSQL's planner
    /// statistics, which the estimate once came from, are shared by all tenants and told one
    /// tenant how common a value was in the others' data.
    static func estimatedCount(counted: Int, greatestOfSample id: UUID?) -> Int {
        guard counted > Self.estimateSample, let id else { return counted }
        let bytes = id.uuid
        var prefix: UInt64 = 0
        for byte in [bytes.9, bytes.10, bytes.11, bytes.12, bytes.13, bytes.14] { prefix = prefix << 8 | UInt64(byte) }
        let fraction = (Double(prefix) + 0.5) / Double(UInt64(1) << 48)
        return max(counted, Int((Double(Self.estimateSample) / fraction).rounded()))
    }
}
