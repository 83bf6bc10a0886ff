import AtriumCore
import Foundation
import Hummingbird

/// `/v1/me`, `/v1/tenants`, `/v1/tenant`: the caller's account and tenants.
struct AccountRoutes {
    let auth: AuthService

    func register(on router: RouteRecorder) {
        router.get("v1/me") { _, context in
            let principal = try context.authenticated()
            let me = try await self.auth.me(principal)
            let current = me.tenants.first { $0.tenantID == principal.tenant.tenantID }
            return Response.json(MeJSON(user: me.user, current: current, tenants: me.tenants))
        }
        router.post("v1/me/password") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(PasswordChangeRequest.self, from: request, context: context)
            try await self.auth.changePassword(principal, current: body.currentPassword, new: body.newPassword, code: body.code, origin: context.origin)
            return Response.noContent
        }
        router.post("v1/me/verification") { _, context in
            try await self.auth.resendVerification(try context.authenticated(), origin: context.origin)
            return Response.json(.fields(["status": .string("sent")]), status: .accepted)
        }
        router.post("v1/me/email") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(EmailChangeRequest.self, from: request, context: context)
            try await self.auth.requestEmailChange(principal, newEmail: body.newEmail, currentPassword: body.currentPassword, code: body.code, origin: context.origin)
            return Response.json(.fields(["status": .string("confirmation_sent")]), status: .accepted)
        }
        router.post("v1/me/mfa/totp") { _, context in
            let enrolment = try await self.auth.beginTOTP(try context.authenticated())
            return Response.json(
                .fields(["otpauthUri": .string(enrolment.otpauthURI), "secret": .string(enrolment.secret)]),
                status: .created, headers: [.cacheControl: "no-store"]
            )
        }
        router.post("v1/me/mfa/totp/confirm") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(TOTPConfirmRequest.self, from: request, context: context)
            let codes = try await self.auth.confirmTOTP(principal, code: body.code, origin: context.origin)
            return Response.json(.fields(["recoveryCodes": .array(codes.map(JSONValue.string))]), headers: [.cacheControl: "no-store"])
        }
        router.delete("v1/me/mfa/totp") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(TOTPDisableRequest.self, from: request, context: context)
            try await self.auth.disableTOTP(principal, currentPassword: body.currentPassword, code: body.code, origin: context.origin)
            return Response.noContent
        }
        router.get("v1/tenants") { _, context in
            let tenants = try await self.auth.tenants(of: try context.authenticated())
            return Response.json(.list(tenants.map(MembershipJSON.init)))
        }
        router.post("v1/tenants") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(CreateTenantRequest.self, from: request, context: context)
            let tenant = try await self.auth.createTenant(principal, name: body.name, slug: body.slug, origin: context.origin)
            return Response.json(MembershipJSON(tenant), status: .created)
        }
        router.get("v1/tenant") { _, context in
            let tenant = try await self.auth.tenant(try context.authenticated())
            return Response.json(TenantJSON(tenant))
        }
        router.patch("v1/tenant") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(UpdateTenantRequest.self, from: request, context: context)
            let tenant = try await self.auth.updateTenant(principal, name: body.name, slug: body.slug, requireVerifiedEmail: body.requireVerifiedEmail)
            return Response.json(TenantJSON(tenant))
        }
        router.delete("v1/tenant") { _, context in
            try await self.auth.deleteTenant(try context.authenticated(), origin: context.origin)
            return Response.noContent
        }
    }
}
