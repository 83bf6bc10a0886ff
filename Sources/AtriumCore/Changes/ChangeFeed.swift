public import Foundation
public import Logging
import PostgresPool
public import ServiceLifecycle
import Synchronization

/// This server's reader of the change log and its subscribers.
///
/// One reader per server follows the log for every tenant: woken by NOTIFY (sent only on
/// commit), it reads in batches up to a horizon that no transaction still running can fall
/// below (see migration 011), and hands each change to the subscribers of its tenant that may
/// read the record. Subscribers never query on their own, except to replay what they missed.
public final class ChangeFeed: Service, Sendable {
    let database: Database
    let collections: CollectionService
    let revocations: RevocationSet
    public let configuration: ChangeFeedConfiguration
    public let positions: ChangePositionCodec
    let logger: Logger
    let state = Mutex(State())
    let wakeups: AsyncStream<Void>
    let wakeup: AsyncStream<Void>.Continuation
    public let statistics = ChangeFeedStatistics()

    struct State {
        /// Every change at or below it has been handed out; nil while nobody subscribes (the
        /// reader is not following the log).
        var cursor: Int64?
        var subscribers: [UUID: [ObjectIdentifier: ChangeSubscription]] = [:]
        var count = 0
        var shuttingDown = false
    }

    public init(
        database: Database, collections: CollectionService, revocations: RevocationSet,
        configuration: ChangeFeedConfiguration, positionKey: [UInt8], logger: Logger
    ) {
        self.database = database
        self.collections = collections
        self.revocations = revocations
        self.configuration = configuration
        self.positions = ChangePositionCodec(key: positionKey)
        self.logger = logger
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Tells the reader the log may have grown (a NOTIFY arrived, or the listener reconnected).
    public func wake() {
        self.wakeup.yield()
    }

    /// Reads the log, keeps subscribers alive and prunes old changes until graceful shutdown;
    /// then ends every subscription so their streams close.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.readUntilCancelled() }
            group.addTask { await self.maintainUntilCancelled() }
            await withGracefulShutdownHandler {
                await group.next()
            } onGracefulShutdown: {
                self.shutDown()
                self.wakeup.finish()
            }
            group.cancelAll()
        }
        self.shutDown()
    }

    private func shutDown() {
        let all = self.state.withLock { state -> [ChangeSubscription] in
            state.shuttingDown = true
            return state.subscribers.values.flatMap(\.values)
        }
        for subscription in all { subscription.end(.shutdown) }
    }

    /// Ends the subscriptions of a revoked session now.
    public func revoke(session: UUID) {
        let ended = self.state.withLock { state in
            state.subscribers.values.flatMap(\.values).filter { $0.principal.sessionID == session }
        }
        for subscription in ended { subscription.end(.sessionRevoked) }
    }

    func unsubscribe(_ subscription: ChangeSubscription) {
        self.state.withLock { state in
            let tenant = subscription.principal.tenant.tenantID
            if state.subscribers[tenant]?.removeValue(forKey: ObjectIdentifier(subscription)) != nil {
                state.count -= 1
                if state.subscribers[tenant]?.isEmpty == true { state.subscribers[tenant] = nil }
            }
        }
    }

    /// How many subscribers this server has now.
    public var subscriberCount: Int {
        self.state.withLock { $0.count }
    }
}

/// Limits and timings of the feed.
public struct ChangeFeedConfiguration: Sendable {
    /// How long changes are kept for resuming (default 7 days).
    public var retention: Duration = .seconds(7 * 24 * 3600)
    /// Subscribers per server; beyond, a subscription is refused (503).
    public var maximumSubscribers = 2_000
    /// Subscribers per tenant on one server; beyond, refused (503).
    public var maximumSubscribersPerTenant = 200
    /// Live changes one subscriber may have waiting; beyond, it is disconnected.
    public var bufferCapacity = 1_000
    /// A comment is sent after this long without events.
    public var heartbeat: Duration = .seconds(15)
    /// Changes read per query.
    public var batchSize = 500
    /// How often old changes and unused tickets are pruned.
    public var pruneInterval: Duration = .seconds(60)

    public init() {}
}

/// Counters for the metrics endpoint.
public final class ChangeFeedStatistics: Sendable {
    let delivered = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)
    let read = Atomic<Int>(0)
    let lagMicroseconds = Atomic<Int>(0)

    /// Changes handed to subscribers.
    public var eventsDelivered: Int { self.delivered.load(ordering: .relaxed) }
    /// Subscribers disconnected for falling behind.
    public var slowConsumersDropped: Int { self.dropped.load(ordering: .relaxed) }
    /// Changes read from the log.
    public var changesRead: Int { self.read.load(ordering: .relaxed) }
    /// Seconds from the last dispatched change's transaction start to its dispatch.
    public var lagSeconds: Double { Double(self.lagMicroseconds.load(ordering: .relaxed)) / 1e6 }
}
