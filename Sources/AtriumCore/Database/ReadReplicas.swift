import AtriumText
import Foundation
package import Logging
package import PostgresPool
public import ServiceLifecycle
import Synchronization

/// A position in PostgreSQL's write-ahead log, as `pg_lsn` prints it (`16/B374D848`).
public struct WALPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let value: UInt64

    public init(_ value: UInt64) {
        self.value = value
    }

    /// Parses `X/Y` (each 1-8 hex digits); nil for anything else.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ (1...8).contains($0.count) && $0.allSatisfy(\.isHexDigit) }),
              let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16)
        else { return nil }
        self.value = high << 32 | low
    }

    public var description: String {
        String(self.value >> 32, radix: 16, uppercase: true) + "/" + String(self.value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (lhs: WALPosition, rhs: WALPosition) -> Bool { lhs.value < rhs.value }
}

/// What a read in this task may be served from; set per request by the HTTP layer.
public enum ReadConsistency: Sendable, Hashable {
    /// Any replica within the lag bound (the client did not ask for more).
    case anyReplica
    /// A replica that has replayed at least this position (the client's consistency token: a
    /// write it made), else the primary.
    case atLeast(WALPosition)

    /// Unset outside a read request: reads then go to the primary.
    @TaskLocal public static var current: ReadConsistency?
}

/// Read replicas (`ATRIUM_READ_DATABASE_URL`): a pool for each, and what each has replayed,
/// polled twice a second (a poll unanswered for a second counts as unreachable). A read goes to a replica that is in recovery, lags less than
/// `maxLag` and has replayed the client's consistency token; round robin among those, else
/// the primary. A replica that stops answering or falls behind is skipped until it catches up.
public final class ReadReplicas: Service, Sendable {
    struct State: Sendable {
        var usable = false
        var replayed = WALPosition(0)
        var lag: Duration?
    }

    /// One replica: its database (pool) and its last known state.
    final class Replica: Sendable {
        let database: Database
        let name: String
        let state = Mutex(State())
        let reads = Atomic<Int>(0)

        init(database: Database, name: String) {
            self.database = database
            self.name = name
        }
    }

    let replicas: [Replica]

    /// Each replica's database (to configure them like the primary's).
    var databases: [Database] { self.replicas.map(\.database) }
    let maxLag: Duration
    let pollInterval: Duration
    /// How long a poll may take before the replica counts as unreachable.
    let pollTimeout: Duration
    let logger: Logger
    private let next = Atomic<Int>(0)
    private let primaryReads = Atomic<Int>(0)

    package init(configurations: [PoolConfiguration], maxLag: Duration, pollInterval: Duration = .milliseconds(500), logger: Logger) {
        self.replicas = configurations.enumerated().map { index, configuration in
            var configuration = configuration
            configuration.connection.applicationName = "atrium-read"
            return Replica(database: Database(pool: ConnectionPool(configuration: configuration, logger: logger), logger: logger), name: "replica\(index + 1)")
        }
        self.maxLag = maxLag
        self.pollInterval = pollInterval
        self.pollTimeout = max(pollInterval * 2, .seconds(1))
        self.logger = logger
    }

    /// The replica to read from under `consistency`, or nil for the primary.
    func choose(_ consistency: ReadConsistency?) -> Replica? {
        guard let consistency else { return nil }
        let start = self.next.add(1, ordering: .relaxed).oldValue
        for offset in 0..<self.replicas.count {
            let replica = self.replicas[(start + offset) % self.replicas.count]
            let state = replica.state.withLock { $0 }
            guard state.usable else { continue }
            if case .atLeast(let position) = consistency, state.replayed < position { continue }
            replica.reads.add(1, ordering: .relaxed)
            return replica
        }
        self.primaryReads.add(1, ordering: .relaxed)
        return nil
    }

    /// A replica that could not serve a read is left out until a poll finds it well again.
    func skip(_ replica: Replica, because error: any Error) {
        let wasUsable = replica.state.withLock { state in
            defer { state.usable = false }
            return state.usable
        }
        replica.reads.add(-1, ordering: .relaxed)
        self.primaryReads.add(1, ordering: .relaxed)
        if wasUsable {
            self.logger.notice("read replica skipped after a failed read; reading from the primary", metadata: ["replica": "\(replica.name)", "error": "\(error)"])
        }
    }

    /// Reads served by each target since start, and each replica's last measured lag.
    public var statistics: (primaryReads: Int, replicas: [(name: String, reads: Int, lag: Duration?, usable: Bool)]) {
        (
            self.primaryReads.load(ordering: .relaxed),
            self.replicas.map { replica in
                let state = replica.state.withLock { $0 }
                return (replica.name, replica.reads.load(ordering: .relaxed), state.lag, state.usable)
            }
        )
    }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for replica in self.replicas {
                group.addTask { try? await replica.database.run() }
            }
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    await withTaskGroup(of: Void.self) { polls in
                        for replica in self.replicas {
                            polls.addTask { await self.poll(replica) }
                        }
                    }
                    try? await Task.sleep(for: self.pollInterval)
                }
            }
            group.cancelAll()
        }
    }

    /// What the replica has replayed and how far behind it is. The lag is 0 while it has
    /// replayed everything it received, else the age of the last transaction it replayed. A
    /// replica that does not answer within `pollTimeout` (frozen, or its host gone without a
    /// word) is unusable until it does.
    func poll(_ replica: Replica) async {
        let state = await withTimeLimit(self.pollTimeout) { await self.measure(replica) } ?? State()
        self.update(replica, to: state)
    }

    private func measure(_ replica: Replica) async -> State {
        var state = State()
        do {
            let rows = try await replica.database.pool.query("""
                SELECT pg_catalog.pg_is_in_recovery(), coalesce(pg_catalog.pg_last_wal_replay_lsn(), '0/0')::text,
                       CASE WHEN pg_catalog.pg_last_wal_receive_lsn() IS NULL OR pg_catalog.pg_last_wal_receive_lsn() = pg_catalog.pg_last_wal_replay_lsn() THEN 0
                            ELSE extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp()) END::float8
                """)
            let (recovering, replayed, lag) = try rows[0].decode((Bool, String, Double).self)
            state.replayed = WALPosition(replayed) ?? WALPosition(0)
            state.lag = .milliseconds(Int64(max(0, lag) * 1000))
            // A replica that was promoted has left the primary's timeline: never read from it.
            state.usable = recovering && state.lag! <= self.maxLag
        } catch {
            state.usable = false
        }
        return state
    }

    private func update(_ replica: Replica, to state: State) {
        let previous = replica.state.withLock { current in
            defer { current = state }
            return current.usable
        }
        if previous != state.usable {
            self.logger.notice(state.usable ? "read replica in use" : "read replica skipped (unreachable, promoted, or lagging)", metadata: [
                "replica": "\(replica.name)", "lag": "\(state.lag.map { "\($0)" } ?? "unknown")",
            ])
        }
    }
}

extension Database {
    /// Runs a read on a replica that satisfies `ReadConsistency.current`, or on this database
    /// (the primary). A replica that is unreachable or busy (`unavailable`) is skipped and the
    /// read runs again on the primary: reading is safe to repeat, and the primary is always
    /// up to date.
    package func reading<Result>(_ body: (Database) async throws -> Result) async throws -> Result {
        guard let replicas = self.replicas, let replica = replicas.choose(ReadConsistency.current) else {
            return try await body(self)
        }
        do {
            return try await body(replica.database)
        } catch let error as AtriumError where error.code == .unavailable {
            replicas.skip(replica, because: error)
            return try await body(self)
        }
    }

    /// The primary's current WAL insert position: every transaction committed before the call
    /// ends at or before it, so a replica that has replayed it sees them all.
    public func currentWALPosition() async throws -> WALPosition {
        try await Self.translatingPoolErrors {
            let text = try await self.pool.query("SELECT pg_catalog.pg_current_wal_insert_lsn()::text")[0].decode(String.self, column: 0)
            guard let position = WALPosition(text) else { throw DatabaseError("pg_current_wal_insert_lsn() returned \(text)") }
            return position
        }
    }
}
