import AtriumCrypto
import Foundation
import PostgresPool

extension AuthService {
    /// Creates a user, their first tenant (they own it) and a session, and writes the mail that
    /// verifies their address, in one round trip.
    public func signUp(email: String, password: String, tenantName: String, tenantSlug: String?, origin: RequestOrigin) async throws -> SignIn {
        var failures: [AtriumError.FieldFailure] = []
        if let problem = InputValidation.email(email) { failures.append(.init(field: "/email", reason: problem)) }
        if let problem = PasswordHasher.problem(with: password) { failures.append(.init(field: "/password", reason: problem)) }
        if let problem = InputValidation.tenantName(tenantName) { failures.append(.init(field: "/tenant/name", reason: problem)) }
        if let tenantSlug, let problem = InputValidation.slug(tenantSlug) { failures.append(.init(field: "/tenant/slug", reason: problem)) }
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }

        let passwordHash = try await self.hashing { try await self.hasher.hash(password) }
        let user = UserProfile(id: SecureRandom.uuid(), email: email, createdAt: Date())
        // A slug derived from the name may be taken: then try it with a random suffix.
        var attempt = 0
        while true {
            attempt += 1
            let slug = tenantSlug ?? (attempt == 1 ? InputValidation.slug(from: tenantName) : InputValidation.slug(from: tenantName) + "-" + Hex.encode(SecureRandom.bytes(3)))
            let tenant = TenantMembership(tenantID: SecureRandom.uuid(), name: tenantName, slug: slug, role: .owner)
            let session = self.newSession(user: user.id, tenant: tenant.tenantID, role: .owner, origin: origin)
            do {
                try await mappingConflicts {
                    _ = try await self.database.transaction(in: TenantContext(tenantID: tenant.tenantID), [
                        "SELECT atrium.auth_create_user(\(user.id), \(email), \(passwordHash))",
                        // Through a definer function, as the user row: see migration 017.
                        "SELECT atrium.tenant_create(\(tenant.tenantID), \(tenant.name), \(tenant.slug))",
                        "INSERT INTO atrium.memberships (tenant_id, user_id, role) VALUES (\(tenant.tenantID), \(user.id), 'owner')",
                    ] + session.statements + [
                        AuthEvent.insert("signup", tenant: tenant.tenantID, user: user.id, origin: origin),
                        "SELECT atrium.auth_record_login(\(Self.accountKey(email)), \(origin.clientAddress), true)",
                    ] + self.verificationStatements(user: user.id, email: email, tenant: (tenant.tenantID, tenant.name), origin: origin, inTenantTransaction: true))
                }
                return SignIn(user: user, tenant: tenant, tenants: [tenant], tokens: session.tokens)
            } catch let error as AtriumError where error.reason == "slug_taken" && tenantSlug == nil && attempt < 4 {
                continue
            }
        }
    }
}
