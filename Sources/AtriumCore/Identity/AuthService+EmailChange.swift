import AtriumCrypto
import Foundation
import PostgresPool

extension AuthService {
    /// Asks to change the signed-in user's address: a confirmation goes to the new address and
    /// a notice to the old one. Nothing changes until the new address is confirmed. With two-factor
    /// sign-in on, `code` (TOTP or a recovery code) is needed too.
    public func requestEmailChange(_ principal: Principal, newEmail: String, currentPassword: String, code: String? = nil, origin: RequestOrigin) async throws {
        let (user, _) = try principal.requireUser()
        if let problem = InputValidation.email(newEmail) {
            throw AtriumError.invalid([.init(field: "/newEmail", reason: problem)])
        }
        let (profile, attempt) = try await self.verifyCurrentPassword(of: user, currentPassword, field: "/currentPassword", origin: origin)
        try await self.requireSecondFactor(user: user, code: code, field: "/code", origin: origin)
        guard profile.email.lowercased() != newEmail.lowercased() else {
            throw AtriumError.invalid([.init(field: "/newEmail", reason: "is already your address")])
        }
        let taken = try await self.database.unscopedTransaction(["SELECT atrium.auth_email_taken(\(newEmail))"])[0][0].decode(Bool.self, column: 0)
        guard !taken else {
            _ = try await self.database.unscopedTransaction([attempt.succeeded])
            throw AtriumError(.conflict, "an account with this email already exists", reason: "email_taken")
        }
        let settings = self.configuration.mail
        let name = try await self.tenantName(principal.tenant)
        let secret = FlowSecret.make(prefix: SecretPrefix.emailChange)
        let confirmation = AccountMailTemplates.emailChange(
            tenant: name, newEmail: newEmail, link: settings.link(settings.changeEmailPath, token: secret.token),
            code: secret.displayCode, valid: settings.emailChangeLifetime
        )
        let notice = AccountMailTemplates.emailChangeNotice(tenant: name, newEmail: newEmail)
        let tenant = principal.tenant.tenantID
        try await self.issuing([
            attempt.succeeded,
            self.issue(secret, .emailChange, user: user, email: newEmail, lifetime: settings.emailChangeLifetime),
            MailOutbox.enqueue(OutgoingMail(
                id: SecureRandom.uuid(), tenant: tenant, kind: .emailChange, recipient: newEmail,
                subject: confirmation.subject, text: confirmation.text, html: confirmation.html
            )),
            MailOutbox.enqueue(OutgoingMail(
                id: SecureRandom.uuid(), tenant: tenant, kind: .emailChangeNotice, recipient: profile.email,
                subject: notice.subject, text: notice.text, html: notice.html
            )),
            Self.flowEvent("email_change_requested", tenant: nil, user: user, origin: origin, detail: ["new": newEmail]),
        ])
    }

    /// Confirms an email change with the link or code sent to the new address.
    public func confirmEmailChange(_ proof: FlowProof, origin: RequestOrigin) async throws {
        let hash = try await self.findFlowToken(.emailChange, proof)
        let rows = try await mappingConflicts {
            try await self.database.unscopedTransaction([
                "SELECT user_id FROM atrium.auth_change_email(\(hash), \(origin.clientAddress), \(origin.requestID))",
            ])[0]
        }
        guard rows.single != nil else { throw Self.invalidFlowToken }
    }
}
