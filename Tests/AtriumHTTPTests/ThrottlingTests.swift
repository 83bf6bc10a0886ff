import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

@Suite struct ThrottlingTests {
    func failLogin(_ client: some TestClientProtocol, _ email: String, from address: String) async throws -> JSONResponse {
        try await client.call(.post, "/v1/auth/login", json: ["email": email, "password": "definitely wrong"], from: address)
    }

    @Test func repeatedFailuresFromOneAddressGetGrowingDelaysButAFreshAddressDoesNot() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            // Three free attempts, then 429. Sent together, so the fourth is checked within the
            // first wait (1 s) however loaded the machine is.
            let first = try await withThrowingTaskGroup(of: JSONResponse.self) { group in
                for _ in 0..<4 { group.addTask { try await self.failLogin(client, "ann@example.com", from: "203.0.113.7") } }
                return try await group.reduce(into: [JSONResponse]()) { $0.append($1) }
            }
            #expect(first.filter { $0.status == .unauthorized }.count == 3)
            let throttled = try #require(first.first { $0.status == .tooManyRequests })
            #expect(throttled.headers[.contentType] == "application/problem+json")
            // One second after the third failure — plus, on a loaded machine, however long the
            // check's transaction waited after it began: the wait is counted from its start
            // (`now()`), and the failure it sees may be later (this failed under the full suite).
            #expect((1...4).contains(try #require(throttled.headers[.retryAfter].flatMap(Int.init))))
            // Seven more failures, recorded as just now: ten in all, so the wait has grown to
            // 2^7 = 128 s — far longer than the checks below take however loaded the machine
            // (a wait of 4 s was not: in CI a sign-in took longer than that).
            _ = try await app.database.withSuperuser { admin in
                try await admin.query("""
                    INSERT INTO atrium.login_failures (account, client_address, recognized)
                    SELECT f.account, f.client_address, false FROM atrium.login_failures f, generate_series(1, 3) g
                    WHERE f.client_address = '203.0.113.7' LIMIT 7
                    """)
            }
            let longer = try await self.failLogin(client, "ann@example.com", from: "203.0.113.7")
            #expect(longer.status == .tooManyRequests)
            let wait = try #require(longer.headers[.retryAfter].flatMap(Int.init))
            #expect((100...128).contains(wait))
            // Even the right password waits: the check comes before any hashing.
            let rightButThrottled = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "203.0.113.7")
            #expect(rightButThrottled.status == .tooManyRequests)

            // The owner, from an address that has not failed, is not held up at all.
            let fresh = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "198.51.100.20")
            #expect(fresh.status == .ok)

            // After the wait the address may try again; another failure doubles the wait. The
            // wait is over once the failures are older than it: they are moved back in time
            // rather than waited for.
            _ = try await app.database.withSuperuser { admin in
                try await admin.query("UPDATE atrium.login_failures SET failed_at = failed_at - interval '130 seconds' WHERE client_address = '203.0.113.7'")
            }
            let retried = try await self.failLogin(client, "ann@example.com", from: "203.0.113.7")
            #expect(retried.status == .unauthorized)
            let doubled = try await self.failLogin(client, "ann@example.com", from: "203.0.113.7")
            #expect(doubled.status == .tooManyRequests)
            #expect(try #require(doubled.headers[.retryAfter].flatMap(Int.init)) >= 200)
        }
    }

    @Test func concurrentWrongPasswordsCannotRaceTheCheck() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            // All at once, so every check happens before any hash is done.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await self.failLogin(client, "ann@example.com", from: "203.0.113.9").status }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            // The policy's three free failures, then one a second, then one two seconds after
            // that (…): never two admitted on one check. Sent at once, all eight nearly always
            // arrive within the first second (three admitted, five refused), but on a loaded
            // machine a late one may come after the wait and rightly be admitted, so what is
            // checked is the spacing of the failures PostgreSQL recorded.
            let admitted = statuses.filter { $0 == .unauthorized }.count
            #expect(admitted >= 3 && admitted + statuses.filter { $0 == .tooManyRequests }.count == 8, "\(statuses)")
            let recorded = try await app.database.withSuperuser { admin in
                try await admin.query("""
                    SELECT extract(epoch FROM failed_at)::float8 FROM atrium.login_failures
                    WHERE client_address = '203.0.113.9' ORDER BY failed_at
                    """)
            }
            let times = try recorded.map { try $0.decode(Double.self, column: 0) }
            #expect(times.count == admitted)
            for index in times.indices where index >= 3 {
                let required = pow(2, Double(index - 3))
                #expect(times[index] - times[index - 1] >= required - 0.001, "failure \(index + 1) came \(times[index] - times[index - 1]) s after the one before")
            }
            // A success takes its reservation back: it is not counted as a failure.
            _ = try await client.signIn("ann@example.com", from: "198.51.100.3")
            _ = try await client.signIn("ann@example.com", from: "198.51.100.3")
        }
        let failures = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM atrium.login_failures WHERE client_address = '198.51.100.3'")
        }
        #expect(try failures[0].decode(Int.self, column: 0) == 0)
    }

    @Test func anAccountNeverTakesMoreThanAHundredFailuresAnHourAndKnownAddressesKeepTheirShare() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            // Ann signs in from home once: that address is now recognised.
            _ = try await client.signIn("ann@example.com", from: "198.51.100.99")
            // A distributed attack: many addresses, two failures each.
            var refused = 0
            for index in 0..<60 {
                for _ in 0..<2 {
                    let response = try await self.failLogin(client, "ann@example.com", from: "10.0.\(index / 250).\(index % 250)")
                    if response.status == .tooManyRequests { refused += 1 }
                }
            }
            #expect(refused == 40, "the 80 failures from unrecognised addresses are used up, the rest refused")
            // A brand-new address is refused while the budget is spent…
            let newcomer = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "172.16.0.1")
            #expect(newcomer.status == .tooManyRequests)
            #expect(try #require(newcomer.headers[.retryAfter].flatMap(Int.init)) <= 3600)
            // …but Ann's recognised address still gets in: attackers cannot spend its share.
            let home = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "198.51.100.99")
            #expect(home.status == .ok)
            // Her own mistakes draw on the reserved 20; after them the hundred is reached and all stops.
            var homeFailures = 0
            for _ in 0..<40 {
                let response = try await self.failLogin(client, "ann@example.com", from: "198.51.100.99")
                if response.status == .unauthorized { homeFailures += 1 }
                if response.status == .tooManyRequests, homeFailures >= 3 { break }
            }
            #expect(homeFailures >= 3)
        }
        let failures = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM atrium.login_failures WHERE failed_at > now() - interval '1 hour'")
        }
        #expect(try failures[0].decode(Int.self, column: 0) <= 100)
    }

    @Test func oneAddressSprayingManyAccountsIsSlowedDown() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            var statuses: [HTTPResponse.Status] = []
            for index in 0..<25 {
                statuses.append(try await self.failLogin(client, "user\(index)@example.com", from: "203.0.113.50").status)
            }
            #expect(statuses.prefix(20).allSatisfy { $0 == .unauthorized })
            #expect(statuses.suffix(5).contains(.tooManyRequests))
            // The same accounts from another address are not affected.
            #expect(try await self.failLogin(client, "user3@example.com", from: "203.0.113.51").status == .unauthorized)
        }
    }
}

@Suite struct HashingOverloadTests {
    @Test func aFloodOfSignInsBeyondTheHashingQueueGets503WithRetryAfter() async throws {
        // One hashing thread, no waiting line, and expensive hashes: concurrent sign-ins overflow.
        let app = try await TestApp.make { configuration in
            configuration.hashingPermits = 1
            configuration.hashingQueue = 0
            configuration.passwordParameters = .init(logN: 14, r: 8, p: 1)
        }
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            let statuses = try await withThrowingTaskGroup(of: JSONResponse.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "192.0.2.\(index + 10)")
                    }
                }
                return try await group.reduce(into: [JSONResponse]()) { $0.append($1) }
            }
            #expect(statuses.contains { $0.status == .ok })
            let refused = statuses.filter { $0.status == .serviceUnavailable }
            #expect(!refused.isEmpty)
            for response in refused {
                #expect(response.headers[.retryAfter] != nil)
                #expect(response.string("type") == "/problems/overloaded")
            }
        }
    }
}
