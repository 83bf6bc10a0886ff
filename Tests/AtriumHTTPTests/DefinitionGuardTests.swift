import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// A record write and a change of its collection's definition never overlap: the change waits
/// for the writes in flight, and a write that waited for a change is checked against the new
/// definition (`atrium.require_collection_version`, `atrium.lock_collection_definition`). The
/// other side of each is played by hand on a connection of its own, as `atrium_app`.
@Suite struct DefinitionGuardTests {
    @Test func aDefinitionChangeWaitsForAWriteInFlightAndAWriteForAChange() async throws {
        try await Self.withTasks { client, database, owner, tenant, collection, hand in
            let scope = "BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(tenant)', true); "

            // A write in flight (checked against version 1, not yet committed) ...
            try await hand.simpleQuery(scope + "SELECT atrium.require_collection_version('\(collection)', 1)")
            async let change = client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: [
                "fields": ["owner": ["type": "string", "required": true, "default": "nobody"]],
            ])
            // ... holds the definition change back until it commits.
            #expect(try await Self.waitingForAdvisoryLocks(database) == 1)
            try await hand.simpleQuery("COMMIT")
            #expect(try await change.status == .ok)

            // A definition change in flight: title at most 3 characters from now on.
            try await hand.simpleQuery(scope + """
                SELECT atrium.lock_collection_definition('\(collection)');
                UPDATE atrium.collections SET definition = jsonb_set(definition, '{fields,title,maxLength}', '3'), version = version + 1
                WHERE collection_id = '\(collection)'
                """)
            async let write = client.createRecord(owner.accessToken, ["title": "longer than three"])
            // The write waits for it, then is checked against the new definition, not the old.
            #expect(try await Self.waitingForAdvisoryLocks(database) == 1)
            try await hand.simpleQuery("COMMIT")
            let refused = try await write
            #expect(refused.status == .unprocessableContent)
            #expect(refused.errorFields == ["/title"])
            #expect(try await client.createRecord(owner.accessToken, ["title": "ok"]).status == .created)
        }
    }

    /// A definition change holds the collection's row `FOR NO KEY UPDATE` while it waits for
    /// the writes in flight: each of those takes `FOR KEY SHARE` on the same row through its
    /// records' foreign key after the definition's shared lock, which `FOR UPDATE` would make
    /// it wait for — the change waiting for the write, the write for the change, until
    /// PostgreSQL failed one of them (40P01).
    @Test func aDefinitionChangeAndAWriteInFlightDoNotWaitForEachOther() async throws {
        try await Self.withTasks { client, database, owner, tenant, collection, hand in

            // A write in flight, past its check against version 1 ...
            try await hand.simpleQuery("""
                BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(tenant)', true);
                SELECT atrium.require_collection_version('\(collection)', 1)
                """)
            async let change = client.call(.patch, "/v1/collections/tasks", token: owner.accessToken, json: ["fields": ["owner": ["type": "string"]]])
            // ... which the change, holding the collection's row, waits for ...
            #expect(try await Self.waitingForAdvisoryLocks(database) == 1)
            // ... inserts its record (the foreign key locks the collection's row) and commits.
            try await hand.simpleQuery("""
                INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_by, created_by_kind, updated_by, updated_by_kind)
                VALUES ('\(tenant)', '\(collection)', gen_random_uuid(), '{"title": "in flight"}', '\(owner.userID)', 'user', '\(owner.userID)', 'user');
                COMMIT
                """)
            let changed = try await change
            #expect(changed.status == .ok, "\(changed.body)")
            let records = try await client.call(.get, "/v1/collections/tasks/records", token: owner.accessToken)
            #expect((records["data"] as? [Any])?.count == 1, "the write in flight committed")
        }
    }

    /// A write that waited for one definition change can meet the next, queued behind the first:
    /// it is worked out again against each new definition (up to four times), not failed.
    @Test func aWriteThatMeetsTwoDefinitionChangesInARowIsStored() async throws {
        try await Self.withTasks { client, database, owner, tenant, collection, hand in
            let second = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("second"))
            defer { Task { await second.close() } }
            let change = """
                BEGIN; SELECT pg_catalog.set_config('atrium.tenant_id', '\(tenant)', true);
                SELECT atrium.lock_collection_definition('\(collection)');
                UPDATE atrium.collections SET version = version + 1 WHERE collection_id = '\(collection)'
                """
            try await hand.simpleQuery(change)
            async let write = client.createRecord(owner.accessToken, ["title": "waits twice"])
            #expect(try await Self.waitingForAdvisoryLocks(database) == 1)
            // The second change queues behind the write.
            async let secondHeld = second.simpleQuery(change)
            #expect(try await Self.waitingForAdvisoryLocks(database, atLeast: 2) == 2)
            // The write finds version 2 (and fails its check), reads it, and then waits for the
            // second change, which has taken the lock meanwhile ...
            try await hand.simpleQuery("COMMIT")
            _ = try await secondHeld
            #expect(try await Self.waitingForAdvisoryLocks(database) == 1)
            // ... and finds version 3.
            try await second.simpleQuery("COMMIT")
            let written = try await write
            #expect(written.status == .created, "\(written.body)")
            let stored = try await database.adminQuery("SELECT count(*) FROM atrium.records WHERE collection_id = '\(collection)'")
            #expect(stored.first?.values[0] == "1")
        }
    }

    /// A tenant with the tasks collection (its tenant and collection ids) and a connection of
    /// its own as `atrium_app`, for `body`.
    static func withTasks(
        _ body: @escaping @Sendable (any TestClientProtocol, TestDatabase, SignedIn, String, String, PostgresConnection) async throws -> Void
    ) async throws {
        try await TestApp.withTasks { _, client, database, owner in
            let ids = try await database.adminQuery("SELECT tenant_id, collection_id FROM atrium.collections WHERE name = 'tasks'")
            let (tenant, collection) = (try #require(ids.first?.values[0]), try #require(ids.first?.values[1]))
            let hand = try await PostgresConnection.connect(configuration: database.app, logger: TestLogger.make("hand"))
            defer { Task { await hand.close() } }
            try await body(client, database, owner, tenant, collection, hand)
        }
    }

    /// Sessions of this test's database waiting for an advisory lock, once there are `atLeast`
    /// (within 10 s), else as many as there are then.
    static func waitingForAdvisoryLocks(_ database: TestDatabase, atLeast: Int = 1) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let rows = try await database.adminQuery("""
                SELECT count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_database d ON d.oid = l.database
                WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()
                """)
            let waiting = Int(rows[0].values[0] ?? "") ?? 0
            if waiting >= atLeast || ContinuousClock.now >= deadline { return waiting }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
