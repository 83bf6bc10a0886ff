import DequeModule
import Foundation

/// Something a caller asked the pool for, identified for timeouts and cancellation.
protocol PoolRequestProtocol {
    var id: Int { get }
    /// Batches can share a round on one connection; a lease needs the connection to itself.
    var canShareConnection: Bool { get }
    /// Whose work it is (a tenant), for sharing contended connections fairly; nil for none.
    var share: UUID? { get }
    /// May wait for a busy connection's next round rather than take an idle one (a batch
    /// that is not a write: see `PoolStateMachine.gathers`).
    var mayGather: Bool { get }
}

/// The pool's decisions, without I/O or locks: each event returns what to do next and the
/// owner performs it outside the lock. Time is passed in (nanoseconds of a monotonic clock),
/// so tests drive it without waiting.
///
/// When callers wait, shares (tenants) take turns for the connections that come free, and
/// while another share waits no share is given more than half the connections: a tenant with
/// a backlog of slow requests slows itself, not its neighbours. A share whose batches have
/// been slow gets fewer of them into one round (`RoundCosts`), so a connection it holds comes
/// free after about `roundBudget`, not after eight of its slow statements.
///
/// With `gatherDelay` set, a batch that finds a connection idle while two or more are in
/// rounds of fast batches waits for the next of those rounds instead (see `gathers`; writes
/// never do, so that their commits' flushes overlap on separate connections): each
/// round trip wakes a PostgreSQL backend and a reader, so on a busy server one round of four
/// costs both sides far less than four rounds of one. It waits at most `gatherDelay`; then an
/// idle connection takes it.
struct PoolStateMachine<Request: PoolRequestProtocol> {
    struct Configuration {
        var maxConnections: Int
        var minConnections: Int
        var acquireTimeout: UInt64
        var keepAliveInterval: UInt64
        var idleTimeout: UInt64
        var reconnectDelay: UInt64
        var maxReconnectDelay: UInt64
        /// Most batches sent to one connection together (one round).
        var pipelineDepth: Int
        /// About how long (nanoseconds) one share's batches may keep a connection in one round.
        var roundBudget: UInt64 = 20_000_000
        /// Longest a batch waits for a busy connection's next round while another connection
        /// is idle (nanoseconds); 0 sends every batch to an idle connection at once.
        var gatherDelay: UInt64 = 0
    }

    enum ConnectionState: Equatable {
        case connecting
        case idle(since: UInt64)
        case busy
        case pinging
        case closing
    }

    typealias Waiter = WaitQueue<Request>.Waiter

    /// Everything one event asks the owner to do. Empty arrays cost nothing, so the hot path
    /// (`enqueue`, `released`) allocates nothing here.
    struct Action {
        /// Requests for one connection: a lease alone, or up to `pipelineDepth` batches.
        var run: (requests: [Request], connection: Int)?
        var fail: [(request: Request, error: PostgresError)] = []
        var create: [Int] = []
        var close: [Int] = []
        var ping: [Int] = []
        /// Re-arm the acquire-timeout timer for this instant.
        var armTimer: UInt64?
        /// Call `retryConnecting` at this instant.
        var retryAt: UInt64?
        var shutdownComplete = false
    }

    let configuration: Configuration
    private(set) var connections: [Int: ConnectionState] = [:]
    private var idleStack: [Int] = []
    private var waiters = WaitQueue<Request>()
    /// How many connections are working for each share now (a connection counts once for
    /// every share with a request in its round), and which shares each connection serves.
    /// Kept up to date by `PoolStateMachine+Shares.swift`, hence not private.
    var holders: [UUID?: Int] = [:]
    var servedBy: [Int: Served] = [:]
    var costs: RoundCosts

    /// The shares one connection works for: nearly always one, which needs no allocation.
    enum Served {
        case one(UUID?)
        case several(Set<UUID?>)
    }
    /// Waits and acquire timeouts per tenant, for metrics (at most `trackedShares` of them).
    var shareCounters: [UUID: ShareCounters] = [:]
    static var trackedShares: Int { 1000 }
    private var nextConnectionID = 0
    private var connectingCount = 0
    private var consecutiveFailures = 0
    private var backoffUntil: UInt64 = 0
    private var retryScheduled = false
    private(set) var lastConnectError: PostgresError?
    private(set) var isShuttingDown = false
    private var acquiredTotal = 0
    private var timedOutTotal = 0
    private var connectFailuresTotal = 0
    private var retriedTotal = 0
    private var gatheredTotal = 0

    init(configuration: Configuration) {
        self.configuration = configuration
        self.costs = RoundCosts(budget: configuration.roundBudget, depth: configuration.pipelineDepth)
    }

    var statistics: PoolStatistics {
        var inUse = 0
        for state in self.connections.values where state == .busy || state == .pinging {
            inUse += 1
        }
        return PoolStatistics(
            open: self.connections.count - self.connectingCount,
            connecting: self.connectingCount,
            idle: self.idleStack.count,
            inUse: inUse,
            waiting: self.waiters.count,
            acquired: self.acquiredTotal,
            timedOut: self.timedOutTotal,
            connectFailures: self.connectFailuresTotal,
            retried: self.retriedTotal,
            gathered: self.gatheredTotal
        )
    }

    // MARK: Requests

    /// A caller wants a connection; `atFront` for a request that was handed out but never sent.
    mutating func enqueue(_ request: Request, now: UInt64, atFront: Bool = false) -> Action {
        var action = Action()
        if self.isShuttingDown {
            action.fail.append((request, .poolClosed))
            return action
        }
        let waiter = Waiter(request: request, deadline: now &+ self.configuration.acquireTimeout, since: now)
        if let connection = self.idleStack.last {
            // Waiters while a connection is idle are gathered batches (`gathers`): a lease
            // does not wait behind them, and a batch that is not gathered takes them along.
            if !atFront, request.mayGather, self.gathers() {
                self.waiters.append(waiter)
                self.gatheredTotal += 1
                action.armTimer = now &+ self.configuration.gatherDelay
                return action
            }
            self.idleStack.removeLast()
            if self.waiters.isEmpty || !request.canShareConnection {
                self.connections[connection] = .busy
                self.acquiredTotal += 1
                self.serve([request], on: connection, now: now)
                action.run = ([request], connection)
            } else {
                self.waiters.append(waiter, atFront: atFront)
                self.startRound(on: connection, now: now, into: &action)
            }
            return action
        }
        if atFront {
            self.retriedTotal += 1
            self.waiters.append(waiter, atFront: true)
            action.armTimer = self.waiters.earliestDeadline
        } else {
            if self.waiters.isEmpty { action.armTimer = waiter.deadline }
            self.waiters.append(waiter)
            self.count(request.share) { $0.waited += 1 }
        }
        self.growIfNeeded(now: now, into: &action)
        return action
    }

    /// The caller gave up (task cancelled); fails it if it is still waiting.
    mutating func cancel(requestID: Int) -> Action {
        var action = Action()
        if let waiter = self.waiters.remove(id: requestID) {
            action.fail.append((waiter.request, .cancelled))
        }
        return action
    }

    /// The timer fired: fail every waiter past its deadline, and send gathered batches that
    /// waited `gatherDelay` to an idle connection.
    mutating func timerFired(now: UInt64) -> Action {
        var action = Action()
        while let expired = self.waiters.popExpired(now: now) {
            self.timedOutTotal += 1
            self.count(expired.request.share) { $0.timedOut += 1 }
            action.fail.append((expired.request, self.acquireTimeoutError()))
        }
        if let since = self.waiters.earliestSince, since &+ self.configuration.gatherDelay <= now, let connection = self.idleStack.popLast() {
            self.startRound(on: connection, now: now, into: &action)
        }
        action.armTimer = self.waiters.earliestDeadline
        if !self.idleStack.isEmpty, let since = self.waiters.earliestSince {
            action.armTimer = min(action.armTimer ?? .max, since &+ self.configuration.gatherDelay)
        }
        self.finishShutdownIfDone(into: &action)
        return action
    }

    /// Whether a batch that finds a connection idle should wait for a busy one's next round:
    /// at least two connections are in rounds (so one slow round does not hold everything),
    /// rounds lately took under half of `gatherDelay`, and the next round has room for it.
    /// Behind a transaction pooler (`pipelineDepth` 1) a round holds one batch: never.
    private func gathers() -> Bool {
        self.configuration.gatherDelay > 0
            && self.costs.roundsInFlight >= 2
            && self.costs.typicalRound < self.configuration.gatherDelay / 2
            && self.waiters.count + 1 < self.configuration.pipelineDepth
    }

    private func acquireTimeoutError() -> PostgresError {
        let seconds = Double(self.configuration.acquireTimeout) / 1e9
        if self.connections.count - self.connectingCount == 0, let lastConnectError {
            return PostgresError(
                code: .acquireTimeout,
                message: "no database connection within \(seconds)s; the last attempt failed: \(lastConnectError.message)"
            )
        }
        return PostgresError(
            code: .acquireTimeout,
            message: "no database connection became free within \(seconds)s (\(self.connections.count) of \(self.configuration.maxConnections) in use, \(self.waiters.count) waiting)"
        )
    }

    // MARK: Connections

    /// A connection finished its work (or came up, or answered a ping) and is clean.
    mutating func released(_ connection: Int, now: UInt64) -> Action {
        var action = Action()
        guard let state = self.connections[connection], state != .closing else { return action }
        if state == .connecting {
            self.connectingCount -= 1
            self.consecutiveFailures = 0
            self.lastConnectError = nil
        }
        self.unserve(connection, finishedAt: now)
        if !self.waiters.isEmpty {
            self.startRound(on: connection, now: now, into: &action)
            self.growIfNeeded(now: now, into: &action)
            return action
        }
        if self.isShuttingDown {
            self.connections[connection] = .closing
            action.close.append(connection)
            return action
        }
        self.connections[connection] = .idle(since: now)
        self.idleStack.append(connection)
        return action
    }

    /// Gives `connection` (no longer idle) a round of waiting requests. Under load, several
    /// waiting batches go in one round: one write, one wake-up for many results. Connections
    /// still coming up get an even share of the queue.
    private mutating func startRound(on connection: Int, now: UInt64, into action: inout Action) {
        let takers = 1 + self.connectingCount
        let limit = min(self.configuration.pipelineDepth, (self.waiters.count + takers - 1) / takers)
        let cap = max(1, self.configuration.maxConnections / 2)
        let (holders, costs) = (self.holders, self.costs)
        let requests = self.waiters.nextRound(
            limit: limit,
            mayTake: { share in holders[share, default: 0] < cap },
            allowance: costs.hasSlowShares ? { share in costs.allowance(for: share, limit: limit) } : nil
        )
        self.connections[connection] = .busy
        self.acquiredTotal += requests.count
        self.serve(requests, on: connection, now: now)
        action.run = (requests, connection)
    }

    /// Opening a connection failed: back off before the next attempt.
    mutating func connectFailed(_ connection: Int, error: PostgresError, now: UInt64) -> Action {
        var action = Action()
        guard self.connections.removeValue(forKey: connection) != nil else { return action }
        self.connectingCount -= 1
        self.consecutiveFailures += 1
        self.connectFailuresTotal += 1
        self.lastConnectError = error
        let exponent = min(self.consecutiveFailures - 1, 16)
        let delay = min(self.configuration.reconnectDelay << UInt64(exponent), self.configuration.maxReconnectDelay)
        self.backoffUntil = now &+ delay
        if !self.waiters.isEmpty || self.connections.count < self.configuration.minConnections, !self.retryScheduled {
            self.retryScheduled = true
            action.retryAt = self.backoffUntil
        }
        self.finishShutdownIfDone(into: &action)
        return action
    }

    /// The backoff delay is over.
    mutating func retryConnecting(now: UInt64) -> Action {
        var action = Action()
        self.retryScheduled = false
        self.growIfNeeded(now: now, into: &action)
        return action
    }

    /// An established connection ended (broken, or closed on purpose).
    mutating func closed(_ connection: Int, now: UInt64) -> Action {
        var action = Action()
        guard let state = self.connections.removeValue(forKey: connection) else { return action }
        self.unserve(connection, finishedAt: nil)
        if state == .connecting { self.connectingCount -= 1 }
        if case .idle = state, let index = self.idleStack.firstIndex(of: connection) {
            self.idleStack.remove(at: index)
        }
        self.growIfNeeded(now: now, into: &action)
        self.finishShutdownIfDone(into: &action)
        return action
    }

    /// Periodic housekeeping: ping long-idle connections, close surplus idle ones, keep the minimum open.
    mutating func maintenance(now: UInt64) -> Action {
        var action = Action()
        guard !self.isShuttingDown else { return action }
        var keep: [Int] = []
        // idleStack is oldest-first; surplus connections idle too long are closed oldest-first.
        var surplus = self.connections.count - self.configuration.minConnections
        for connection in self.idleStack {
            guard case .idle(let since) = self.connections[connection] else { continue }
            let idleFor = now &- since
            if surplus > 0, idleFor >= self.configuration.idleTimeout {
                surplus -= 1
                self.connections[connection] = .closing
                action.close.append(connection)
            } else if idleFor >= self.configuration.keepAliveInterval {
                self.connections[connection] = .pinging
                action.ping.append(connection)
            } else {
                keep.append(connection)
            }
        }
        self.idleStack = keep
        self.growIfNeeded(now: now, into: &action)
        return action
    }

    /// Stop taking requests: waiting callers fail, idle connections close now, busy ones once
    /// their current work is done.
    mutating func shutdown() -> Action {
        var action = Action()
        self.isShuttingDown = true
        for waiter in self.waiters.removeAll() {
            action.fail.append((waiter.request, .poolClosed))
        }
        action.armTimer = nil
        for connection in self.idleStack {
            self.connections[connection] = .closing
            action.close.append(connection)
        }
        self.idleStack.removeAll()
        self.finishShutdownIfDone(into: &action)
        return action
    }

    /// Opens connections while callers wait for them, within the limit and outside a backoff.
    private mutating func growIfNeeded(now: UInt64, into action: inout Action) {
        guard !self.isShuttingDown else { return }
        let wanted = max(self.waiters.count, self.configuration.minConnections - self.connections.count + self.connectingCount)
        guard wanted > self.connectingCount, self.connections.count < self.configuration.maxConnections else { return }
        if now < self.backoffUntil {
            if !self.retryScheduled {
                self.retryScheduled = true
                action.retryAt = self.backoffUntil
            }
            return
        }
        // After failures, probe with one connection; once one succeeds the rest follow.
        let limit = self.consecutiveFailures > 0 ? 1 : self.configuration.maxConnections
        while self.connectingCount < wanted, self.connectingCount < limit,
              self.connections.count < self.configuration.maxConnections {
            self.nextConnectionID += 1
            self.connections[self.nextConnectionID] = .connecting
            self.connectingCount += 1
            action.create.append(self.nextConnectionID)
        }
    }

    private mutating func finishShutdownIfDone(into action: inout Action) {
        if self.isShuttingDown, self.connections.isEmpty {
            action.shutdownComplete = true
        }
    }
}
