import AtriumCore
import AtriumText
import Foundation
import Hummingbird

/// `/v1/members`, `/v1/invitations`, `/v1/api-keys`: who may act in the tenant.
struct MemberRoutes {
    let auth: AuthService

    func register(on router: RouteRecorder) {
        router.get("v1/members") { _, context in
            let members = try await self.auth.members(try context.authenticated())
            return Response.json(.list(members.map(MemberJSON.init)))
        }
        router.patch("v1/members/:userId") { request, context in
            let principal = try context.authenticated()
            let member = try context.uuidParameter("userId", naming: "member")
            let body = try await JSONBody.decode(RoleChangeRequest.self, from: request, context: context)
            let changed = try await self.auth.changeRole(principal, member: member, to: body.role, origin: context.origin)
            return Response.json(MemberJSON(changed))
        }
        router.delete("v1/members/:userId") { _, context in
            let principal = try context.authenticated()
            let member = try context.uuidParameter("userId", naming: "member")
            try await self.auth.removeMember(principal, member: member, origin: context.origin)
            return Response.noContent
        }

        router.post("v1/invitations") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(InvitationRequest.self, from: request, context: context)
            let created = try await self.auth.invite(principal, email: body.email, role: body.role, origin: context.origin)
            return Response.json(InvitationJSON(created.invitation, token: created.token), status: .created,
                                     headers: [.location: "/v1/invitations/\(created.invitation.id.lowercasedString)", .cacheControl: "no-store"])
        }
        router.get("v1/invitations") { _, context in
            let invitations = try await self.auth.invitations(try context.authenticated())
            return Response.json(.list(invitations.map { InvitationJSON($0) }))
        }
        router.delete("v1/invitations/:id") { _, context in
            let principal = try context.authenticated()
            try await self.auth.revokeInvitation(principal, id: try context.uuidParameter("id", naming: "invitation"), origin: context.origin)
            return Response.noContent
        }
        router.post("v1/invitations/accept") { request, context in
            let body = try await JSONBody.decode(AcceptInvitationRequest.self, from: request, context: context)
            let signIn = try await self.auth.acceptInvitation(token: body.token, password: body.password, caller: context.principal, origin: context.origin)
            return Response.json(SignInJSON(signIn), headers: [.cacheControl: "no-store"])
        }

        router.post("v1/api-keys") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(APIKeyRequest.self, from: request, context: context)
            let created = try await self.auth.createAPIKey(principal, name: body.name, role: body.role, expiresAt: body.expiresAt, origin: context.origin)
            return Response.json(APIKeyJSON(created.key, secret: created.secret), status: .created,
                                     headers: [.location: "/v1/api-keys/\(created.key.id.lowercasedString)", .cacheControl: "no-store"])
        }
        router.get("v1/api-keys") { _, context in
            let keys = try await self.auth.apiKeys(try context.authenticated())
            return Response.json(.list(keys.map { APIKeyJSON($0) }))
        }
        router.delete("v1/api-keys/:id") { _, context in
            let principal = try context.authenticated()
            try await self.auth.revokeAPIKey(principal, id: try context.uuidParameter("id", naming: "API key"), origin: context.origin)
            return Response.noContent
        }
    }
}

extension AtriumRequestContext {
    /// A UUID path parameter; anything else cannot name an existing resource, so it is a 404.
    func uuidParameter(_ name: String, naming what: String) throws -> UUID {
        guard let text = self.parameters.get(name), let id = UUID(canonical: text) else {
            throw AtriumError.notFound(what)
        }
        return id
    }
}
