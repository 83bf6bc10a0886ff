@testable import AtriumCore
import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// Both ways of telling PostgreSQL the tenant (`set_config` on PostgreSQL, `BEGIN; SET LOCAL …`
/// for Citus) scope every kind of transaction to its tenant, and only to it. Both run here on
/// plain PostgreSQL, where both are valid; on Citus only `set_local` reaches the shards
/// (`.ci/citus-check`).
@Suite struct TenantScopingTests {
    static let tenantSetting: PostgresQuery = "SELECT pg_catalog.current_setting('atrium.tenant_id', true)"

    func database(_ scoping: TenantScoping, on testDatabase: TestDatabase) -> Database {
        Database(pool: testDatabase.appPool(maxConnections: 2), tenantScoping: scoping, logger: TestLogger.make("scoping"))
    }

    @Test(arguments: [TenantScoping.setConfig, .setLocal])
    func everyKindOfTransactionSeesItsTenantAndNoOther(_ scoping: TenantScoping) async throws {
        let testDatabase = try await TestCluster.shared.makeDatabase()
        let (mine, theirs) = (UUID(), UUID())
        for tenant in [mine, theirs] {
            try await testDatabase.adminExecute("INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES ('\(tenant.lowercasedString)', 't', 't-\(tenant.lowercasedString)')")
        }
        let db = self.database(scoping, on: testDatabase)
        let tenant = TenantContext(tenantID: mine)
        let visible: PostgresQuery = "SELECT tenant_id FROM atrium.tenants"

        // One statement: with set_local it must be in a transaction block, or SET LOCAL would
        // only warn and leave the statement without a tenant.
        #expect(try await db.query(in: tenant, Self.tenantSetting)[0].decode(String.self, column: 0) == mine.lowercasedString)
        #expect(try await db.query(in: tenant, visible).map { try $0.decode(UUID.self, column: 0) } == [mine])
        let batch = try await db.transaction(in: tenant, [Self.tenantSetting, visible])
        #expect(try batch[0][0].decode(String.self, column: 0) == mine.lowercasedString)
        #expect(try batch[1].map { try $0.decode(UUID.self, column: 0) } == [mine])
        let interactive = try await db.withTransaction(in: tenant) { transaction in
            try await transaction.query(visible).map { try $0.decode(UUID.self, column: 0) }
        }
        #expect(interactive == [mine])
        let snapshot = try await db.withSnapshot(in: tenant) { transaction in
            try await transaction.query(visible).map { try $0.decode(UUID.self, column: 0) }
        }
        #expect(snapshot == [mine])
        // No tenant: no tenant rows, and the setting does not outlive its transaction on the
        // pooled connections.
        #expect(try await db.unscopedTransaction([visible])[0].count == 0)
        for _ in 0..<4 {
            let row = try await db.pool.query(Self.tenantSetting)[0]
            let leftOver = row.isNull(column: 0) ? "" : try row.decode(String.self, column: 0)
            #expect(leftOver == "")
        }
    }

    @Test func setLocalIsSentUnpreparedWithTheUUIDsOwnText() {
        let tenant = UUID(uuidString: "0E5A1D2C-3B4A-4C5D-8E6F-7A8B9C0D1E2F")!
        let query = Database.setTenant(TenantContext(tenantID: tenant), setLocal: true)
        #expect(query.sql == "SET LOCAL atrium.tenant_id = '0e5a1d2c-3b4a-4c5d-8e6f-7a8b9c0d1e2f'")
        #expect(query.isPrepared == false)
        #expect(query.bindings.count == 0)
        #expect(Database.setTenant(nil, setLocal: true).sql == "SET LOCAL atrium.tenant_id = ''")
        let prepared = Database.setTenant(TenantContext(tenantID: tenant), setLocal: false)
        #expect(prepared.isPrepared && prepared.bindings.count == 1)
    }

    @Test func automaticScopingFollowsTheCitusExtensionAndReachesTheReplicas() async throws {
        let testDatabase = try await TestCluster.shared.makeDatabase()
        let replicas = ReadReplicas(
            configurations: [PoolConfiguration(connection: testDatabase.app, maxConnections: 1)],
            maxLag: .seconds(5), logger: TestLogger.make("replicas")
        )
        let db = Database(pool: testDatabase.appPool(maxConnections: 2), replicas: replicas, logger: TestLogger.make("scoping"))
        #expect(try await db.hasCitus() == false)
        #expect(try await db.chooseTenantScoping(.automatic) == .setConfig)
        #expect(db.tenantScoping == .setConfig)
        #expect(try await db.chooseTenantScoping(.fixed(.setLocal)) == .setLocal)
        #expect(db.tenantScoping == .setLocal)
        // Forced, not found: the triggers still announce what the service would on Citus.
        #expect(!db.runsOnCitus)
        #expect(replicas.databases.allSatisfy { $0.tenantScoping == .setLocal })
        #expect(try await db.chooseTenantScoping(.fixed(.setConfig)) == .setConfig)
        #expect(replicas.databases.allSatisfy { $0.tenantScoping == .setConfig })
    }

    @Test func theSettingsValues() {
        #expect(TenantScopingSetting(rawValue: "auto") == .automatic)
        #expect(TenantScopingSetting(rawValue: "set_local") == .fixed(.setLocal))
        #expect(TenantScopingSetting(rawValue: "set_config") == .fixed(.setConfig))
        #expect(TenantScopingSetting(rawValue: "citus") == nil)
        #expect(TenantScopingSetting(rawValue: "SET_LOCAL") == nil)
    }
}
