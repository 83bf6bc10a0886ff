import PostgresPool

extension PostgresError {
    /// The domain conflict behind a constraint violation, if it is one the services expect.
    var conflict: AtriumError? {
        switch (self.sqlState, self.constraint) {
        case (SQLState.uniqueViolation, "users_email_key"):
            return AtriumError(.conflict, "an account with this email already exists", reason: "email_taken")
        case (SQLState.uniqueViolation, "tenants_slug_key"):
            return AtriumError(.conflict, "this slug is taken", reason: "slug_taken")
        case (SQLState.uniqueViolation, "invitations_pending_email_key"):
            return AtriumError(.conflict, "this email already has a pending invitation", reason: "already_invited")
        case (SQLState.uniqueViolation, "memberships_pkey"):
            return AtriumError(.conflict, "this user is already a member", reason: "already_member")
        case ("AT001", _):
            return AtriumError(.conflict, "the last owner of a tenant can be neither demoted nor removed", reason: "last_owner")
        default:
            return nil
        }
    }
}

/// Runs `body`, turning expected constraint violations into domain conflicts.
func mappingConflicts<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as PostgresError {
        if let conflict = error.conflict { throw conflict }
        throw error
    }
}
