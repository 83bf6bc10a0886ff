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
                guard oldRole != role else { return try await self.member(member, in: transaction) }
                _ = try await transaction.execute([
                    "UPDATE atrium.memberships SET role = \(role.rawValue), updated_at = now() WHERE tenant_id = \(principal.tenant.tenantID) AND user_id = \(member)",
                    AuthEvent.insert("role_changed", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID,
                                     subject: member, origin: origin, detail: ["from": oldRole.rawValue, "to": role.rawValue]),
                ])
                return try await self.member(member, in: transaction)
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

    private func member(_ id: UUID, in transaction: PostgresTransaction) async throws -> Member {
        let rows = try await transaction.query("SELECT user_id, email, role, joined_at, disabled FROM atrium.auth_tenant_members() WHERE user_id = \(id)")
        guard let row = rows.single else { throw AtriumError.notFound("member") }
        let (userID, email, role, joined, disabled) = try row.decode((UUID, String, String, Date, Bool).self)
        return Member(userID: userID, email: email, role: Role(rawValue: role) ?? .viewer, joinedAt: joined, disabled: disabled)
    }
}
