import AtriumCrypto
import AtriumText
import Foundation
package import PostgresPool

/// A page of records.
public struct RecordPage: Sendable {
    /// The records as PostgreSQL printed them (with `fields=`, their data already narrowed).
    public let records: [RecordText]
    public let nextCursor: String?
    /// With `count=exact` or `count=estimated` (exact up to 1,000, then estimated from the tenant's own ids).
    public let count: Int?
    public let fields: Set<String>?
}

extension RecordService {
    /// Lists records matching `query`, one page at a time, with keyset pagination.
    public func list(_ principal: Principal, collection name: String, query: RecordQuery) async throws -> RecordPage {
        let collection = try await self.collections.collection(named: name, in: principal.tenant)
        let rule = collection.definition.rules.read
        try principal.require(rule.role)
        let plan = try RecordStore.plan(query, collection: collection, principal: principal, cursors: self.cursors)
        // A page alone is one statement; with a count, both see one snapshot. Sorted by an
        // indexed field, the records with a value are asked for first: when they fill the
        // page they are all of it, and the whole page's statement (dearer to plan) is not needed.
        let results = try await self.database.reading { database in
            if let count = plan.count {
                // The page's statement keeps to its generic plan here too (one cached plan per
                // connection serves both ways of running it).
                return try await database.transaction(in: principal.tenant, [plan.page, count], genericPlan: plan.pageHasOnePlan)
            }
            if let valued = plan.valuedFirst {
                let rows = try await database.query(in: principal.tenant, valued)
                if rows.count > query.limit { return [rows] }
            }
            return [try await database.query(in: principal.tenant, plan.page, genericPlan: plan.pageHasOnePlan)]
        }
        var records: [RecordText] = []
        var lastKeys: [String?] = []
        for (index, row) in results[0].enumerated() where index < query.limit {
            records.append(try RecordText(row: row))
            lastKeys = try (0..<plan.sortKeys).map { try row.decode(String?.self, column: 9 + $0) }
        }
        var next: String?
        if results[0].count > query.limit, let last = records.last {
            next = self.cursors.encode(.init(values: lastKeys, id: last.id), context: plan.context)
        }
        var count: Int?
        if query.count != nil, results.count > 1 {
            let (counted, last) = try results[1][0].decode((Int, UUID?).self)
            count = RecordStore.estimatedCount(counted: counted, greatestOfSample: last)
        }
        return RecordPage(records: records, nextCursor: next, count: count, fields: query.fields)
    }

    /// The SQL for `query` (the page, and the count if asked). Public for EXPLAIN in tests.
    package func sql(for query: RecordQuery, collection name: String, principal: Principal) async throws -> PostgresQuery {
        try await self.statements(for: query, collection: name, principal: principal).page
    }

    /// The page's statement, sorted by an indexed field that of the records with a value alone
    /// (which `list` asks first), and with `count=` the count's. For tests.
    package func statements(
        for query: RecordQuery, collection name: String, principal: Principal
    ) async throws -> (page: PostgresQuery, valuedFirst: PostgresQuery?, count: PostgresQuery?) {
        let collection = try await self.collections.collection(named: name, in: principal.tenant)
        let plan = try RecordStore.plan(query, collection: collection, principal: principal, cursors: self.cursors)
        return (plan.page, plan.valuedFirst, plan.count)
    }
}
