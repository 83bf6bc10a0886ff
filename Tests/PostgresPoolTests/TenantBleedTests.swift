import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// The tenant setting must never outlive the transaction that set it, whatever way the
/// transaction ended, even when one connection serves every tenant in turn.
@Suite struct TenantBleedTests {
    @Test func alternatingTenantsOnOneConnectionSeeOnlyTheirOwnRows() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let tenants = [UUID(), UUID(), UUID()]
        for (index, tenant) in tenants.enumerated() {
            _ = try await pool.transaction(
                ["INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES (\(tenant), \("Tenant \(index)"), \("bleed-\(index)-\(tenant.uuidString.prefix(8).lowercased())"))"],
                prelude: [Self.setTenant(tenant)]
            )
        }
        struct Abort: Error {}

        for round in 0..<70 {
            let tenant = tenants[round % tenants.count]
            switch round % 7 {
            case 0:
                // Committed pipelined transaction.
                let rows = try await pool.transaction(["SELECT tenant_id FROM atrium.tenants"], prelude: [Self.setTenant(tenant)])
                #expect(try rows[0].map { try $0.decode(UUID.self, column: 0) } == [tenant])
            case 1:
                // Pipelined transaction that fails after setting the tenant.
                await #expect(throws: PostgresError.self) {
                    try await pool.transaction(["SELECT 1/0"], prelude: [Self.setTenant(tenant)])
                }
            case 2:
                // Interactive transaction rolled back by an error in the caller.
                await #expect(throws: Abort.self) {
                    try await pool.withTransaction(prelude: [Self.setTenant(tenant)]) { transaction in
                        let rows = try await transaction.query("SELECT tenant_id FROM atrium.tenants")
                        #expect(try rows.map { try $0.decode(UUID.self, column: 0) } == [tenant])
                        throw Abort()
                    }
                }
            case 3:
                // Interactive transaction that commits.
                try await pool.withTransaction(prelude: [Self.setTenant(tenant)]) { transaction in
                    let rows = try await transaction.query("SELECT count(*)::int8 FROM atrium.tenants")
                    #expect(try rows[0].decode(Int.self, column: 0) == 1)
                }
            case 5:
                // No BEGIN: the tenant and the statement share the implicit transaction that
                // lasts until the batch's sync.
                let rows = try await pool.execute(PipelineBatch(statements: ["SELECT tenant_id FROM atrium.tenants"], prelude: [Self.setTenant(tenant)]))
                #expect(try rows[0].map { try $0.decode(UUID.self, column: 0) } == [tenant])
            case 6:
                // The same, failing after the tenant was set.
                await #expect(throws: PostgresError.self) {
                    try await pool.execute(PipelineBatch(statements: ["SELECT 1/0"], prelude: [Self.setTenant(tenant)]))
                }
            default:
                // Interactive transaction broken by a failing statement.
                await #expect(throws: PostgresError.self) {
                    try await pool.withTransaction(prelude: [Self.setTenant(tenant)]) { transaction in
                        _ = try await transaction.query("SELECT 1/0")
                    }
                }
            }
            // After every kind of ending, a transaction without a tenant sees nothing…
            let unscoped = try await pool.query("SELECT count(*)::int8 FROM atrium.tenants")
            #expect(try unscoped[0].decode(Int.self, column: 0) == 0)
            let unscopedTransaction = try await pool.transaction(["SELECT count(*)::int8 FROM atrium.tenants"])
            #expect(try unscopedTransaction[0][0].decode(Int.self, column: 0) == 0)
            // …and the setting itself is gone.
            let setting = try await pool.query("SELECT coalesce(current_setting('atrium.tenant_id', true), '')")
            #expect(try setting[0].decode(String.self, column: 0) == "")
        }
        #expect(pool.statistics.open == 1)
        await pool.close()
    }

    @Test func writesCannotLandInAnotherTenant() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let mine = UUID()
        let theirs = UUID()
        let error = await #expect(throws: PostgresError.self) {
            try await pool.transaction(
                ["INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES (\(theirs), 'Theirs', 'theirs-bleed')"],
                prelude: [Self.setTenant(mine)]
            )
        }
        // new row violates row-level security policy
        #expect(error?.sqlState == PostgresError.SQLState.insufficientPrivilege)
        await pool.close()
    }

    static func setTenant(_ tenant: UUID) -> PostgresQuery {
        "SELECT atrium.set_tenant(\(tenant))"
    }
}
