import AtriumCore
import AtriumTestSupport
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
            // Long enough ahead that a loaded machine still uses it before it expires.
            let expiry = Date().addingTimeInterval(5)
            let soon = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: [
                "name": "soon", "role": "viewer", "expiresAt": expiry.formatted(.iso8601),
            ])
            let soonSecret = try #require(soon.string("secret"))
            #expect(try await client.call(.get, "/v1/tenant", token: soonSecret).status == .ok)
            try await Task.sleep(for: .seconds(max(0, expiry.timeIntervalSinceNow) + 0.5))
            #expect(try await client.call(.get, "/v1/tenant", token: soonSecret).status == .unauthorized)
        }
    }

    @Test func aKeyActsWithAtMostItsCreatorsCurrentRoleAndEndsWithTheirMembership() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let admin = try await client.addMember("admin@example.com", role: "admin", by: owner)
            let created = try await client.call(.post, "/v1/api-keys", token: admin.accessToken, json: ["name": "ops", "role": "admin"])
            let key = try #require(created.string("secret"))
            let keyID = try #require(created.string("id"))
            #expect(try await client.call(.get, "/v1/api-keys", token: key).status == .ok)

            // Keys do not make keys: a key cannot outlive, or multiply, its creator's rights.
            let child = try await client.call(.post, "/v1/api-keys", token: key, json: ["name": "child", "role": "viewer"])
            #expect(child.status == .forbidden)

            // The creator is demoted: the key reads as a viewer, and nothing more.
            #expect(try await client.call(.patch, "/v1/members/\(admin.userID)", token: owner.accessToken, json: ["role": "viewer"]).status == .ok)
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)
            #expect(try await client.call(.get, "/v1/api-keys", token: key).status == .forbidden)
            #expect(try await client.call(.post, "/v1/invitations", token: key, json: ["email": "x@example.com", "role": "viewer"]).status == .forbidden)
            // Promoted back, the key has its own role again (never more).
            #expect(try await client.call(.patch, "/v1/members/\(admin.userID)", token: owner.accessToken, json: ["role": "owner"]).status == .ok)
            #expect(try await client.call(.get, "/v1/api-keys", token: key).status == .ok)
            #expect(try await client.call(.delete, "/v1/tenant", token: key).status == .forbidden)

            // Disabled by a database administrator: the key stops; enabled again, it works.
            _ = try await app.database.withSuperuser { try await $0.query("SELECT atrium_admin.disable_user('admin@example.com')") }
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .unauthorized)
            _ = try await app.database.withSuperuser { try await $0.query("SELECT atrium_admin.enable_user('admin@example.com')") }
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .ok)

            // Removed from the tenant: the key is revoked for good, even if they come back.
            #expect(try await client.call(.patch, "/v1/members/\(admin.userID)", token: owner.accessToken, json: ["role": "admin"]).status == .ok)
            #expect(try await client.call(.delete, "/v1/members/\(admin.userID)", token: owner.accessToken).status == .noContent)
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .unauthorized)
            let listed = try await client.call(.get, "/v1/api-keys", token: owner.accessToken)
            let entry = try #require((listed["data"] as? [[String: Any]])?.first { $0["id"] as? String == keyID })
            #expect(entry["revokedAt"] as? String != nil)
            let invitation = try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "admin@example.com", "role": "admin"])
            let accepted = try await client.call(.post, "/v1/invitations/accept", json: ["token": invitation.string("token")!, "password": "correct horse battery"])
            #expect(accepted.status == .ok)
            #expect(try await client.call(.get, "/v1/tenant", token: key).status == .unauthorized)
        }
    }

    @Test func keysThatKeysCreatedBeforeTheFixAreRevokedByTheMigration() async throws {
        let name = try await TestCluster.shared.makeEmptyDatabase(prefix: "keys")
        let configuration = try await TestCluster.shared.superuserConfiguration(database: name)
        let all = try Migrations.all()
        let before = all.filter { $0.version < 9 }
        try await Migrator(configuration: configuration, migrations: before, logger: TestLogger.make("migrate")).migrate()
        try await TestCluster.shared.withConnection(database: name) { admin in
            try await admin.simpleQuery("""
                INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES ('00000000-0000-4000-8000-000000000001', 'Old', 'old');
                INSERT INTO atrium.api_keys (tenant_id, key_id, name, role, key_hash, key_prefix, created_by)
                VALUES ('00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'made by a key', 'admin',
                        repeat('a', 64), 'atk_aaaaaaaa', NULL);
                """)
        }
        try await Migrator(configuration: configuration, migrations: all, logger: TestLogger.make("migrate")).migrate()
        let revoked = try await TestCluster.shared.withConnection(database: name) { admin in
            try await admin.query("SELECT revoked_at IS NOT NULL FROM atrium.api_keys").single!.decode(Bool.self, column: 0)
        }
        #expect(revoked)
    }
}
