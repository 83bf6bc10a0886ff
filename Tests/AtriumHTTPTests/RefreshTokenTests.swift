import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite struct RefreshTokenTests {
    @Test func aReusedRefreshTokenEndsTheWholeSession() async throws {
        let app = try await TestApp.make(refreshGrace: .zero)
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let first = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": ann.refreshToken])
            #expect(first.status == .ok)
            let second = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": first.string("refreshToken")!])
            #expect(second.status == .ok)
            let latestAccess = try #require(second.string("accessToken"))
            #expect(try await client.call(.get, "/v1/me", token: latestAccess).status == .ok)

            // The first token comes back (a copy someone kept): the family is revoked…
            let replay = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": ann.refreshToken])
            #expect(replay.status == .unauthorized)
            // …so the legitimate holder's newest tokens stop working too.
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": second.string("refreshToken")!]).status == .unauthorized)
            #expect(try await client.call(.get, "/v1/me", token: latestAccess).status == .unauthorized)
        }
        let events = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM atrium.auth_events WHERE kind = 'refresh_token_reused'")
        }
        #expect(try events[0].decode(Int.self, column: 0) == 1)
    }

    @Test func aRetriedRefreshWithinTheGraceWindowIsAnsweredAgain() async throws {
        let app = try await TestApp.make(refreshGrace: .seconds(30))
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            // The client sends the refresh, loses the answer, and sends the same token again.
            let lost = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": ann.refreshToken])
            #expect(lost.status == .ok)
            let retried = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": ann.refreshToken])
            #expect(retried.status == .ok)
            // Only the newest pair lives on; the session itself is intact.
            let newest = try #require(retried.string("refreshToken"))
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": newest]).status == .ok)
            // The answer that was lost is dead: it was never the latest one replaced.
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": lost.string("refreshToken")!]).status == .unauthorized)
        }
    }

    @Test func garbageAndForeignRefreshTokensAreRefused() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            for token in ["", "art_", "art_" + String(repeating: "A", count: 43), "atk_nope", String(repeating: "x", count: 500)] {
                let response = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": token])
                #expect(response.status == .unauthorized, "\(token)")
            }
        }
    }
}
