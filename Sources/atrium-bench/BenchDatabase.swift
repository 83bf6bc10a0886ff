import AtriumCore
import AtriumCrypto
import AtriumHTTP
import EmbeddedPostgres
import Foundation
import Logging
import PostgresPool

/// Creating and seeding the benchmark database.
enum BenchDatabase {
    /// Runs `body` against a temporary embedded cluster, stopped afterwards whatever happens.
    /// The cluster is a test cluster's (no `fsync`, commits not waited for) unless `durable`:
    /// then commits are flushed to disk and waited for, as by the cluster `atrium serve` runs
    /// and by PostgreSQL's defaults — what a write costs in production.
    static func withTemporaryCluster(durable: Bool = false, _ body: (EmbeddedPostgres, Logger) async throws -> Void) async throws {
        var logger = Logger(label: "atrium-bench")
        logger.logLevel = .warning
        // Sized as for production rather than PostgreSQL's 128 MB default: the seeded
        // million records (~450 MB with indexes) then stay in shared buffers, as a service's
        // working set would on a server with this machine's memory.
        var configuration = EmbeddedPostgres.Configuration.temporary
        configuration.settings["shared_buffers"] = "1GB"
        // For the cost of each statement of a write (`writeAnatomy`); its own cost is a few
        // percent of a statement's, the same for every route.
        configuration.settings["shared_preload_libraries"] = "pg_stat_statements"
        if durable {
            for setting in ["fsync", "synchronous_commit", "full_page_writes"] { configuration.settings[setting] = "on" }
        }
        let cluster = try await EmbeddedPostgres.start(configuration, logger: logger)
        do {
            try await body(cluster, logger)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func create(_ name: String, on cluster: EmbeddedPostgres, logger: Logger) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString()),
            logger: logger
        )
        try await admin.simpleQuery("CREATE DATABASE \(name)")
        await admin.close()
        try await Migrator(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: name)),
            migrations: try Migrations.all(),
            logger: logger
        ).migrate()
    }

    /// What a benchmark of the served binary starts from: a migrated database `name`, a key
    /// ring for the server (as `ATRIUM_TOKEN_KEYS`), and the services on a small pool of their
    /// own, hashing passwords cheaply (signing in is not what is measured), for seeding.
    struct Served {
        let keyText: String
        let connectionString: String
        let database: Database
        let services: AtriumServices
    }

    static func served(_ name: String, on cluster: EmbeddedPostgres, logger: Logger) async throws -> Served {
        try await Self.create(name, on: cluster, logger: logger)
        let keyText = TokenKeyRing.generateKey()
        let connectionString = cluster.connectionString(database: name, user: "atrium_app")
        let pool = ConnectionPool(
            configuration: PoolConfiguration(connection: PostgresConfiguration(connectionString: connectionString), maxConnections: 2),
            logger: logger
        )
        let database = Database(pool: pool, logger: logger)
        let auth = AuthConfiguration(
            keyRing: try TokenKeyRing(parsing: keyText), passwordParameters: Scrypt.Parameters(logN: 10, r: 8, p: 1), hashingPermits: 2, hashingQueue: 64
        )
        return Served(keyText: keyText, connectionString: connectionString, database: database, services: try AtriumServices(database: database, auth: auth, logger: logger))
    }

    /// `rows` rows of ~100 bytes, spread evenly over `tenants`, in a table shaped like every
    /// tenant table: tenant_id leading the key, RLS enabled and forced.
    static func seedItems(_ name: String, on cluster: EmbeddedPostgres, rows: Int, tenants: Int, logger: Logger) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: name), statementTimeout: nil),
            logger: logger
        )
        let perTenant = rows / tenants
        try await admin.simpleQuery("""
            CREATE TABLE atrium.bench_items (
                tenant_id uuid NOT NULL,
                id bigint NOT NULL,
                payload text NOT NULL,
                PRIMARY KEY (tenant_id, id)
            );
            ALTER TABLE atrium.bench_items ENABLE ROW LEVEL SECURITY;
            ALTER TABLE atrium.bench_items FORCE ROW LEVEL SECURITY;
            CREATE POLICY tenant_isolation ON atrium.bench_items
                USING (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid)
                WITH CHECK (tenant_id = NULLIF(current_setting('atrium.tenant_id', true), '')::uuid);
            GRANT SELECT ON atrium.bench_items TO atrium_app;
            INSERT INTO atrium.bench_items (tenant_id, id, payload)
            SELECT ('00000000-0000-4000-8000-' || lpad(t::text, 12, '0'))::uuid, i, md5(t::text || ':' || i::text) || md5(i::text) || md5(t::text)
            FROM generate_series(0, \(tenants - 1)) t, generate_series(1, \(perTenant)) i;
            """)
        // VACUUM cannot share a simple query (an implicit transaction) with other statements.
        try await admin.simpleQuery("VACUUM ANALYZE atrium.bench_items")
        await admin.close()
    }
}

