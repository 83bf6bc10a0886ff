import AtriumText
import Foundation
public import Logging
import PostgresPool
public import ServiceLifecycle
import Synchronization

/// Keeps this server's in-memory state in step with the database and the other servers:
/// the set of revoked sessions (NOTIFY `atrium_revocations`) and the cache of collection
/// definitions (NOTIFY `atrium_collections`), and wakes the change feed's reader when the
/// change log grows (NOTIFY `atrium_changes`), the webhook dispatcher when endpoints change
/// (NOTIFY `atrium_webhooks`) and the mail dispatcher when a mail is written (`atrium_mail`). When its listener reconnects, notifications sent
/// meanwhile are lost, so it reloads the revocations, empties the cache and wakes the reader.
public final class ChangeWatcher: Service, Sendable {
    public static let revocationChannel = "atrium_revocations"
    public static let collectionChannel = "atrium_collections"

    let database: Database
    let revocations: RevocationSet
    let collections: CollectionCache
    let feed: ChangeFeed?
    let listener: PostgresListener
    let logger: Logger
    private let changeObservers = Mutex<[@Sendable () -> Void]>([])
    private let webhookObservers = Mutex<[@Sendable () -> Void]>([])
    private let mailObservers = Mutex<[@Sendable () -> Void]>([])

    /// Listens on a connection of its own (`Database.listenConnection`): to the database the pool
    /// uses, straight to PostgreSQL when the pool goes through a transaction pooler.
    public init(database: Database, revocations: RevocationSet, collections: CollectionCache, feed: ChangeFeed?, logger: Logger) {
        self.database = database
        self.revocations = revocations
        self.collections = collections
        self.feed = feed
        self.listener = PostgresListener(
            configuration: database.listenConnection,
            channels: [Self.revocationChannel, Self.collectionChannel, RecordStore.changeChannel, WebhookService.channel, MailOutbox.channel],
            logger: logger
        )
        self.logger = logger
    }

    /// Calls `observer` whenever the change log may have grown (a NOTIFY, or the listener
    /// reconnected and may have missed one): the webhook dispatcher's wake-up.
    public func observeChanges(_ observer: @escaping @Sendable () -> Void) {
        self.changeObservers.withLock { $0.append(observer) }
    }

    /// Calls `observer` whenever webhook endpoints may have been added, changed or removed
    /// (NOTIFY `atrium_webhooks`, or the listener reconnected).
    public func observeWebhooks(_ observer: @escaping @Sendable () -> Void) {
        self.webhookObservers.withLock { $0.append(observer) }
    }

    /// Calls `observer` whenever a mail may have been written to the outbox (NOTIFY
    /// `atrium_mail`, or the listener reconnected).
    public func observeMail(_ observer: @escaping @Sendable () -> Void) {
        self.mailObservers.withLock { $0.append(observer) }
    }

    private func mailMayHaveBeenWritten() {
        for observer in self.mailObservers.withLock({ $0 }) { observer() }
    }

    private func webhooksMayHaveChanged() {
        for observer in self.webhookObservers.withLock({ $0 }) { observer() }
    }

    private func changesMayHaveGrown() {
        self.feed?.wake()
        for observer in self.changeObservers.withLock({ $0 }) { observer() }
    }

    /// Loads the revocations PostgreSQL remembers; called at start and after reconnects.
    public func reload() async throws {
        _ = try await self.loadRevocations()
    }

    /// The revoked sessions PostgreSQL remembers, added to the set; returns those it did not hold.
    private func loadRevocations() async throws -> [UUID] {
        let rows = try await self.database.unscopedTransaction(["SELECT session_id, keep_until FROM atrium.auth_revoked_sessions()"])[0]
        var new: [UUID] = []
        for row in rows {
            let (session, keepUntil) = try row.decode((UUID, Date).self)
            if !self.revocations.contains(session) { new.append(session) }
            self.revocations.insert(session, keepUntil: keepUntil)
        }
        self.logger.debug("revoked sessions loaded", metadata: ["sessions": "\(rows.count)"])
        return new
    }

    /// How often revocations are read on Citus, where no NOTIFY announces them (a trigger on
    /// a worker's shard cannot reach the servers listening on the coordinator).
    static let revocationPollInterval: Duration = .seconds(1)

    private func pollRevocations() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.revocationPollInterval)
            guard self.database.runsOnCitus else { continue }
            // Bounded as the heartbeat is: a frozen PostgreSQL holds no connection for it.
            let outcome = await withTimeLimit(.seconds(2)) { () -> Result<[UUID], any Error> in
                do { return .success(try await self.loadRevocations()) } catch { return .failure(error) }
            }
            switch outcome {
            case .success(let sessions)?:
                for session in sessions { self.feed?.revoke(session: session) }
            case .failure(let error)?:
                self.logger.warning("could not read revoked sessions", metadata: ["error": "\(error)"])
            case nil:
                self.logger.warning("reading revoked sessions took more than 2 s; trying again")
            }
        }
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.listener.run() }
            group.addTask { await self.pollRevocations() }
            for await event in self.listener.events {
                switch event {
                case .listening:
                    self.collections.removeAll()
                    do {
                        try await self.reload()
                    } catch {
                        self.logger.error("could not load revoked sessions", metadata: ["error": "\(error)"])
                    }
                    self.feed?.endInvalidSubscriptions()
                    self.webhooksMayHaveChanged()
                    self.changesMayHaveGrown()
                    self.mailMayHaveBeenWritten()
                case .notification(let notification) where notification.channel == MailOutbox.channel:
                    self.mailMayHaveBeenWritten()
                case .notification(let notification) where notification.channel == RecordStore.changeChannel:
                    self.changesMayHaveGrown()
                case .notification(let notification) where notification.channel == WebhookService.channel:
                    self.webhooksMayHaveChanged()
                case .notification(let notification) where notification.channel == Self.revocationChannel:
                    if let session = UUID(canonical: notification.payload) {
                        self.revocations.insert(session)
                        self.feed?.revoke(session: session)
                    }
                case .notification(let notification):
                    let parts = notification.payload.split(separator: ":", maxSplits: 1)
                    if parts.count == 2, let tenant = UUID(canonical: String(parts[0])) {
                        self.collections.remove(tenant: tenant, name: String(parts[1]))
                    }
                }
            }
            // The listener has stopped: so does the poll.
            group.cancelAll()
            try await group.waitForAll()
        }
    }
}
