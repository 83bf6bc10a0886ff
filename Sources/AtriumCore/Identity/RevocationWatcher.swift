import Foundation
import Logging
import PostgresPool
import ServiceLifecycle

/// Keeps a `RevocationSet` current: loads recent revocations, then applies each NOTIFY on
/// `atrium_revocations`, and reloads whenever its listener reconnects (notifications sent while
/// it was away are lost).
public final class RevocationWatcher: Service, Sendable {
    public static let channel = "atrium_revocations"

    let database: Database
    let revocations: RevocationSet
    let listener: PostgresListener
    let logger: Logger

    public init(database: Database, revocations: RevocationSet, listenerConfiguration: PostgresConfiguration, logger: Logger) {
        self.database = database
        self.revocations = revocations
        self.listener = PostgresListener(configuration: listenerConfiguration, channels: [Self.channel], logger: logger)
        self.logger = logger
    }

    /// Loads the revocations PostgreSQL remembers; called at start and after reconnects.
    public func reload() async throws {
        let rows = try await self.database.unscopedTransaction(["SELECT session_id, keep_until FROM atrium.auth_revoked_sessions()"])[0]
        for row in rows {
            let (session, keepUntil) = try row.decode((UUID, Date).self)
            self.revocations.insert(session, keepUntil: keepUntil)
        }
        self.logger.debug("revoked sessions loaded", metadata: ["sessions": "\(rows.count)"])
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.listener.run() }
            for await event in self.listener.events {
                switch event {
                case .listening:
                    do {
                        try await self.reload()
                    } catch {
                        self.logger.error("could not load revoked sessions", metadata: ["error": "\(error)"])
                    }
                case .notification(let notification):
                    if let session = UUID(uuidString: notification.payload) {
                        self.revocations.insert(session)
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
