import AsyncHTTPClient
import AtriumCore
import AtriumTestSupport
import Foundation
import PostgresPool
import Testing

/// The change log under the feed: positions that commit out of order, retention, and a
/// subscriber that stops reading. These drive the feed of a running server directly.
@Suite struct ChangeLogTests {
    /// A subscription to the tenant of a new user, once the feed is following the log.
    static func subscribe(_ app: TestApp, port: Int, email: String = "ann@example.com") async throws -> (ChangeSubscription, principal: Principal, token: String) {
        let live = LiveClient(port: port)
        let token = try await live.signUp(email, tenant: "Acme")
        try await live.shutdown()
        let principal = try await app.services.auth.authenticate(bearer: token)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return (try await app.services.feed.subscribe(principal, resume: .now, collections: nil, expiresAt: nil), principal, token)
            } catch let error as AtriumError where error.code == .unavailable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Appends a change for `principal`'s tenant in an open transaction, announced by a NOTIFY
    /// unless `notify` is false; returns its position.
    static func appendChange(_ connection: PostgresConnection, for principal: Principal, notify: Bool = true) async throws -> Int64 {
        let user = try #require(principal.userID)
        let rows = try await connection.query("""
            INSERT INTO atrium.record_changes (tenant_id, collection_id, collection_name, record_id, operation, version, actor_id, actor_kind,
                created_at, created_by, created_by_kind, updated_at, read_role, read_own, fields, data)
            VALUES (\(principal.tenant.tenantID), gen_random_uuid(), 'tasks', gen_random_uuid(), 'create', 1, \(user), 'user',
                now(), \(user), 'user', now(), 'viewer', false, '{title}', '{"title": "x"}')
            RETURNING position
            """)
        if notify { _ = try await connection.query("SELECT pg_notify('atrium_changes', '')") }
        return try rows[0].decode(Int64.self, column: 0)
    }

    /// A change whose NOTIFY never went out (its server stopped between the commit and the
    /// announcement, which comes after the commit) still reaches subscribers: while anyone
    /// subscribes, the feed reads the log every `rereadInterval` anyway.
    @Test func aChangeWhoseNotifyNeverCameStillReachesSubscribers() async throws {
        var feed = ChangeFeedConfiguration()
        feed.rereadInterval = .seconds(1)
        let app = try await TestApp.make(changeFeed: feed)
        try await app.serve { port in
            let (subscription, principal, _) = try await Self.subscribe(app, port: port)
            defer { subscription.end(.disconnected) }
            guard case .position = try await subscription.next().items.first else { throw TestFailure("no start position") }
            let writer = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("w"))
            let position = try await Self.appendChange(writer, for: principal, notify: false)
            await writer.close()
            // Nothing else wakes the reader: no NOTIFY, no reconnection. Heartbeats come every 15 s.
            let deadline = ContinuousClock.now + .seconds(10)
            var received: [Int64] = []
            while received.isEmpty, ContinuousClock.now < deadline {
                for case .change(let change) in try await subscription.next().items { received.append(change.position) }
            }
            #expect(received == [position])
        }
    }

    @Test func withoutSubscribersTheFeedDoesNotReadTheLog() async throws {
        let app = try await TestApp.make()
        try await app.serve { port in
            let live = LiveClient(port: port)
            let token = try await live.signUp("ann@example.com", tenant: "Acme")
            let principal = try await app.services.auth.authenticate(bearer: token)
            let writer = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("w"))
            for _ in 0..<20 { _ = try await Self.appendChange(writer, for: principal) }
            await writer.close()
            try await live.shutdown()
            // Twenty NOTIFYs came; with nobody to hand changes to, none was read.
            try await Task.sleep(for: .milliseconds(500))
            #expect(app.services.feed.statistics.changesRead == 0)
            // The first subscriber starts from now: none of those changes is handed out.
            let subscription = try await app.services.feed.subscribe(principal, resume: .now, collections: nil, expiresAt: nil)
            defer { subscription.end(.disconnected) }
            guard case .position = try await subscription.next().items.first else { throw TestFailure("no start position") }
            let writerAgain = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("w"))
            let position = try await Self.appendChange(writerAgain, for: principal)
            await writerAgain.close()
            guard case .change(let change) = try await subscription.next().items.first else { throw TestFailure("expected a change") }
            #expect(change.position == position)
        }
    }

    @Test func changesCommittedOutOfOrderArriveInPositionOrderExactlyOnce() async throws {
        let app = try await TestApp.make()
        try await app.serve { port in
            let (subscription, principal, _) = try await Self.subscribe(app, port: port)
            defer { subscription.end(.disconnected) }
            guard case .position = try await subscription.next().items.first else { throw TestFailure("no start position") }
            let first = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("a"))
            let second = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("b"))
            _ = try await first.simpleQuery("BEGIN")
            let lower = try await Self.appendChange(first, for: principal)
            _ = try await second.simpleQuery("BEGIN")
            let higher = try await Self.appendChange(second, for: principal)
            #expect(lower < higher)
            // The higher position commits first. Handing it out now would skip the lower one
            // for good (a consumer resumes after the highest it saw), so the feed must wait.
            _ = try await second.simpleQuery("COMMIT")
            try await Task.sleep(for: .milliseconds(600))
            #expect(app.services.feed.statistics.changesRead == 0, "a change was handed out while a lower position was uncommitted")
            _ = try await first.simpleQuery("COMMIT")
            await first.close()
            await second.close()

            var positions: [Int64] = []
            while positions.count < 2 {
                let (items, end) = try await subscription.next()
                #expect(end == nil)
                for case .change(let change) in items { positions.append(change.position) }
            }
            #expect(positions == [lower, higher])
            #expect(app.services.feed.statistics.changesRead == 2)
        }
    }

    @Test func aRolledBackPositionDoesNotHoldTheFeedBack() async throws {
        let app = try await TestApp.make()
        try await app.serve { port in
            let (subscription, principal, _) = try await Self.subscribe(app, port: port)
            defer { subscription.end(.disconnected) }
            _ = try await subscription.next()
            let first = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("a"))
            _ = try await first.simpleQuery("BEGIN")
            let abandoned = try await Self.appendChange(first, for: principal)
            _ = try await first.simpleQuery("ROLLBACK")
            await first.close()
            let second = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("b"))
            let kept = try await Self.appendChange(second, for: principal)
            await second.close()
            #expect(abandoned < kept)
            let (items, _) = try await subscription.next()
            guard case .change(let change) = items.first else { throw TestFailure("expected a change, got \(items)") }
            #expect(change.position == kept)
        }
    }

    @Test func aSubscriberThatStopsReadingIsDisconnectedNotBufferedForever() async throws {
        var feed = ChangeFeedConfiguration()
        feed.bufferCapacity = 5
        let app = try await TestApp.make(changeFeed: feed)
        try await app.serve { port in
            let (subscription, principal, _) = try await Self.subscribe(app, port: port)
            let writer = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("w"))
            for _ in 0..<12 { _ = try await Self.appendChange(writer, for: principal) }
            await writer.close()
            let deadline = ContinuousClock.now + .seconds(10)
            while subscription.endReason == nil, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(subscription.endReason == .slowConsumer)
            let (items, end) = try await subscription.next()
            #expect(items.isEmpty)
            #expect(end == .slowConsumer)
            #expect(app.services.feed.statistics.slowConsumersDropped == 1)
            #expect(app.services.feed.subscriberCount == 0)
        }
    }

    @Test func aPositionOlderThanRetentionGetsAReset() async throws {
        let app = try await TestApp.make()
        try await app.serve { port in
            let (subscription, principal, _) = try await Self.subscribe(app, port: port)
            _ = try await subscription.next()
            let writer = try await PostgresConnection.connect(configuration: app.database.superuser, logger: TestLogger.make("w"))
            let old = try await Self.appendChange(writer, for: principal)
            let (items, _) = try await subscription.next()
            guard case .change = items.first else { throw TestFailure("expected a change") }
            subscription.end(.disconnected)

            // Resuming from a retained position replays nothing (it was the last one).
            let fresh = try await app.services.feed.subscribe(principal, resume: .after(old), collections: nil, expiresAt: nil)
            _ = try await Self.appendChange(writer, for: principal)
            guard case .change = try await fresh.next().items.first else { throw TestFailure("expected the new change") }
            fresh.end(.disconnected)

            // Retention of zero prunes both; resuming from the first now needs a reload.
            let pruned = try await writer.query("SELECT atrium.prune_changes(interval '0 seconds', 1000)")
            #expect(try pruned[0].decode(Int64.self, column: 0) >= 2)
            await writer.close()
            let late = try await app.services.feed.subscribe(principal, resume: .after(old), collections: nil, expiresAt: nil)
            defer { late.end(.disconnected) }
            guard case .reset(_, let reason) = try await late.next().items.first else { throw TestFailure("expected a reset") }
            #expect(reason == .expired)
        }
    }
}
