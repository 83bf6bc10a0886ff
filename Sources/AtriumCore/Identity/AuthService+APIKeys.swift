import AtriumCrypto
public import Foundation
import PostgresPool

extension AuthService {
    /// A new API key for the current tenant (admin or above, signed in: keys cannot make keys),
    /// acting with `role` (never owner). The key acts with at most its creator's role of the
    /// moment, only while they are a member and not disabled, and is revoked if they leave.
    /// The secret is returned once and stored only as a hash.
    public func createAPIKey(_ principal: Principal, name: String, role: Role, expiresAt: Date?, origin: RequestOrigin) async throws -> (key: APIKey, secret: String) {
        try principal.require(.admin)
        let (creator, _) = try principal.requireUser()
        var failures: [AtriumError.FieldFailure] = []
        if let problem = InputValidation.keyName(name) { failures.append(.init(field: "/name", reason: problem)) }
        if role == .owner { failures.append(.init(field: "/role", reason: "must be admin, member or viewer")) }
        if let expiresAt, expiresAt <= Date() { failures.append(.init(field: "/expiresAt", reason: "must be in the future")) }
        guard failures.isEmpty else { throw AtriumError.invalid(failures) }
        guard principal.role.allows(role) else {
            throw AtriumError(.forbidden, "an API key cannot have a higher role than its creator")
        }
        let secret = RandomToken.make(prefix: SecretPrefix.apiKey)
        let key = APIKey(
            id: SecureRandom.uuid(), name: name, role: role, prefix: String(secret.prefix(12)), createdAt: Date(),
            expiresAt: expiresAt, revokedAt: nil, lastUsedAt: nil, createdBy: creator
        )
        _ = try await self.database.transaction(in: principal.tenant, [
            """
            INSERT INTO atrium.api_keys (tenant_id, key_id, name, role, key_hash, key_prefix, created_by, expires_at)
            VALUES (\(principal.tenant.tenantID), \(key.id), \(name), \(role.rawValue), \(RandomToken.digest(secret)), \(key.prefix), \(creator), \(expiresAt))
            """,
            AuthEvent.insert("api_key_created", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID,
                             subject: key.id, origin: origin, detail: ["role": role.rawValue]),
        ])
        return (key, secret)
    }

    /// The current tenant's API keys, newest first (admin or above).
    public func apiKeys(_ principal: Principal) async throws -> [APIKey] {
        try principal.require(.admin)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT key_id, name, role, key_prefix, created_at, expires_at, revoked_at, last_used_at, created_by
            FROM atrium.api_keys WHERE tenant_id = \(principal.tenant.tenantID) ORDER BY created_at DESC, key_id
            """)
        return try rows.map { row in
            let (id, name, role, prefix, created, expires, revoked, used, createdBy) = try row.decode((UUID, String, String, String, Date, Date?, Date?, Date?, UUID?).self)
            return APIKey(id: id, name: name, role: Role(rawValue: role) ?? .viewer, prefix: prefix, createdAt: created,
                          expiresAt: expires, revokedAt: revoked, lastUsedAt: used, createdBy: createdBy)
        }
    }

    /// Revokes an API key (admin or above); it stops working at once on every server.
    public func revokeAPIKey(_ principal: Principal, id: UUID, origin: RequestOrigin) async throws {
        try principal.require(.admin)
        let results = try await self.database.transaction(in: principal.tenant, [
            "UPDATE atrium.api_keys SET revoked_at = now() WHERE tenant_id = \(principal.tenant.tenantID) AND key_id = \(id) AND revoked_at IS NULL",
            AuthEvent.insert("api_key_revoked", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin),
        ])
        guard results[0].affectedRows == 1 else { throw AtriumError.notFound("API key") }
    }
}
