import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// A task's `QueryDeadline` gives up its database work the way cancelling the task would, without
/// cancelling the task: a request's deadline must not end the connection it came on.
@Suite struct QueryDeadlineTests {
    @Test func aRunningStatementIsCancelledOnTheServerWhenTheDeadlinePasses() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let deadline = QueryDeadline(ContinuousClock.now + .milliseconds(300))
        let result = await QueryDeadline.$current.withValue(deadline) {
            await Result { try await pool.query("SELECT pg_sleep(30)") }
        }
        Self.expectGivenUp(result)
        #expect(deadline.hasFired)
        // The task itself was not cancelled, and PostgreSQL stopped the statement: the one
        // connection serves the next statement at once (it would wait 30 s behind pg_sleep).
        #expect(!Task.isCancelled)
        let rows = try await pool.query("SELECT 1::int8")
        #expect(try rows[0].decode(Int.self, column: 0) == 1)
        // The cancel request reaches the backend on a connection of its own, a moment later.
        let watching = ContinuousClock.now
        var sleeping = 1
        while sleeping > 0, ContinuousClock.now - watching < .seconds(10) {
            sleeping = try await database.withSuperuser { admin in
                try await admin.query("SELECT count(*)::int8 FROM pg_stat_activity WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'")
            }[0].decode(Int.self, column: 0)
            if sleeping > 0 { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(sleeping == 0)
        await pool.close()
    }

    @Test func aWaitForAConnectionIsGivenUpWhenTheDeadlinePasses() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1, acquireTimeout: .seconds(30))
        try await pool.withConnection { _ in
            let deadline = QueryDeadline(ContinuousClock.now + .milliseconds(300))
            let result = await QueryDeadline.$current.withValue(deadline) {
                await Result { try await pool.query("SELECT 1") }
            }
            Self.expectGivenUp(result)
            #expect(deadline.hasFired)
            #expect(pool.statistics.waiting == 0)
        }
        await pool.close()
    }

    @Test func aStatementOnABorrowedConnectionIsGivenUpToo() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let deadline = QueryDeadline(ContinuousClock.now + .milliseconds(300))
        let result = await QueryDeadline.$current.withValue(deadline) {
            await Result { try await pool.withTransaction { transaction in try await transaction.query("SELECT pg_sleep(30)") } }
        }
        Self.expectGivenUp(result)
        let rows = try await pool.query("SELECT 2::int8")
        #expect(try rows[0].decode(Int.self, column: 0) == 2)
        await pool.close()
    }

    @Test func workAfterThePassedDeadlineFailsAtOnceAndWorkBeforeItIsUntouched() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let pool = database.appPool(maxConnections: 1)
        let generous = QueryDeadline(ContinuousClock.now + .seconds(60))
        let answer = try await QueryDeadline.$current.withValue(generous) {
            try await pool.query("SELECT 7::int8, pg_sleep(0.2)")[0].decode(Int.self, column: 0)
        }
        #expect(answer == 7)
        #expect(!generous.hasFired)

        let passed = QueryDeadline(ContinuousClock.now - .milliseconds(1))
        let before = pool.statistics.acquired
        let refusal = await #expect(throws: PostgresError.self) {
            try await QueryDeadline.$current.withValue(passed) { try await pool.query("SELECT 1") }
        }
        #expect(refusal?.code == .cancelled)
        #expect(passed.hasFired)
        // Refused before it reached the pool.
        #expect(pool.statistics.acquired == before)
        await pool.close()
    }

    static func expectGivenUp<Value>(_ result: Result<Value, any Error>, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .failure(let error as PostgresError) = result else {
            Issue.record("expected the work to be given up, got \(result)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == .cancelled, sourceLocation: sourceLocation)
    }
}

extension Result where Failure == any Error {
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
