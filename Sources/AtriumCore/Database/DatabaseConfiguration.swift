package import PostgresPool

/// How Atrium reaches PostgreSQL.
public struct DatabaseConfiguration: Sendable {
    /// Connection string for the service role (`atrium_app`).
    public var url: String
    /// Connection string for migrations (a role that can become `atrium_owner`); defaults to `url`.
    public var migrationURL: String
    public var maxConnections: Int
    public var acquireTimeout: Duration
    public var statementTimeout: Duration
    /// Refuse to serve when the service role could bypass row-level security.
    public var requireUnprivilegedRole: Bool
    /// `url` leads to a pooler in transaction mode (PgBouncer); see `PostgresConfiguration.transactionPooling`.
    public var transactionPooling: Bool
    /// Connection string for LISTEN, which needs a session of its own: PostgreSQL itself, not a
    /// transaction pooler. Defaults to `url`.
    public var listenURL: String

    public init(
        url: String,
        migrationURL: String? = nil,
        maxConnections: Int = 8,
        acquireTimeout: Duration = .seconds(5),
        statementTimeout: Duration = .seconds(30),
        requireUnprivilegedRole: Bool = true,
        transactionPooling: Bool = false,
        listenURL: String? = nil
    ) {
        self.url = url
        self.migrationURL = migrationURL ?? url
        self.maxConnections = maxConnections
        self.acquireTimeout = acquireTimeout
        self.statementTimeout = statementTimeout
        self.requireUnprivilegedRole = requireUnprivilegedRole
        self.transactionPooling = transactionPooling
        self.listenURL = listenURL ?? url
    }

    var poolConfiguration: PoolConfiguration {
        PoolConfiguration(
            connection: PostgresConfiguration(
                connectionString: self.url,
                statementTimeout: self.statementTimeout,
                transactionPooling: self.transactionPooling
            ),
            maxConnections: self.maxConnections,
            acquireTimeout: self.acquireTimeout
        )
    }

    /// Settings for the listener's connection: a session straight to PostgreSQL.
    var listenConnection: PostgresConfiguration {
        PostgresConfiguration(connectionString: self.listenURL, statementTimeout: self.statementTimeout)
    }

    /// Settings for the migrator's connection.
    package var migrationConnection: PostgresConfiguration {
        PostgresConfiguration(connectionString: self.migrationURL, applicationName: "atrium-migrate")
    }
}
