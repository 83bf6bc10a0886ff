import AsyncHTTPClient
import AtriumCore
import AtriumHTTP
import AtriumTestSupport
import Foundation
import NIOHTTP1
import PostgresPool
import Testing

/// Exports under the conditions that once took the pool: clients that stop reading, many
/// exports at once, a database that is busy or goes away midway.
@Suite struct ExportFaultTests {
    /// A live server (production wiring) with a short stall timeout, and a tenant whose export
    /// is `records` × 2.5 KB: by default about 7.5 MB, more than a loopback connection buffers
    /// (send buffers grow to 4 MB), so a client that stops reading soon makes the server wait.
    static func withExportingTenant(
        records: Int = 3000,
        acquireTimeout: Duration = .seconds(10),
        _ body: @escaping @Sendable (TestApp, LiveClient, String, Int) async throws -> Void
    ) async throws {
        var app = try await TestApp.make(acquireTimeout: acquireTimeout)
        app.server.limits.streamStallTimeout = .seconds(2)
        let configured = app
        try await app.serve { port in
            let client = LiveClient(port: port)
            do {
                let token = try await client.signUp("owner@example.com", tenant: "Acme")
                let collection = try await client.call(.POST, "/v1/collections", token: token, body: #"{"name":"notes","fields":{"body":{"type":"text"}}}"#)
                guard collection.status == .created else { throw TestFailure("collection: \(collection.body)") }
                // Records written straight into the table: the API would take long for this many.
                try await configured.database.withSuperuser { admin in
                    _ = try await admin.query("""
                        INSERT INTO atrium.records (tenant_id, collection_id, record_id, data, created_by, created_by_kind, updated_by, updated_by_kind)
                        SELECT c.tenant_id, c.collection_id, gen_random_uuid(), jsonb_build_object('body', repeat('x', 2500)),
                               m.user_id, 'user', m.user_id, 'user'
                        FROM atrium.collections c JOIN atrium.memberships m ON m.tenant_id = c.tenant_id, generate_series(1, \(records))
                        WHERE c.name = 'notes'
                        """)
                }
                try await body(configured, client, token, port)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    static func exportRequest(_ token: String) -> String {
        "GET /v1/tenant/export HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer \(token)\r\n\r\n"
    }

    @Test func aClientThatStopsReadingHoldsNoPooledConnectionAndIsCutOffAtTheStallTimeout() async throws {
        try await Self.withExportingTenant { app, client, token, port in
            let reader = try SlowReader(port: port)
            reader.send(Self.exportRequest(token))
            let head = String(decoding: await reader.read(1024), as: UTF8.self)
            #expect(head.hasPrefix("HTTP/1.1 200"), "\(head)")
            // The same tenant cannot start a second export while this one runs.
            let second = try await client.call(.GET, "/v1/tenant/export", token: token)
            #expect(second.status == .tooManyRequests)
            #expect(second.json["reason"] as? String == "export_running")
            #expect(second.headers.first(name: "Retry-After") != nil)
            // It reads nothing more. Once the server's writes wait on it, no pooled connection is
            // held for it, and the rest of the service carries on.
            let deadline = ContinuousClock.now + .seconds(10)
            while app.pool.statistics.inUse > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(app.pool.statistics.inUse == 0)
            let other = try await client.signUp("other@example.com", tenant: "Other")
            #expect(try await client.call(.GET, "/v1/collections", token: other).status == .ok)
            // At the stall timeout (2 s here) the server gives up on it and frees the export's
            // slot: the tenant may export again (the stalled client still has read nothing).
            var after = try await client.call(.GET, "/v1/tenant/export", token: token)
            let cutOff = ContinuousClock.now + .seconds(30)
            while after.status == .tooManyRequests, ContinuousClock.now < cutOff {
                try await Task.sleep(for: .milliseconds(250))
                after = try await client.call(.GET, "/v1/tenant/export", token: token)
            }
            #expect(after.status == .ok)
            // And the stalled connection ends without the response's end.
            let text = String(decoding: await reader.readToEnd(), as: UTF8.self)
            #expect(!text.hasSuffix("0\r\n\r\n"), "the response must not end cleanly")
            #expect(!text.contains(#""type":"end""#))
            #expect(after.body.hasSuffix(#""type":"end","collections":1,"records":3000}"# + "\n"), "\(after.body.suffix(80))")
        }
    }

    @Test func tenStalledExportsFromOneTenantCannotTakeThePool() async throws {
        try await Self.withExportingTenant { app, client, token, port in
            var readers: [SlowReader] = []
            for _ in 0..<10 {
                let reader = try SlowReader(port: port)
                reader.send(Self.exportRequest(token))
                readers.append(reader)
            }
            var statuses: [Substring] = []
            for reader in readers { statuses.append(String(decoding: await reader.read(64), as: UTF8.self).prefix(12)) }
            #expect(statuses.filter { $0 == "HTTP/1.1 200" }.count == 1, "\(statuses)")
            #expect(statuses.filter { $0 == "HTTP/1.1 429" }.count == 9, "\(statuses)")
            // Every tenant keeps being served while the accepted export is stalled.
            let other = try await client.signUp("other@example.com", tenant: "Other")
            for _ in 0..<20 {
                #expect(try await client.call(.GET, "/v1/tenant", token: other).status == .ok)
                #expect(try await client.call(.GET, "/v1/collections/notes/records?limit=5", token: token).status == .ok)
            }
            #expect(app.pool.statistics.timedOut == 0)
        }
    }

    @Test func anExportThatFailsMidwayEndsWithoutACleanEndAndIsLogged() async throws {
        try await Self.withExportingTenant { app, client, token, port in
            let reader = try SlowReader(port: port)
            reader.send(Self.exportRequest(token))
            // Read until the first records have come, then stop reading.
            var head = ""
            while !head.contains(#""type":"record""#) {
                let chunk = await reader.read(4096)
                if chunk.isEmpty { break }
                head += String(decoding: chunk, as: UTF8.self)
            }
            #expect(head.hasPrefix("HTTP/1.1 200"))
            // The snapshot's connection dies while the client is still reading.
            let ended = try await app.database.withSuperuser { admin in
                try await admin.query("""
                    SELECT count(*)::int8 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND application_name = 'atrium-test snapshot') t
                    """)
            }
            #expect(try ended[0].decode(Int.self, column: 0) == 1)
            let text = String(decoding: await reader.readToEnd(), as: UTF8.self)
            #expect(head.contains(#""type":"record""#), "it did get part of the export")
            #expect(!text.contains(#""type":"end""#))
            #expect(!text.hasSuffix("0\r\n\r\n"), "the response must not end cleanly")
        }
    }

    @Test func anExportAsksForItsConnectionBeforeAnswering() async throws {
        try await Self.withExportingTenant(records: 100, acquireTimeout: .seconds(3)) { app, client, token, _ in
            // Every pooled connection is held: the export cannot read, so it is a 503, not a
            // 200 that breaks off.
            let release = Locked(false)
            defer { release.withLock { $0 = true } }
            let held = Locked(0)
            let holders = (0..<4).map { _ in
                Task {
                    // On a loaded machine the server's background work (heartbeat, queues) can
                    // keep a connection past the 3 s acquire timeout: a holder asks again.
                    while true {
                        do {
                            return try await app.pool.withConnection { _ in
                                held.withLock { $0 += 1 }
                                while !release.value { try await Task.sleep(for: .milliseconds(5)) }
                            }
                        } catch let error as PostgresError where error.code == .acquireTimeout {
                            continue
                        }
                    }
                }
            }
            // All four held by the holders themselves, and no background work waiting to take
            // one the moment it is free.
            let deadline = ContinuousClock.now + .seconds(60)
            while held.value < 4 || app.pool.statistics.waiting > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            try #require(held.value == 4, "the holders hold \(held.value) of 4 connections: \(app.pool.statistics)")
            let busy = try await client.call(.GET, "/v1/tenant/export", token: token)
            #expect(busy.status == .serviceUnavailable)
            #expect(busy.headers.first(name: "Retry-After") != nil)
            release.withLock { $0 = true }
            for holder in holders { try await holder.value }
            // The refused export gave its slot back.
            let export = try await client.call(.GET, "/v1/tenant/export", token: token)
            #expect(export.status == .ok)
            #expect(export.body.hasSuffix(#""records":100}"# + "\n"))
        }
    }
}
