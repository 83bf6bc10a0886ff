package import PostgresPool

/// How Atrium reaches PostgreSQL.
public struct DatabaseConfiguration: Sendable {
    /// Connection string for the service role (`atrium_app`).
    public var url: String
    /// Connection string for migrations (a role that can become `atrium_owner`); defaults to `url`.
    public var migrationURL: String
    public var maxConnections: Int
    public var acquireTimeout: Duration
    /// Longest a query waits to join a busy connection's next round (`PoolConfiguration.gatherDelay`).
    public var gatherDelay: Duration
    public var statementTimeout: Duration
    /// Refuse to serve when the service role could bypass row-level security.
    public var requireUnprivilegedRole: Bool
    /// `url` leads to a pooler in transaction mode (PgBouncer); see `PostgresConfiguration.transactionPooling`.
    public var transactionPooling: Bool
    /// Connection string for LISTEN, which needs a session of its own: PostgreSQL itself, not a
    /// transaction pooler. Defaults to `url`.
    public var listenURL: String
    /// Read replicas' connection strings (`ATRIUM_READ_DATABASE_URL`); reads of records, lists,
    /// exports and the audit log go to one that is close enough behind (see `ReadReplicas`).
    public var readURLs: [String]
    /// Replicas further behind than this are skipped.
    public var maxReplicaLag: Duration
    /// How transactions are scoped to a tenant until `Database.chooseTenantScoping` decides.
    public var tenantScoping: TenantScoping

    public init(
        url: String,
        migrationURL: String? = nil,
        maxConnections: Int = 8,
        acquireTimeout: Duration = .seconds(5),
        gatherDelay: Duration = .milliseconds(2),
        statementTimeout: Duration = .seconds(30),
        requireUnprivilegedRole: Bool = true,
        transactionPooling: Bool = false,
        listenURL: String? = nil,
        readURLs: [String] = [],
        maxReplicaLag: Duration = .seconds(5),
        tenantScoping: TenantScoping = .setConfig
    ) {
        self.url = url
        self.migrationURL = migrationURL ?? url
        self.maxConnections = maxConnections
        self.acquireTimeout = acquireTimeout
        self.gatherDelay = gatherDelay
        self.statementTimeout = statementTimeout
        self.requireUnprivilegedRole = requireUnprivilegedRole
        self.transactionPooling = transactionPooling
        self.listenURL = listenURL ?? url
        self.readURLs = readURLs
        self.maxReplicaLag = maxReplicaLag
        self.tenantScoping = tenantScoping
    }

    var poolConfiguration: PoolConfiguration {
        self.poolConfiguration(url: self.url)
    }

    /// A pool like the primary's, to `url` (a read replica's).
    func poolConfiguration(url: String) -> PoolConfiguration {
        PoolConfiguration(
            connection: PostgresConfiguration(
                connectionString: url,
                statementTimeout: self.statementTimeout,
                transactionPooling: self.transactionPooling
            ),
            maxConnections: self.maxConnections,
            acquireTimeout: self.acquireTimeout,
            gatherDelay: self.gatherDelay
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
