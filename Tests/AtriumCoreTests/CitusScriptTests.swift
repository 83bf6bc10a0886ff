@testable import AtriumCore
import AtriumTestSupport
import Foundation
import Testing

/// What can be checked of `sql/citus/` without Citus: every table the migrations make is placed
/// (so a new table cannot slip through undistributed), tenant tables carry tenant_id, and no
/// unique constraint of a tenant table lacks it. `.ci/citus-check` runs the scripts for real.
@Suite struct CitusScriptTests {
    /// The names in `name text[] := ARRAY[...]` of distribute.sql.
    static func list(_ name: String) throws -> Set<String> {
        let sql = Migrations.citusDistribution.sql
        let start = try #require(sql.range(of: "\(name) text[] := ARRAY["))
        let end = try #require(sql[start.upperBound...].range(of: "]"))
        return Set(sql[start.upperBound..<end.lowerBound].split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: "'"))
        })
    }

    @Test func everyTableIsPlacedOnceAndTenantTablesCarryTheirTenant() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let reference = try Self.list("reference_tables")
        let tenant = try Self.list("tenant_tables")
        #expect(reference.isDisjoint(with: tenant))
        let tables = try await database.adminQuery("""
            SELECT c.relname, EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
            FROM pg_class c WHERE c.relnamespace = 'atrium'::regnamespace AND c.relkind = 'r' ORDER BY 1
            """)
        #expect(Set(tables.map { $0.values[0]! }) == reference.union(tenant))
        for row in tables where tenant.contains(row.values[0]!) {
            #expect(row.values[1] == "t", "tenant table \(row.values[0]!) has no tenant_id")
        }
    }

    @Test func noUniqueConstraintOfATenantTableLacksTheTenant() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let tenant = try Self.list("tenant_tables")
        // distribute.sql refuses such a constraint; plain unique indexes (on random ids and
        // token hashes) it turns into ordinary ones.
        let rows = try await database.adminQuery("""
            SELECT c.relname, k.conname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
            WHERE c.relnamespace = 'atrium'::regnamespace AND k.contype IN ('u', 'p', 'x')
              AND NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = k.conrelid AND a.attname = 'tenant_id' AND a.attnum = ANY (k.conkey))
            """)
        let offending = rows.filter { tenant.contains($0.values[0]!) }.map { "\($0.values[0]!).\($0.values[1]!)" }
        #expect(offending.isEmpty)
    }

    @Test func bothScriptsAreEmbedded() {
        #expect(Migrations.citusRoles.sql.contains("citus.propagate_set_commands"))
        #expect(Migrations.citusDistribution.sql.contains("create_distributed_table"))
    }
}
