import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// Queued batches travel to one connection together; each must still succeed or fail alone.
@Suite struct RoundTests {
    enum Outcome: Equatable {
        case committed
        case failed(String?)
    }

    @Test func failuresInARoundStayWithTheirCallerAndSkippedBatchesAreRetried() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        try await database.withSuperuser { admin in
            try await admin.simpleQuery(
                """
                CREATE TABLE public.round_items (id int PRIMARY KEY);
                INSERT INTO public.round_items VALUES (0);
                GRANT SELECT, INSERT ON public.round_items TO atrium_app;
                """)
        }
        var configuration = database.app
        configuration.applicationName = "rounds"
        let pool = ConnectionPool(
            configuration: PoolConfiguration(
                connection: configuration, maxConnections: 1, acquireTimeout: .seconds(30), pipelineDepth: 8),
            logger: TestLogger.make("rounds")
        )
        let callers = 24
        // Hold the only connection until every caller is queued, so they go out in rounds.
        let holder = Task {
            try await pool.withConnection { _ in
                let deadline = ContinuousClock.now + .seconds(60)
                while pool.statistics.waiting < callers, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
        }
        // The callers may only queue once the holder has the connection (on a loaded machine
        // the holder's task can start after them).
        while pool.statistics.inUse == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let outcomes = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            for id in 1...callers {
                group.addTask {
                    do {
                        switch id {
                        case _ where id % 4 == 0:
                            // Duplicate key: fails in the middle of its transaction.
                            _ = try await pool.transaction([
                                "INSERT INTO public.round_items VALUES (\(id))", "INSERT INTO public.round_items VALUES (0)",
                            ])
                        case 7:
                            // Fails while being prepared.
                            _ = try await pool.transaction(["INSERT INTO public.missing_table VALUES (\(id))"])
                        case _ where id % 3 == 0:
                            // Outside a transaction block.
                            _ = try await pool.query("INSERT INTO public.round_items VALUES (\(id))")
                        default:
                            _ = try await pool.transaction(["INSERT INTO public.round_items VALUES (\(id))"])
                        }
                        return (id, .committed)
                    } catch let error as PostgresError {
                        return (id, .failed(error.sqlState))
                    }
                }
            }
            try await holder.value
            return try await group.reduce(into: [Int: Outcome]()) { $0[$1.0] = $1.1 }
        }
        for id in 1...callers {
            let expected: Outcome = id % 4 == 0 ? .failed("23505") : id == 7 ? .failed("42P01") : .committed
            #expect(outcomes[id] == expected, "caller \(id)")
        }
        let rows = try await pool.query("SELECT id FROM public.round_items ORDER BY id")
        let stored = try rows.map { try $0.decode(Int.self, column: 0) }
        let committed = (1...callers).filter { outcomes[$0] == .committed }
        #expect(stored == [0] + committed)
        // Six failing transactions over rounds of at most eight: some batches were skipped and sent again.
        #expect(pool.statistics.retried > 0)
        await pool.close()
    }
}
