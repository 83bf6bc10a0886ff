import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

extension AuthService {
    /// Signs in with email and password, into `tenant` (id or slug) or the first of the user's
    /// tenants.
    ///
    /// An unknown email, a wrong password and a disabled account all get the same error after
    /// the same amount of hashing work. Throttling is checked, and the attempt reserved, before
    /// any hashing.
    public func signIn(email: String, password: String, tenant requested: String?, origin: RequestOrigin) async throws -> SignIn {
        let attempt = PasswordAttempt(email: email, origin: origin)
        let account = attempt.account
        let lookup = try await self.database.unscopedTransaction([
            attempt.begin,
            "SELECT user_id, password_hash, disabled FROM atrium.auth_find_login(\(email))",
            "SELECT t.tenant_id, t.name, t.slug, t.role FROM atrium.auth_find_login(\(email)) f, LATERAL atrium.auth_user_tenants(f.user_id) t",
            "SELECT m.confirmed FROM atrium.auth_find_login(\(email)) f, LATERAL atrium.auth_mfa_state(f.user_id) m",
        ])
        do {
            try PasswordAttempt.requireReserved(lookup[0], message: "too many failed sign-ins; retry later")
        } catch {
            _ = try await self.database.unscopedTransaction([AuthEvent.account("login_throttled", user: nil, origin: origin, detail: ["account": account])])
            throw error
        }

        let found = try lookup[1].single.map { try $0.decode((UUID, String, Bool).self) }
        let verification: PasswordHasher.Verification
        if let found, password.utf8.count <= PasswordHasher.maximumLength {
            verification = try await self.hashing { try await self.hasher.verify(password, against: found.1) }
        } else {
            // No such user (or an impossible password): the same work, the same answer.
            let bounded = String(decoding: password.utf8.prefix(PasswordHasher.maximumLength), as: UTF8.self)
            try await self.hashing { try await self.hasher.verifyAgainstDummy(bounded) }
            verification = .mismatch
        }
        guard let found, case .match(let needsRehash) = verification, !found.2 else {
            // The reservation stays: it is the failure.
            _ = try await self.database.unscopedTransaction([
                AuthEvent.account("login_failed", user: found?.0, origin: origin, detail: ["account": account]),
            ])
            throw AtriumError(.invalidCredentials, "email or password is wrong")
        }
        let user = found.0
        let tenants = try lookup[2].map(Self.membership)
        guard let tenant = try self.choose(requested, from: tenants) else {
            throw AtriumError(.forbidden, "this account belongs to no tenant; ask a tenant admin for an invitation", reason: "no_membership")
        }
        if try lookup[3].single?.decode(Bool.self, column: 0) == true {
            // Enrolled: the password was right, the session waits for the second factor.
            try await self.mfaChallenge(user: user, tenant: tenant, attempt: attempt, origin: origin)
        }
        var extra: [PostgresQuery] = [
            attempt.succeeded,
            AuthEvent.insert("login_succeeded", tenant: tenant.tenantID, user: user, origin: origin),
        ]
        if needsRehash {
            // Parameters were raised since this hash was made: store one with today's.
            if let upgraded = try? await self.hasher.hash(password) {
                extra.append("SELECT atrium.auth_set_password_hash(\(user), \(upgraded))")
            }
        }
        let tokens: TokenPair
        do {
            tokens = try await self.startSession(user: user, in: tenant, origin: origin, alongside: extra)
        } catch let error as AtriumError where error.reason == "email_not_verified" {
            // The password was right: the attempt is no failure.
            _ = try? await self.database.unscopedTransaction([attempt.succeeded])
            throw error
        }
        return SignIn(user: try await self.profile(of: user), tenant: tenant, tenants: tenants, tokens: tokens)
    }

    /// Opens a session in `tenant` and runs `alongside` in the same transaction.
    func startSession(user: UUID, in tenant: TenantMembership, origin: RequestOrigin, alongside: [PostgresQuery]) async throws -> TokenPair {
        let session = self.newSession(user: user, tenant: tenant.tenantID, role: tenant.role, origin: origin)
        do {
            _ = try await self.database.transaction(
                in: TenantContext(tenantID: tenant.tenantID),
                ["SELECT atrium.auth_require_verified_email(\(user), \(tenant.tenantID))"] + session.statements + alongside
            )
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.foreignKeyViolation {
            // The membership went away between the lookup and now.
            throw AtriumError(.forbidden, "not a member of that tenant", reason: "not_a_member")
        } catch let error as PostgresError where error.sqlState == "AT011" {
            throw AtriumError(
                .forbidden, "\(tenant.name) requires a verified email: follow the link in the verification mail, or ask for a new one",
                reason: "email_not_verified"
            )
        }
        return session.tokens
    }

    /// The tenant to sign in to: the requested one (by id or slug) or the first.
    func choose(_ requested: String?, from tenants: [TenantMembership]) throws -> TenantMembership? {
        guard let requested else { return tenants.first }
        let id = UUID(canonical: requested)
        guard let match = tenants.first(where: { $0.tenantID == id || $0.slug == requested }) else {
            throw AtriumError(.forbidden, "not a member of that tenant", reason: "not_a_member")
        }
        return match
    }
}
