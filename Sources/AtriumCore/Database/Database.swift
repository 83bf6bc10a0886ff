import AtriumText
public import Logging
package import PostgresPool
public import ServiceLifecycle
import Synchronization

/// Atrium's access to PostgreSQL: the connection pool plus the rule that tenant data is only
/// reached inside a transaction scoped to one tenant.
public final class Database: Service, Sendable {
    package let pool: ConnectionPool
    /// Where LISTEN connects: PostgreSQL itself, even when the pool goes through a pooler.
    package let listenConnection: PostgresConfiguration
    /// Read replicas, when configured: run them as a service alongside this one.
    public let replicas: ReadReplicas?
    let logger: Logger
    private let scopingIsSetLocal: Atomic<Bool>
    private let citus = Atomic<Bool>(false)
    /// NOTIFY `atrium_changes` after writes commit, not inside them (see `ChangeAnnouncer`).
    private let changes = ChangeAnnouncer()
    private let concurrencyRetries = Atomic<Int>(0)

    public init(configuration: DatabaseConfiguration, logger: Logger) {
        self.pool = ConnectionPool(configuration: configuration.poolConfiguration, logger: logger)
        self.listenConnection = configuration.listenConnection
        self.replicas = configuration.readURLs.isEmpty ? nil : ReadReplicas(
            configurations: configuration.readURLs.map(configuration.poolConfiguration(url:)),
            maxLag: configuration.maxReplicaLag,
            logger: logger
        )
        self.logger = logger
        self.scopingIsSetLocal = Atomic(configuration.tenantScoping == .setLocal)
    }

    /// `listenConnection` defaults to the pool's own (which must not be a transaction pooler's).
    package init(
        pool: ConnectionPool,
        listenConnection: PostgresConfiguration? = nil,
        replicas: ReadReplicas? = nil,
        tenantScoping: TenantScoping = .setConfig,
        logger: Logger
    ) {
        self.pool = pool
        self.listenConnection = listenConnection ?? pool.configuration.connection
        self.replicas = replicas
        self.logger = logger
        self.scopingIsSetLocal = Atomic(tenantScoping == .setLocal)
    }

    /// How transactions are scoped to their tenant (see `TenantScoping`).
    public var tenantScoping: TenantScoping {
        self.scopingIsSetLocal.load(ordering: .relaxed) ? .setLocal : .setConfig
    }

    /// Chooses the tenant scoping for `setting`: `automatic` asks PostgreSQL whether the `citus`
    /// extension is installed in the database. Call once at start, before serving; the choice
    /// applies to the read replicas too.
    @discardableResult
    public func chooseTenantScoping(_ setting: TenantScopingSetting) async throws -> TenantScoping {
        let citus = try await self.hasCitus()
        let scoping: TenantScoping
        switch setting {
        case .fixed(let fixed):
            scoping = fixed
        case .automatic:
            scoping = citus ? .setLocal : .setConfig
        }
        self.citus.store(citus, ordering: .relaxed)
        self.scopingIsSetLocal.store(scoping == .setLocal, ordering: .relaxed)
        if let replicas = self.replicas {
            for replica in replicas.databases {
                replica.scopingIsSetLocal.store(scoping == .setLocal, ordering: .relaxed)
            }
        }
        return scoping
    }

    /// Whether `chooseTenantScoping` found the `citus` extension: then no trigger announces
    /// revocations or collection changes (sql/citus/distribute.sql), the service does.
    public var runsOnCitus: Bool {
        self.citus.load(ordering: .relaxed)
    }

    /// Whether the `citus` extension is installed in the database.
    public func hasCitus() async throws -> Bool {
        try await Self.translatingPoolErrors {
            try await self.pool.query(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus')"
            )[0].decode(Bool.self, column: 0)
        }
    }

    /// Runs the pool's maintenance and the announcer of changes until shutdown, then closes the pool.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withGracefulShutdownHandler {
                    await self.changes.run(pool: self.pool, logger: self.logger)
                } onGracefulShutdown: {
                    self.changes.finish()
                }
            }
            try await self.pool.run()
            group.cancelAll()
        }
    }

    /// Record changes were committed: every server's listener will hear of it (NOTIFY
    /// `atrium_changes`, sent after the fact and shared by the writes of the moment). Call after
    /// the commit of every transaction that appended to the change log.
    package func announceChanges() {
        self.changes.announce()
    }

    /// Runs `statements` in one transaction scoped to `tenant`, in one round trip. Work scoped to
    /// a tenant waits for a contended connection behind that tenant's own work (see
    /// `ConnectionPool.execute(_:share:)`).
    /// `genericPlan` as for `query(in:_:genericPlan:)`, for every statement of the transaction.
    ///
    /// A transaction PostgreSQL failed to break a deadlock (or a serialization failure) is run
    /// again, up to `concurrencyAttempts` times in all: it was rolled back whole and nothing ran
    /// in between, so running it again is what the caller would do. Two writes that claim the
    /// same unique values in opposite orders are one way to meet it.
    package func transaction(in tenant: TenantContext, _ statements: [PostgresQuery], genericPlan: Bool = false) async throws -> [PostgresRows] {
        let prelude = self.usesGenericPlans(genericPlan, for: statements) ? Self.setTenantWithGenericPlans(tenant) : self.setTenant(tenant)
        return try await Self.translatingPoolErrors {
            var attempt = 1
            while true {
                do {
                    return try await self.pool.transaction(statements, prelude: [prelude], share: tenant.tenantID)
                } catch let error as PostgresError where Self.isConcurrencyFailure(error) && attempt < Self.concurrencyAttempts {
                    attempt += 1
                    self.concurrencyRetries.add(1, ordering: .relaxed)
                    self.logger.info("transaction run again", metadata: ["sqlstate": "\(error.sqlState ?? "")", "attempt": "\(attempt)"])
                }
            }
        }
    }

    /// How many times a one-round-trip transaction is run when PostgreSQL fails it for a
    /// deadlock or a serialization failure.
    static let concurrencyAttempts = 3

    /// Transactions run again after a deadlock or serialization failure, since start.
    package var transactionsRetried: Int {
        self.concurrencyRetries.load(ordering: .relaxed)
    }

    static func isConcurrencyFailure(_ error: PostgresError) -> Bool {
        error.sqlState == PostgresError.SQLState.deadlockDetected || error.sqlState == PostgresError.SQLState.serializationFailure
    }

    /// Runs one statement scoped to `tenant`.
    ///
    /// With `set_config` scoping, no `BEGIN`/`COMMIT`: PostgreSQL runs the tenant setting and the
    /// statement in the implicit transaction that lasts until the batch's pipeline sync, which is
    /// atomic all the same and saves two statements on the hottest paths (reading a record is
    /// one of them). `SET LOCAL` needs a transaction block, so on Citus it is one, still in one
    /// round trip.
    ///
    /// `genericPlan`: the statement's best plan is the same whatever its values, so PostgreSQL
    /// should run the plan it made once for the prepared statement rather than plan again for
    /// each execution. Left to itself it compares the generic plan's estimate, made for a
    /// tenant of average size, with plans made for the values; where one tenant holds most of
    /// a table the two differ (a `LIMIT` stops sooner in a big tenant), so it plans every
    /// execution to arrive at the same plan, which costs more than running it. Applies to
    /// prepared statements with `set_config` scoping: unnamed statements (a transaction
    /// pooler's) are planned each time anyway, and Citus plans distributed statements its own way.
    package func query(in tenant: TenantContext, _ statement: PostgresQuery, genericPlan: Bool = false) async throws -> PostgresRows {
        let setLocal = self.scopingIsSetLocal.load(ordering: .relaxed)
        let prelude = self.usesGenericPlans(genericPlan, for: [statement]) ? Self.setTenantWithGenericPlans(tenant) : Self.setTenant(tenant, setLocal: setLocal)
        return try await Self.translatingPoolErrors {
            try await self.pool.execute(
                PipelineBatch(statements: [statement], prelude: [prelude], transaction: setLocal),
                share: tenant.tenantID
            )[0]
        }
    }

    /// An interactive transaction scoped to `tenant`, for work whose next statement depends on
    /// the last result. Commits when `body` returns, rolls back when it throws.
    package func withTransaction<Result>(
        in tenant: TenantContext,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        try await Self.translatingPoolErrors {
            try await self.pool.withTransaction(prelude: [self.setTenant(tenant)], share: tenant.tenantID, body)
        }
    }

    /// A read-only REPEATABLE READ transaction scoped to `tenant`: every query in it sees the
    /// same snapshot (for exports that page through a lot of data).
    package func withSnapshot<Result>(
        in tenant: TenantContext,
        _ body: (PostgresTransaction) async throws -> Result
    ) async throws -> Result {
        try await Self.translatingPoolErrors {
            try await self.pool.withTransaction(
                prelude: ["SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", self.setTenant(tenant)],
                share: tenant.tenantID,
                body
            )
        }
    }

    /// Runs statements that touch no tenant table (or only through the narrow SECURITY DEFINER
    /// functions made for that), in one transaction.
    package func unscopedTransaction(_ statements: [PostgresQuery]) async throws -> [PostgresRows] {
        try await Self.translatingPoolErrors {
            try await self.pool.transaction(statements, prelude: [self.setTenant(nil)])
        }
    }

    /// Whether PostgreSQL answers, within `timeout`.
    public func isReachable(timeout: Duration = .seconds(2)) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                (try? await self.pool.query("SELECT 1")) != nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// A setting's value on a pooled connection, as the server's defaults for the role leave it.
    public func serverSetting(_ name: String) async throws -> String {
        try await Self.translatingPoolErrors {
            try await self.pool.query("SELECT pg_catalog.current_setting(\(name))")[0].decode(String.self, column: 0)
        }
    }

    /// Refuses a service role that row-level security would not restrain.
    public func verifyServiceRole() async throws {
        let rows = try await self.pool.query("""
            SELECT current_user::text, rolsuper, rolbypassrls
            FROM pg_catalog.pg_roles WHERE rolname = current_user
            """)
        guard let row = rows.single else { return }
        let (user, superuser, bypass) = try row.decode((String, Bool, Bool).self)
        if superuser || bypass {
            throw DatabaseError(
                "the service connects as \(user), which \(superuser ? "is a superuser" : "has BYPASSRLS"): "
                    + "row-level security would not apply. Connect as atrium_app (DATABASE_URL) and give the owner "
                    + "role to migrations only (ATRIUM_MIGRATION_DATABASE_URL)."
            )
        }
    }

    /// The pool's own failures in the domain's words, so that callers above never handle a
    /// `PostgresError` that is not about their SQL: a full pool and a lost database are both
    /// "unavailable, retry" (soon, and in a few seconds). Errors of the statements themselves
    /// (constraint violations and the like) pass through for the service that wrote them.
    static func translatingPoolErrors<Result>(_ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch let error as PostgresError {
            throw Self.domainError(for: error) ?? error
        }
    }

    static func domainError(for error: PostgresError) -> AtriumError? {
        switch error.code {
        case .acquireTimeout:
            AtriumError(.unavailable, "the service is busy; retry shortly", retryAfter: 1, cause: "database pool exhausted: \(error.message)")
        case .connectionFailed, .connectionClosed, .poolClosed:
            AtriumError(.unavailable, "the database cannot be reached; retry shortly", retryAfter: 5, cause: "database unreachable: \(error.message)")
        default:
            // Nothing of the request was written: it may be sent again as it is.
            Self.isConcurrencyFailure(error)
                ? AtriumError(.unavailable, "the request met a concurrent change and was not applied; retry it", retryAfter: 1, cause: "\(error.sqlState ?? ""): \(error.message)")
                : nil
        }
    }

    func setTenant(_ tenant: TenantContext?) -> PostgresQuery {
        Self.setTenant(tenant, setLocal: self.scopingIsSetLocal.load(ordering: .relaxed))
    }

    /// The statement that scopes a transaction to `tenant` (none: no tenant rows at all).
    ///
    /// `set_config` does what `atrium.set_tenant` does, called directly: a prepared statement
    /// PostgreSQL plans once per connection, where the function's body (PL/pgSQL running a
    /// dynamic `SET LOCAL`) would be parsed again on every request; local to the transaction,
    /// explicit or implicit. `SET LOCAL` takes no parameter: the value is the text of a `UUID`
    /// (hex digits and hyphens only, never a client's text), sent unprepared.
    static func setTenant(_ tenant: TenantContext?, setLocal: Bool) -> PostgresQuery {
        if setLocal {
            return .oneOff(unsafeSQL: "SET LOCAL atrium.tenant_id = '\(tenant?.tenantID.lowercasedString ?? "")'")
        }
        return "SELECT pg_catalog.set_config('atrium.tenant_id', \(tenant?.tenantID.lowercasedString ?? ""), true)"
    }

    /// Whether statements that asked for their generic plan get it: prepared ones, with
    /// `set_config` scoping, not behind a transaction pooler (see `query(in:_:genericPlan:)`).
    private func usesGenericPlans(_ asked: Bool, for statements: [PostgresQuery]) -> Bool {
        asked && !self.scopingIsSetLocal.load(ordering: .relaxed) && !self.pool.configuration.connection.transactionPooling
            && statements.allSatisfy(\.isPrepared)
    }

    /// `setTenant` with `set_config` scoping, and prepared statements run on their generic plan
    /// until the transaction ends (see `query(in:_:genericPlan:)`): one statement still.
    ///
    /// The generic plan is costed for a tenant of average size, which can be a handful of
    /// records (the planner multiplies the tenant's and the collection's shares). For so few,
    /// reading them all and sorting could look as cheap as walking the sort's index, and in a
    /// big tenant it would read every record for each page. With `enable_sort` off an explicit
    /// sort is the last resort, so the page walks the index that gives its order wherever
    /// there is one (`PlanCacheTests` checks the plan).
    static func setTenantWithGenericPlans(_ tenant: TenantContext) -> PostgresQuery {
        """
        SELECT pg_catalog.set_config('atrium.tenant_id', \(tenant.tenantID.lowercasedString), true), \
        pg_catalog.set_config('plan_cache_mode', 'force_generic_plan', true), \
        pg_catalog.set_config('enable_sort', 'off', true)
        """
    }
}

/// How a transaction tells PostgreSQL its tenant, which every row-level security policy reads.
public enum TenantScoping: String, Sendable, CustomStringConvertible {
    /// `set_config('atrium.tenant_id', $1, true)`: a prepared statement, and a single statement
    /// runs without `BEGIN`/`COMMIT` in the pipeline's implicit transaction. Plain PostgreSQL.
    case setConfig = "set_config"
    /// `BEGIN; SET LOCAL atrium.tenant_id = '…'; …; COMMIT`, still in one round trip: the only
    /// form Citus passes on to the worker shards (with `citus.propagate_set_commands = 'local'`
    /// on the service role), where `set_config` and a `SET LOCAL` outside a transaction block
    /// leave the shards without a tenant.
    case setLocal = "set_local"

    public var description: String { self.rawValue }
}

/// `ATRIUM_TENANT_SCOPING`: a fixed `TenantScoping`, or chosen at start from the database.
public enum TenantScopingSetting: Sendable, Equatable {
    /// `set_local` when the `citus` extension is installed in the database, else `set_config`.
    case automatic
    case fixed(TenantScoping)

    public init?(rawValue: String) {
        if rawValue == "auto" {
            self = .automatic
        } else if let fixed = TenantScoping(rawValue: rawValue) {
            self = .fixed(fixed)
        } else {
            return nil
        }
    }
}

/// A database setup problem worth a clear message (not a query failure).
public struct DatabaseError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
