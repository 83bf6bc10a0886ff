import Logging
package import PostgresPool

/// One consistent view of the database for work that reads it in many transactions: an
/// export that sends a page to a slow client between reads.
///
/// The view is exported (`pg_export_snapshot()`) from a read-only REPEATABLE READ transaction
/// held open on a connection of its own, outside the pool, and adopted by each short pooled
/// transaction that reads from it (`read(in:_:)`). No pooled connection is held between reads,
/// so a client that stops reading holds only this one idle connection, until it is closed.
public final class DatabaseSnapshot: Sendable {
    /// `pg_export_snapshot()`'s identifier.
    let id: String
    private let holder: PostgresConnection
    private let database: Database

    init(id: String, holder: PostgresConnection, database: Database) {
        self.id = id
        self.holder = holder
        self.database = database
    }

    /// Runs `statements` in a read-only transaction scoped to `tenant` that sees the snapshot.
    package func read(in tenant: TenantContext, _ statements: [PostgresQuery]) async throws -> [PostgresRows] {
        try await Database.translatingPoolErrors {
            try await self.database.pool.transaction(
                statements,
                prelude: [
                    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
                    // An identifier cannot be a parameter; it is PostgreSQL's own, checked when taken.
                    .oneOff(unsafeSQL: "SET TRANSACTION SNAPSHOT '\(self.id)'"),
                    self.database.setTenant(tenant),
                ],
                share: tenant.tenantID
            )
        }
    }

    /// Ends the transaction and closes its connection; the snapshot can no longer be read.
    public func close() {
        self.holder.terminate()
    }
}

extension Database {
    /// Opens a snapshot on a connection of its own (see `DatabaseSnapshot`).
    public func exportSnapshot() async throws -> DatabaseSnapshot {
        try await Self.translatingPoolErrors { try await self.openSnapshot() }
    }

    private func openSnapshot() async throws -> DatabaseSnapshot {
        var configuration = self.pool.configuration.connection
        configuration.applicationName += " snapshot"
        let holder = try await PostgresConnection.connect(configuration: configuration, logger: self.logger)
        do {
            let results = try await holder.simpleQuery("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT pg_catalog.pg_export_snapshot()")
            let id = try results[1][0].decode(String.self, column: 0)
            guard !id.isEmpty, id.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x46) }) else {
                throw DatabaseError("pg_export_snapshot() returned an unexpected identifier")
            }
            return DatabaseSnapshot(id: id, holder: holder, database: self)
        } catch {
            await holder.close()
            throw error
        }
    }
}
