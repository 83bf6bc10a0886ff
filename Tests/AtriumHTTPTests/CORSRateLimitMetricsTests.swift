import AtriumCore
import AtriumHTTP
import AtriumTestSupport
import EmbeddedPostgres
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite struct CORSTests {
    static func app() async throws -> TestApp {
        var app = try await TestApp.make()
        app.server.cors = CORSPolicy(allowedOrigins: ["https://app.example.com"], maxAge: 900)
        return app
    }

    @Test func preflightFromAnAllowedOriginNeedsNoCredentials() async throws {
        try await Self.app().test { client in
            let response = try await client.call(.options, "/v1/collections/tasks/records", headers: [
                .origin: "https://app.example.com",
                .init("Access-Control-Request-Method")!: "PATCH",
                .init("Access-Control-Request-Headers")!: "authorization, content-type, if-match",
            ])
            #expect(response.status == .noContent)
            #expect(response.headers[.init("Access-Control-Allow-Origin")!] == "https://app.example.com")
            #expect(response.headers[.init("Access-Control-Allow-Methods")!]?.contains("PATCH") == true)
            let allowedHeaders = response.headers[.init("Access-Control-Allow-Headers")!]?.lowercased() ?? ""
            for header in ["authorization", "content-type", "if-match", "idempotency-key"] {
                #expect(allowedHeaders.contains(header), "\(header)")
            }
            #expect(response.headers[.init("Access-Control-Max-Age")!] == "900")
            #expect(response.headers[.init("Vary")!] == "Origin")
        }
    }

    @Test func preflightFromAnotherOriginIsRefused() async throws {
        try await Self.app().test { client in
            let response = try await client.call(.options, "/v1/me", headers: [
                .origin: "https://evil.example.net",
                .init("Access-Control-Request-Method")!: "GET",
            ])
            #expect(response.status == .forbidden)
            #expect(response.headers[.init("Access-Control-Allow-Origin")!] == nil)
            #expect(response.string("reason") == "origin_not_allowed")
            // Near misses are other origins too.
            for origin in ["http://app.example.com", "https://app.example.com:8443", "https://app.example.com.evil.net"] {
                let near = try await client.call(.options, "/v1/me", headers: [.origin: origin, .init("Access-Control-Request-Method")!: "GET"])
                #expect(near.status == .forbidden, "\(origin)")
            }
        }
    }

    @Test func actualResponsesExposeTheHeadersClientsNeed() async throws {
        try await Self.app().test { client in
            let allowed = try await client.call(.get, "/v1/me", headers: [.origin: "https://app.example.com"])
            #expect(allowed.status == .unauthorized)
            #expect(allowed.headers[.init("Access-Control-Allow-Origin")!] == "https://app.example.com")
            let exposed = allowed.headers[.init("Access-Control-Expose-Headers")!] ?? ""
            for header in ["ETag", "Location", "X-Request-ID", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                #expect(exposed.contains(header), "\(header)")
            }
            let other = try await client.call(.get, "/v1/me", headers: [.origin: "https://evil.example.net"])
            #expect(other.headers[.init("Access-Control-Allow-Origin")!] == nil)
        }
    }

    @Test func anyOriginWithoutCredentials() async throws {
        var app = try await TestApp.make()
        app.server.cors = CORSPolicy(allowedOrigins: ["*"])
        try await app.test { client in
            let response = try await client.call(.get, "/healthz", headers: [.origin: "https://anywhere.example"])
            #expect(response.headers[.init("Access-Control-Allow-Origin")!] == "*")
            #expect(response.headers[.init("Access-Control-Allow-Credentials")!] == nil)
        }
    }
}

@Suite struct RateLimitTests {
    @Test func aTenantOverItsBurstGets429WithHeaders() async throws {
        var app = try await TestApp.make()
        // A token every 100 s: the refill during the test stays below one token, and the wait
        // it announces within the range below, even when the whole suite on two cores makes
        // each request take a second (seen in CI with a token every 20 s).
        app.server.rateLimits = RateLimitPolicy(tenantRate: 0.01, tenantBurst: 5, addressRate: 0, addressBurst: 1)
        try await app.test { client in
            let busy = try await client.signUp("busy@example.com", tenant: "Busy")
            let calm = try await client.signUp("calm@example.com", tenant: "Calm")
            var remaining: [Int] = []
            for _ in 0..<5 {
                let response = try await client.call(.get, "/v1/tenant", token: busy.accessToken)
                #expect(response.status == .ok)
                #expect(response.headers[.init("RateLimit-Limit")!] == "5")
                remaining.append(Int(response.headers[.init("RateLimit-Remaining")!] ?? "") ?? -1)
            }
            #expect(remaining == [4, 3, 2, 1, 0])
            let refused = try await client.call(.get, "/v1/tenant", token: busy.accessToken)
            ErrorAndLimitTests.expectProblem(refused, .tooManyRequests, type: "too-many-requests")
            #expect(refused.string("reason") == "rate_limited")
            let retryAfter = try #require(Int(refused.headers[.retryAfter] ?? ""))
            #expect((70...100).contains(retryAfter))
            #expect(refused.headers[.init("RateLimit-Remaining")!] == "0")
            #expect(Int(refused.headers[.init("RateLimit-Reset")!] ?? "") == retryAfter)
            // Another tenant has its own bucket; health checks are never limited.
            do {
                let response = try await client.call(.get, "/v1/tenant", token: calm.accessToken)
                #expect(response.status == .ok)
            }
            do {
                let response = try await client.call(.get, "/healthz")
                #expect(response.status == .ok)
            }
        }
    }

    @Test func theLimitIsSharedByTheLiveServersOfTheDeployment() async throws {
        var app = try await TestApp.make()
        app.server.rateLimits = RateLimitPolicy(tenantRate: 0.05, tenantBurst: 6, addressRate: 0, addressBurst: 1)
        // A second server on the same database, and one that died an hour ago.
        let other = ServerRegistry(database: app.services.database, logger: TestLogger.make("servers"))
        try await app.database.adminExecute("INSERT INTO atrium.servers (server_id, started_at, seen_at) VALUES (gen_random_uuid(), now() - interval '2 hours', now() - interval '1 hour')")
        await other.beat()
        await app.services.servers.beat()
        let registry = app.services.servers
        #expect(registry.liveServers == 2)
        #expect(try await app.database.adminQuery("SELECT count(*) FROM atrium.servers")[0].string(0) == "2")
        try await app.test { client in
            let busy = try await client.signUp("busy@example.com", tenant: "Busy")
            var remaining: [String?] = []
            for _ in 0..<3 {
                let response = try await client.call(.get, "/v1/tenant", token: busy.accessToken)
                #expect(response.status == .ok)
                #expect(response.headers[.init("RateLimit-Limit")!] == "6")
                remaining.append(response.headers[.init("RateLimit-Remaining")!])
            }
            // Half of the burst here; the headers count for the deployment.
            #expect(remaining == ["4", "2", "0"])
            #expect(try await client.call(.get, "/v1/tenant", token: busy.accessToken).status == .tooManyRequests)
            // A server that stops takes its row with it; the next heartbeat counts one.
            await other.leave()
            await registry.beat()
            #expect(registry.liveServers == 1)
        }
    }

    @Test func failedCredentialsAreChargedToTheAddressAndThenRefusedWithoutAQuery() async throws {
        var app = try await TestApp.make()
        // One token per 1,000 s: a slow run (the whole suite on two cores) cannot refill one.
        app.server.rateLimits = RateLimitPolicy(tenantRate: 0, tenantBurst: 1, addressRate: 0.001, addressBurst: 5)
        let pool = app.pool
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            func guess() async throws -> HTTPResponse.Status {
                // A random API key: each check of one is a database query.
                let key = "atk_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
                return try await client.call(.get, "/v1/tenant", token: key, from: "203.0.113.66").status
            }
            var checked: [HTTPResponse.Status] = []
            for _ in 0..<5 { checked.append(try await guess()) }
            #expect(checked.allSatisfy { $0 == .unauthorized }, "\(checked)")
            // The bucket is empty now: further guesses are refused before any query.
            // Background work (the listener's start-up reload, the webhook dispatcher's first
            // look) may take a connection in any window: a window of guesses without a single
            // acquisition shows the guesses took none; guesses that queried would spoil every one.
            var guesses: [HTTPResponse.Status] = []
            var quietWindow = false
            for _ in 0..<5 where !quietWindow {
                let before = pool.statistics.acquired
                for _ in 0..<4 { guesses.append(try await guess()) }
                quietWindow = pool.statistics.acquired == before
            }
            #expect(guesses.allSatisfy { $0 == .tooManyRequests }, "\(guesses)")
            #expect(quietWindow, "every window of refused guesses took a database connection")
            let refused = try await client.call(.get, "/v1/tenant", token: "garbage", from: "203.0.113.66")
            #expect(refused.string("reason") == "rate_limited")
            #expect(refused.headers[.retryAfter] != nil)
            // A valid credential from another address is not affected, nor tenants' own limits.
            #expect(try await client.call(.get, "/v1/tenant", token: owner.accessToken, from: "203.0.113.67").status == .ok)
        }
    }

    @Test func unauthenticatedRequestsAreLimitedPerAddress() async throws {
        var app = try await TestApp.make()
        // One token per 100 s: a slow run cannot refill one between the calls.
        app.server.rateLimits = RateLimitPolicy(tenantRate: 0, tenantBurst: 1, addressRate: 0.01, addressBurst: 3)
        try await app.test { client in
            for _ in 0..<3 {
                do {
                    let response = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": "nope"], from: "198.51.100.7")
                    #expect(response.status == .unauthorized)
                }
            }
            let refused = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": "nope"], from: "198.51.100.7")
            ErrorAndLimitTests.expectProblem(refused, .tooManyRequests, type: "too-many-requests")
            #expect(refused.headers[.retryAfter] != nil)
            do {
                let response = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": "nope"], from: "198.51.100.8")
                #expect(response.status == .unauthorized)
            }
        }
    }
}

@Suite struct MetricsTests {
    /// Prometheus text format: comments, or `name{labels} value`.
    static func parse(_ text: String) throws -> [(name: String, labels: [String: String], value: Double)] {
        var samples: [(String, [String: String], Double)] = []
        let pattern = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|\+Inf|-Inf|NaN)$"#)
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let match = try pattern.wholeMatch(in: String(line)) else { throw TestFailure("not Prometheus text: \(line)") }
            let name = String(match.output[1].substring ?? "")
            var labels: [String: String] = [:]
            if let body = match.output[3].substring {
                for pair in body.split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, parts[1].hasPrefix("\""), parts[1].hasSuffix("\"") else { throw TestFailure("bad label in \(line)") }
                    labels[String(parts[0])] = String(parts[1].dropFirst().dropLast())
                }
            }
            let valueText = String(match.output[4].substring ?? "")
            guard let value = Double(valueText) ?? (valueText == "+Inf" ? .infinity : nil) else { throw TestFailure("bad value in \(line)") }
            samples.append((name, labels, value))
        }
        return samples
    }

    @Test func metricsCountTheRequestJustMade() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("metrics@example.com", tenant: "Metrics")
            func count(_ samples: [(name: String, labels: [String: String], value: Double)], route: String, status: String) -> Double {
                samples.first { $0.name == "atrium_http_requests_total" && $0.labels["route"] == route && $0.labels["status"] == status && $0.labels["method"] == "GET" }?.value ?? 0
            }
            let before = try Self.parse(try await client.call(.get, "/metrics").body)
            _ = try await client.call(.get, "/v1/collections", token: owner.accessToken)
            _ = try await client.call(.get, "/v1/collections", token: "not-a-token")
            let response = try await client.call(.get, "/metrics")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("text/plain") == true)
            let after = try Self.parse(response.body)
            #expect(count(after, route: "/v1/collections", status: "200") == count(before, route: "/v1/collections", status: "200") + 1)
            #expect(count(after, route: "/v1/collections", status: "401") == count(before, route: "/v1/collections", status: "401") + 1)
            // Route templates, never concrete ids, label the series.
            #expect(!after.contains { $0.labels["route"]?.contains(owner.tenantID) == true })
            let names = Set(after.map(\.name))
            for name in [
                "atrium_http_request_duration_seconds_bucket", "atrium_db_pool_connections_open", "atrium_db_pool_waiters",
                "atrium_password_hash_queue_depth", "atrium_auth_failures_total",
            ] {
                #expect(names.contains(name), "\(name)")
            }
            #expect((after.first { $0.name == "atrium_auth_failures_total" }?.value ?? 0) >= 1)
        }
    }

    @Test func theTenantsThatWaitMostForConnectionsGetSeriesOfTheirOwnWhenAskedFor() async throws {
        // The queued requests must still be waiting when the last of them queues, however
        // loaded the machine (the whole suite runs at once): they wait until released.
        var app = try await TestApp.make(acquireTimeout: .seconds(120))
        app.server.metricsTenants = 1
        let pool = app.pool
        let database = app.services.database
        try await app.test { client in
            let busy = TenantContext(tenantID: UUID())
            let calm = TenantContext(tenantID: UUID())
            // Hold every connection, then let one tenant queue three requests and another one.
            // The holders count themselves in: the application's own background work may hold a
            // connection for a moment, so four in use need not be four holders, and one that
            // is let go would serve the queued requests before the count is read.
            let release = Locked(false)
            let holding = Locked(0)
            let holders = (0..<4).map { _ in
                Task {
                    try await pool.withConnection { _ in
                        holding.withLock { $0 += 1 }
                        while !release.value { try await Task.sleep(for: .milliseconds(5)) }
                    }
                }
            }
            // Bounded: a test that cannot set the scene fails instead of hanging the run.
            let deadline = ContinuousClock.now + .seconds(30)
            while holding.value < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(holding.value == 4, "the holders never got every connection: \(pool.statistics)")
            let queued = (0..<3).map { _ in Task { try await database.query(in: busy, "SELECT 1") } } + [Task { try await database.query(in: calm, "SELECT 1") }]
            while pool.statistics.waiting < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
            #expect(pool.statistics.waiting >= 4, "the four requests never queued: \(pool.statistics)")
            release.withLock { $0 = true }
            for task in holders { try await task.value }
            for task in queued { _ = try await task.value }
            let samples = try Self.parse(try await client.call(.get, "/metrics").body)
            let waits = samples.filter { $0.name == "atrium_db_pool_tenant_waits" }
            // Only the busiest tenant (one series asked for), with its count.
            #expect(waits.map(\.labels) == [["tenant": busy.tenantID.uuidString.lowercased()]])
            #expect(waits.first?.value == 3)
            #expect(samples.contains { $0.name == "atrium_db_pool_tenant_acquire_timeouts" && $0.value == 0 })
        }
    }

    @Test func rateLimitRejectionsAreCounted() async throws {
        var app = try await TestApp.make()
        app.server.rateLimits = RateLimitPolicy(tenantRate: 0, tenantBurst: 1, addressRate: 0.1, addressBurst: 1)
        try await app.test { client in
            _ = try await client.call(.get, "/v1/me", from: "203.0.113.9")
            do {
                let response = try await client.call(.get, "/v1/me", from: "203.0.113.9")
                #expect(response.status == .tooManyRequests)
            }
            let samples = try Self.parse(try await client.call(.get, "/metrics").body)
            #expect(samples.first { $0.name == "atrium_rate_limited_total" && $0.labels["scope"] == "address" }?.value == 1)
        }
    }

    @Test func metricsCanBeTurnedOff() async throws {
        var app = try await TestApp.make()
        app.server.metrics = .off
        try await app.test { client in
            do {
                let response = try await client.call(.get, "/metrics")
                #expect(response.status == .notFound)
            }
        }
    }
}

@Suite struct MetricsPortTests {
    @Test func metricsCanLiveOnAPortOfTheirOwn() async throws {
        var app = try await TestApp.make()
        let metricsPort = try FreePort.find()
        app.server.metrics = .port(metricsPort)
        try await app.serve { port in
            let deadline = ContinuousClock.now + .seconds(30)
            while !FreePort.accepts(metricsPort), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let onAPI = try await LiveServerTests.exchange(port: port, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            #expect(onAPI.hasPrefix("HTTP/1.1 404"), "\(onAPI)")
            _ = try await LiveServerTests.exchange(port: port, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let own = try await LiveServerTests.exchange(port: metricsPort, "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            #expect(own.hasPrefix("HTTP/1.1 200"), "\(own)")
            let body = String(own[own.range(of: "\r\n\r\n")!.upperBound...])
            let samples = try MetricsTests.parse(body)
            #expect(samples.contains { $0.name == "atrium_http_requests_total" && $0.labels["route"] == "/healthz" && $0.value >= 1 })
        }
    }
}
