import AtriumCrypto
import AtriumText
public import Foundation
import Logging
import PostgresPool

extension AuthService {
    /// Exchanges a refresh token for a new pair. The old token stops working (a second use,
    /// outside the grace window for retries, ends the whole session).
    public func refresh(refreshToken: String, origin: RequestOrigin) async throws -> (tokens: TokenPair, tenant: UUID, role: Role) {
        guard refreshToken.hasPrefix(SecretPrefix.refreshToken), refreshToken.utf8.count < 200 else {
            throw AtriumError(.unauthenticated, "the refresh token is not valid")
        }
        let next = RandomToken.make(prefix: SecretPrefix.refreshToken)
        let grace = Int(self.configuration.refreshGracePeriod.seconds.rounded(.up))
        let rows = try await self.database.unscopedTransaction([
            "SELECT outcome, tenant_id, session_id, user_id, role FROM atrium.auth_refresh(\(RandomToken.digest(refreshToken)), \(RandomToken.digest(next)), \(grace))"
        ])[0]
        guard let row = rows.single else { throw AtriumError(.unauthenticated, "the refresh token is not valid") }
        let outcome = try row.decode(String.self, column: 0)
        switch outcome {
        case "rotated":
            let (_, tenant, session, user, roleName) = try row.decode((String, UUID, UUID, UUID, String).self)
            let role = Role(rawValue: roleName) ?? .viewer
            let access = self.accessTokens.issue(user: user, tenant: tenant, role: role, session: session)
            return (TokenPair(accessToken: access.token, accessTokenExpiresAt: access.expiresAt, expiresIn: Int(self.configuration.accessTokenLifetime.seconds), refreshToken: next, sessionID: session), tenant, role)
        case "reused":
            let session = try row.decode(UUID.self, column: 2)
            self.revocations.insert(session)
            self.logger.warning("refresh token reused; session revoked", metadata: ["session.id": "\(session)", "request.id": "\(origin.requestID)"])
            throw AtriumError(.unauthenticated, "the refresh token was already used; the session has been ended")
        default:
            throw AtriumError(.unauthenticated, "the refresh token is not valid")
        }
    }

    /// Ends the caller's session.
    public func signOut(_ principal: Principal, origin: RequestOrigin) async throws {
        let (user, session) = try principal.requireUser()
        _ = try await self.database.transaction(in: principal.tenant, [
            """
            UPDATE atrium.sessions SET revoked_at = now(), revoked_reason = 'logout'
            WHERE tenant_id = \(principal.tenant.tenantID) AND session_id = \(session) AND revoked_at IS NULL
            """,
            AuthEvent.insert("logout", tenant: principal.tenant.tenantID, user: user, subject: session, origin: origin),
        ])
        self.revocations.insert(session)
    }

    /// Ends every session of the caller, in every tenant.
    public func signOutEverywhere(_ principal: Principal, origin: RequestOrigin) async throws {
        let (user, session) = try principal.requireUser()
        _ = try await self.database.unscopedTransaction([
            "SELECT atrium.auth_revoke_user_sessions(\(user), 'logout_all', NULL)",
            AuthEvent.account("logout_all", user: user, origin: origin),
        ])
        self.revocations.insert(session)
    }

    /// A new session (and pair) in another of the caller's tenants.
    public func switchTenant(_ principal: Principal, to requested: String, origin: RequestOrigin) async throws -> SignIn {
        let (user, _) = try principal.requireUser()
        let tenants = try await self.memberships(of: user)
        guard let tenant = try self.choose(requested, from: tenants) else {
            throw AtriumError(.forbidden, "not a member of that tenant", reason: "not_a_member")
        }
        let tokens = try await self.startSession(user: user, in: tenant, origin: origin, alongside: [
            AuthEvent.insert("tenant_switched", tenant: tenant.tenantID, user: user, origin: origin,
                             detail: ["from": principal.tenant.tenantID.lowercasedString]),
        ])
        return SignIn(user: try await self.profile(of: user), tenant: tenant, tenants: tenants, tokens: tokens)
    }

    /// The caller's profile and tenants.
    public func me(_ principal: Principal) async throws -> (user: UserProfile, tenants: [TenantMembership]) {
        let (user, _) = try principal.requireUser()
        async let profile = self.profile(of: user)
        async let tenants = self.memberships(of: user)
        return try await (profile, tenants)
    }

    /// Changes the caller's password after checking the current one; ends their other sessions.
    /// With two-factor sign-in on, `code` (TOTP or a recovery code) is needed too.
    public func changePassword(_ principal: Principal, current: String, new: String, code: String? = nil, origin: RequestOrigin) async throws {
        let (user, session) = try principal.requireUser()
        if let problem = PasswordHasher.problem(with: new) {
            throw AtriumError.invalid([.init(field: "/newPassword", reason: problem)])
        }
        let (_, attempt) = try await self.verifyCurrentPassword(of: user, current, field: "/currentPassword", origin: origin)
        try await self.requireSecondFactor(user: user, code: code, field: "/code", origin: origin)
        let hash = try await self.hashing { try await self.hasher.hash(new) }
        _ = try await self.database.unscopedTransaction([
            "SELECT atrium.auth_change_password(\(user), \(hash))",
            "SELECT atrium.auth_revoke_user_sessions(\(user), 'password_changed', \(session))",
            attempt.succeeded,
            AuthEvent.account("password_changed", user: user, origin: origin),
        ])
    }
}
