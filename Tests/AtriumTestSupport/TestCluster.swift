import AtriumCore
import EmbeddedPostgres
import Foundation
import Logging
import PostgresPool

/// The temporary PostgreSQL cluster shared by every test in this process.
///
/// Tests isolate themselves by creating their own database (`makeDatabase`) or their own
/// tenants; the cluster itself is started once and shut down when the process exits.
public actor TestCluster {
    public static let shared = TestCluster()

    private var starting: Task<EmbeddedPostgres, any Error>?
    private var template: Task<String, any Error>?
    private var bouncer: Task<EmbeddedPgBouncer, any Error>?

    /// Whether this run goes through PgBouncer in transaction mode (`ATRIUM_TEST_PGBOUNCER=1`):
    /// the service role's pools connect through it; LISTEN and the superuser's set-up
    /// connections go to PostgreSQL directly, as in production.
    public static let throughPgBouncer: Bool = {
        let value = ProcessInfo.processInfo.environment["ATRIUM_TEST_PGBOUNCER"] ?? ""
        return ["1", "true", "yes", "on"].contains(value.lowercased())
    }()
    private var databaseCounter = 0

    /// How the service's transactions name their tenant in this run (`ATRIUM_TEST_TENANT_SCOPING`,
    /// `set_config` by default): CI runs the HTTP tests once more with `set_local`, the form
    /// Atrium uses on Citus.
    public static let tenantScoping: TenantScoping = {
        ProcessInfo.processInfo.environment["ATRIUM_TEST_TENANT_SCOPING"].flatMap(TenantScoping.init(rawValue:)) ?? .setConfig
    }()

    /// The running cluster, started on first use.
    public func cluster() async throws -> EmbeddedPostgres {
        if let starting { return try await starting.value }
        let task = Task {
            try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("embedded-postgres"))
        }
        self.starting = task
        return try await task.value
    }

    /// PgBouncer in front of the cluster, started on first use (only with `ATRIUM_TEST_PGBOUNCER`).
    public func pgBouncer() async throws -> EmbeddedPgBouncer {
        if let bouncer { return try await bouncer.value }
        // Set before the first suspension, so that concurrent callers share one PgBouncer.
        let task = Task {
            let cluster = try await self.cluster()
            // As `atrium serve` does behind a pooler: these reach PostgreSQL through PgBouncer.
            setenv("PGTZ", "UTC", 1)
            setenv("PGDATESTYLE", "ISO, YMD", 1)
            // The session settings a pooler keeps from being sent come from the role, as the
            // README asks of operators (the role exists once the template is migrated).
            _ = try await self.migratedTemplate()
            try await Self.run("ALTER ROLE atrium_app SET max_parallel_workers_per_gather = 0", in: cluster)
            return try await EmbeddedPgBouncer.start(in: cluster, users: ["atrium_app"])
        }
        self.bouncer = task
        return try await task.value
    }

    /// A fresh, empty database; returns its name.
    public func makeEmptyDatabase(prefix: String = "test") async throws -> String {
        try await self.createDatabase(prefix: prefix, template: nil)
    }

    /// A fresh database with every migration applied (copied from a template migrated once).
    public func makeDatabase(prefix: String = "test") async throws -> TestDatabase {
        let template = try await self.migratedTemplate()
        let name = try await self.createDatabase(prefix: prefix, template: template)
        let bouncer = Self.throughPgBouncer ? try await self.pgBouncer() : nil
        return TestDatabase(cluster: try await self.cluster(), name: name, bouncer: bouncer)
    }

    /// Creates a uniquely named database, empty or copied from `template`; returns its name.
    private func createDatabase(prefix: String, template: String?) async throws -> String {
        let cluster = try await self.cluster()
        self.databaseCounter += 1
        let name = "\(prefix)_\(self.databaseCounter)_\(UUID().uuidString.prefix(8).lowercased())"
        try await Self.run("CREATE DATABASE \"\(name)\"" + (template.map { " TEMPLATE \"\($0)\"" } ?? ""), in: cluster)
        return name
    }

    /// Runs `sql` as the superuser on the cluster's `postgres` database.
    private static func run(_ sql: String, in cluster: EmbeddedPostgres) async throws {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString()),
            logger: TestLogger.make("admin")
        )
        do {
            try await admin.simpleQuery(sql)
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
    }

    private func migratedTemplate() async throws -> String {
        if let template { return try await template.value }
        let task = Task {
            let name = try await self.makeEmptyDatabase(prefix: "template")
            let cluster = try await self.cluster()
            try await Migrator(
                configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: name)),
                migrations: try Migrations.all(),
                logger: TestLogger.make("migrate")
            ).migrate()
            return name
        }
        self.template = task
        return try await task.value
    }

    /// Runs `body` on a superuser connection to `database` and closes it.
    @discardableResult
    public func withConnection<T: Sendable>(database: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: try await self.superuserConfiguration(database: database),
            logger: TestLogger.make("admin")
        )
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    /// Connection settings for `database` as the superuser.
    public func superuserConfiguration(database: String) async throws -> PostgresConfiguration {
        let cluster = try await self.cluster()
        return PostgresConfiguration(connectionString: cluster.connectionString(database: database))
    }
}

/// Loggers for tests: quiet unless `ATRIUM_TEST_LOG` names a level.
public enum TestLogger {
    public static func make(_ label: String) -> Logger {
        var logger = Logger(label: label)
        let level = ProcessInfo.processInfo.environment["ATRIUM_TEST_LOG"].flatMap(Logger.Level.init(rawValue:))
        logger.logLevel = level ?? .critical
        return logger
    }
}

/// A migrated database of its own for one test.
public struct TestDatabase: Sendable {
    public let cluster: EmbeddedPostgres
    public let name: String
    /// Set when this run goes through PgBouncer (`ATRIUM_TEST_PGBOUNCER=1`): `appPool` connects
    /// through it in transaction-pooling mode.
    public let bouncer: EmbeddedPgBouncer?

    public init(cluster: EmbeddedPostgres, name: String, bouncer: EmbeddedPgBouncer? = nil) {
        self.cluster = cluster
        self.name = name
        self.bouncer = bouncer
    }

    /// As the superuser (what migrations and test set-up use).
    public var superuser: PostgresConfiguration {
        PostgresConfiguration(connectionString: self.cluster.connectionString(database: self.name))
    }

    /// As `atrium_app`, the role the service runs as.
    public var app: PostgresConfiguration {
        PostgresConfiguration(connectionString: self.cluster.connectionString(database: self.name, user: "atrium_app"))
    }

    /// A pool connecting as `atrium_app` (through PgBouncer when this run uses it).
    public func appPool(maxConnections: Int = 4, acquireTimeout: Duration = .seconds(10), applicationName: String = "atrium-test") -> ConnectionPool {
        var connection = self.app
        if let bouncer {
            connection = PostgresConfiguration(connectionString: bouncer.connectionString(database: self.name, user: "atrium_app"), transactionPooling: true)
        }
        connection.applicationName = applicationName
        return ConnectionPool(
            configuration: PoolConfiguration(connection: connection, maxConnections: maxConnections, acquireTimeout: acquireTimeout),
            logger: TestLogger.make("pool")
        )
    }

    /// Runs `body` on a superuser connection and closes it.
    @discardableResult
    public func withSuperuser<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(configuration: self.superuser, logger: TestLogger.make("admin"))
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}

extension TestDatabase {
    /// Runs `sql` as the superuser; every column comes back as its text (NULL as nil).
    public func adminQuery(_ sql: String) async throws -> [TextRow] {
        try await self.withSuperuser { connection in
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql))
            return rows.map { row in
                TextRow(values: (0..<row.count).map { column in
                    row.isNull(column: column) ? nil : (try? row.withUnsafeBytes(column: column) { $0.map { String(decoding: $0, as: UTF8.self) } }) ?? nil
                })
            }
        }
    }

    /// Runs `sql` (several statements allowed) as the superuser.
    public func adminExecute(_ sql: String) async throws {
        try await self.withSuperuser { connection in
            _ = try await connection.simpleQuery(sql)
        }
    }
}

/// A row as text, for assertions.
public struct TextRow: Sendable {
    public let values: [String?]
    public func string(_ column: Int) -> String? { self.values[column] }
}
