import AtriumCrypto
public import Foundation
import PostgresPool

extension AuthService {
    /// Invites `email` to the current tenant with `role` (admin or above; owners only by an
    /// owner). The token is returned once and stored only as a hash.
    public func invite(_ principal: Principal, email: String, role: Role, origin: RequestOrigin) async throws -> (invitation: Invitation, token: String) {
        try principal.require(.admin)
        if role == .owner { try principal.require(.owner) }
        if let problem = InputValidation.email(email) { throw AtriumError.invalid([.init(field: "/email", reason: problem)]) }
        let token = RandomToken.make(prefix: SecretPrefix.invitation)
        let invitation = Invitation(
            id: SecureRandom.uuid(), email: email, role: role, status: .pending, createdAt: Date(),
            expiresAt: Date().addingTimeInterval(self.configuration.invitationLifetime.seconds), invitedBy: principal.userID
        )
        let tenant = principal.tenant.tenantID
        let insert: PostgresQuery = """
            INSERT INTO atrium.invitations (tenant_id, invitation_id, email, role, token_hash, invited_by, expires_at)
            SELECT \(tenant), \(invitation.id), \(email), \(role.rawValue), \(RandomToken.digest(token)), \(principal.userID), \(invitation.expiresAt)
            WHERE NOT EXISTS (
                SELECT 1 FROM atrium.auth_find_login(\(email)) f
                JOIN atrium.memberships m ON m.user_id = f.user_id AND m.tenant_id = \(tenant))
            """
        let event = AuthEvent.insert(
            "invitation_created", tenant: tenant, user: principal.userID, apiKey: principal.apiKeyID,
            subject: invitation.id, origin: origin, detail: ["role": role.rawValue]
        )
        let inserted: Bool
        if self.database.tenantScoping == .setLocal {
            // Citus runs a function called in a query over a distributed table on the shard,
            // where the definer function cannot read users: the invitee is looked up on its own
            // first (one round trip more), then the insert names them as a constant.
            inserted = try await mappingConflicts {
                try await self.database.withTransaction(in: principal.tenant) { transaction in
                    let invitee = try await transaction.query("SELECT f.user_id FROM atrium.auth_find_login(\(email)) f").first
                    let user = try invitee?.decode(UUID.self, column: 0)
                    let results = try await transaction.executeAndCommit([
                        """
                        INSERT INTO atrium.invitations (tenant_id, invitation_id, email, role, token_hash, invited_by, expires_at)
                        SELECT \(tenant), \(invitation.id), \(email), \(role.rawValue), \(RandomToken.digest(token)), \(principal.userID), \(invitation.expiresAt)
                        WHERE NOT EXISTS (SELECT 1 FROM atrium.memberships m WHERE m.tenant_id = \(tenant) AND m.user_id = \(user))
                        RETURNING 1
                        """,
                        event,
                    ])
                    return results[0].affectedRows == 1
                }
            }
        } else {
            inserted = try await mappingConflicts {
                try await self.database.transaction(in: principal.tenant, [insert, event])
            }[0].affectedRows == 1
        }
        guard inserted else {
            throw AtriumError(.conflict, "this user is already a member", reason: "already_member")
        }
        return (invitation, token)
    }

    /// The current tenant's invitations, newest first (admin or above).
    public func invitations(_ principal: Principal) async throws -> [Invitation] {
        try principal.require(.admin)
        let rows = try await self.database.query(in: principal.tenant, """
            SELECT invitation_id, email, role, created_at, expires_at, accepted_at, revoked_at, invited_by
            FROM atrium.invitations WHERE tenant_id = \(principal.tenant.tenantID)
            ORDER BY created_at DESC, invitation_id
            """)
        return try rows.map { row in
            let (id, email, role, created, expires, accepted, revoked, invitedBy) = try row.decode((UUID, String, String, Date, Date, Date?, Date?, UUID?).self)
            let status: Invitation.Status = accepted != nil ? .accepted : revoked != nil ? .revoked : expires <= Date() ? .expired : .pending
            return Invitation(id: id, email: email, role: Role(rawValue: role) ?? .viewer, status: status, createdAt: created, expiresAt: expires, invitedBy: invitedBy)
        }
    }

    /// Withdraws a pending invitation (admin or above).
    public func revokeInvitation(_ principal: Principal, id: UUID, origin: RequestOrigin) async throws {
        try principal.require(.admin)
        let results = try await self.database.transaction(in: principal.tenant, [
            """
            UPDATE atrium.invitations SET revoked_at = now()
            WHERE tenant_id = \(principal.tenant.tenantID) AND invitation_id = \(id) AND accepted_at IS NULL AND revoked_at IS NULL
            """,
            AuthEvent.insert("invitation_revoked", tenant: principal.tenant.tenantID, user: principal.userID, apiKey: principal.apiKeyID, subject: id, origin: origin),
        ])
        guard results[0].affectedRows == 1 else { throw AtriumError.notFound("pending invitation") }
    }

    /// Accepts an invitation: an existing user proves who they are with their password (or a
    /// session of theirs); a new user chooses a password. Either way they join with the
    /// invitation's role and get a session in that tenant.
    public func acceptInvitation(token: String, password: String?, caller: Principal?, origin: RequestOrigin) async throws -> SignIn {
        guard token.hasPrefix(SecretPrefix.invitation), token.utf8.count < 200 else { throw AtriumError.notFound("invitation") }
        let found = try await self.database.unscopedTransaction([
            "SELECT tenant_id, invitation_id, email, role, expires_at, accepted_at, revoked_at FROM atrium.auth_invitation(\(RandomToken.digest(token)))",
        ])[0]
        guard let row = found.single else { throw AtriumError.notFound("invitation") }
        let (tenantID, invitationID, email, roleName, expiresAt, acceptedAt, revokedAt) = try row.decode((UUID, UUID, String, String, Date, Date?, Date?).self)
        guard acceptedAt == nil, revokedAt == nil, expiresAt > Date() else {
            throw AtriumError(.gone, "this invitation has been used, withdrawn or has expired")
        }
        let role = Role(rawValue: roleName) ?? .viewer
        let tenant = TenantContext(tenantID: tenantID)
        let existing = try await self.database.unscopedTransaction(["SELECT user_id, password_hash, disabled FROM atrium.auth_find_login(\(email))"])[0]
            .single.map { try $0.decode((UUID, String, Bool).self) }

        var statements: [PostgresQuery] = []
        let user: UUID
        if let existing {
            if caller?.userID == existing.0 {
                user = existing.0
            } else {
                guard let password else {
                    throw AtriumError.invalid([.init(field: "/password", reason: "required: \(email) already has an account; sign in with its password")])
                }
                let attempt = PasswordAttempt(email: email, origin: origin)
                try PasswordAttempt.requireReserved(
                    try await self.database.unscopedTransaction([attempt.begin])[0], message: "too many failed attempts; retry later"
                )
                let verification = try await self.hashing {
                    password.utf8.count <= PasswordHasher.maximumLength ? try await self.hasher.verify(password, against: existing.1) : .mismatch
                }
                guard case .match = verification, !existing.2 else {
                    _ = try await self.database.unscopedTransaction([
                        AuthEvent.account("login_failed", user: existing.0, origin: origin, detail: ["account": attempt.account, "via": "invitation"]),
                    ])
                    throw AtriumError(.invalidCredentials, "email or password is wrong")
                }
                if try await self.mfaState(of: existing.0)?.confirmed == true {
                    // The password alone does not open an account with a second factor.
                    _ = try await self.database.unscopedTransaction([attempt.succeeded])
                    throw AtriumError(
                        .invalidCredentials, "this account has two-factor sign-in: sign in with password and code, then accept with that session",
                        reason: "mfa_required"
                    )
                }
                user = existing.0
                statements.append(attempt.succeeded)
            }
        } else {
            guard let password else {
                throw AtriumError.invalid([.init(field: "/password", reason: "required to create the account for \(email)")])
            }
            if let problem = PasswordHasher.problem(with: password) { throw AtriumError.invalid([.init(field: "/password", reason: problem)]) }
            let hash = try await self.hashing { try await self.hasher.hash(password) }
            user = SecureRandom.uuid()
            statements.append("SELECT atrium.auth_create_user(\(user), \(email), \(hash))")
            // The invitation named the address; the mail proves it.
            let name = try await self.tenantName(tenant)
            statements += self.verificationStatements(user: user, email: email, tenant: name.map { (tenantID, $0) }, origin: origin, inTenantTransaction: true)
        }
        // Accepting and joining are one statement: if another request accepted the token
        // first, nothing is inserted, the session insert below fails its foreign key and the
        // whole transaction (a new user included) rolls back.
        statements += [
            """
            WITH accepted AS (
                UPDATE atrium.invitations SET accepted_at = now(), accepted_by = \(user)
                WHERE tenant_id = \(tenantID) AND invitation_id = \(invitationID)
                  AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
                RETURNING role
            )
            INSERT INTO atrium.memberships (tenant_id, user_id, role) SELECT \(tenantID), \(user), role FROM accepted
            RETURNING 1
            """,
            AuthEvent.insert("invitation_accepted", tenant: tenantID, user: user, subject: invitationID, origin: origin, detail: ["role": role.rawValue]),
        ]
        let session = self.newSession(user: user, tenant: tenantID, role: role, origin: origin)
        do {
            _ = try await mappingConflicts {
                try await self.database.transaction(in: tenant, statements + session.statements)
            }
        } catch let error as PostgresError where error.sqlState == PostgresError.SQLState.foreignKeyViolation {
            throw AtriumError(.gone, "this invitation has just been used")
        }
        let tenants = try await self.memberships(of: user)
        guard let membership = tenants.first(where: { $0.tenantID == tenantID }) else { throw AtriumError.notFound("tenant") }
        return SignIn(user: try await self.profile(of: user), tenant: membership, tenants: tenants, tokens: session.tokens)
    }
}
