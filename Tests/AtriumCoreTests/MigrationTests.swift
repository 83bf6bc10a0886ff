import AtriumCore
import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

@Suite struct MigrationTests {
    func migrator(_ database: String, migrations: [Migrations.Migration]? = nil) async throws -> Migrator {
        Migrator(
            configuration: try await TestCluster.shared.superuserConfiguration(database: database),
            migrations: try migrations ?? Migrations.all(),
            logger: TestLogger.make("migrate")
        )
    }

    func history(_ database: String) async throws -> [Migrator.AppliedMigration] {
        let connection = try await PostgresConnection.connect(
            configuration: try await TestCluster.shared.superuserConfiguration(database: database),
            logger: TestLogger.make("history")
        )
        let migrator = try await self.migrator(database)
        let history = try await migrator.history(on: connection)
        await connection.close()
        return history
    }

    @Test func freshDatabaseGetsEveryMigrationOnceAndReapplyingDoesNothing() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase(prefix: "migrate")
        let all = try Migrations.all()
        #expect(all.count >= 3)
        #expect(all.map(\.version) == all.map(\.version).sorted())

        let applied = try await self.migrator(database).migrate()
        #expect(applied.map(\.name) == all.map(\.name))
        let recorded = try await self.history(database)
        #expect(recorded.map(\.version) == all.map(\.version))
        #expect(recorded.map(\.checksum) == all.map(\.checksum))

        let again = try await self.migrator(database).migrate()
        #expect(again.isEmpty)
        #expect(try await self.history(database).count == all.count)
    }

    @Test func anEditedAppliedMigrationIsRefused() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase(prefix: "migrate")
        try await self.migrator(database).migrate()
        var files = try Migrations.all().map { Migrations.File(name: $0.name, sql: $0.sql) }
        let edited = files.count - 1
        files[edited] = Migrations.File(name: files[edited].name, sql: files[edited].sql + "\n-- a harmless-looking edit\n")
        files.append(Migrations.File(name: "999_after_edit.sql", sql: "CREATE TABLE atrium.never_created (id int);"))
        let error = await #expect(throws: MigrationError.self) {
            try await self.migrator(database, migrations: Migrations.load(files)).migrate()
        }
        #expect(error?.message.contains("was edited after it was applied") == true)
        // Nothing after the refusal ran.
        let exists = try await TestCluster.shared.withConnection(database: database) { connection in
            try await connection.query("SELECT to_regclass('atrium.never_created') IS NOT NULL")
        }
        #expect(try exists[0].decode(Bool.self, column: 0) == false)
    }

    @Test func aFailingMigrationRollsBackAndIsNotRecorded() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase(prefix: "migrate")
        var files = try Migrations.all().map { Migrations.File(name: $0.name, sql: $0.sql) }
        files.append(Migrations.File(name: "998_half_done.sql", sql: """
            CREATE TABLE atrium.half_done (id int);
            SELECT no_such_function();
            """))
        let error = await #expect(throws: MigrationError.self) {
            try await self.migrator(database, migrations: Migrations.load(files)).migrate()
        }
        #expect(error?.message.contains("998_half_done.sql") == true)
        let recorded = try await self.history(database)
        #expect(!recorded.contains { $0.version == 998 })
        #expect(recorded.count == files.count - 1)
        let exists = try await TestCluster.shared.withConnection(database: database) { connection in
            try await connection.query("SELECT to_regclass('atrium.half_done') IS NOT NULL")
        }
        #expect(try exists[0].decode(Bool.self, column: 0) == false)
    }

    @Test func concurrentMigratorsTakeTurns() async throws {
        let database = try await TestCluster.shared.makeEmptyDatabase(prefix: "migrate")
        let first = try await self.migrator(database)
        let second = try await self.migrator(database)
        async let a = first.migrate()
        async let b = second.migrate()
        let (appliedByA, appliedByB) = try await (a, b)
        let all = try Migrations.all()
        // Every migration applied exactly once, by one of the two.
        #expect((appliedByA + appliedByB).map(\.version).sorted() == all.map(\.version))
        #expect(try await self.history(database).map(\.version) == all.map(\.version))
    }

    @Test func badFileNamesAndDuplicateVersionsAreRejected() {
        #expect(throws: MigrationError.self) {
            try Migrations.load([Migrations.File(name: "roles.sql", sql: "")])
        }
        #expect(throws: MigrationError.self) {
            try Migrations.load([
                Migrations.File(name: "001_a.sql", sql: ""),
                Migrations.File(name: "001_b.sql", sql: ""),
            ])
        }
    }
}
