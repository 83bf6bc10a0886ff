import Logging
import PostgresPool

/// Tells every server's listener that the change log grew (NOTIFY `atrium_changes`), after the
/// writes that grew it have committed: one NOTIFY of its own for any number of writes.
///
/// The NOTIFY used to be a statement of each writing transaction. PostgreSQL orders the
/// commits of transactions that notify with one lock for the whole cluster, taken just before
/// the commit and held until the commit is on disk: every record write of every tenant waited
/// for every other's commit flush, one at a time. Measured on the two-core machine, POST ran at
/// 710-990 req/s with a sixth of the CPU idle and nearly every busy backend waiting for that
/// lock (`Lock:object` at `COMMIT`); without it, 1,250-1,370 req/s. It also let one tenant's
/// stream of writes queue every other tenant's behind it.
///
/// Now a write's transaction notifies nothing. After it commits, `announce()` wakes one loop that
/// sends the NOTIFY in a transaction of its own with `synchronous_commit` off: a notification is a
/// wake-up, not data, so there is nothing to wait for on disk, and the lock is held for
/// microseconds. Writes that commit while one is being sent are covered by the next, so a burst
/// of writes costs a few NOTIFYs, not one each. The request does not wait for any of it.
///
/// A change whose NOTIFY never goes out (this server stopped right after the commit, or
/// PostgreSQL went away) is found by the next NOTIFY of any write, by the listeners'
/// reconnection, or by the change feed's periodic look at the log
/// (`ChangeFeedConfiguration.rereadInterval`); the webhook dispatcher polls as well.
final class ChangeAnnouncer: Sendable {
    private let wakeups: AsyncStream<Void>
    private let wakeup: AsyncStream<Void>.Continuation

    /// Its own transaction; the setting ends with it.
    static let statement: PostgresQuery = """
        SELECT pg_catalog.set_config('synchronous_commit', 'off', true), pg_catalog.pg_notify(\(RecordStore.changeChannel), '')
        """

    init() {
        (self.wakeups, self.wakeup) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Changes were committed: a NOTIFY will go out after this call.
    func announce() {
        self.wakeup.yield()
    }

    /// Sends what is pending, then lets `run` return.
    func finish() {
        self.wakeup.finish()
    }

    /// Sends one NOTIFY per wake-up (a wake-up during a send asks for one more), until `finish`
    /// or cancellation. A send is bounded as the heartbeat is, so a frozen PostgreSQL holds no
    /// connection for it; a failed one is tried again after a pause (100 ms, doubling up to 5 s).
    func run(pool: ConnectionPool, logger: Logger) async {
        var failures = 0
        for await _ in self.wakeups {
            let sent = await withTimeLimit(.seconds(2)) { () -> Result<Void, any Error> in
                do {
                    _ = try await pool.query(Self.statement)
                    return .success(())
                } catch {
                    return .failure(error)
                }
            }
            let problem: String
            switch sent {
            case .success?:
                failures = 0
                continue
            case .failure(let error)?:
                problem = "\(error)"
            case nil:
                problem = "no answer within 2 s"
            }
            if Task.isCancelled { return }
            failures += 1
            logger.warning("could not announce new changes; trying again", metadata: ["error": "\(problem)", "attempt": "\(failures)"])
            try? await Task.sleep(for: min(.milliseconds(50) * (1 << min(failures, 7)), .seconds(5)))
            self.wakeup.yield()
        }
    }
}
