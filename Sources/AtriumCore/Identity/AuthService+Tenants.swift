import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

extension AuthService {
    /// The caller's tenants.
    public func tenants(of principal: Principal) async throws -> [TenantMembership] {
        let (user, _) = try principal.requireUser()
        return try await self.memberships(of: user)
    }

    /// A new tenant owned by the caller. The caller's tokens stay in their current tenant
    /// (switch to act in the new one).
    public func createTenant(_ principal: Principal, name: String, slug: String?, origin: RequestOrigin) async throws -> TenantMembership {
        let (user, _) = try principal.requireUser()
        var failures: [AtriumError.FieldFailure] = []
        if let problem = InputValidation.tenantName(name) { failures.append(.init(field: "/name", reason: problem)) }
        if let slug, let problem = InputValidation.slug(slug) { failures.append(.init(field: "/slug", reason: problem)) }
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        let tenant = TenantMembership(tenantID: SecureRandom.uuid(), name: name, slug: slug ?? InputValidation.slug(from: name) + "-" + String(SecureRandom.uuid().lowercasedString.prefix(6)), role: .owner)
        try await mappingConflicts {
            _ = try await self.database.transaction(in: TenantContext(tenantID: tenant.tenantID), [
                "INSERT INTO atrium.tenants (tenant_id, name, slug) VALUES (\(tenant.tenantID), \(tenant.name), \(tenant.slug))",
                "INSERT INTO atrium.memberships (tenant_id, user_id, role) VALUES (\(tenant.tenantID), \(user), 'owner')",
                AuthEvent.insert("tenant_created", tenant: tenant.tenantID, user: user, origin: origin),
            ])
        }
        return tenant
    }

    /// The caller's current tenant (viewer or above).
    public func tenant(_ principal: Principal) async throws -> Tenant {
        try principal.require(.viewer)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT tenant_id, name, slug, require_verified_email, created_at, updated_at FROM atrium.tenants WHERE tenant_id = \(principal.tenant.tenantID)
            """)
        guard let row = rows.single else { throw AtriumError.notFound("tenant") }
        return try Self.tenantRecord(row)
    }

    /// Renames the current tenant, changes its slug or whether members must have verified their
    /// email to sign in (admin or above).
    public func updateTenant(_ principal: Principal, name: String?, slug: String?, requireVerifiedEmail: Bool? = nil) async throws -> Tenant {
        try principal.require(.admin)
        var failures: [AtriumError.FieldFailure] = []
        if let name, let problem = InputValidation.tenantName(name) { failures.append(.init(field: "/name", reason: problem)) }
        if let slug, let problem = InputValidation.slug(slug) { failures.append(.init(field: "/slug", reason: problem)) }
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        let rows = try await mappingConflicts {
            try await self.database.query(in: principal.tenant, """
                UPDATE atrium.tenants SET name = coalesce(\(name), name), slug = coalesce(\(slug), slug),
                    require_verified_email = coalesce(\(requireVerifiedEmail), require_verified_email), updated_at = now()
                WHERE tenant_id = \(principal.tenant.tenantID)
                RETURNING tenant_id, name, slug, require_verified_email, created_at, updated_at
                """)
        }
        guard let row = rows.single else { throw AtriumError.notFound("tenant") }
        return try Self.tenantRecord(row)
    }

    /// Deletes the current tenant and everything in it (owner only). Every session in it ends.
    public func deleteTenant(_ principal: Principal, origin: RequestOrigin) async throws {
        try principal.require(.owner)
        // One definer function, which also empties the tenant's tables where no foreign key
        // cascades (Citus; see migration 017).
        let rows = try await self.database.transaction(in: principal.tenant, [
            "SELECT atrium.tenant_delete(\(principal.userID), \(principal.apiKeyID), \(origin.clientAddress), \(origin.requestID))",
        ])[0]
        guard try rows.single?.decode(Bool.self, column: 0) == true else { throw AtriumError.notFound("tenant") }
    }

    static func tenantRecord(_ row: PostgresRow) throws -> Tenant {
        let (id, name, slug, requireVerifiedEmail, createdAt, updatedAt) = try row.decode((UUID, String, String, Bool, Date, Date).self)
        return Tenant(id: id, name: name, slug: slug, requireVerifiedEmail: requireVerifiedEmail, createdAt: createdAt, updatedAt: updatedAt)
    }
}
