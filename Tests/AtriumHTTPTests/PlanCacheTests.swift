@testable import AtriumCore
import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// The statements of every list page and every write are prepared once per connection, and
/// PostgreSQL must then run them from its generic plan rather than plan them again on each
/// execution: planning a page cost it more than running one (a bound `LIMIT`, and `= ANY` on an
/// array, made every generic plan look dearer than one made for the values). Counted on one
/// connection in `pg_prepared_statements` (`generic_plans`, `custom_plans`).
@Suite struct PlanCacheTests {
    private struct RolledBack: Error {}

    @Test func pagesWithoutFiltersAndTheChangeLogRowRunFromTheGenericPlan() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let definition: [String: Any] = [
                "name": "big",
                "fields": [
                    "n": ["type": "integer", "indexed": true], "label": ["type": "string", "indexed": true], "tags": ["type": "array", "indexed": true],
                    "at": ["type": "datetime", "indexed": true], "plain": ["type": "string"],
                ],
            ]
            #expect(try await client.call(.post, "/v1/collections", token: owner.accessToken, json: definition).status == .created)
            // Enough records for the planner to see that an unknown LIMIT could read many.
            try await QueryPlanTests.seed(app, tenant: owner.tenantID, user: owner.userID, count: 20_000)
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            let collection = try await app.services.collections.collection(named: "big", in: principal.tenant)
            let firstQuery = try RecordQuery(parameters: [(name: "limit", value: "5")])
            let firstPage = try await app.services.records.list(principal, collection: "big", query: firstQuery)
            let cursor = try #require(firstPage.nextCursor)
            let first = try await app.services.records.sql(for: firstQuery, collection: "big", principal: principal)
            let next = try await app.services.records.sql(
                for: try RecordQuery(parameters: [(name: "limit", value: "5"), (name: "cursor", value: cursor)]), collection: "big", principal: principal
            )
            let change = RecordStore.appendChanges(
                tenant: principal.tenant.tenantID, collection: collection.id, named: "big", readRule: collection.definition.rules.read,
                actor: Actor(principal), operation: "update", entries: [(record: firstPage.records[0].id, fields: ["plain"])]
            )
            // A filter can make another index the right one for some values: such pages are
            // planned for their values every time, never prepared.
            let filtered = try await app.services.records.sql(
                for: try RecordQuery(parameters: [(name: "filter[plain]", value: "p-3")]), collection: "big", principal: principal
            )
            #expect(!filtered.isPrepared)
            #expect(first.isPrepared && next.isPrepared && change.isPrepared)

            let executions = 8
            var counted: [String: (generic: Int, custom: Int)] = [:]
            do {
                try await app.services.database.withTransaction(in: principal.tenant) { transaction in
                    for _ in 0..<executions {
                        for statement in [first, next, change] { _ = try await transaction.query(statement) }
                    }
                    let rows = try await transaction.query("SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements")
                    for row in rows {
                        let (statement, generic, custom) = try row.decode((String, Int, Int).self)
                        counted[statement] = (generic, custom)
                    }
                    throw RolledBack()  // the change-log rows were only there to be planned
                }
            } catch is RolledBack {}

            if TestCluster.throughPgBouncer {
                // Behind a transaction pooler nothing is prepared: a named statement would not
                // follow the client to the next server connection.
                #expect(counted[first.sql] == nil && counted[change.sql] == nil, "\(counted)")
                return
            }
            for (name, statement) in [("first page", first), ("next page", next), ("change-log row", change)] {
                let plans = try #require(counted[statement.sql], "\(name) is not among the prepared statements: \(counted.keys)")
                #expect(plans.custom <= 5 && plans.generic >= executions - 5, "\(name): \(plans.custom) custom plans, \(plans.generic) generic")
            }
        }
    }
}
