import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Every protected route, called by every role: below its least role → 403, at or above → not 403.
@Suite struct RoleMatrixTests {
    struct Route: Sendable, CustomStringConvertible {
        let method: HTTPRequest.Method
        let path: String
        let least: Role
        let body: [String: String]?
        var description: String { "\(self.method) \(self.path)" }
    }

    @Test func eachRouteAdmitsItsLeastRoleAndAboveOnly() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            var tokens: [Role: String] = [.owner: owner.accessToken]
            for role in [Role.admin, .member, .viewer] {
                tokens[role] = try await client.addMember("\(role.rawValue)@example.com", role: role.rawValue, by: owner).accessToken
            }
            let target = try await client.addMember("target@example.com", role: "viewer", by: owner)
            let invitation = try await client.call(.post, "/v1/invitations", token: owner.accessToken, json: ["email": "later@example.com", "role": "viewer"])
            let key = try await client.call(.post, "/v1/api-keys", token: owner.accessToken, json: ["name": "k", "role": "viewer"])
            let invitationID = try #require(invitation.string("id"))
            let keyID = try #require(key.string("id"))

            let routes: [Route] = [
                Route(method: .get, path: "/v1/tenant", least: .viewer, body: nil),
                Route(method: .get, path: "/v1/members", least: .viewer, body: nil),
                Route(method: .patch, path: "/v1/tenant", least: .admin, body: ["name": "Acme"]),
                Route(method: .patch, path: "/v1/members/\(target.userID)", least: .admin, body: ["role": "viewer"]),
                Route(method: .post, path: "/v1/invitations", least: .admin, body: ["email": "x-{role}@example.com", "role": "viewer"]),
                Route(method: .get, path: "/v1/invitations", least: .admin, body: nil),
                Route(method: .post, path: "/v1/api-keys", least: .admin, body: ["name": "n", "role": "viewer"]),
                Route(method: .get, path: "/v1/api-keys", least: .admin, body: nil),
                // Destructive ones last, each by the lowest role allowed, after the others were refused.
                Route(method: .delete, path: "/v1/invitations/\(invitationID)", least: .admin, body: nil),
                Route(method: .delete, path: "/v1/api-keys/\(keyID)", least: .admin, body: nil),
                Route(method: .delete, path: "/v1/members/\(target.userID)", least: .admin, body: nil),
                Route(method: .delete, path: "/v1/tenant", least: .owner, body: nil),
            ]
            for route in routes {
                for role in Role.allCases.sorted() {
                    if route.method == .delete, role > route.least { continue }
                    let body = route.body?.mapValues { $0.replacingOccurrences(of: "{role}", with: role.rawValue) }
                    let response = try await client.call(route.method, route.path, token: tokens[role], json: body)
                    if role < route.least {
                        #expect(response.status == .forbidden, "\(route) as \(role) got \(response.status)")
                    } else {
                        #expect(response.status.code < 400, "\(route) as \(role) got \(response.status): \(response.body)")
                    }
                }
                let anonymous = try await client.call(route.method, route.path, json: route.body)
                #expect(anonymous.status == .unauthorized, "\(route) without a token")
            }
        }
    }

    @Test func ownerOnlyActionsNeedAnOwner() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let owner = try await client.signUp("owner@example.com", tenant: "Acme")
            let admin = try await client.addMember("admin@example.com", role: "admin", by: owner)
            let member = try await client.addMember("member@example.com", role: "member", by: owner)
            // An admin may not make owners, demote or remove them, nor invite owners.
            #expect(try await client.call(.patch, "/v1/members/\(member.userID)", token: admin.accessToken, json: ["role": "owner"]).status == .forbidden)
            #expect(try await client.call(.patch, "/v1/members/\(owner.userID)", token: admin.accessToken, json: ["role": "member"]).status == .forbidden)
            #expect(try await client.call(.delete, "/v1/members/\(owner.userID)", token: admin.accessToken).status == .forbidden)
            #expect(try await client.call(.post, "/v1/invitations", token: admin.accessToken, json: ["email": "o@example.com", "role": "owner"]).status == .forbidden)
            // An admin may manage members below owner.
            #expect(try await client.call(.patch, "/v1/members/\(member.userID)", token: admin.accessToken, json: ["role": "viewer"]).status == .ok)
            // A member may leave on their own.
            let viewer = try await client.signIn("member@example.com")
            #expect(try await client.call(.delete, "/v1/members/\(member.userID)", token: viewer.accessToken).status == .noContent)
        }
    }
}
