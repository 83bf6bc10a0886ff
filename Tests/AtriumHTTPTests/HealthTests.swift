import AtriumCore
import AtriumCrypto
import AtriumHTTP
import AtriumTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct HealthTests {
    static func application(_ database: Database, process: (any DatabaseProcessMonitor)? = nil) -> some ApplicationProtocol {
        let configuration = AuthConfiguration(keyRing: try! TokenKeyRing(parsing: TestApp.keyText), hashingPermits: 1)
        let services = try! AtriumServices(database: database, auth: configuration, databaseProcess: process, logger: TestLogger.make("services"))
        return try! buildApplication(server: ServerConfiguration(accessLog: false), services: services, logger: TestLogger.make("http"))
    }

    /// A supervised database process whose state a test sets.
    final class FakeProcess: DatabaseProcessMonitor {
        let state: Locked<DatabaseProcessState>
        init(_ state: DatabaseProcessState) { self.state = Locked(state) }
        var processState: DatabaseProcessState { self.state.value }
    }

    @Test func notReadyWhileTheEmbeddedDatabaseIsRestartedAndSaidSoInTheMetrics() async throws {
        let database = Database(pool: try await TestCluster.shared.makeDatabase().appPool(), logger: TestLogger.make("db"))
        let process = FakeProcess(DatabaseProcessState(phase: .restarting, restarts: 2))
        // `/readyz` gives PostgreSQL 2 s; a first connection on a machine loaded by the whole
        // suite (or through PgBouncer) can take longer, so the pool gets its connection first and
        // the "running" answer below is about the process state alone.
        _ = try await database.serverSetting("server_version")
        try await Self.application(database, process: process).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] == "1")
                let problem = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect(problem?["reason"] as? String == "database_restarting")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let text = String(buffer: response.body)
                #expect(text.contains("atrium_embedded_postgres_up 0.0"))
                #expect(text.contains("atrium_embedded_postgres_restarts 2.0"))
            }
            process.state.withLock { $0 = DatabaseProcessState(phase: .running, restarts: 2) }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .ok)
            }
        }
    }

    @Test func healthAndReadinessWithADatabase() async throws {
        let database = Database(pool: try await TestCluster.shared.makeDatabase().appPool(), logger: TestLogger.make("db"))
        try await Self.application(database).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == #"{"status":"ok"}"#)
                let id = try #require(response.headers[.init("X-Request-ID")!])
                #expect((16...128).contains(id.count))
                #expect(id.allSatisfy { $0.isHexDigit })
            }
            // The check gives PostgreSQL 2 s; on a machine loaded by the whole suite the first
            // connection can take longer, so it may answer "not ready" once or twice first.
            var ready: (HTTPResponse.Status, String) = (.serviceUnavailable, "")
            for _ in 0..<5 where ready.0 != .ok {
                ready = try await client.execute(uri: "/readyz", method: .get) { ($0.status, String(buffer: $0.body)) }
            }
            #expect(ready.0 == .ok)
            #expect(ready.1 == #"{"status":"ready"}"#)
        }
    }

    @Test func notReadyWhenPostgresIsUnreachable() async throws {
        let database = Database(
            configuration: DatabaseConfiguration(
                url: "host=/nonexistent-atrium-socket-dir port=5 user=nobody dbname=none",
                acquireTimeout: .milliseconds(300)
            ),
            logger: TestLogger.make("db")
        )
        try await Self.application(database).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.headers[.retryAfter] != nil)
                let problem = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect(problem?["status"] as? Int == 503)
                #expect(problem?["type"] as? String == "/problems/service-unavailable")
            }
            // A request that needs the database gets the same 503, not a 500.
            let configuration = AuthConfiguration(keyRing: try TokenKeyRing(parsing: TestApp.keyText), hashingPermits: 1)
            let token = AccessTokens(configuration: configuration, revocations: RevocationSet(retention: .seconds(900)))
                .issue(user: UUID(), tenant: UUID(), role: .owner, session: UUID()).token
            try await client.execute(uri: "/v1/collections", method: .get, headers: [.authorization: "Bearer \(token)"]) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(response.headers[.retryAfter] != nil)
                #expect(response.headers[.contentType] == "application/problem+json")
            }
        }
    }

    @Test func requestIDsAreEchoedWhenWellFormedAndReplacedOtherwise() async throws {
        let database = Database(pool: try await TestCluster.shared.makeDatabase().appPool(), logger: TestLogger.make("db"))
        try await Self.application(database).test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get, headers: [.init("X-Request-ID")!: "trace-42.a_b:c"]) { response in
                #expect(response.headers[.init("X-Request-ID")!] == "trace-42.a_b:c")
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [.init("X-Request-ID")!: "bad id\twith spaces"]) { response in
                let id = response.headers[.init("X-Request-ID")!]
                #expect(id != nil && id != "bad id\twith spaces")
                // Hummingbird's ids: a per-process random 64-bit prefix printed without leading
                // zeros, then a zero-padded 64-bit counter, in hex; so 17 to 32 characters.
                #expect((17...32).contains(id?.count ?? 0))
                #expect(id?.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) } == true)
            }
        }
    }

    @Test func unknownRoutesAreProblemDocumentsCarryingTheRequestID() async throws {
        let database = Database(pool: try await TestCluster.shared.makeDatabase().appPool(), logger: TestLogger.make("db"))
        try await Self.application(database).test(.router) { client in
            try await client.execute(uri: "/no/such/route", method: .get, headers: [.init("X-Request-ID")!: "abc"]) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.contentType] == "application/problem+json")
                let problem = try JSONSerialization.jsonObject(with: Data(String(buffer: response.body).utf8)) as? [String: Any]
                #expect(problem?["requestId"] as? String == "abc")
                #expect(problem?["title"] as? String == "Not found")
            }
        }
    }
}
