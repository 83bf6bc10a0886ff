import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import PostgresPool
import Testing

@Suite struct RecoveryTests {
    @Test func terminatedBackendsAreReplaced() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let applicationName = "terminate-\(UUID().uuidString.prefix(8))"
        let pool = database.appPool(maxConnections: 4, applicationName: applicationName)
        try await pool.openConnections(4)
        #expect(pool.statistics.open == 4)

        let terminated = try await database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = \(applicationName)) t")
        }
        #expect(try terminated[0].decode(Int.self, column: 0) == 4)

        // Callers right after the kill either succeed or fail with a connection error; none hangs.
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do {
                        _ = try await pool.query("SELECT 1")
                        return true
                    } catch let error as PostgresError where error.code == .connectionClosed {
                        return false
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.count == 20)
        // And from then on every query succeeds on fresh connections.
        for _ in 0..<10 {
            let rows = try await pool.query("SELECT 1::int8")
            #expect(try rows[0].decode(Int.self, column: 0) == 1)
        }
        let backends = try await database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = \(applicationName)")
        }
        #expect(try backends[0].decode(Int.self, column: 0) >= 1)
        await pool.close()
    }

    @Test func poolRecoversFromAPostgresRestart() async throws {
        // Its own cluster: restarting the shared one would disturb every other test.
        let cluster = try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("restart-cluster"))
        let pool = ConnectionPool(
            configuration: PoolConfiguration(
                connection: PostgresConfiguration(connectionString: cluster.connectionString()),
                maxConnections: 3,
                acquireTimeout: .seconds(20),
                reconnectDelay: .milliseconds(50),
                maxReconnectDelay: .milliseconds(500)
            ),
            logger: TestLogger.make("restart-pool")
        )
        do {
            _ = try await pool.query("SELECT 1")
            await cluster.stopServer()
            // The pool notices its idle connection died with the server.
            let deadline = ContinuousClock.now + .seconds(5)
            while pool.statistics.open > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(pool.statistics.open == 0)
            // While the server is down, callers wait (or fail); none may hang past the timeout.
            let waiting = Task {
                try await pool.query("SELECT 42::int8")
            }
            while pool.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
            try await cluster.startServer()
            let late = try await waiting.value
            #expect(try late[0].decode(Int.self, column: 0) == 42)
            for _ in 0..<5 {
                let rows = try await pool.query("SELECT 1::int8")
                #expect(try rows[0].decode(Int.self, column: 0) == 1)
            }
        } catch {
            await pool.close()
            await cluster.stop()
            throw error
        }
        await pool.close()
        await cluster.stop()
    }
}
