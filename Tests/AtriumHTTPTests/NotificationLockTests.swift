import AtriumCore
import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import PostgresPool
import Testing

/// Record writes do not queue behind PostgreSQL's notification lock.
///
/// PostgreSQL orders the commits of all transactions that NOTIFY with one lock for the whole
/// cluster, held from just before each commit until it is on disk (or, here, acknowledged by a
/// synchronous standby). A write that notified inside its transaction waited for every other
/// notifying commit. This test holds that lock on purpose — a superuser's NOTIFY whose commit
/// waits for a standby that does not exist — and writes meanwhile: create, update and delete
/// must be answered, the announcement of their changes must wait in the background instead, and
/// once the lock is free a subscriber must receive the changes. The change feed's periodic
/// reread of the log is pushed out of the test's reach, so they can only come by the
/// announcement itself: its sends time out while the lock is held, and it must try again
/// after they do, not wait for the next write.
///
/// On a cluster of its own: holding the lock would stall every notifying test of the shared one.
@Suite struct NotificationLockTests {
    @Test func writesAreAnsweredWhileAnotherTransactionHoldsTheNotificationLock() async throws {
        let cluster = try await EmbeddedPostgres.start(.temporary, logger: TestLogger.make("notify-cluster"))
        do {
            let database = try await Self.migratedDatabase(on: cluster)
            try await Self.check(on: database)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func check(on database: TestDatabase) async throws {
        var feed = ChangeFeedConfiguration()
        feed.rereadInterval = .seconds(3600)
        let app = try await TestApp.make(on: database, changeFeed: feed)
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            try await client.createTasks(ann.accessToken)
            let principal = try await app.services.auth.authenticate(bearer: ann.accessToken)
            let subscription = try await Self.subscribe(app, principal)
            defer { subscription.end(.disconnected) }

            _ = try await database.adminQuery("CREATE TABLE public.notify_probe (x int)")
            let holder = try await PostgresConnection.connect(configuration: database.superuser, logger: TestLogger.make("holder"))
            _ = try await holder.query("SET synchronous_commit = on")
            try await Self.setStandby("atrium_absent_standby", on: database)
            var released = false
            var holding: Task<Void, any Error>?
            do {
                // The holder's commit (it wrote, so it waits for the standby) keeps the lock. The
                // setting reaches the commit path a moment after the reload: try until it does.
                for attempt in 1... {
                    let attempting = Task { _ = try await holder.simpleQuery("INSERT INTO public.notify_probe VALUES (1); SELECT pg_catalog.pg_notify('atrium_probe', '')") }
                    holding = attempting
                    let waiting = try await Self.eventually(within: .seconds(2)) {
                        try await Self.count(database, """
                            SELECT count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a USING (pid)
                            WHERE l.locktype = 'object' AND l.classid = 'pg_catalog.pg_database'::regclass AND l.objid = 0 AND l.granted
                              AND a.wait_event = 'SyncRep'
                            """) == 1
                    }
                    if waiting { break }
                    try await attempting.value
                    guard attempt < 10 else { throw TestFailure("the holder's commit never waited for the standby") }
                }

                // Writes are answered while the lock is held.
                let created = try await Self.answered(within: .seconds(20)) {
                    try await client.createRecord(ann.accessToken, ["title": "written while the lock is held"])
                }
                #expect(created.status == .created)
                let id = try #require(created.string("id"))
                let patched = try await Self.answered(within: .seconds(20)) {
                    try await client.call(.patch, "/v1/collections/tasks/records/\(id)", token: ann.accessToken, json: ["priority": 2])
                }
                #expect(patched.status == .ok)
                let other = try await client.createRecord(ann.accessToken, ["title": "deleted while the lock is held"])
                let otherID = try #require(other.string("id"))
                let deleted = try await Self.answered(within: .seconds(20)) {
                    try await client.call(.delete, "/v1/collections/tasks/records/\(otherID)", token: ann.accessToken)
                }
                #expect(deleted.status == .noContent)

                // Their announcement is what waits: the service's NOTIFY, in the background.
                try await Self.waitUntil("the announcement of the changes waits for the lock") {
                    try await Self.count(database, """
                        SELECT count(*) FROM pg_catalog.pg_stat_activity
                        WHERE usename = 'atrium_app' AND wait_event_type = 'Lock' AND query LIKE '%pg_notify%'
                        """) >= 1
                }
                // And it is bounded: each try is given up after 2 s (cancelled on the server) and
                // another one made. The writes' wake-ups pay for two tries at most (the one they
                // started and one waiting behind it), so the lock is held until a third is seen:
                // from then on only the announcer's own retry can send the changes.
                let waitingSince = """
                    SELECT query_start::text FROM pg_catalog.pg_stat_activity
                    WHERE usename = 'atrium_app' AND wait_event_type = 'Lock' AND query LIKE '%pg_notify%'
                    """
                var tries: Set<String> = []
                try await Self.waitUntil("the announcement is tried a third time") {
                    tries.formUnion(try await database.adminQuery(waitingSince).compactMap { $0.values[0] })
                    return tries.count >= 3
                }

                try await Self.setStandby(nil, on: database)
                released = true
                try await holding?.value
                await holder.close()

                // Once the lock is free, the subscriber gets all four changes: the failed
                // announcement is sent again, though no write asks for it any more.
                var operations: [String] = []
                let deadline = ContinuousClock.now + .seconds(20)
                while operations.count < 4, ContinuousClock.now < deadline {
                    let (items, end) = try await subscription.next()
                    if end != nil { break }
                    for case .change(let change) in items { operations.append(change.operation.rawValue) }
                }
                #expect(operations == ["create", "update", "create", "delete"])
            } catch {
                if !released { try? await Self.setStandby(nil, on: database) }
                _ = try? await holding?.value
                await holder.close()
                throw error
            }
        }
    }

    /// `body`'s answer, or a failure if it takes longer than `limit`. `body` runs on in a task of
    /// its own, which nothing here waits for: a write stuck behind the lock must not keep the
    /// test from releasing it.
    static func answered<T: Sendable>(within limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = Locked<Result<T, any Error>?>(nil)
        Task {
            let result: Result<T, any Error>
            do { result = .success(try await body()) } catch { result = .failure(error) }
            outcome.withLock { $0 = result }
        }
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let result = outcome.value { return try result.get() }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("no answer within \(limit): the write waits for the notification lock")
    }

    static func subscribe(_ app: TestApp, _ principal: Principal) async throws -> ChangeSubscription {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                let subscription = try await app.services.feed.subscribe(principal, resume: .now, collections: nil, expiresAt: nil)
                guard case .position = try await subscription.next().items.first else { throw TestFailure("no start position") }
                return subscription
            } catch let error as AtriumError where error.code == .unavailable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func setStandby(_ name: String?, on database: TestDatabase) async throws {
        _ = try await database.adminQuery(
            name.map { "ALTER SYSTEM SET synchronous_standby_names = '\($0)'" } ?? "ALTER SYSTEM RESET synchronous_standby_names"
        )
        _ = try await database.adminQuery("SELECT pg_catalog.pg_reload_conf()")
    }

    static func count(_ database: TestDatabase, _ sql: String) async throws -> Int {
        Int(try await database.adminQuery(sql)[0].values[0] ?? "") ?? -1
    }

    static func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        guard try await Self.eventually(within: .seconds(20), condition) else { throw TestFailure("timed out waiting until \(what)") }
    }

    /// Whether `condition` holds within `limit`, asked every 20 ms.
    static func eventually(within limit: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + limit
        while try await !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    static func migratedDatabase(on cluster: EmbeddedPostgres) async throws -> TestDatabase {
        let admin = try await PostgresConnection.connect(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString()), logger: TestLogger.make("admin")
        )
        try await admin.simpleQuery("CREATE DATABASE atrium_notify")
        await admin.close()
        try await Migrator(
            configuration: PostgresConfiguration(connectionString: cluster.connectionString(database: "atrium_notify")),
            migrations: try Migrations.all(),
            logger: TestLogger.make("migrate")
        ).migrate()
        return TestDatabase(cluster: cluster, name: "atrium_notify")
    }
}
