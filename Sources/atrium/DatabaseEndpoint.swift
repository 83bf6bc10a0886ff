import AtriumCore
import EmbeddedPostgres
import Foundation
import Logging
import PostgresPool

/// The database Atrium talks to: the one `DATABASE_URL` names, or an embedded cluster.
struct DatabaseEndpoint: Sendable {
    let configuration: DatabaseConfiguration
    /// Set when Atrium started the cluster itself and must stop it.
    let embedded: EmbeddedPostgres?

    static let embeddedDatabaseName = "atrium"

    static func open(_ settings: Settings, logger: Logger) async throws -> DatabaseEndpoint {
        if let url = settings.databaseURL {
            if settings.transactionPooling {
                // No `options` reach PostgreSQL through PgBouncer, but these two startup
                // parameters do (libpq sends them from the environment, PgBouncer keeps them
                // per client), and decoding relies on them.
                setenv("PGTZ", "UTC", 1)
                setenv("PGDATESTYLE", "ISO, YMD", 1)
                logger.info("DATABASE_URL is a transaction pooler: statements go unnamed, one transaction per round; LISTEN and migrations connect to ATRIUM_LISTEN_DATABASE_URL")
            }
            return DatabaseEndpoint(
                configuration: DatabaseConfiguration(
                    url: url,
                    migrationURL: settings.migrationDatabaseURL,
                    maxConnections: settings.maxConnections,
                    acquireTimeout: settings.acquireTimeout,
                    gatherDelay: settings.gatherDelay,
                    statementTimeout: settings.statementTimeout,
                    transactionPooling: settings.transactionPooling,
                    listenURL: settings.listenDatabaseURL,
                    readURLs: settings.readDatabaseURLs,
                    maxReplicaLag: settings.maxReplicaLag
                ),
                embedded: nil
            )
        }
        let cluster = try await EmbeddedPostgres.start(
            .persistent(at: settings.dataDirectory),
            logger: logger
        )
        do {
            try await Self.createDatabaseIfMissing(on: cluster, logger: logger)
        } catch {
            await cluster.stop()
            throw error
        }
        logger.info("embedded database ready", metadata: ["psql": "\(cluster.psqlCommand(database: Self.embeddedDatabaseName))"])
        return DatabaseEndpoint(
            configuration: DatabaseConfiguration(
                url: cluster.connectionString(database: Self.embeddedDatabaseName, user: "atrium_app"),
                migrationURL: cluster.connectionString(database: Self.embeddedDatabaseName),
                maxConnections: settings.maxConnections,
                acquireTimeout: settings.acquireTimeout,
                gatherDelay: settings.gatherDelay,
                statementTimeout: settings.statementTimeout
            ),
            embedded: cluster
        )
    }

    private static func createDatabaseIfMissing(on cluster: EmbeddedPostgres, logger: Logger) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString()),
            logger: logger
        )
        do {
            let existing = try await admin.query("SELECT 1 FROM pg_database WHERE datname = \(Self.embeddedDatabaseName)")
            if existing.isEmpty {
                try await admin.simpleQuery("CREATE DATABASE \(Self.embeddedDatabaseName)")
            }
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
    }

    func migrate(logger: Logger) async throws {
        let applied = try await Migrator(
            configuration: self.configuration.migrationConnection,
            migrations: try Migrations.all(),
            logger: logger
        ).migrate()
        logger.info("database schema up to date", metadata: ["migrations.applied": "\(applied.count)"])
    }

    func close() async {
        await self.embedded?.stop()
    }
}
