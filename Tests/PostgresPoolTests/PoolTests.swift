import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

@Suite struct PoolTests {
    @Test func moreCallersThanConnectionsAllSucceedWithinTheLimit() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let applicationName = "pool-limit-\(UUID().uuidString.prefix(8))"
        let pool = database.appPool(maxConnections: 3, applicationName: applicationName)
        let observedMaximum = Locked(0)
        let stop = Locked(false)
        let seen = Locked(false)

        try await database.withSuperuser { admin in
            try await withThrowingTaskGroup(of: Void.self) { group in
                // Watches pg_stat_activity while the load runs.
                group.addTask {
                    while !stop.value {
                        let rows = try await admin.query("SELECT count(*)::int8 FROM pg_stat_activity WHERE application_name = \(applicationName)")
                        let count = try rows[0].decode(Int.self, column: 0)
                        observedMaximum.withLock { $0 = max($0, count) }
                        if count >= 1 { seen.withLock { $0 = true } }
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                try await withThrowingTaskGroup(of: Int.self) { callers in
                    // One caller keeps its connection until the watcher has seen it, so the
                    // watcher sees the load however late a loaded machine runs it (the forty
                    // queries alone can be over before its first look).
                    callers.addTask {
                        try await pool.withConnection { _ in
                            let deadline = ContinuousClock.now + .seconds(30)
                            while !seen.value, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
                        }
                        return -1
                    }
                    for caller in 0..<40 {
                        callers.addTask {
                            // pg_sleep keeps connections busy so callers really queue.
                            let rows = try await pool.query("SELECT \(caller)::int8, pg_sleep(0.02)")
                            return try rows[0].decode(Int.self, column: 0)
                        }
                    }
                    var answers = Set<Int>()
                    for try await answer in callers where answer >= 0 { answers.insert(answer) }
                    #expect(answers == Set(0..<40))
                }
                stop.withLock { $0 = true }
                try await group.waitForAll()
            }
        }
        let statistics = pool.statistics
        #expect(statistics.open <= 3)
        #expect(statistics.acquired == 41)
        let maximum = observedMaximum.value
        #expect(maximum >= 1)
        #expect(maximum <= 3)
        await pool.close()
    }

    /// Opens the pool's connection before a test of short acquire timeouts: on a loaded
    /// machine opening it can itself take longer than the timeout under test.
    private static func connect(_ pool: ConnectionPool) async throws {
        var connected = false
        for _ in 0..<50 where !connected {
            connected = (try? await pool.query("SELECT 1")) != nil
        }
        try #require(connected)
    }

    @Test func acquireTimeoutFiresWhileThePoolIsHeld() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1, acquireTimeout: .milliseconds(200))
        try await Self.connect(pool)
        let timedOutBefore = pool.statistics.timedOut
        try await pool.withConnection { _ in
            await #expect(throws: PostgresError.self) {
                do {
                    _ = try await pool.query("SELECT 1")
                } catch let error as PostgresError {
                    #expect(error.code == .acquireTimeout)
                    throw error
                }
            }
        }
        #expect(pool.statistics.timedOut == timedOutBefore + 1)
        // Once released, the pool serves again.
        let rows = try await pool.query("SELECT 7::int8")
        #expect(try rows[0].decode(Int.self, column: 0) == 7)
        await pool.close()
    }

    /// The acquire-timeout timer is set once for the first waiter and left alone while later
    /// waiters come and go (their deadlines are later); when it fires for a waiter already
    /// served, it must be set again for the next deadline.
    @Test func aWaiterAfterAServedOneStillTimesOut() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1, acquireTimeout: .milliseconds(400))
        try await Self.connect(pool)
        // A waits (the timer is set for its deadline) and is served when the connection returns.
        let first = try await pool.withConnection { _ in
            let waiter = Task { try await pool.query("SELECT 1::int8") }
            while pool.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
            return waiter
        }
        #expect(try await first.value[0].decode(Int.self, column: 0) == 1)
        // B waits with a later deadline, before A's has passed: the timer fires for A's first.
        let timedOutBefore = pool.statistics.timedOut
        let outcome = try await pool.withConnection { _ in
            try await withThrowingTaskGroup(of: String.self) { group in
                group.addTask {
                    do {
                        _ = try await pool.query("SELECT 2")
                        return "served"
                    } catch let error as PostgresError {
                        return error.code == .acquireTimeout ? "timed out" : "failed: \(error)"
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    return "still waiting after 10 s"
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
        }
        #expect(outcome == "timed out")
        #expect(pool.statistics.timedOut == timedOutBefore + 1)
        await pool.close()
    }

    @Test func cancelledWaitersLeaveTheQueue() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1, acquireTimeout: .seconds(30))
        try await pool.withConnection { _ in
            let waiter = Task { try await pool.query("SELECT 1") }
            while pool.statistics.waiting == 0 { try await Task.sleep(for: .milliseconds(5)) }
            waiter.cancel()
            let result = await waiter.result
            #expect(throws: PostgresError.self) { try result.get() }
            if case .failure(let error as PostgresError) = result {
                #expect(error.code == .cancelled)
            }
            #expect(pool.statistics.waiting == 0)
        }
        let rows = try await pool.query("SELECT 2::int8")
        #expect(try rows[0].decode(Int.self, column: 0) == 2)
        await pool.close()
    }

    @Test func cancellingARunningQueryCancelsItOnTheServer() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let started = ContinuousClock.now
        let sleeper = Task { try await pool.query("SELECT pg_sleep(30)") }
        // Cancelled once PostgreSQL is running it (not merely once it was handed a connection).
        while try await database.withSuperuser({ admin in
            try await admin.query("SELECT count(*)::int8 FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")
        })[0].decode(Int.self, column: 0) == 0 {
            try await Task.sleep(for: .milliseconds(5))
        }
        sleeper.cancel()
        let result = await sleeper.result
        if case .failure(let error as PostgresError) = result {
            #expect(error.code == .cancelled)
        } else {
            Issue.record("expected the sleeping query to be cancelled, got \(result)")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        // The same connection serves the next caller normally.
        let rows = try await pool.query("SELECT 3::int8")
        #expect(try rows[0].decode(Int.self, column: 0) == 3)
        #expect(pool.statistics.open == 1)
        await pool.close()
    }

    @Test func failingStatementInAPipelineFailsOnlyThatCaller() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        _ = try await database.withSuperuser { admin in
            try await admin.simpleQuery("""
                CREATE TABLE public.pipeline_items (id int PRIMARY KEY, name text NOT NULL);
                GRANT SELECT, INSERT ON public.pipeline_items TO atrium_app;
                """)
        }
        let pool = database.appPool(maxConnections: 1)
        let failure = await #expect(throws: PostgresError.self) {
            try await pool.transaction([
                "INSERT INTO public.pipeline_items VALUES (1, 'first')",
                "INSERT INTO public.pipeline_items VALUES (1, 'duplicate')",
                "INSERT INTO public.pipeline_items VALUES (2, 'never')",
            ])
        }
        #expect(failure?.sqlState == PostgresError.SQLState.uniqueViolation)
        #expect(failure?.constraint == "pipeline_items_pkey")

        // The next caller on the one connection is unaffected and nothing was committed.
        let results = try await pool.transaction([
            "INSERT INTO public.pipeline_items VALUES (1, 'again')",
            "SELECT count(*)::int8 FROM public.pipeline_items",
        ])
        #expect(try results[1][0].decode(Int.self, column: 0) == 1)

        // A failure outside a transaction block behaves the same.
        await #expect(throws: PostgresError.self) {
            try await pool.query("SELECT 1/0")
        }
        let rows = try await pool.query("SELECT name FROM public.pipeline_items WHERE id = \(1)")
        #expect(try rows[0].decode(String.self, column: 0) == "again")
        #expect(pool.statistics.open == 1)
        await pool.close()
    }

    @Test func interactiveTransactionsCommitAndRollBack() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        _ = try await database.withSuperuser { admin in
            try await admin.simpleQuery("""
                CREATE TABLE public.counters (name text PRIMARY KEY, value int8 NOT NULL);
                INSERT INTO public.counters VALUES ('a', 0);
                GRANT SELECT, UPDATE ON public.counters TO atrium_app;
                """)
        }
        let pool = database.appPool(maxConnections: 1)
        struct Abort: Error {}
        try await pool.withTransaction { transaction in
            let current = try await transaction.query("SELECT value FROM public.counters WHERE name = 'a' FOR UPDATE")
            let value = try current[0].decode(Int.self, column: 0)
            _ = try await transaction.query("UPDATE public.counters SET value = \(value + 5) WHERE name = 'a'")
        }
        await #expect(throws: Abort.self) {
            try await pool.withTransaction { transaction in
                _ = try await transaction.query("UPDATE public.counters SET value = 1000 WHERE name = 'a'")
                throw Abort()
            }
        }
        let rows = try await pool.query("SELECT value FROM public.counters WHERE name = 'a'")
        #expect(try rows[0].decode(Int.self, column: 0) == 5)
        await pool.close()
    }

    @Test func parametersRefuseTextWithNUL() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let error = await #expect(throws: PostgresError.self) {
            try await pool.query("SELECT \("a\u{0}b")::text")
        }
        #expect(error?.code == .invalidParameter)
        let rows = try await pool.query("SELECT \("a b")::text")
        #expect(try rows[0].decode(String.self, column: 0) == "a b")
        await pool.close()
    }
}

/// Behind a transaction pooler nothing may outlive a transaction: no prepared statements, no
/// session settings sent at startup.
@Suite struct TransactionPoolingModeTests {
    @Test(arguments: [false, true])
    func statementsGoUnnamedAndNoStartupOptionsAreSent(transactionPooling: Bool) async throws {
        let database = try await TestCluster.shared.makeDatabase()
        var configuration = database.app
        configuration.transactionPooling = transactionPooling
        let pool = ConnectionPool(configuration: PoolConfiguration(connection: configuration, maxConnections: 1), logger: TestLogger.make("pool"))
        for value in 0..<3 {
            #expect(try await pool.query("SELECT \(value)::int8")[0].decode(Int.self, column: 0) == value)
        }
        // One connection, so this is the session that ran the statements above.
        let prepared = try await pool.query(.oneOff(unsafeSQL: "SELECT count(*)::int8 FROM pg_prepared_statements"))[0].decode(Int.self, column: 0)
        let timeout = try await pool.query(.oneOff(unsafeSQL: "SHOW statement_timeout"))[0].decode(String.self, column: 0)
        await pool.close()
        if transactionPooling {
            #expect(prepared == 0)
            #expect(timeout == "0")
        } else {
            #expect(prepared >= 1)
            #expect(timeout == "30s")
        }
    }
}
