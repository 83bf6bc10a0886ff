import AtriumText
public import Foundation
public import Logging
import PostgresPool
public import ServiceLifecycle
import Synchronization

/// This server among the deployment's: it beats a heartbeat into `atrium.servers` every
/// `interval` and learns how many servers are live, so a limit meant for the whole deployment
/// can be split between them (each server allows `1/liveServers` of a rate limit).
///
/// The count is as fresh as the last heartbeat: a server that starts is counted by the others
/// within one interval, one that stops cleanly at once (it removes its row), one that dies after
/// `expiry`. While PostgreSQL cannot be reached the last count stays.
public final class ServerRegistry: Service, Sendable {
    public let serverID = UUID()
    let database: Database
    let interval: Duration
    let expiry: Duration
    let logger: Logger
    private let live = Atomic<Int>(1)

    public init(database: Database, interval: Duration = .seconds(5), expiry: Duration = .seconds(15), logger: Logger) {
        self.database = database
        self.interval = interval
        self.expiry = expiry
        self.logger = logger
    }

    /// Live servers of the deployment, this one included (at least 1).
    public var liveServers: Int { max(1, self.live.load(ordering: .relaxed)) }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.beat()
                try? await Task.sleep(for: self.interval)
            }
        }
        await self.leave()
    }

    /// One heartbeat; updates `liveServers`. Given a few seconds at most, so a frozen
    /// PostgreSQL never holds a pooled connection for the heartbeat's sake.
    package func beat() async {
        let outcome = await withTimeLimit(.seconds(3)) { () -> Result<Int, any Error> in
            do {
                let rows = try await self.database.unscopedTransaction([
                    "SELECT atrium.server_heartbeat(\(self.serverID), \(Double(self.expiry.components.seconds))::float8 * interval '1 second')",
                ])
                return .success(try rows[0][0].decode(Int.self, column: 0))
            } catch {
                return .failure(error)
            }
        }
        switch outcome {
        case .success(let count):
            let previous = self.live.exchange(count, ordering: .relaxed)
            if previous != count {
                self.logger.info("live servers in the deployment", metadata: ["servers": "\(count)"])
            }
        case .failure(let error):
            self.logger.warning("server heartbeat failed; keeping the last count of live servers", metadata: ["error": "\(error)"])
        case nil:
            self.logger.warning("server heartbeat took more than 3 s; keeping the last count of live servers")
        }
    }

    /// Removes this server's row so the others take its share at their next heartbeat; given a
    /// second at most (when PostgreSQL is gone the row expires instead).
    package func leave() async {
        _ = await withTimeLimit(.seconds(1)) {
            do {
                _ = try await self.database.unscopedTransaction(["SELECT atrium.server_leave(\(self.serverID))"])
            } catch {
                self.logger.debug("could not remove this server from atrium.servers; its row will expire", metadata: ["error": "\(error)"])
            }
        }
    }
}
