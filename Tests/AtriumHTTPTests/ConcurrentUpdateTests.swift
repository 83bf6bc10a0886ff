@testable import AtriumCore
import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// PATCH and PUT work out the new data from the record read without a lock and write it with a
/// check that the record is still at the version read and not locked by anyone else
/// (`atrium.require_record_version`); after two such attempts they lock the record first. A
/// change that lands in between is never written over. The change in between is made by hand,
/// on a connection of its own as `atrium_app`, while the update waits for the row lock.
@Suite struct ConcurrentUpdateTests {
    static let mergePatch = "application/merge-patch+json"

    @Test func theVersionGuardRefusesAChangedMissingOrLockedRecordAtOnce() async throws {
        try await Self.withRecord(["title": "first"]) { client, database, owner, id in
            let collection = try #require(try await database.adminQuery("SELECT collection_id FROM atrium.collections WHERE name = 'tasks'").first?.values[0])
            let hand = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("hand"))
            defer { Task { await hand.close() } }
            func guardState(_ record: String, version: Int) async throws -> String? {
                do {
                    try await hand.simpleQuery("""
                        BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(owner.tenantID)', true);
                        SELECT atrium.require_record_version('\(collection)', '\(record)', \(version))
                        """)
                    try await hand.simpleQuery("ROLLBACK")
                    return nil
                } catch let error as PostgresError {
                    try await hand.simpleQuery("ROLLBACK")
                    return error.sqlState
                }
            }
            #expect(try await guardState(id, version: 1) == nil)
            #expect(try await guardState(id, version: 2) == "AT004")
            #expect(try await guardState(UUID().uuidString.lowercased(), version: 1) == "AT004")
            // Another transaction's lock: refused without waiting (a wait would hang this test).
            let holder = try await Self.lock(id, tenant: owner.tenantID, on: database)
            defer { Task { await holder.close() } }
            #expect(try await guardState(id, version: 1) == PostgresError.SQLState.lockNotAvailable)
        }
    }

    @Test func anUpdateWhoseRecordChangedBeforeItsWriteIsWorkedOutAgain() async throws {
        try await Self.withRecord(["title": "first"]) { client, database, owner, id in
            let hand = try await Self.lock(id, tenant: owner.tenantID, on: database)
            defer { Task { await hand.close() } }

            async let patched = client.raw(.patch, "/v1/collections/tasks/records/\(id)", token: owner.accessToken, body: #"{"priority": 4}"#, contentType: Self.mergePatch)
            // The patch has read version 1, found the record locked when it came to write it, and
            // waits for the lock ...
            #expect(try await Self.waitingForLocks(database) == 1)
            // ... while version 2 is written by someone else.
            try await Self.changeAndCommit(id, on: hand)
            let answer = try await patched
            #expect(answer.status == .ok)
            #expect(answer["version"] as? Int == 3)
            #expect(answer["data.score"] as? Int == 7, "the change made in between is kept")
            #expect(answer["data.priority"] as? Int == 4)
            #expect(answer.string("data.title") == "first")
            // Two attempts found it locked; then it was locked and read first.
            let metrics = try MetricsTests.parse(try await client.call(.get, "/metrics").body)
            #expect(metrics.first { $0.name == "atrium_record_update_retries" }?.value == 2)
            #expect(metrics.first { $0.name == "atrium_record_updates_locked" }?.value == 1)
            let audit = try await database.adminQuery("SELECT changes::text FROM atrium.record_audit WHERE record_id = '\(id)' AND operation = 'update'")
            #expect(audit.count == 1)
            #expect(audit.first?.values[0]?.contains("priority") == true)
            #expect(audit.first?.values[0]?.contains("score") == false, "the audit entry is the patch's change over version 2")
        }
    }

    @Test func aConditionalUpdateWhoseRecordChangedBeforeItsWriteIsRefused() async throws {
        try await Self.withRecord(["title": "first"]) { client, database, owner, id in
            let path = "/v1/collections/tasks/records/\(id)"
            let hand = try await Self.lock(id, tenant: owner.tenantID, on: database)
            defer { Task { await hand.close() } }

            async let replaced = client.call(.put, path, token: owner.accessToken, json: ["title": "replaced"], headers: [.ifMatch: "\"1\""])
            #expect(try await Self.waitingForLocks(database) == 1)
            try await Self.changeAndCommit(id, on: hand)
            let answer = try await replaced
            #expect(answer.status == .preconditionFailed)
            let stored = try await client.call(.get, path, token: owner.accessToken)
            #expect(stored.headers[.eTag] == "\"2\"")
            #expect(stored.string("data.title") == "first")
            #expect(stored["data.score"] as? Int == 7)
            let audit = try await database.adminQuery("SELECT count(*) FROM atrium.record_audit WHERE record_id = '\(id)' AND operation = 'update'")
            #expect(audit.first?.values[0] == "0")
        }
    }

    @Test func anUpdateWhoseRecordWasDeletedBeforeItsWriteFindsNothing() async throws {
        try await Self.withRecord(["title": "first", "priority": 2]) { client, database, owner, id in
            let hand = try await Self.lock(id, tenant: owner.tenantID, on: database)
            defer { Task { await hand.close() } }

            async let patched = client.raw(.patch, "/v1/collections/tasks/records/\(id)", token: owner.accessToken, body: #"{"priority": 4}"#, contentType: Self.mergePatch)
            #expect(try await Self.waitingForLocks(database) == 1)
            try await hand.simpleQuery("DELETE FROM atrium.records WHERE record_id = '\(id)'; COMMIT")
            #expect(try await patched.status == .notFound)
            let left = try await database.adminQuery("""
                SELECT (SELECT count(*) FROM atrium.records WHERE record_id = '\(id)') + (SELECT count(*) FROM atrium.record_values WHERE record_id = '\(id)')
                """)
            #expect(left.first?.values[0] == "0", "nothing of the record was written back")
        }
    }

    /// The locked path takes the collection's definition (shared) before the record's row, in
    /// the order every other write takes them: a definition change, which holds the definition
    /// and then rewrites the records, waits for the update instead of deadlocking with it.
    @Test func anUpdateLockingItsRecordFirstAndADefinitionChangeDoNotDeadlock() async throws {
        try await Self.withRecord(["title": "first"]) { client, database, owner, id in
            let collection = try #require(try await database.adminQuery("SELECT collection_id FROM atrium.collections WHERE name = 'tasks'").first?.values[0])
            let hand = try await Self.lock(id, tenant: owner.tenantID, on: database)
            defer { Task { await hand.close() } }
            async let patched = client.raw(.patch, "/v1/collections/tasks/records/\(id)", token: owner.accessToken, body: #"{"priority": 4}"#, contentType: Self.mergePatch)
            // Refused twice, the update now waits for the row lock on the locked path.
            #expect(try await Self.waitingForLocks(database) == 1)

            // A definition change as CollectionService makes it: the definition, then the records.
            let change = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("change"))
            defer { Task { await change.close() } }
            async let changed = change.simpleQuery("""
                BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(owner.tenantID)', true);
                SELECT atrium.lock_collection_definition('\(collection)');
                SELECT 1 FROM atrium.records WHERE record_id = '\(id)' FOR UPDATE;
                COMMIT
                """)
            #expect(try await Self.waitingForLocks(database, atLeast: 2) == 2)
            try await hand.simpleQuery("ROLLBACK")
            // In the opposite order each would wait for the other until PostgreSQL broke the
            // deadlock by failing one of them (40P01).
            let answer = try await patched
            #expect(answer.status == .ok, "\(answer.body)")
            #expect(answer["data.priority"] as? Int == 4)
            _ = try await changed
        }
    }

    /// A one-round-trip transaction that PostgreSQL failed to break a deadlock (40P01) or for a
    /// serialization failure (40001) is run again, up to three runs; other errors are not.
    ///
    /// The failures are raised on purpose, by a function failing a given number of calls: which
    /// side of a real deadlock PostgreSQL fails depends on whose `deadlock_timeout` fires first
    /// after the cycle forms, which a test on a loaded machine cannot order (the lock ordering
    /// itself is tested above, with real locks).
    @Test func aTransactionFailedForADeadlockIsRunAgain() async throws {
        try await TestApp.withTasks { app, client, database, owner in
            for counter in ["deadlocks", "serializations", "persistent", "violations"] {
                _ = try await database.adminQuery("CREATE SEQUENCE public.\(counter)")
            }
            _ = try await database.adminQuery("""
                CREATE FUNCTION public.fail_first(counter regclass, times bigint, state text) RETURNS int
                LANGUAGE plpgsql SECURITY DEFINER AS $$
                BEGIN
                    IF pg_catalog.nextval(counter) <= times THEN
                        RAISE EXCEPTION 'failed on purpose' USING ERRCODE = state;
                    END IF;
                    RETURN 1;
                END $$
                """)
            _ = try await database.adminQuery("GRANT EXECUTE ON FUNCTION public.fail_first(regclass, bigint, text) TO PUBLIC")
            let principal = try await app.services.auth.authenticate(bearer: owner.accessToken)
            let run = { (counter: String, times: Int, state: String) async throws -> [PostgresRows] in
                try await app.services.database.transaction(in: principal.tenant, [
                    "SELECT count(*) FROM atrium.records",
                    "SELECT public.fail_first(\(counter)::regclass, \(times), \(state))",
                ])
            }
            let calls = { (counter: String) async throws -> String? in
                try await database.adminQuery("SELECT last_value FROM public.\(counter)").first?.values[0]
            }

            #expect(try await run("public.deadlocks", 1, "40P01").map(\.count) == [1, 1])
            #expect(try await calls("deadlocks") == "2")
            #expect(app.services.database.transactionsRetried == 1)
            #expect(try await run("public.serializations", 2, "40001").map(\.count) == [1, 1])
            #expect(try await calls("serializations") == "3")
            #expect(app.services.database.transactionsRetried == 3)
            let metrics = try MetricsTests.parse(try await client.call(.get, "/metrics").body)
            #expect(metrics.first { $0.name == "atrium_db_transaction_retries" }?.value == 3)

            // Three runs and no more; then 503, to be sent again.
            let refused = await #expect(throws: AtriumError.self) { try await run("public.persistent", 10, "40P01") }
            #expect(refused?.code == .unavailable && refused?.retryAfter == 1)
            #expect(try await calls("persistent") == "3")
            #expect(app.services.database.transactionsRetried == 5)
            // Any other error is the statement's own, for the service that wrote it.
            await #expect(throws: PostgresError.self) { try await run("public.violations", 10, "23505") }
            #expect(try await calls("violations") == "1")
            #expect(app.services.database.transactionsRetried == 5)
            #expect(Database.domainError(for: PostgresError(code: .server, message: "duplicate", sqlState: PostgresError.SQLState.uniqueViolation)) == nil)
        }
    }

    /// A batch claims each unique field's values in sorted order: here it waits for "ABC-2",
    /// which another write holds, having claimed "ABC-1" already, so a third write wanting
    /// "ABC-1" waits for the batch. Claimed in the records' order, the batch would wait holding
    /// nothing; the third write could take "ABC-1" and then ask for "ABC-2" behind the batch,
    /// and the two would deadlock once the batch went on to "ABC-1".
    @Test func aBatchClaimsItsUniqueValuesInOneOrder() async throws {
        try await TestApp.withTasks { _, client, database, owner in
            let collection = try #require(try await database.adminQuery("SELECT collection_id FROM atrium.collections WHERE name = 'tasks'").first?.values[0])
            let scoped = "BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(owner.tenantID)', true)"
            // Records of their own for the hand-held writes to claim values for.
            var records: [String] = []
            for title in ["hand", "third"] {
                records.append(try #require(try await client.createRecord(owner.accessToken, ["title": title]).string("id")))
            }
            let claim = { (code: String, record: String) in
                #"SELECT atrium.claim_unique_values('\#(owner.tenantID)', '\#(collection)', 'code', '[{"record_id": "\#(record)", "value_key": "\"\#(code)\""}]')"#
            }
            let hand = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("hand"))
            defer { Task { await hand.close() } }
            try await hand.simpleQuery("\(scoped); \(claim("ABC-2", records[0]))")

            async let created = client.call(
                .post, "/v1/collections/tasks/records/batch", token: owner.accessToken,
                json: ["records": [["title": "b", "code": "ABC-2"], ["title": "a", "code": "ABC-1"]]]
            )
            #expect(try await Self.waitingForLocks(database) == 1)
            let third = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("third"))
            defer { Task { await third.close() } }
            try await third.simpleQuery("\(scoped); SET LOCAL lock_timeout = '200ms'")
            let waited = await #expect(throws: PostgresError.self) { try await third.simpleQuery(claim("ABC-1", records[1])) }
            #expect(waited?.sqlState == PostgresError.SQLState.lockNotAvailable, "\(String(describing: waited))")
            try await third.simpleQuery("ROLLBACK")

            try await hand.simpleQuery("ROLLBACK")
            let answer = try await created
            #expect(answer.status == .created)
            #expect(Set((answer["data"] as? [[String: Any]] ?? []).compactMap { ($0["data"] as? [String: Any])?["code"] as? String }) == ["ABC-1", "ABC-2"])
        }
    }

    @Test func concurrentPatchesOfOneRecordAllLand() async throws {
        let database = try await TestCluster.shared.makeDatabase()
        let app = try await TestApp.make(on: database)
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let writers = 16
            var fields: [String: Any] = [:]
            for writer in 0..<writers { fields["f\(writer)"] = ["type": "integer", "indexed": writer.isMultiple(of: 2)] }
            #expect(try await client.call(.post, "/v1/collections", token: owner.accessToken, json: ["name": "counters", "fields": fields]).status == .created)
            let id = try #require(try await client.createRecord(owner.accessToken, [:], collection: "counters").string("id"))
            let path = "/v1/collections/counters/records/\(id)"

            // Each sets a field of its own: a write made over a version it did not see would drop another's.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        try await client.raw(.patch, path, token: owner.accessToken, body: #"{"f\#(writer)": \#(writer + 1)}"#, contentType: Self.mergePatch).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .ok }, "\(statuses)")
            let stored = try await client.call(.get, path, token: owner.accessToken)
            #expect(stored.headers[.eTag] == "\"\(writers + 1)\"")
            for writer in 0..<writers {
                #expect(stored["data.f\(writer)"] as? Int == writer + 1, "f\(writer) was lost")
            }
            let values = try await database.adminQuery("SELECT count(*) FROM atrium.record_values WHERE record_id = '\(id)'")
            #expect(values.first?.values[0] == "\(writers / 2)", "one index row per indexed field")
            let audit = try await database.adminQuery("SELECT count(*) FROM atrium.record_audit WHERE record_id = '\(id)' AND operation = 'update'")
            #expect(audit.first?.values[0] == "\(writers)")

            // With the same If-Match, one wins and the others are told the record changed.
            let conditional = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for writer in 0..<8 {
                    group.addTask {
                        try await client.raw(
                            .patch, path, token: owner.accessToken, body: #"{"f0": \#(100 + writer)}"#, contentType: Self.mergePatch,
                            headers: [.ifMatch: "\"\(writers + 1)\""]
                        ).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(conditional.filter { $0 == .ok }.count == 1, "\(conditional)")
            #expect(conditional.filter { $0 == .preconditionFailed }.count == 7, "\(conditional)")
        }
    }

    /// A tenant with the tasks collection and one record of `data`, for `body`.
    static func withRecord(
        _ data: [String: any Sendable], _ body: @escaping @Sendable (any TestClientProtocol, TestDatabase, SignedIn, String) async throws -> Void
    ) async throws {
        try await TestApp.withTasks { _, client, database, owner in
            let id = try #require(try await client.createRecord(owner.accessToken, data).string("id"))
            try await body(client, database, owner, id)
        }
    }

    /// Version 2 of the record, with `score` 7, written by hand over the lock `hand` holds.
    static func changeAndCommit(_ record: String, on hand: PostgresConnection) async throws {
        try await hand.simpleQuery(#"UPDATE atrium.records SET data = data || '{"score": 7}', version = version + 1 WHERE record_id = '\#(record)'; COMMIT"#)
    }

    /// A connection of its own, as `atrium_app` in `tenant`, in a transaction holding the record's row lock.
    static func lock(_ record: String, tenant: String, on database: TestDatabase) async throws -> PostgresConnection {
        let hand = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("hand"))
        try await hand.simpleQuery("""
            BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(tenant)', true);
            SELECT 1 FROM atrium.records WHERE record_id = '\(record)' FOR UPDATE
            """)
        return hand
    }

    /// Sessions of this test's database waiting for a lock, once there are `atLeast` (within 10 s),
    /// else as many as there are then.
    static func waitingForLocks(_ database: TestDatabase, atLeast: Int = 1) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let rows = try await database.adminQuery("""
                SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """)
            let waiting = Int(rows[0].values[0] ?? "") ?? 0
            if waiting >= atLeast || ContinuousClock.now >= deadline { return waiting }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
