import Dispatch
import Foundation
import Logging
import ServiceLifecycle

/// A pool of libpq connections that runs batches of statements for async callers.
///
/// Callers hand the pool work rather than borrowing a connection: a batch waits in a FIFO queue
/// and the next connection that turns idle takes it on its own queue, without a hop through the
/// Swift concurrency pool. Interactive work (`withConnection`, `withTransaction`) borrows a
/// connection instead. Run the pool as a `Service` so its maintenance (keep-alive, reconnects,
/// idle close) happens and it closes gracefully on shutdown.
public final class ConnectionPool: Service, Sendable {
    public let configuration: PoolConfiguration
    let logger: Logger
    private let shared: PoolLock<Shared>
    private let timerQueue = DispatchQueue(label: "atrium.postgres.pool.timer")
    private let timer: UnsafeSendable<any DispatchSourceTimer>

    private struct Shared {
        var machine: PoolStateMachine<PoolRequest>
        var connections: [Int: PostgresConnection] = [:]
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
        var shutdownDone = false
        /// When the acquire-timeout timer is set to fire, until it fires.
        var timerDeadline: UInt64?

        /// Whether the timer must be set for `deadline`. A waiter's deadline is never earlier
        /// than one already set (each is now + the acquire timeout), so under load the queue
        /// empties and fills again without touching the timer: setting a Dispatch timer wakes
        /// Dispatch's manager thread each time. Firing early is harmless (nothing expires; it
        /// is set again for the earliest deadline left).
        mutating func arm(_ deadline: UInt64) -> Bool {
            if let timerDeadline, timerDeadline <= deadline { return false }
            self.timerDeadline = deadline
            return true
        }
    }

    public init(configuration: PoolConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.shared = PoolLock(Shared(machine: PoolStateMachine(configuration: .init(
            maxConnections: configuration.maxConnections,
            minConnections: configuration.minConnections,
            acquireTimeout: configuration.acquireTimeout.nanoseconds,
            keepAliveInterval: configuration.keepAliveInterval.nanoseconds,
            idleTimeout: configuration.idleTimeout.nanoseconds,
            reconnectDelay: configuration.reconnectDelay.nanoseconds,
            maxReconnectDelay: configuration.maxReconnectDelay.nanoseconds,
            // Behind a transaction pooler a round holds one batch: see `transactionPooling`.
            pipelineDepth: configuration.connection.transactionPooling ? 1 : configuration.pipelineDepth,
            roundBudget: configuration.roundBudget.nanoseconds,
            gatherDelay: configuration.gatherDelay.nanoseconds
        ))))
        let timer = DispatchSource.makeTimerSource(queue: self.timerQueue)
        self.timer = UnsafeSendable(timer)
        timer.schedule(deadline: .distantFuture)
        timer.setEventHandler { [weak self] in self?.acquireTimerFired() }
        timer.resume()
    }

    deinit {
        self.timer.value.cancel()
    }

    /// A busy connection that hears nothing from PostgreSQL for this long (nanoseconds) is
    /// closed: a live server answers within `statement_timeout`.
    var silenceLimit: UInt64 {
        (self.configuration.connection.statementTimeout.map { $0 + .seconds(10) } ?? .seconds(120)).nanoseconds
    }

    /// The shares (tenants) that waited for connections most often, busiest first, with how
    /// often they waited and gave up waiting (up to 1000 shares are tracked).
    public func busiestShares(limit: Int) -> [(share: UUID, counters: ShareCounters)] {
        let counters = self.shared.withLock { $0.machine.shareCounters }
        return counters.sorted { ($0.value.waited, $0.value.timedOut) > ($1.value.waited, $1.value.timedOut) }
            .prefix(limit).map { ($0.key, $0.value) }
    }

    /// Current counters.
    public var statistics: PoolStatistics {
        self.shared.withLock { $0.machine.statistics }
    }

    /// Does maintenance until graceful shutdown or cancellation, then closes the pool.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.maintenanceInterval)
                guard !Task.isCancelled else { break }
                let now = Self.now()
                let (action, connections) = self.shared.withLock { ($0.machine.maintenance(now: now), Array($0.connections.values)) }
                self.handle(action)
                for connection in connections {
                    connection.checkForSilence(now: now, limit: self.silenceLimit)
                }
            }
        }
        await self.close()
    }

    /// Stops taking requests, lets running ones finish and closes every connection.
    public func close() async {
        self.handle(self.shared.withLock { $0.machine.shutdown() })
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = self.shared.withLock { shared -> Bool in
                if shared.shutdownDone { return true }
                shared.shutdownWaiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    static func now() -> UInt64 {
        DispatchTime.now().uptimeNanoseconds
    }

    // MARK: Requests

    func enqueue(_ request: PoolRequest) {
        self.handle(self.shared.withLock { $0.machine.enqueue(request, now: Self.now()) })
    }

    /// A request handed to a connection that turned out closed: it was never sent, so try again.
    private func requeue(_ request: PoolRequest) {
        self.handle(self.shared.withLock { $0.machine.enqueue(request, now: Self.now(), atFront: true) })
    }

    func cancel(requestID: Int) {
        let (action, connections) = self.shared.withLock { shared in
            let action = shared.machine.cancel(requestID: requestID)
            return (action, action.fail.isEmpty ? Array(shared.connections.values) : [])
        }
        // Not waiting any more, so perhaps running: the connection running it cancels it.
        for connection in connections {
            connection.cancelRequest(requestID)
        }
        self.handle(action)
    }

    /// Gives a borrowed connection back; it is rolled back first if a transaction was left open.
    func release(_ connection: PostgresConnection) {
        connection.performSoon {
            connection.settle()
        }
    }

    private func acquireTimerFired() {
        self.handle(self.shared.withLock { shared in
            shared.timerDeadline = nil
            return shared.machine.timerFired(now: Self.now())
        })
    }

    // MARK: Performing actions

    /// Carries out what the state machine decided; `current` is the connection whose queue we
    /// are on, if any, so work for it starts without another hop.
    private func handle(_ action: PoolStateMachine<PoolRequest>.Action, current: PostgresConnection? = nil) {
        for (request, error) in action.fail {
            request.fail(error)
        }
        if let (requests, key) = action.run {
            if let current, current.poolKey == key {
                self.run(requests, on: current, onQueue: true)
            } else if let connection = self.shared.withLock({ $0.connections[key] }) {
                self.run(requests, on: connection, onQueue: false)
            } else {
                requests.forEach(self.requeue)
            }
        }
        for key in action.create {
            self.openConnection(key)
        }
        if !action.close.isEmpty || !action.ping.isEmpty {
            let connections = self.shared.withLock { shared in
                (action.close.compactMap { shared.connections[$0] }, action.ping.compactMap { shared.connections[$0] })
            }
            for connection in connections.0 {
                connection.queue.async { connection.fail(.connectionClosed("closed by the pool")) }
            }
            for connection in connections.1 {
                self.ping(connection)
            }
        }
        if let deadline = action.armTimer, self.shared.withLock({ $0.arm(deadline) }) {
            self.timer.value.schedule(deadline: DispatchTime(uptimeNanoseconds: deadline))
        }
        if let retryAt = action.retryAt {
            self.timerQueue.asyncAfter(deadline: DispatchTime(uptimeNanoseconds: retryAt)) { [weak self] in
                guard let self else { return }
                self.handle(self.shared.withLock { $0.machine.retryConnecting(now: Self.now()) })
            }
        }
        if action.shutdownComplete {
            let waiters = self.shared.withLock { shared in
                shared.shutdownDone = true
                defer { shared.shutdownWaiters = [] }
                return shared.shutdownWaiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    private func run(_ requests: [PoolRequest], on connection: PostgresConnection, onQueue: Bool) {
        if requests.count == 1, case .lease(_, _, let continuation) = requests[0] {
            continuation.resume(returning: connection)
            return
        }
        let work = requests.map { request -> BatchWork in
            guard case .batch(let id, _, let batch, let continuation) = request else {
                preconditionFailure("a lease never shares a round")
            }
            return BatchWork(batch: batch, requestID: id) { outcome in
                switch outcome {
                case .rows(let rows): continuation.resume(returning: rows)
                case .failed(let error): continuation.resume(throwing: error)
                case .notExecuted: self.requeue(request)
                }
            }
        }
        let start: @Sendable () -> Void = {
            if !connection.start(work, returnsToPool: true) {
                requests.forEach(self.requeue)
            }
        }
        if onQueue { start() } else { connection.performSoon(start) }
    }

    private func openConnection(_ key: Int) {
        let connection = PostgresConnection(
            id: PostgresConnection.nextID(),
            poolKey: key,
            configuration: self.configuration.connection,
            statementCacheCapacity: self.configuration.statementCacheCapacity,
            logger: self.logger
        )
        connection.delegate = self
        self.shared.withLock { $0.connections[key] = connection }
        connection.queue.async {
            connection.startConnecting { result in
                switch result {
                case .success:
                    self.connectionBecameIdle(connection)
                case .failure(let error):
                    self.logger.warning("cannot connect to PostgreSQL", metadata: ["db.error": "\(error.message)"])
                    self.handle(self.shared.withLock { shared in
                        shared.connections[key] = nil
                        return shared.machine.connectFailed(key, error: error, now: Self.now())
                    })
                }
            }
        }
    }

    private func ping(_ connection: PostgresConnection) {
        connection.queue.async {
            // A closed connection has already told the pool, so the result does not matter.
            _ = connection.start(
                [BatchWork(batch: PipelineBatch(statements: ["SELECT 1"]), requestID: PostgresConnection.nextRequestID()) { _ in }],
                returnsToPool: true
            )
        }
    }
}

extension ConnectionPool: PostgresConnectionDelegate {
    func connectionBecameIdle(_ connection: PostgresConnection) {
        self.handle(
            self.shared.withLock { $0.machine.released(connection.poolKey, now: Self.now()) },
            current: connection
        )
    }

    func connectionClosed(_ connection: PostgresConnection, error: PostgresError) {
        self.logger.debug("pool connection closed", metadata: ["db.error": "\(error.message)"])
        self.handle(self.shared.withLock { shared in
            shared.connections[connection.poolKey] = nil
            return shared.machine.closed(connection.poolKey, now: Self.now())
        })
    }
}

/// A caller's request as the pool queues it.
enum PoolRequest: PoolRequestProtocol, Sendable {
    /// Run this batch on whichever connection comes free.
    case batch(id: Int, share: UUID?, PipelineBatch, UnsafeContinuation<[PostgresRows], any Error>)
    /// Hand over a connection for interactive use.
    case lease(id: Int, share: UUID?, UnsafeContinuation<PostgresConnection, any Error>)

    var id: Int {
        switch self {
        case .batch(let id, _, _, _), .lease(let id, _, _): id
        }
    }

    var share: UUID? {
        switch self {
        case .batch(_, let share, _, _), .lease(_, let share, _): share
        }
    }

    var canShareConnection: Bool {
        if case .batch = self { return true }
        return false
    }

    /// A batch in an implicit transaction (a read, nearly always) may wait for a busy
    /// connection's next round; one that commits a transaction block (a write) does not, as
    /// its commit waits for the WAL flush, and commits on separate connections share flushes
    /// where those of one round each wait for their own.
    var mayGather: Bool {
        if case .batch(_, _, let batch, _) = self { return !batch.transaction }
        return false
    }

    func fail(_ error: PostgresError) {
        switch self {
        case .batch(_, _, _, let continuation): continuation.resume(throwing: error)
        case .lease(_, _, let continuation): continuation.resume(throwing: error)
        }
    }
}
