import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

@Suite struct MembershipTests {
    @Test func theLastOwnerCanNeitherBeDemotedNorRemoved() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let demote = try await client.call(.patch, "/v1/members/\(owner.userID)", token: owner.accessToken, json: ["role": "admin"])
            #expect(demote.status == .conflict)
            #expect(demote.string("reason") == "last_owner")
            let remove = try await client.call(.delete, "/v1/members/\(owner.userID)", token: owner.accessToken)
            #expect(remove.status == .conflict)
            #expect(remove.string("reason") == "last_owner")

            // With a second owner, the first may step down.
            let second = try await client.addMember("second@example.com", role: "owner", by: owner)
            #expect(try await client.call(.patch, "/v1/members/\(owner.userID)", token: owner.accessToken, json: ["role": "admin"]).status == .ok)
            // The demoted owner's session ended: their token carried the old role.
            try await waitUntil { try await client.call(.get, "/v1/tenant", token: owner.accessToken).status == .unauthorized }
            // Now the second owner is the last one.
            let last = try await client.call(.delete, "/v1/members/\(second.userID)", token: second.accessToken)
            #expect(last.string("reason") == "last_owner")
        }
        // The database enforces it too, whoever asks.
        try await app.database.withSuperuser { admin in
            let error = await #expect(throws: PostgresError.self) {
                try await admin.query("UPDATE atrium.memberships SET role = 'viewer' WHERE role = 'owner'")
            }
            #expect(error?.sqlState == "AT001")
        }
    }

    @Test func roleChangesAndRemovalsEndTheMembersSessions() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let member = try await client.addMember("member@example.com", role: "member", by: owner)
            #expect(try await client.call(.get, "/v1/members", token: member.accessToken).status == .ok)
            let changed = try await client.call(.patch, "/v1/members/\(member.userID)", token: owner.accessToken, json: ["role": "viewer"])
            #expect(changed.string("role") == "viewer")
            try await waitUntil { try await client.call(.get, "/v1/members", token: member.accessToken).status == .unauthorized }
            // Signing in again gives a token with the new role.
            let again = try await client.signIn("member@example.com")
            #expect(try await client.call(.post, "/v1/invitations", token: again.accessToken, json: ["email": "z@example.com", "role": "viewer"]).status == .forbidden)
            #expect(try await client.call(.delete, "/v1/members/\(member.userID)", token: owner.accessToken).status == .noContent)
            try await waitUntil { try await client.call(.get, "/v1/tenant", token: again.accessToken).status == .unauthorized }
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": again.refreshToken]).status == .unauthorized)
            let removed = try await client.call(.post, "/v1/auth/login", json: ["email": "member@example.com", "password": "correct horse battery"])
            #expect(removed.status == .forbidden)
            #expect(removed.string("reason") == "no_membership")
        }
    }

    @Test func invitationsForNewAndExistingUsers() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            _ = try await client.signUp("existing@example.com", tenant: "Elsewhere")

            let forExisting = try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "Existing@Example.com", "role": "admin"])
            #expect(forExisting.status == .created)
            #expect(forExisting.headers[.location] == "/v1/invitations/\(forExisting.string("id")!)")
            let token = try #require(forExisting.string("token"))
            // Listing never shows tokens.
            let listed = try await client.call(.get, "/v1/invitations", token: owner.accessToken)
            #expect(((listed["data"] as? [[String: Any]]) ?? []).allSatisfy { $0["token"] == nil })
            #expect(try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "existing@example.com", "role": "viewer"]).string("reason") == "already_invited")

            // An existing user must prove it is them.
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": token]).status == .unprocessableContent)
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "not their password"]).status == .unauthorized)
            let accepted = try await client.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "correct horse battery"])
            #expect(accepted.status == .ok)
            #expect(accepted.string("tenant.role") == "admin")
            #expect((accepted["tenants"] as? [Any])?.count == 2)
            // Tokens are single use.
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "correct horse battery"]).status == .gone)
            #expect(try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "existing@example.com", "role": "viewer"]).string("reason") == "already_member")

            // A new user chooses a password; a withdrawn invitation no longer works.
            let forNew = try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "new@example.com", "role": "viewer"])
            let withdrawn = try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "gone@example.com", "role": "viewer"])
            #expect(try await client.call(.delete, "/v1/invitations/\(withdrawn.string("id")!)", token: owner.accessToken).status == .noContent)
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": withdrawn.string("token")!, "password": "whatever password"]).status == .gone)
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": forNew.string("token")!, "password": "short"]).status == .unprocessableContent)
            let joined = try await client.call(.post, "/v1/invitations/accept", json: ["token": forNew.string("token")!, "password": "a fine new password"])
            #expect(joined.status == .ok)
            #expect(joined.string("tenant.role") == "viewer")
            #expect(try await client.call(.post, "/v1/invitations/accept", json: ["token": "inv_unknown"]).status == .notFound)
        }
    }

    @Test func aTenantCreatedFromPsqlIsClaimedThroughItsOwnerInvitation() async throws {
        let app = try await TestApp.make()
        let token = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT invitation_token FROM atrium_admin.create_tenant('Globex', 'globex', 'hank@globex.example')")
                .single!.decode(String.self, column: 0)
        }
        try await app.test { client in
            let claimed = try await client.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "hanks password"])
            #expect(claimed.status == .ok)
            #expect(claimed.string("tenant.slug") == "globex")
            #expect(claimed.string("tenant.role") == "owner")
            let deleted = try await client.call(.delete, "/v1/tenant", token: try SignedIn(claimed).accessToken)
            #expect(deleted.status == .noContent)
        }
        let overview = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT count(*)::int8 FROM atrium_admin.tenant_overview WHERE slug = 'globex'")
        }
        #expect(try overview[0].decode(Int.self, column: 0) == 0)
    }

    /// Migration 017 reads the overviews through functions with joins in place of correlated
    /// subqueries (which Citus cannot plan): the rows are the same as the first form's.
    @Test func theOverviewsCountWhatTheirFirstFormCounted() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("olga@example.com", tenant: "Counted")
            let member = try await client.addMember("mo@example.com", role: "member", by: owner)
            _ = try await client.signUp("solo@example.com", tenant: "Alone")
            #expect(try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "later@example.com", "role": "viewer"]).status == .created)
            #expect(try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "k", "role": "member"]).status == .created)
            #expect(try await client.call(.post, "/v1/auth/logout", token: member.accessToken).status == .noContent)
        }
        let firstTenantForm = """
            SELECT t.tenant_id, t.name, t.slug, t.created_at,
                   (SELECT count(*) FROM atrium.memberships m WHERE m.tenant_id = t.tenant_id),
                   (SELECT count(*) FROM atrium.memberships m WHERE m.tenant_id = t.tenant_id AND m.role = 'owner'),
                   (SELECT count(*) FROM atrium.sessions s WHERE s.tenant_id = t.tenant_id AND s.revoked_at IS NULL AND s.expires_at > now()),
                   (SELECT count(*) FROM atrium.api_keys k WHERE k.tenant_id = t.tenant_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())),
                   (SELECT count(*) FROM atrium.invitations i WHERE i.tenant_id = t.tenant_id AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now())
            FROM atrium.tenants t ORDER BY 1
            """
        let firstUserForm = """
            SELECT u.user_id, u.email, u.created_at, u.disabled_at,
                   (SELECT count(*) FROM atrium.memberships m WHERE m.user_id = u.user_id),
                   (SELECT count(*) FROM atrium.sessions s WHERE s.user_id = u.user_id AND s.revoked_at IS NULL AND s.expires_at > now())
            FROM atrium.users u ORDER BY 1
            """
        let tenants = try await app.database.adminQuery("SELECT * FROM atrium_admin.tenant_overview ORDER BY 1")
        let users = try await app.database.adminQuery("SELECT * FROM atrium_admin.user_overview ORDER BY 1")
        #expect(tenants.count == 2 && users.count == 3)
        #expect(tenants.map(\.values) == (try await app.database.adminQuery(firstTenantForm)).map(\.values))
        #expect(users.map(\.values) == (try await app.database.adminQuery(firstUserForm)).map(\.values))
        // Something was counted: two members, one owner, a live session, a key, an invitation.
        let counted = try #require(tenants.first { $0.values[2] == "counted" })
        #expect(Array(counted.values[4...]) == ["2", "1", "1", "1", "1"])
    }
}
