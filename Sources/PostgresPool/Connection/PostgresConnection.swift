import CLibPQ
import DequeModule
import Dispatch
import Logging
import Synchronization

/// One libpq connection, driven without blocking from its own serial `DispatchQueue`.
///
/// Every libpq call for the connection happens on `queue`. Socket readiness arrives through
/// Dispatch sources; results go back to async callers through continuations. The connection
/// stays in pipeline mode, so a whole batch of statements costs one round trip.
public final class PostgresConnection: @unchecked Sendable {
    /// Unique within the process; used in logs.
    public let id: Int
    /// The owning pool's key for this connection (0 outside a pool).
    let poolKey: Int
    let queue: DispatchQueue
    let logger: Logger
    let configuration: PostgresConfiguration

    // Everything below is touched only on `queue`.
    var pg: OpaquePointer?
    var socket: SocketSource?
    var state: State = .initial
    var statements: StatementCache
    var pendingDeallocations: [String] = []
    /// Cancel requests sent to the server whose reply has not come back yet. While any are out,
    /// the connection takes no new work, so a late cancel cannot hit the next request.
    var cancelsInFlight = 0
    /// A borrowed connection was given back while its round still ran: it settles (and
    /// returns to the pool) when the round ends.
    var releasePending = false
    /// When the connection last heard from PostgreSQL or sent it work (uptime nanoseconds).
    var lastProgress: UInt64 = 0
    var notificationHandler: (@Sendable (PostgresNotification) -> Void)?
    var closeWaiters: [CheckedContinuation<PostgresError, Never>] = []
    weak var delegate: (any PostgresConnectionDelegate)?

    enum State {
        case initial
        case connecting(ConnectAttempt)
        case idle
        case busy(Round)
        /// Finished its work; waiting for a cancel request to come back before taking more.
        case settling
        case closed(PostgresError)
    }

    init(id: Int, poolKey: Int = 0, configuration: PostgresConfiguration, statementCacheCapacity: Int, logger: Logger) {
        self.id = id
        self.poolKey = poolKey
        self.configuration = configuration
        self.statements = StatementCache(capacity: statementCacheCapacity)
        var logger = logger
        logger[metadataKey: "db.connection.id"] = "\(id)"
        self.logger = logger
        self.queue = DispatchQueue(label: "atrium.postgres.connection.\(id)")
        self.queue.setSpecific(key: Self.queueKey, value: id)
    }

    /// Set on every connection's queue, to tell whether code runs on one.
    private static let queueKey = DispatchSpecificKey<Int>()

    /// Runs `body` on the connection's queue: right here on the calling thread when it is on
    /// no connection's queue (one thread switch fewer on the way to PostgreSQL; the queue is
    /// only ever busy for the microseconds a libpq call takes), asynchronously otherwise, so
    /// two connections can never wait for each other.
    func performSoon(_ body: @escaping @Sendable () -> Void) {
        if DispatchQueue.getSpecific(key: Self.queueKey) == nil {
            self.queue.sync(execute: body)
        } else {
            self.queue.async(execute: body)
        }
    }

    deinit {
        if let pg { PQfinish(pg) }
    }

    /// Opens a connection (outside any pool), for listeners, migrations and tools.
    public static func connect(
        configuration: PostgresConfiguration,
        id: Int = PostgresConnection.nextID(),
        statementCacheCapacity: Int = 256,
        logger: Logger
    ) async throws -> PostgresConnection {
        let connection = PostgresConnection(
            id: id,
            configuration: configuration,
            statementCacheCapacity: statementCacheCapacity,
            logger: logger
        )
        try await connection.open()
        return connection
    }

    private static let connectionIDs = Atomic<Int>(0)
    private static let requestIDs = Atomic<Int>(0)

    /// A process-wide unique connection id.
    public static func nextID() -> Int {
        self.connectionIDs.add(1, ordering: .relaxed).newValue
    }

    /// A process-wide unique request id, used to target cancellation.
    static func nextRequestID() -> Int {
        self.requestIDs.add(1, ordering: .relaxed).newValue
    }

    /// Whether the connection has ended (broken or closed).
    public var isClosed: Bool {
        self.queue.sync {
            if case .closed = self.state { return true }
            return false
        }
    }
}

/// What the pool hears from a connection it owns; called on the connection's queue.
protocol PostgresConnectionDelegate: AnyObject, Sendable {
    func connectionBecameIdle(_ connection: PostgresConnection)
    func connectionClosed(_ connection: PostgresConnection, error: PostgresError)
}

/// A notification delivered through LISTEN/NOTIFY.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// Backend process id of the sender.
    public var processID: Int32
}

