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
