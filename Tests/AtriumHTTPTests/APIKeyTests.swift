import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

@Suite struct APIKeyTests {
    @Test func keysActWithinTheirTenantAndRoleAndStopAtOnceWhenRevoked() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let created = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "reporting", "role": "viewer"])
            #expect(created.status == .created)
            let secret = try #require(created.string("secret"))
            #expect(secret.hasPrefix("atk_"))
            #expect(created.string("prefix") == String(secret.prefix(12)))

            // Viewer scope: reads yes, admin actions no, user-only actions no.
            #expect(try await client.call(.get, "/v1/tenant", token: secret).string("slug") == "acme")
            #expect(try await client.call(.get, "/v1/members", token: secret).status == .ok)
            #expect(try await client.call(.post, "/v1/invitations", token: secret, json: ["email": "x@example.com", "role": "viewer"]).status == .forbidden)
            #expect(try await client.call(.get, "/v1/me", token: secret).status == .forbidden)
            #expect(try await client.call(.post, "/v1/auth/logout", token: secret).status == .forbidden)

            // Stored only as a hash; listed without the secret; last use recorded.
            let stored = try await app.database.withSuperuser { admin in
                try await admin.query("SELECT key_hash, last_used_at IS NOT NULL FROM atrium.api_keys").single!.decode((String, Bool).self)
            }
            #expect(stored.0.count == 64 && !stored.0.contains(secret) && stored.1)
            let listed = try await client.call(.get, "/v1/api-keys", token: owner.accessToken)
            let entry = try #require((listed["data"] as? [[String: Any]])?.first)
            #expect(entry["secret"] == nil && entry["lastUsedAt"] as? String != nil)

            #expect(try await client.call(.delete, "/v1/api-keys/\(created.string("id")!)", token: owner.accessToken).status == .noContent)
            #expect(try await client.call(.get, "/v1/tenant", token: secret).status == .unauthorized)
            #expect(try await client.call(.delete, "/v1/api-keys/\(created.string("id")!)", token: owner.accessToken).status == .notFound)
        }
    }

    @Test func keysCannotOutrankTheirCreatorOrBeOwnersAndExpire() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let admin = try await client.addMember("admin@example.com", role: "admin", by: owner)
            #expect(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "k", "role": "owner"]).status == .unprocessableContent)
            let adminKey = try #require(try await client.call(.post, "/v1/api-keys", token: admin.accessToken, json: ["name": "k", "role": "admin"]).string("secret"))
            // An admin key manages keys but cannot change owners.
            #expect(try await client.call(.get, "/v1/api-keys", token: adminKey).status == .ok)
            #expect(try await client.call(.patch, "/v1/members/\(owner.userID)", token: adminKey, json: ["role": "viewer"]).status == .forbidden)
            #expect(try await client.call(.delete, "/v1/tenant", token: adminKey).status == .forbidden)
            let past = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "old", "role": "viewer", "expiresAt": "2001-01-01T00:00:00Z"])
            #expect(past.status == .unprocessableContent)
            let soon = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: [
                "name": "soon", "role": "viewer", "expiresAt": Date().addingTimeInterval(1.5).formatted(.iso8601),
            ])
            let soonSecret = try #require(soon.string("secret"))
            #expect(try await client.call(.get, "/v1/tenant", token: soonSecret).status == .ok)
            try await Task.sleep(for: .seconds(2))
            #expect(try await client.call(.get, "/v1/tenant", token: soonSecret).status == .unauthorized)
        }
    }
}
