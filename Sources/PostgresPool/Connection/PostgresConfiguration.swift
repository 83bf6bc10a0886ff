/// How to reach PostgreSQL and how each new connection is set up.
public struct PostgresConfiguration: Sendable {
    /// A libpq connection string: a `postgresql://` URL or `key=value` pairs.
    public var connectionString: String
    /// Reported in `pg_stat_activity.application_name`.
    public var applicationName: String
    /// `statement_timeout` for every statement on the connection; nil leaves the server default.
    public var statementTimeout: Duration?
    /// `idle_in_transaction_session_timeout`; ends sessions whose owner stopped mid-transaction.
    public var idleInTransactionTimeout: Duration?
    /// Whether PostgreSQL may run a statement of this connection with parallel workers. Off by
    /// default: a pooled connection serves one request at a time, and a parallel plan starts
    /// worker processes for it (milliseconds, where a page takes a fraction of one) and lets
    /// that one request take several cores and the cluster's few workers
    /// (`max_parallel_workers`, 8), which every other request shares — past the fair share of
    /// connections the pool gives each tenant. PostgreSQL chose one for a filtered, sorted page
    /// of a million records whenever its statistics made the walk look long: the same index
    /// walked three times for 20 records.
    public var parallelQuery: Bool
    /// How long establishing a connection may take (libpq does not enforce this in nonblocking mode).
    public var connectTimeout: Duration
    /// Further settings sent at startup (`-c name=value`).
    public var settings: [String: String]
    /// How long a connection waits for PostgreSQL to answer after a caller gave up on a
    /// request (and a cancel was sent) before it is closed as unresponsive.
    public var cancelGracePeriod: Duration
    /// Set when connections go through a pooler in transaction mode (PgBouncer 1.18): the
    /// server behind one client connection changes between transactions, so nothing may live
    /// longer than a transaction. Statements are sent unnamed (a statement prepared on one
    /// server is unknown to the next), one batch per round (a pooler that does not count
    /// syncs hands the server to another client at the first one), and no `options` are sent
    /// at startup (PgBouncer refuses them): the session settings above must come from the
    /// role or the pooler instead (`ALTER ROLE … SET`, PgBouncer's `query_timeout`), and the
    /// time zone and date style from `PGTZ`/`PGDATESTYLE`, which PgBouncer passes on.
    public var transactionPooling: Bool

    public init(
        connectionString: String,
        applicationName: String = "atrium",
        statementTimeout: Duration? = .seconds(30),
        idleInTransactionTimeout: Duration? = .seconds(60),
        parallelQuery: Bool = false,
        connectTimeout: Duration = .seconds(10),
        settings: [String: String] = [:],
        cancelGracePeriod: Duration = .seconds(1),
        transactionPooling: Bool = false
    ) {
        self.connectionString = connectionString
        self.applicationName = applicationName
        self.statementTimeout = statementTimeout
        self.idleInTransactionTimeout = idleInTransactionTimeout
        self.parallelQuery = parallelQuery
        self.connectTimeout = connectTimeout
        self.settings = settings
        self.cancelGracePeriod = cancelGracePeriod
        self.transactionPooling = transactionPooling
    }

    /// libpq keyword/value pairs; `dbname` carries the connection string so libpq expands it.
    var keywordValues: [(String, String)] {
        guard !self.transactionPooling else {
            return [("dbname", self.connectionString), ("application_name", self.applicationName), ("client_encoding", "UTF8")]
        }
        // Decoding relies on these: ISO timestamps in UTC, UTF-8 text.
        var options: [(String, String)] = [("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "iso_8601")]
        if let statementTimeout {
            options.append(("statement_timeout", "\(statementTimeout.milliseconds)"))
        }
        if let idleInTransactionTimeout {
            options.append(("idle_in_transaction_session_timeout", "\(idleInTransactionTimeout.milliseconds)"))
        }
        if !self.parallelQuery {
            options.append(("max_parallel_workers_per_gather", "0"))
        }
        // A backend whose client went away (a connection abandoned as unresponsive) stops its
        // query within a few seconds instead of running it to the end.
        options.append(("client_connection_check_interval", "2000"))
        for (name, value) in self.settings.sorted(by: { $0.key < $1.key }) {
            options.append((name, value))
        }
        let optionString = options
            .map { "-c \($0.0)=\(Self.escapeOption($0.1))" }
            .joined(separator: " ")
        return [
            ("dbname", self.connectionString),
            ("application_name", self.applicationName),
            ("client_encoding", "UTF8"),
            ("options", optionString),
        ]
    }

    /// In libpq's `options`, spaces separate arguments and a backslash escapes the next character.
    private static func escapeOption(_ value: String) -> String {
        var escaped = ""
        for character in value {
            if character == " " || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

extension Duration {
    /// Whole milliseconds, rounded up so a tiny positive duration never becomes "no timeout" (0).
    var milliseconds: Int64 {
        let (seconds, attoseconds) = self.components
        let millis = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return attoseconds % 1_000_000_000_000_000 > 0 ? millis + 1 : millis
    }

    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = self.components
        return UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds / 1_000_000_000))
    }
}
