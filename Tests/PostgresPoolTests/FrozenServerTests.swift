import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import PostgresPool
import Testing

/// PostgreSQL stopped (SIGSTOP) while requests run: callers are answered at their deadlines,
/// no thread that Swift tasks run on is blocked meanwhile, the connections that wait for
/// replies are closed and replaced, and everything works again once PostgreSQL resumes.
@Suite struct FrozenServerTests {
    @Test func deadlinesHoldAndNoSharedThreadBlocksWhilePostgreSQLIsFrozen() async throws {
        let cluster = try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("frozen-cluster"))
        let pool = ConnectionPool(
            configuration: PoolConfiguration(
                connection: PostgresConfiguration(connectionString: cluster.connectionString(), cancelGracePeriod: .seconds(1)),
                maxConnections: 8,
                acquireTimeout: .seconds(2),
                reconnectDelay: .milliseconds(50),
                maxReconnectDelay: .milliseconds(200)
            ),
            logger: TestLogger.make("frozen-pool")
        )
        do {
            try await pool.openConnections(8)
            #expect(pool.statistics.open == 8)

            cluster.freeze()
            // Frozen for ten seconds whatever happens, so a regression fails here instead of hanging.
            let thawing = Task {
                try? await Task.sleep(for: .seconds(10))
                cluster.thaw()
            }
            // Meanwhile a task that only sleeps briefly measures how long the threads Swift
            // tasks run on are unavailable.
            let probing = Locked(true)
            let longestGap = Task {
                var longest = Duration.zero
                while probing.value {
                    let asked = ContinuousClock.now
                    try? await Task.sleep(for: .milliseconds(10))
                    longest = max(longest, ContinuousClock.now - asked)
                }
                return longest
            }
            // Sixteen requests (two per connection: some wait for one, some run and get a
            // cancel sent), plus interactive transactions, each given up on after 300 ms.
            let started = ContinuousClock.now
            let ended = try await withThrowingTaskGroup(of: Duration.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        do {
                            if index < 16 {
                                _ = try await withDeadline(.milliseconds(300)) { try await pool.query("SELECT \(index)::int8") }
                            } else {
                                _ = try await withDeadline(.milliseconds(300)) {
                                    try await pool.withTransaction { try await $0.query("SELECT 1") }
                                }
                            }
                        } catch {}
                        return ContinuousClock.now - started
                    }
                }
                return try await group.reduce(into: [Duration]()) { $0.append($1) }
            }
            // Given up on at 300 ms, they end then, not when PostgreSQL resumes (a bound far under
            // the freeze: room for a loaded machine, far from what a regression shows).
            #expect(ended.allSatisfy { $0 < .seconds(3) }, "\(ended)")
            // A second after being given up on, the connections still waiting for replies are
            // closed. Which connections got work depends on how the requests fell into rounds
            // (under load one connection can take several): those that got none stay idle,
            // so what must hold is that none is left in use and at least one was closed.
            let deadline = ContinuousClock.now + .seconds(3)
            while pool.statistics.inUse > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let afterwards = pool.statistics
            #expect(afterwards.inUse == 0, "\(afterwards)")
            #expect(afterwards.open < 8, "\(afterwards)")
            #expect(afterwards.open == afterwards.idle, "\(afterwards)")
            try await Task.sleep(for: .seconds(1))
            probing.withLock { $0 = false }
            let gap = await longestGap.value
            // Blocked cancels hold the threads for the whole freeze (10 s); 7 s leaves room for
            // the other tests of the run, which share these two cores and threads (3.3 s was
            // seen with 247 tests, 5.6 s with 262).
            #expect(gap < .seconds(7), "Swift's threads were unavailable for \(gap) while PostgreSQL was frozen")
            await thawing.value

            // The pool opens new connections and every query succeeds again.
            var recovered = false
            let until = ContinuousClock.now + .seconds(20)
            while !recovered, ContinuousClock.now < until {
                recovered = (try? await pool.query("SELECT 1::int8")) != nil
                if !recovered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(recovered)
            for index in 0..<20 {
                let rows = try await pool.query("SELECT \(index)::int8")
                #expect(try rows[0].decode(Int.self, column: 0) == index)
            }
        } catch {
            cluster.thaw()
            await pool.close()
            await cluster.stop()
            throw error
        }
        await pool.close()
        await cluster.stop()
    }
}
