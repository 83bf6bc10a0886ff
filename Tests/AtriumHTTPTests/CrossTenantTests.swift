import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// Tenant A's credentials on tenant B's ids: 404, and nothing in B changes.
@Suite struct CrossTenantTests {
    @Test func anotherTenantsIdsAreNotFoundAndUntouched() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let alice = try await client.signUp("alice@example.com", tenant: "Alpha")
            let bob = try await client.signUp("bob@example.com", tenant: "Beta")
            let bobsMember = try await client.addMember("bert@example.com", role: "member", by: bob)
            let bobsInvitation = try await client.call(.post, "/v1/invitations", token: bob.accessToken, json: ["email": "x@example.com", "role": "viewer"])
            let bobsKey = try await client.call(.post, "/v1/api-keys", token: bob.accessToken, json: ["name": "beta", "role": "member"])
            let invitationID = try #require(bobsInvitation.string("id"))
            let keyID = try #require(bobsKey.string("id"))
            let aliceKey = try #require(try await client.call(.post, "/v1/api-keys", token: alice.accessToken, json: ["name": "a", "role": "admin"]).string("secret"))

            let snapshot = try await Self.snapshot(app, tenant: bob.tenantID)
            for credential in [alice.accessToken, aliceKey] {
                let attempts: [(HTTPRequest.Method, String, [String: Any]?)] = [
                    (.patch, "/v1/members/\(bobsMember.userID)", ["role": "admin"]),
                    (.delete, "/v1/members/\(bobsMember.userID)", nil),
                    (.delete, "/v1/members/\(bob.userID)", nil),
                    (.delete, "/v1/invitations/\(invitationID)", nil),
                    (.delete, "/v1/api-keys/\(keyID)", nil),
                ]
                for (method, path, body) in attempts {
                    let response = try await client.call(method, path, token: credential, json: body)
                    #expect(response.status == .notFound, "\(method) \(path) got \(response.status)")
                }
                // Lists show only the caller's tenant.
                let members = try await client.call(.get, "/v1/members", token: credential)
                let ids = ((members["data"] as? [[String: Any]]) ?? []).compactMap { $0["userId"] as? String }
                #expect(!ids.contains(bob.userID) && !ids.contains(bobsMember.userID))
                let keys = try await client.call(.get, "/v1/api-keys", token: credential)
                #expect(!((keys["data"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == keyID })
                let invitations = try await client.call(.get, "/v1/invitations", token: credential)
                #expect(!((invitations["data"] as? [[String: Any]]) ?? []).contains { $0["id"] as? String == invitationID })
                let tenant = try await client.call(.get, "/v1/tenant", token: credential)
                #expect(tenant.string("id") == alice.tenantID)
            }
            // Switching into a tenant you are not in is refused.
            #expect(try await client.call(.post, "/v1/auth/switch", token: alice.accessToken, json: ["tenant": bob.tenantID]).status == .forbidden)
            #expect(try await Self.snapshot(app, tenant: bob.tenantID) == snapshot)
        }
    }

    /// Everything tenant B has, as the superuser sees it.
    static func snapshot(_ app: TestApp, tenant: String) async throws -> [String] {
        try await app.database.withSuperuser { admin in
            let rows = try await admin.query("""
                SELECT 'member ' || user_id || ' ' || role FROM atrium.memberships WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'invitation ' || invitation_id || ' ' || coalesce(revoked_at::text, 'live') FROM atrium.invitations WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'key ' || key_id || ' ' || coalesce(revoked_at::text, 'live') FROM atrium.api_keys WHERE tenant_id = \(tenant)::uuid
                UNION ALL SELECT 'session ' || session_id || ' ' || coalesce(revoked_at::text, 'live') FROM atrium.sessions WHERE tenant_id = \(tenant)::uuid
                ORDER BY 1
                """)
            return try rows.map { try $0.decode(String.self, column: 0) }
        }
    }
}
