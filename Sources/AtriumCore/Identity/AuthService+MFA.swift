import AtriumCrypto
import AtriumText
import Foundation
import PostgresPool

/// Two-factor sign-in with TOTP (RFC 6238, HMAC-SHA1 from OpenSSL) and recovery codes.
extension AuthService {
    /// What enrolling shows the user once: the secret for an authenticator app.
    public struct TOTPEnrolment: Sendable {
        public let secret: String
        public let otpauthURI: String
    }

    struct MFAState {
        let secret: [UInt8]?
        /// The token key the secret is sealed under.
        let keyID: String
        let confirmed: Bool
        let recoveryCodesLeft: Int
    }

    static let mfaSealingPurpose = "atrium totp secrets"
    static let challengeLifetime: Duration = .seconds(300)
    static let challengePrefix = "atm_"

    private func sealingBox(keyID: String) -> SealedBox? {
        self.configuration.keyRing.derivedKey(purpose: Self.mfaSealingPurpose, keyID: keyID).map(SealedBox.init)
    }

    /// The user's enrolment, its secret opened (nil if the key that sealed it left the ring).
    func mfaState(of user: UUID) async throws -> MFAState? {
        let rows = try await self.database.unscopedTransaction([
            "SELECT sealed_secret, key_id, confirmed, recovery_codes_left FROM atrium.auth_mfa_state(\(user))",
        ])[0]
        guard let row = rows.single else { return nil }
        let (sealed, keyID, confirmed, left) = try row.decode((String, String, Bool, Int).self)
        let secret = Base64.decode(sealed).flatMap { self.sealingBox(keyID: keyID)?.open($0, context: Array(user.lowercasedString.utf8)) }
        return MFAState(secret: secret, keyID: keyID, confirmed: confirmed, recoveryCodesLeft: left)
    }

    /// Starts enrolment (or starts it over while unconfirmed): a new secret, shown once.
    public func beginTOTP(_ principal: Principal) async throws -> TOTPEnrolment {
        let (user, _) = try principal.requireUser()
        let profile = try await self.profile(of: user)
        let secret = SecureRandom.bytes(20)
        let key = self.configuration.keyRing.signingKey
        let sealed = Base64.encode(self.sealingBox(keyID: key.id)!.seal(secret, context: Array(user.lowercasedString.utf8)))
        let begun = try await self.database.unscopedTransaction(["SELECT atrium.auth_mfa_begin(\(user), \(sealed), \(key.id))"])[0]
        guard try begun[0].decode(Bool.self, column: 0) else {
            throw AtriumError(.conflict, "two-factor sign-in is already on; turn it off first to enrol again", reason: "mfa_enabled")
        }
        let encoded = Base32.encode(secret)
        let issuer = self.configuration.issuer
        let label = Self.uriComponent(issuer) + ":" + Self.uriComponent(profile.email)
        let uri = "otpauth://totp/\(label)?secret=\(encoded)&issuer=\(Self.uriComponent(issuer))&algorithm=SHA1&digits=6&period=30"
        return TOTPEnrolment(secret: encoded, otpauthURI: uri)
    }

    /// Confirms enrolment with a first code; returns the ten recovery codes, shown only now.
    public func confirmTOTP(_ principal: Principal, code: String, origin: RequestOrigin) async throws -> [String] {
        let (user, _) = try principal.requireUser()
        guard let state = try await self.mfaState(of: user), !state.confirmed, let secret = state.secret else {
            throw AtriumError(.conflict, "there is no enrolment waiting for a code; start one with POST /v1/me/mfa/totp", reason: "no_pending_enrolment")
        }
        guard let step = Self.matchingStep(code, secret: secret) else {
            throw AtriumError(.invalidCredentials, "the code is wrong", fields: [.init(field: "/code", reason: "does not match")])
        }
        let codes = (0..<10).map { _ in Self.newRecoveryCode() }
        let hashes = codes.map { Self.recoveryHash($0)! }
        let confirmed = try await self.database.unscopedTransaction([
            "SELECT atrium.auth_mfa_confirm(\(user), \(step), \(hashes), \(origin.clientAddress), \(origin.requestID))",
        ])[0]
        guard try confirmed[0].decode(Bool.self, column: 0) else {
            throw AtriumError(.invalidCredentials, "the code was used already", fields: [.init(field: "/code", reason: "used already")])
        }
        return codes
    }

    /// Turns two-factor sign-in off, with the password and a code (or a recovery code).
    public func disableTOTP(_ principal: Principal, currentPassword: String, code: String, origin: RequestOrigin) async throws {
        let (user, _) = try principal.requireUser()
        let (_, attempt) = try await self.verifyCurrentPassword(of: user, currentPassword, field: "/currentPassword", origin: origin)
        guard try await self.mfaState(of: user)?.confirmed == true else {
            throw AtriumError(.conflict, "two-factor sign-in is not on", reason: "mfa_not_enabled")
        }
        try await self.requireSecondFactor(user: user, code: code, field: "/code", origin: origin)
        _ = try await self.database.unscopedTransaction([
            attempt.succeeded,
            "SELECT atrium.auth_mfa_disable(\(user), 'mfa_disabled', \(origin.clientAddress), \(origin.requestID))",
        ])
    }

    /// For actions that need the second factor (password and email change, turning MFA off):
    /// passes when the user is not enrolled, or `code` is a current TOTP code (not used before)
    /// or an unused recovery code.
    func requireSecondFactor(user: UUID, code: String?, field: String, origin: RequestOrigin) async throws {
        guard let state = try await self.mfaState(of: user), state.confirmed else { return }
        guard let code, !code.isEmpty else {
            throw AtriumError(.invalidCredentials, "this account has two-factor sign-in: send a code too", reason: "mfa_required",
                              fields: [.init(field: field, reason: "is required")])
        }
        guard try await self.acceptSecondFactor(user: user, state: state, code: code, origin: origin) else {
            throw AtriumError(.invalidCredentials, "the code is wrong or was used already", fields: [.init(field: field, reason: "does not match")])
        }
    }

    /// Checks and uses up a TOTP code (its step) or a recovery code; records a failure.
    func acceptSecondFactor(user: UUID, state: MFAState, code: String, origin: RequestOrigin) async throws -> Bool {
        var accepted = false
        if let secret = state.secret, let step = Self.matchingStep(code, secret: secret) {
            accepted = try await self.database.unscopedTransaction(["SELECT atrium.auth_mfa_accept_step(\(user), \(step))"])[0][0].decode(Bool.self, column: 0)
        } else if let hash = Self.recoveryHash(code) {
            accepted = try await self.database.unscopedTransaction([
                "SELECT atrium.auth_mfa_use_recovery_code(\(user), \(hash))",
            ])[0][0].decode(Bool.self, column: 0)
            if accepted {
                _ = try await self.database.unscopedTransaction(["SELECT atrium.auth_mfa_recovery_used(\(user), \(origin.clientAddress), \(origin.requestID))"])
            }
        }
        if !accepted {
            _ = try await self.database.unscopedTransaction(["SELECT atrium.auth_mfa_failed(\(user), \(origin.clientAddress), \(origin.requestID))"])
        } else if let secret = state.secret, state.keyID != self.configuration.keyRing.signingKey.id {
            // Sealed under a key that no longer signs: move it to the current one, so the old
            // key can leave the ring once every enrolled user has signed in.
            let key = self.configuration.keyRing.signingKey
            let sealed = Base64.encode(self.sealingBox(keyID: key.id)!.seal(secret, context: Array(user.lowercasedString.utf8)))
            _ = try await self.database.unscopedTransaction(["SELECT atrium.auth_mfa_reseal(\(user), \(state.keyID), \(sealed), \(key.id))"])
        }
        return accepted
    }

    /// A sign-in whose password was right, for an enrolled user: a challenge instead of a session.
    func mfaChallenge(user: UUID, tenant: TenantMembership, attempt: PasswordAttempt, origin: RequestOrigin) async throws -> Never {
        let challenge = RandomToken.make(prefix: Self.challengePrefix)
        _ = try await self.database.unscopedTransaction([
            attempt.succeeded,
            """
            SELECT atrium.auth_mfa_challenge(\(user), \(tenant.tenantID), \(RandomToken.digest(challenge)),
                make_interval(secs => \(Self.challengeLifetime.seconds)), \(origin.clientAddress), \(origin.requestID))
            """,
        ])
        var error = AtriumError(.invalidCredentials, "the password is right; now send a code from the authenticator app (POST /v1/auth/mfa)", reason: "mfa_required")
        error.extensions = ["challenge": .string(challenge), "challengeExpiresIn": .number(JSONNumber(Int64(Self.challengeLifetime.seconds)))]
        throw error
    }

    /// Completes a sign-in with its challenge and a TOTP code or a recovery code. Tries are
    /// throttled like passwords (per account and address), and five per challenge.
    public func completeMFA(challenge: String, code: String?, recoveryCode: String?, origin: RequestOrigin) async throws -> SignIn {
        let invalid = AtriumError(.invalidCredentials, "the challenge is unknown, used or expired: sign in again", reason: "invalid_challenge")
        guard challenge.utf8.count <= 128, (code == nil) != (recoveryCode == nil) else {
            guard challenge.utf8.count <= 128 else { throw invalid }
            throw AtriumError.invalid([.init(field: "/", reason: "give either code or recoveryCode")])
        }
        let found = try await self.database.unscopedTransaction([
            "SELECT user_id, tenant_id FROM atrium.auth_mfa_find_challenge(\(RandomToken.digest(challenge)))",
        ])[0]
        guard let (user, tenantID) = try found.single?.decode((UUID, UUID).self) else { throw invalid }
        let profile = try await self.profile(of: user)
        let attempt = PasswordAttempt(email: profile.email, origin: origin)
        let reserved = try await self.database.unscopedTransaction([attempt.begin])
        try PasswordAttempt.requireReserved(reserved[0], message: "too many failed attempts; retry later")
        guard let state = try await self.mfaState(of: user), state.confirmed,
              try await self.acceptSecondFactor(user: user, state: state, code: code ?? recoveryCode ?? "", origin: origin)
        else {
            throw AtriumError(.invalidCredentials, "the code is wrong or was used already", reason: "invalid_code")
        }
        let tenants = try await self.memberships(of: user)
        guard let tenant = tenants.first(where: { $0.tenantID == tenantID }) ?? tenants.first else {
            throw AtriumError(.forbidden, "this account belongs to no tenant", reason: "no_membership")
        }
        let tokens: TokenPair
        do {
            tokens = try await self.startSession(user: user, in: tenant, origin: origin, alongside: [
                "SELECT atrium.auth_mfa_complete_challenge(\(RandomToken.digest(challenge)))",
                attempt.succeeded,
                AuthEvent.insert("login_succeeded", tenant: tenant.tenantID, user: user, origin: origin, detail: ["mfa": code == nil ? "recovery_code" : "totp"]),
            ])
        } catch let error as PostgresError where error.sqlState == "AT012" {
            throw invalid
        }
        return SignIn(user: profile, tenant: tenant, tenants: tenants, tokens: tokens)
    }

    static func matchingStep(_ code: String, secret: [UInt8], now: Date = Date()) -> Int64? {
        let digits = code.filter { $0 != " " }
        guard digits.count == 6, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let totp = TOTP(secret: secret)
        return totp.matchingStep(digits, around: totp.step(at: Int64(now.timeIntervalSince1970)))
    }

    /// Two groups of five characters joined by a dash: 50 random bits in the flows' unambiguous alphabet.
    static func newRecoveryCode() -> String {
        let characters = SecureRandom.bytes(10).map { FlowSecret.alphabet[Int($0 & 31)] }
        return String(decoding: characters.prefix(5), as: UTF8.self) + "-" + String(decoding: characters.suffix(5), as: UTF8.self)
    }

    /// The stored form of a recovery code as typed (any case, with or without the dash).
    static func recoveryHash(_ code: String) -> String? {
        let kept = code.uppercased().filter { $0 != "-" && $0 != " " }
        guard kept.count == 10, kept.utf8.allSatisfy(FlowSecret.alphabet.contains) else { return nil }
        return Hex.encode(SHA256.hash(kept))
    }

    static func uriComponent(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~@"))) ?? text
    }
}
