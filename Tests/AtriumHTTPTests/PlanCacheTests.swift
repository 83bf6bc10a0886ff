@testable import AtriumCore
import AtriumTestSupport
import Foundation
@testable import PostgresPool
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
    /// Where one tenant holds most records, PostgreSQL's own choice rejects the generic plan of
    /// a page (made for a tenant of average size, it cannot count on the `LIMIT` stopping
    /// early) and plans every execution, to arrive at the same walk of the sort's index. The
    /// service asks for the generic plan: pages of the big tenant run on it from the first.
    @Test func pagesOfOneBigTenantAmongManySmallRunTheGenericPlan() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("big@example.com", tenant: "Big")
            let definition: [String: Any] = ["name": "big", "fields": ["n": ["type": "integer", "indexed": true], "plain": ["type": "string"]]]
            #expect(try await client.call(.post, "/v1/collections", token: owner.accessToken, json: definition).status == .created)
            for number in 0..<40 {
                let small = try await client.signUp("small\(number)@example.com", tenant: "Small \(number)")
                #expect(try await client.call(.post, "/v1/collections", token: small.accessToken, json: definition).status == .created)
            }
            try await QueryPlanTests.seed(app, tenant: owner.tenantID, user: owner.userID, count: 20_000)
            try await app.database.withSuperuser { admin in
                _ = try await admin.query("""
                    INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_by, created_by_kind, updated_by, updated_by_kind)
                    SELECT c.tenant_id, c.collection_id, gen_random_uuid(), jsonb_build_object('plain', 'p-' || i), \(owner.userID)::uuid, 'user', \(owner.userID)::uuid, 'user'
                    FROM atrium.collections c CROSS JOIN generate_series(1, 20) AS i
                    WHERE c.name = 'big' AND c.tenant_id <> \(owner.tenantID)::uuid
                    """)
                // Rows stored in no particular order of creation (as years of updates leave them).
                _ = try await admin.query("CLUSTER atrium.records USING records_pkey")
                _ = try await admin.query("ANALYZE atrium.records")
            }
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            let firstQuery = try RecordQuery(parameters: [(name: "limit", value: "5")])
            let cursor = try #require(try await app.services.records.list(principal, collection: "big", query: firstQuery).nextCursor)
            let nextQuery = try RecordQuery(parameters: [(name: "limit", value: "5"), (name: "cursor", value: cursor)])
            let first = try await app.services.records.sql(for: firstQuery, collection: "big", principal: principal)
            let next = try await app.services.records.sql(for: nextQuery, collection: "big", principal: principal)
            #expect(first.isPrepared && next.isPrepared)

            // Three of the four connections held: the pages and the count below all run on the
            // fourth, whose prepared statements are what `pg_prepared_statements` shows.
            let release = Locked(false)
            let holding = Locked(0)
            let holders = (0..<3).map { _ in
                Task {
                    try await app.pool.withConnection { _ in
                        holding.withLock { $0 += 1 }
                        while !release.value { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while holding.value < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(holding.value == 3)
            let executions = 8
            var counted: [String: (generic: Int, custom: Int)] = [:]
            do {
                for _ in 0..<executions {
                    for query in [firstQuery, nextQuery] {
                        #expect(try await app.services.records.list(principal, collection: "big", query: query).records.count == 5)
                    }
                }
                let rows = try await app.services.database.query(
                    in: principal.tenant, "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
                )
                for row in rows {
                    let (statement, generic, custom) = try row.decode((String, Int, Int).self)
                    counted[statement] = (generic, custom)
                }
                // The settings were the pages' own: on the same connection, the next statement
                // plans as PostgreSQL would.
                let settings = try await app.services.database.query(
                    in: principal.tenant, "SELECT current_setting('plan_cache_mode'), current_setting('enable_sort')"
                )
                #expect(try settings[0].decode((String, String).self) == ("auto", "on"))
            }
            release.withLock { $0 = true }
            for holder in holders { try await holder.value }

            if TestCluster.throughPgBouncer || TestCluster.tenantScoping == .setLocal {
                // Nothing is prepared behind a transaction pooler, and with `SET LOCAL` scoping
                // (Citus) the choice is left to PostgreSQL.
                return
            }
            for (name, statement) in [("first page", first), ("next page", next)] {
                let plans = try #require(counted[statement.sql], "\(name) is not among the prepared statements: \(counted.keys)")
                #expect(plans.custom == 0 && plans.generic >= executions, "\(name): \(plans.custom) custom plans, \(plans.generic) generic")
            }
            // The generic plan is made for a tenant of average size (here a dozen records, as
            // the planner multiplies the tenant's and the collection's shares): it must still
            // walk the sort's index, which stops after a page in the big tenant too, and never
            // read the tenant's records to sort them.
            for (name, statement) in [("first page", first), ("next page", next)] {
                let plan = try await app.services.database.withTransaction(in: principal.tenant) { transaction in
                    _ = try await transaction.query(Database.setTenantWithGenericPlans(principal.tenant))
                    _ = try await transaction.query(PostgresQuery(unsafeSQL: "PREPARE shape AS " + statement.sql))
                    // EXPLAIN takes no parameters: the bound values (all text here) as literals.
                    let bindings = statement.bindings
                    let arguments = bindings.slots.map { slot in
                        "'" + String(decoding: bindings.storage[slot.offset..<slot.offset + slot.length], as: UTF8.self).replacingOccurrences(of: "'", with: "''") + "'"
                    }
                    let rows = try await transaction.query(PostgresQuery(unsafeSQL: "EXPLAIN EXECUTE shape(\(arguments.joined(separator: ", ")))"))
                    _ = try await transaction.query("DEALLOCATE shape")
                    return try rows.map { try $0.decode(String.self, column: 0) }.joined(separator: "\n")
                }
                #expect(plan.contains("Index Scan Backward using records_created_idx") && !plan.contains("Sort"), "\(name):\n\(plan)")
            }
        }
    }
}
