/// Sizing and timing of a `ConnectionPool`.
public struct PoolConfiguration: Sendable {
    /// Where and how connections are opened.
    public var connection: PostgresConfiguration
    /// Most connections open at once.
    public var maxConnections: Int
    /// Connections kept open even when idle.
    public var minConnections: Int
    /// How long a caller waits for a connection before failing with `acquireTimeout`.
    public var acquireTimeout: Duration
    /// An idle connection is pinged (`SELECT 1`) after this long, so a dead one is found before a caller is.
    public var keepAliveInterval: Duration
    /// Idle connections above `minConnections` are closed after this long.
    public var idleTimeout: Duration
    /// First delay before reconnecting after a failed attempt; doubles up to `maxReconnectDelay`
    /// (100 ms, 200 ms, … 1 s by default: PostgreSQL is found again within about a second of
    /// coming back, at the cost of one connection attempt a second while it is down).
    public var reconnectDelay: Duration
    public var maxReconnectDelay: Duration
    /// How often `run()` does maintenance (keep-alive, idle close, warm-up).
    public var maintenanceInterval: Duration
    /// Prepared statements kept per connection.
    public var statementCacheCapacity: Int
    /// Most queued batches one connection takes at once and sends in a single write (each with
    /// its own sync, so each succeeds or fails alone). 1 turns this off.
    public var pipelineDepth: Int
    /// About how long one tenant's batches may keep a connection in one round: a tenant whose
    /// batches have been slow gets fewer of them into a round (at least one), so that another
    /// tenant waiting for a connection waits about this long, not `pipelineDepth` of its slow
    /// statements. Rounds of fast statements are not affected.
    public var roundBudget: Duration
    /// Longest a query waits for a busy connection's next round while another connection is
    /// idle. Under load a round of several queries costs PostgreSQL and this process far less
    /// than as many rounds of one, so while at least two connections are in rounds that
    /// lately took under half of this, a new query joins the next of them rather than waking
    /// an idle connection; after this long it takes an idle one. `.zero` turns this off.
    public var gatherDelay: Duration

    public init(
        connection: PostgresConfiguration,
        maxConnections: Int = 8,
        minConnections: Int = 0,
        acquireTimeout: Duration = .seconds(5),
        keepAliveInterval: Duration = .seconds(30),
        idleTimeout: Duration = .seconds(300),
        reconnectDelay: Duration = .milliseconds(100),
        maxReconnectDelay: Duration = .seconds(1),
        maintenanceInterval: Duration = .seconds(1),
        statementCacheCapacity: Int = 256,
        pipelineDepth: Int = 8,
        roundBudget: Duration = .milliseconds(20),
        gatherDelay: Duration = .milliseconds(2)
    ) {
        precondition(maxConnections >= 1, "a pool needs at least one connection")
        self.connection = connection
        self.maxConnections = maxConnections
        self.minConnections = min(max(0, minConnections), maxConnections)
        self.acquireTimeout = acquireTimeout
        self.keepAliveInterval = keepAliveInterval
        self.idleTimeout = idleTimeout
        self.reconnectDelay = reconnectDelay
        self.maxReconnectDelay = maxReconnectDelay
        self.maintenanceInterval = maintenanceInterval
        self.statementCacheCapacity = statementCacheCapacity
        self.pipelineDepth = max(1, pipelineDepth)
        self.roundBudget = roundBudget
        self.gatherDelay = gatherDelay
    }
}

/// A snapshot of the pool's counters, for metrics and health checks.
public struct PoolStatistics: Sendable, Hashable {
    /// Established connections (idle or in use).
    public var open: Int
    /// Connections being established.
    public var connecting: Int
    public var idle: Int
    public var inUse: Int
    /// Callers waiting for a connection.
    public var waiting: Int
    /// Requests that got a connection, since the pool started.
    public var acquired: Int
    /// Requests that gave up waiting, since the pool started.
    public var timedOut: Int
    /// Connection attempts that failed, since the pool started.
    public var connectFailures: Int
    /// Batches sent again because an earlier batch in their round failed and they were skipped.
    public var retried: Int
    /// Batches that found a connection idle and waited for a busy one's next round instead.
    public var gathered: Int
}

/// How often one share (tenant) had to wait for a connection, and gave up waiting.
public struct ShareCounters: Sendable, Hashable {
    /// Requests that found no free connection and waited.
    public var waited = 0
    /// Requests that waited longer than the acquire timeout.
    public var timedOut = 0

    public init(waited: Int = 0, timedOut: Int = 0) {
        self.waited = waited
        self.timedOut = timedOut
    }
}
