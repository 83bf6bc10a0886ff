package import Logging
package import PostgresPool

/// Applies the embedded migrations to a database, once, in order, each in its own transaction.
///
/// A session advisory lock makes concurrent migrators (two servers starting together) take
/// turns: the second finds nothing left to do. Applied migrations are recorded with their
/// checksum; if a file changed after it was applied, migrating stops before touching anything.
public struct Migrator: Sendable {
    /// Connection as a role that may create objects and become `atrium_owner`.
    package let configuration: PostgresConfiguration
    public let migrations: [Migrations.Migration]
    let logger: Logger

    /// Arbitrary but fixed: every Atrium migrator contends for this advisory lock key.
    static let lockKey: Int64 = 0x6174_7269_756D

    package init(configuration: PostgresConfiguration, migrations: [Migrations.Migration], logger: Logger) {
        var configuration = configuration
        configuration.statementTimeout = nil
        configuration.idleInTransactionTimeout = nil
        configuration.applicationName = "atrium-migrate"
        self.configuration = configuration
        self.migrations = migrations
        self.logger = logger
    }

    /// A migration recorded in the database.
    public struct AppliedMigration: Sendable, Hashable {
        public let version: Int
        public let name: String
        public let checksum: String
    }

    /// Applies every pending migration and returns the ones it applied.
    @discardableResult
    public func migrate() async throws -> [Migrations.Migration] {
        let connection = try await PostgresConnection.connect(configuration: self.configuration, logger: self.logger)
        do {
            let applied = try await self.migrate(on: connection)
            await connection.close()
            return applied
        } catch {
            await connection.close()
            throw error
        }
    }

    private func migrate(on connection: PostgresConnection) async throws -> [Migrations.Migration] {
        self.logger.debug("waiting for the migration lock")
        _ = try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))")
        try await self.createHistoryTable(on: connection)
        let history = try await self.history(on: connection)
        try self.verify(history)
        let citus = try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"
        )[0].decode(Bool.self, column: 0)
        if citus {
            // Migrations after the distribution create triggers on distributed tables (see
            // sql/citus/distribute.sql on why they are safe there).
            try await connection.simpleQuery("SET citus.enable_unsafe_triggers TO on")
            try await self.runCitusScript(Migrations.citusRoles, on: connection)
        }
        let done = Set(history.map(\.version))
        var applied: [Migrations.Migration] = []
        for migration in self.migrations where !done.contains(migration.version) {
            try await self.apply(migration, on: connection)
            applied.append(migration)
        }
        if citus {
            try await self.runCitusScript(Migrations.citusDistribution, on: connection)
        }
        _ = try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))")
        return applied
    }

    /// Runs one of `sql/citus/` in a transaction of its own, as the connecting user.
    private func runCitusScript(_ file: Migrations.File, on connection: PostgresConnection) async throws {
        do {
            try await connection.simpleQuery("BEGIN")
            try await connection.simpleQuery(file.sql)
            try await connection.simpleQuery("COMMIT")
            self.logger.info("ran Citus script", metadata: ["script": "sql/citus/\(file.name)"])
        } catch let error as PostgresError {
            _ = try? await connection.simpleQuery("ROLLBACK")
            var message = "sql/citus/\(file.name) failed and was rolled back: \(error.message)"
            if let detail = error.detail { message += " (\(detail))" }
            if let hint = error.hint { message += " \(hint)" }
            throw MigrationError(message)
        }
    }

    /// Migrations recorded as applied, in version order.
    package func history(on connection: PostgresConnection) async throws -> [AppliedMigration] {
        let rows = try await connection.query("SELECT version, name, checksum FROM public.atrium_migrations ORDER BY version")
        return try rows.map { row in
            let (version, name, checksum) = try row.decode((Int, String, String).self)
            return AppliedMigration(version: version, name: name, checksum: checksum)
        }
    }

    /// Refuses to go on if an applied migration's file was edited since.
    func verify(_ history: [AppliedMigration]) throws {
        let known = Dictionary(uniqueKeysWithValues: self.migrations.map { ($0.version, $0) })
        for record in history {
            guard let migration = known[record.version] else {
                // A newer build applied it; this older binary can still run against the schema.
                self.logger.warning("database has a migration this build does not know", metadata: [
                    "migration": "\(record.name)",
                ])
                continue
            }
            guard migration.checksum == record.checksum else {
                throw MigrationError(
                    "migration \(migration.name) was edited after it was applied (recorded checksum \(record.checksum.prefix(12))…, file \(migration.checksum.prefix(12))…). "
                        + "Applied migrations must never change: restore the file and add a new migration instead."
                )
            }
        }
    }

    private func createHistoryTable(on connection: PostgresConnection) async throws {
        try await connection.simpleQuery("""
            CREATE TABLE IF NOT EXISTS public.atrium_migrations (
                version     integer     PRIMARY KEY,
                name        text        NOT NULL,
                checksum    text        NOT NULL,
                applied_at  timestamptz NOT NULL DEFAULT now(),
                applied_by  text        NOT NULL DEFAULT session_user,
                duration_ms integer     NOT NULL
            );
            COMMENT ON TABLE public.atrium_migrations IS 'Atrium schema migrations applied to this database (managed by atrium migrate; never edit).';
            COMMENT ON COLUMN public.atrium_migrations.version IS 'Number leading the migration file name.';
            COMMENT ON COLUMN public.atrium_migrations.name IS 'Migration file name.';
            COMMENT ON COLUMN public.atrium_migrations.checksum IS 'Hex SHA-256 of the file as applied; a different file is refused.';
            COMMENT ON COLUMN public.atrium_migrations.applied_at IS 'When it was applied.';
            COMMENT ON COLUMN public.atrium_migrations.applied_by IS 'Session user that applied it.';
            COMMENT ON COLUMN public.atrium_migrations.duration_ms IS 'How long applying it took, in milliseconds.';
            """)
    }

    private func apply(_ migration: Migrations.Migration, on connection: PostgresConnection) async throws {
        let started = ContinuousClock.now
        do {
            try await connection.simpleQuery("BEGIN")
            if !migration.runsAsSessionUser {
                try await connection.simpleQuery("SET LOCAL ROLE atrium_owner")
            }
            try await connection.simpleQuery(migration.sql)
            try await connection.simpleQuery("RESET ROLE")
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            _ = try await connection.query("""
                INSERT INTO public.atrium_migrations (version, name, checksum, duration_ms)
                VALUES (\(migration.version), \(migration.name), \(migration.checksum), \(milliseconds))
                """)
            try await connection.simpleQuery("COMMIT")
            self.logger.info("applied migration", metadata: ["migration": "\(migration.name)", "duration_ms": "\(milliseconds)"])
        } catch let error as PostgresError {
            _ = try? await connection.simpleQuery("ROLLBACK")
            var message = "migration \(migration.name) failed and was rolled back: \(error.message)"
            if let detail = error.detail { message += " (\(detail))" }
            throw MigrationError(message)
        }
    }
}
