import AtriumCrypto
import AtriumText
import Foundation
import Logging
import PostgresPool

/// The parts every mail flow shares: issuing a token with its mail, and finding one again from
/// the token or from the address and code.
extension AuthService {
    enum FlowPurpose: String {
        case verifyEmail = "verify_email"
        case passwordReset = "password_reset"
        case emailChange = "email_change"
    }

    /// What a flow redeems: the token from the link, or the address the mail went to and its code.
    public enum FlowProof: Sendable {
        case token(String)
        case code(email: String, code: String)
    }

    static let invalidFlowToken = AtriumError(.gone, "this link or code is not valid: it was used, replaced by a newer one or has expired", reason: "invalid_token")

    /// The statement that issues `secret` for `user` (voiding older tokens of the purpose, and
    /// failing with AT010 when the user asked too often).
    func issue(_ secret: FlowSecret, _ purpose: FlowPurpose, user: UUID, email: String, lifetime: Duration) -> PostgresQuery {
        let mail = self.configuration.mail
        return """
            SELECT atrium.auth_issue_account_token(\(user), \(purpose.rawValue), \(email), \(secret.tokenHash), \(secret.codeHash),
                make_interval(secs => \(lifetime.seconds)), make_interval(secs => \(mail.spacing.seconds)), \(mail.perHour))
            """
    }

    static func flowEvent(_ kind: String, tenant: UUID?, user: UUID?, origin: RequestOrigin, detail: [String: String] = [:]) -> PostgresQuery {
        "SELECT atrium.auth_record_flow_event(\(kind), \(tenant), \(user), \(origin.clientAddress), \(origin.requestID), \(AuthEvent.json(detail))::jsonb)"
    }

    /// Runs a transaction that issues a flow token, turning "asked too often" into `throttled`.
    func issuing(_ statements: [PostgresQuery]) async throws {
        do {
            _ = try await self.database.unscopedTransaction(statements)
        } catch let error as PostgresError where error.sqlState == "AT010" {
            let wait = error.detail.flatMap { Int($0) } ?? 60
            throw AtriumError(.throttled, "a mail like this was sent recently; retry later", retryAfter: max(wait, 1))
        }
    }

    /// The stored hash of the live token `proof` names. A wrong code counts against the token
    /// it was tried on (it commits here, whatever the caller does next).
    func findFlowToken(_ purpose: FlowPurpose, _ proof: FlowProof) async throws -> String {
        let query: PostgresQuery
        switch proof {
        case .token(let token):
            guard token.utf8.count <= 128 else { throw Self.invalidFlowToken }
            query = "SELECT token_hash FROM atrium.auth_find_account_token(\(purpose.rawValue), \(RandomToken.digest(token)), NULL, NULL)"
        case .code(let email, let code):
            guard let code = FlowSecret.normalized(code: code), email.utf8.count <= 254 else { throw Self.invalidFlowToken }
            query = "SELECT token_hash FROM atrium.auth_find_account_token(\(purpose.rawValue), NULL, \(email), \(code))"
        }
        guard let hash = try await self.database.unscopedTransaction([query])[0].single?.decode(String.self, column: 0) else {
            throw Self.invalidFlowToken
        }
        return hash
    }

    /// Checks the signed-in user's password (throttled like a sign-in); returns the attempt, to
    /// mark succeeded in the transaction that acts on it.
    func verifyCurrentPassword(of user: UUID, _ password: String, field: String, origin: RequestOrigin) async throws -> (profile: UserProfile, attempt: PasswordAttempt) {
        let profile = try await self.profile(of: user)
        let attempt = PasswordAttempt(email: profile.email, origin: origin)
        let lookup = try await self.database.unscopedTransaction([
            attempt.begin,
            "SELECT password_hash FROM atrium.auth_find_login(\(profile.email))",
        ])
        try PasswordAttempt.requireReserved(lookup[0], message: "too many failed attempts; retry later")
        guard let stored = try lookup[1].single?.decode(String.self, column: 0) else { throw AtriumError.unauthenticated }
        let verification = try await self.hashing {
            password.utf8.count <= PasswordHasher.maximumLength ? try await self.hasher.verify(password, against: stored) : .mismatch
        }
        guard case .match = verification else {
            throw AtriumError(.invalidCredentials, "the current password is wrong", fields: [.init(field: field, reason: "does not match")])
        }
        return (profile, attempt)
    }

    /// The name of `tenant`, for a mail.
    func tenantName(_ tenant: TenantContext) async throws -> String? {
        try await self.database.query(in: tenant, "SELECT name FROM atrium.tenants WHERE tenant_id = \(tenant.tenantID)")
            .single?.decode(String.self, column: 0)
    }
}

// Email verification.
extension AuthService {
    /// The statements that issue a verification token for `user` and write its mail.
    ///
    /// `inTenantTransaction`: the statements run in a transaction scoped to `tenant` (sign-up,
    /// accepting an invitation), whose own writes to that tenant's tables are the service
    /// role's; the event is then written by the service role too, as on Citus one transaction
    /// cannot write a tenant's shards as two roles (see migration 017).
    func verificationStatements(
        user: UUID, email: String, tenant: (id: UUID, name: String)?, origin: RequestOrigin, inTenantTransaction: Bool = false
    ) -> [PostgresQuery] {
        let settings = self.configuration.mail
        let secret = FlowSecret.make(prefix: SecretPrefix.verifyEmail)
        let rendered = AccountMailTemplates.verification(
            tenant: tenant?.name, email: email, link: settings.link(settings.verifyEmailPath, token: secret.token),
            code: secret.displayCode, valid: settings.verificationLifetime
        )
        let mail = OutgoingMail(
            id: SecureRandom.uuid(), tenant: tenant?.id, kind: .verifyEmail, recipient: email,
            subject: rendered.subject, text: rendered.text, html: rendered.html
        )
        let event: PostgresQuery
        if inTenantTransaction, let tenant {
            event = AuthEvent.insert("email_verification_sent", tenant: tenant.id, user: user, origin: origin)
        } else {
            event = Self.flowEvent("email_verification_sent", tenant: tenant?.id, user: user, origin: origin)
        }
        return [
            self.issue(secret, .verifyEmail, user: user, email: email, lifetime: settings.verificationLifetime),
            MailOutbox.enqueue(mail),
            event,
        ]
    }

    /// Sends the signed-in user a new verification mail (at most one a minute, five an hour).
    public func resendVerification(_ principal: Principal, origin: RequestOrigin) async throws {
        let (user, _) = try principal.requireUser()
        let profile = try await self.profile(of: user)
        guard !profile.emailVerified else {
            throw AtriumError(.conflict, "your email is already verified", reason: "already_verified")
        }
        let name = try await self.tenantName(principal.tenant)
        let tenant = name.map { (principal.tenant.tenantID, $0) }
        try await self.issuing(self.verificationStatements(user: user, email: profile.email, tenant: tenant, origin: origin))
    }

    /// Redeems a verification link or code.
    public func verifyEmail(_ proof: FlowProof, origin: RequestOrigin) async throws {
        let hash = try await self.findFlowToken(.verifyEmail, proof)
        let rows = try await self.database.unscopedTransaction([
            "SELECT atrium.auth_verify_email(\(hash), \(origin.clientAddress), \(origin.requestID))",
        ])[0]
        guard try rows.single?.decode(UUID?.self, column: 0) != nil else { throw Self.invalidFlowToken }
    }
}

// Password reset.
extension AuthService {
    /// Mails a reset link to the account with `email`, if there is one. Answers the same,
    /// after the same work, whether or not there is (the caller always says 202); a user who
    /// asks too often gets no more mails for a while, silently.
    public func requestPasswordReset(email: String, tenant requested: String?, origin: RequestOrigin) async throws {
        if let problem = InputValidation.email(email) {
            throw AtriumError.invalid([.init(field: "/email", reason: problem)])
        }
        let lookup = try await self.database.unscopedTransaction([
            "SELECT f.user_id, p.email FROM atrium.auth_find_login(\(email)) f JOIN LATERAL atrium.auth_mail_profile(f.user_id) p ON true",
            "SELECT t.tenant_id, t.name, t.slug, t.role FROM atrium.auth_find_login(\(email)) f, LATERAL atrium.auth_user_tenants(f.user_id) t",
        ])
        let settings = self.configuration.mail
        let secret = FlowSecret.make(prefix: SecretPrefix.passwordReset)
        let tenants = try lookup[1].map(Self.membership)
        let id = requested.flatMap { UUID(canonical: $0) }
        let tenant = tenants.first { $0.tenantID == id || $0.slug == requested } ?? tenants.first
        let rendered = AccountMailTemplates.passwordReset(
            tenant: tenant?.name, link: settings.link(settings.resetPasswordPath, token: secret.token),
            code: secret.displayCode, valid: settings.resetLifetime
        )
        guard let found = try lookup[0].single?.decode((UUID, String).self) else {
            _ = try await self.database.unscopedTransaction([
                Self.flowEvent("password_reset_requested", tenant: nil, user: nil, origin: origin, detail: ["account": Self.accountKey(email)]),
            ])
            return
        }
        let mail = OutgoingMail(
            id: SecureRandom.uuid(), tenant: tenant?.tenantID, kind: .passwordReset, recipient: found.1,
            subject: rendered.subject, text: rendered.text, html: rendered.html
        )
        do {
            try await self.issuing([
                self.issue(secret, .passwordReset, user: found.0, email: found.1, lifetime: settings.resetLifetime),
                MailOutbox.enqueue(mail),
                Self.flowEvent("password_reset_requested", tenant: nil, user: found.0, origin: origin),
            ])
        } catch let error as AtriumError where error.code == .throttled {
            self.logger.info("password reset asked for too often; no mail", metadata: ["user": "\(found.0)"])
        }
    }

    /// Sets a new password with a reset link or code, and ends every session of the user.
    public func resetPassword(_ proof: FlowProof, newPassword: String, origin: RequestOrigin) async throws {
        if let problem = PasswordHasher.problem(with: newPassword) {
            throw AtriumError.invalid([.init(field: "/newPassword", reason: problem)])
        }
        // Only a live token buys the hashing work.
        let hash = try await self.findFlowToken(.passwordReset, proof)
        let passwordHash = try await self.hashing { try await self.hasher.hash(newPassword) }
        let ended: PostgresRows
        do {
            ended = try await self.database.unscopedTransaction([
                "SELECT * FROM atrium.auth_reset_password(\(hash), \(passwordHash), \(origin.clientAddress), \(origin.requestID))",
            ])[0]
        } catch let error as PostgresError where error.sqlState == "AT013" {
            throw Self.invalidFlowToken
        }
        // This server refuses them at once; the others learn it by NOTIFY.
        for row in ended {
            self.revocations.insert(try row.decode(UUID.self, column: 0))
        }
    }
}
