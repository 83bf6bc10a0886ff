import AtriumCore
import Foundation
import Hummingbird

/// `/v1/auth/…`: sign-up, sign-in, refresh, sign-out, switching tenant, and the mail flows'
/// redemptions (verification, password reset, email change).
struct AuthRoutes {
    let auth: AuthService

    func register(on router: RouteRecorder) {
        let group = router.group("v1/auth")
        // Public.
        group.post("signup") { request, context in
            let body = try await JSONBody.decode(SignUpRequest.self, from: request, context: context)
            let signIn = try await self.auth.signUp(
                email: body.email, password: body.password, tenantName: body.tenant.name, tenantSlug: body.tenant.slug, origin: context.origin
            )
            return Response.json(SignInJSON(signIn), status: .created, headers: [.cacheControl: "no-store"])
        }
        group.post("login") { request, context in
            let body = try await JSONBody.decode(SignInRequest.self, from: request, context: context)
            let signIn = try await self.auth.signIn(email: body.email, password: body.password, tenant: body.tenant, origin: context.origin)
            return Response.json(SignInJSON(signIn), headers: [.cacheControl: "no-store"])
        }
        group.post("refresh") { request, context in
            let body = try await JSONBody.decode(RefreshRequest.self, from: request, context: context)
            let refreshed = try await self.auth.refresh(refreshToken: body.refreshToken, origin: context.origin)
            return Response.json(TokensJSON(refreshed.tokens), headers: [.cacheControl: "no-store"])
        }
        group.post("mfa") { request, context in
            let body = try await JSONBody.decode(MFAChallengeRequest.self, from: request, context: context)
            let signIn = try await self.auth.completeMFA(challenge: body.challenge, code: body.code, recoveryCode: body.recoveryCode, origin: context.origin)
            return Response.json(SignInJSON(signIn), headers: [.cacheControl: "no-store"])
        }
        // Mail flows: the token (or address and code) proves who is asking.
        group.post("verify-email") { request, context in
            let body = try await JSONBody.decode(FlowProofRequest.self, from: request, context: context)
            try await self.auth.verifyEmail(try body.proof, origin: context.origin)
            return Response.noContent
        }
        group.post("forgot-password") { request, context in
            let body = try await JSONBody.decode(ForgotPasswordRequest.self, from: request, context: context)
            try await self.auth.requestPasswordReset(email: body.email, tenant: body.tenant, origin: context.origin)
            // The same answer whether or not the account exists.
            return Response.json(.fields(["status": .string("accepted")]), status: .accepted)
        }
        group.post("reset-password") { request, context in
            let body = try await JSONBody.decode(ResetPasswordRequest.self, from: request, context: context)
            let proof = try FlowProofRequest.proof(token: body.token, email: body.email, code: body.code)
            try await self.auth.resetPassword(proof, newPassword: body.newPassword, origin: context.origin)
            return Response.noContent
        }
        group.post("confirm-email") { request, context in
            let body = try await JSONBody.decode(FlowProofRequest.self, from: request, context: context)
            try await self.auth.confirmEmailChange(try body.proof, origin: context.origin)
            return Response.noContent
        }
        // Signed-in user (API keys have no session to end or switch).
        group.post("logout") { _, context in
            try await self.auth.signOut(try context.authenticated(), origin: context.origin)
            return Response.noContent
        }
        group.post("logout-all") { _, context in
            try await self.auth.signOutEverywhere(try context.authenticated(), origin: context.origin)
            return Response.noContent
        }
        group.post("switch") { request, context in
            let principal = try context.authenticated()
            let body = try await JSONBody.decode(SwitchRequest.self, from: request, context: context)
            let signIn = try await self.auth.switchTenant(principal, to: body.tenant, origin: context.origin)
            return Response.json(SignInJSON(signIn), headers: [.cacheControl: "no-store"])
        }
    }
}
