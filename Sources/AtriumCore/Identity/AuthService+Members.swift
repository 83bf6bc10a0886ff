public import Foundation
import PostgresPool

extension AuthService {
    /// Members of the current tenant (viewer or above).
    public func members(_ principal: Principal) async throws -> [Member] {
        try principal.require(.viewer)
        let rows = try await self.database.query(in: principal.tenant, "SELECT user_id, email, role, joined_at, disabled FROM atrium.auth_tenant_members()")
        return try rows.map { row in
            let (id, email, role, joined, disabled) = try row.decode((UUID, String, String, Date, Bool).self)
            return Member(userID: id, email: email, role: Role(rawValue: role) ?? .viewer, joinedAt: joined, disabled: disabled)
        }
    }

    /// Gives a member another role (admin or above; anything touching the owner role needs an
    /// owner). The member's sessions in this tenant end: their tokens carry the old role.
    public func changeRole(_ principal: Principal, member: UUID, to role: Role, origin: RequestOrigin) async throws -> Member {
        try principal.require(.admin)
        return try await mappingConflicts {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                let current = try await transaction.query("""
                    SELECT role FROM atrium.memberships WHERE tenant_id = \(principal.tenant.tenantID) AND user_id = \(member) FOR UPDATE
                    """)
                guard let oldRole = try current.single.map({ Role(rawValue: try $0.decode(String.self, column: 0)) ?? .viewer }) else {
                    throw AtriumError.notFound("member")
                }
                if oldRole == .owner || role == .owner { try principal.require(.owner) }
                guard oldRole != role else { return try await self.member(member, tenant: principal.tenant.tenantID, in: transaction) }
                _ = try await transaction.execute([
                    "UPDATE atrium.memberships SET role = \(role.rawValue), updated_at = now() WHERE tenant_id = \(principal.tenant.tenantID) AND user_id = \(member)",
                    AuthEvent.insert("role_changed", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID,
                                     subject: member, origin: origin, detail: ["from": oldRole.rawValue, "to": role.rawValue]),
                ])
                return try await self.member(member, tenant: principal.tenant.tenantID, in: transaction)
            }
        }
    }

    /// Removes a member (admin or above; an owner only by an owner). Anyone may remove
    /// themselves. Their sessions in this tenant end.
    public func removeMember(_ principal: Principal, member: UUID, origin: RequestOrigin) async throws {
        if principal.userID != member { try principal.require(.admin) }
        try await mappingConflicts {
            try await self.database.withTransaction(in: principal.tenant) { transaction in
                let current = try await transaction.query("""
                    SELECT role FROM atrium.memberships WHERE tenant_id = \(principal.tenant.tenantID) AND user_id = \(member) FOR UPDATE
                    """)
                guard let role = try current.single.map({ Role(rawValue: try $0.decode(String.self, column: 0)) ?? .viewer }) else {
                    throw AtriumError.notFound("member")
                }
                if role == .owner, principal.userID != member { try principal.require(.owner) }
                _ = try await transaction.execute([
                    "DELETE FROM atrium.memberships WHERE tenant_id = \(principal.tenant.tenantID) AND user_id = \(member)",
                    AuthEvent.insert("member_removed", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID,
                                     subject: member, origin: origin, detail: ["role": role.rawValue]),
                ])
            }
        }
    }

    /// One member, in a transaction that may have just changed their membership: the row is
    /// read as the service role, the user's email through the definer function, in one round
    /// trip (on Citus a definer function may not read what this transaction's own role wrote
    /// on the tenant's shards).
    private func member(_ id: UUID, tenant: UUID, in transaction: PostgresTransaction) async throws -> Member {
        let results = try await transaction.execute([
            "SELECT role, created_at FROM atrium.memberships WHERE tenant_id = \(tenant) AND user_id = \(id)",
            "SELECT email, disabled FROM atrium.auth_user(\(id))",
        ])
        guard let membership = results[0].single, let user = results[1].single else { throw AtriumError.notFound("member") }
        let (role, joined) = try membership.decode((String, Date).self)
        let (email, disabled) = try user.decode((String, Bool).self)
        return Member(userID: id, email: email, role: Role(rawValue: role) ?? .viewer, joinedAt: joined, disabled: disabled)
    }
}
