import AtriumCore
import AtriumCrypto
import AtriumTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Two-factor sign-in end to end. Codes come from the secret the server showed, decoded here
/// from base32 independently of the server's code, and computed by `TOTP` (checked against RFC
/// 6238's vectors in `TOTPTests`; CI checks them against `pyotp` too).
@Suite struct MFATests {
    static func decodeBase32(_ text: String) -> [UInt8] {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var bytes: [UInt8] = []
        var buffer = 0
        var bits = 0
        for character in text {
            guard let value = alphabet.firstIndex(of: character) else { continue }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                bytes.append(UInt8((buffer >> (bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return bytes
    }

    static func code(_ secret: String, stepOffset: Int64 = 0) -> String {
        let totp = TOTP(secret: Self.decodeBase32(secret))
        return totp.code(step: totp.step(at: Int64(Date().timeIntervalSince1970)) + stepOffset)
    }

    /// Signs up `email` and enrols them; returns the session, the base32 secret and the recovery codes.
    static func enrolled(_ email: String, client: any TestClientProtocol) async throws -> (SignedIn, String, [String]) {
        let user = try await client.signUp(email, tenant: "MFA")
        let begun = try await client.call(.post, "/v1/me/mfa/totp", token: user.accessToken)
        #expect(begun.status == .created)
        let secret = try #require(begun.string("secret"))
        #expect(begun.string("otpauthUri")?.hasPrefix("otpauth://totp/atrium:") == true)
        #expect(begun.string("otpauthUri")?.contains("secret=\(secret)&issuer=atrium") == true)
        let confirmed = try await client.call(.post, "/v1/me/mfa/totp/confirm", token: user.accessToken, json: ["code": Self.code(secret)])
        #expect(confirmed.status == .ok, "\(confirmed.body)")
        let codes = try #require(confirmed["recoveryCodes"] as? [String])
        return (user, secret, codes)
    }

    @Test func enrolledUsersSignInWithAChallengeAndACodeUsedOnce() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let user = try await client.signUp("ann@example.com", tenant: "MFA")
            let begun = try await client.call(.post, "/v1/me/mfa/totp", token: user.accessToken)
            let secret = try #require(begun.string("secret"))
            #expect(Self.decodeBase32(secret).count == 20, "160-bit secret")
            let wrong = try await client.call(.post, "/v1/me/mfa/totp/confirm", token: user.accessToken, json: ["code": "000000"])
            #expect(wrong.status == .unauthorized || Self.code(secret) == "000000")
            let first = Self.code(secret)
            let confirmed = try await client.call(.post, "/v1/me/mfa/totp/confirm", token: user.accessToken, json: ["code": first])
            #expect(confirmed.status == .ok)
            let codes = try #require(confirmed["recoveryCodes"] as? [String])
            #expect(codes.count == 10 && Set(codes).count == 10)
            #expect(codes.allSatisfy { $0.count == 11 && $0.dropFirst(5).first == "-" })
            let me = try await client.call(.get, "/v1/me", token: user.accessToken)
            #expect((me["user"] as? [String: Any])?["mfaEnabled"] as? Bool == true)
            #expect(try await client.call(.post, "/v1/me/mfa/totp", token: user.accessToken).status == .conflict, "enrolled already")

            // The password alone gives no tokens, only a challenge.
            let login = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"])
            #expect(login.status == .unauthorized)
            #expect(login.string("reason") == "mfa_required")
            #expect(login["tokens"] == nil)
            #expect(login["challengeExpiresIn"] as? Int == 300)
            let challenge = try #require(login.string("challenge"))
            // The code that confirmed enrolment is spent: a replay is refused.
            let replay = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": first])
            #expect(replay.status == .unauthorized)
            #expect(replay.string("reason") == "invalid_code")
            // The next step's code (within the ±1 window) completes the sign-in, once.
            let next = Self.code(secret, stepOffset: 1)
            let done = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": next], from: "192.0.2.2")
            #expect(done.status == .ok, "\(done.body)")
            #expect(done.string("tokens.accessToken") != nil)
            let again = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": next], from: "192.0.2.3")
            #expect(again.string("reason") == "invalid_challenge")

            // A recovery code works once.
            let second = try #require(try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"]).string("challenge"))
            #expect(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": second, "recoveryCode": codes[0].lowercased()], from: "192.0.2.4").status == .ok)
            let third = try #require(try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"]).string("challenge"))
            #expect(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": third, "recoveryCode": codes[0]], from: "192.0.2.5").status == .unauthorized)
            #expect(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": "atm_made-up", "code": "123456"]).string("reason") == "invalid_challenge")
        }
    }

    @Test func wrongCodesAreThrottledLikePasswordsAndChallengesDieAfterFiveTries() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let (_, secret, _) = try await Self.enrolled("bob@example.com", client: client)
            let challenge = try #require(try await client.call(.post, "/v1/auth/login", json: ["email": "bob@example.com", "password": "correct horse battery"]).string("challenge"))
            let wrongCode = Self.code(secret, stepOffset: 5)
            var statuses: [Int] = []
            for _ in 0..<3 {
                statuses.append(Int(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": wrongCode], from: "198.51.100.7").status.code))
            }
            #expect(statuses == [401, 401, 401])
            // Counted where wrong passwords are: three free failures per account and address,
            // then growing waits after the last one (moved a minute on, so a slow machine cannot
            // outwait the first second).
            let counted = try await app.database.adminQuery("SELECT count(*) FROM atrium.login_failures WHERE client_address = '198.51.100.7'")
            #expect(counted.first?.string(0) == "3")
            try await app.database.adminExecute("UPDATE atrium.login_failures SET failed_at = now() + interval '1 minute' WHERE client_address = '198.51.100.7'")
            let throttled = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": wrongCode], from: "198.51.100.7")
            #expect(throttled.status == .tooManyRequests)
            // From elsewhere: the fifth try voids the challenge, even with the right code.
            _ = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": wrongCode], from: "198.51.100.8")
            let late = try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": Self.code(secret, stepOffset: 1)], from: "198.51.100.9")
            #expect(late.string("reason") == "invalid_challenge")
        }
    }

    @Test func passwordChangeAndTurningMFAOffNeedTheSecondFactor() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let (user, _, codes) = try await Self.enrolled("cat@example.com", client: client)
            let without = try await client.call(.post, "/v1/me/password", token: user.accessToken, json: ["currentPassword": "correct horse battery", "newPassword": "a newer passphrase"])
            #expect(without.status == .unauthorized)
            #expect(without.string("reason") == "mfa_required")
            let with = try await client.call(.post, "/v1/me/password", token: user.accessToken, json: [
                "currentPassword": "correct horse battery", "newPassword": "a newer passphrase", "code": codes[1],
            ])
            #expect(with.status == .noContent)
            let email = try await client.call(.post, "/v1/me/email", token: user.accessToken, json: ["newEmail": "cat@new.example", "currentPassword": "a newer passphrase"])
            #expect(email.status == .unauthorized)

            let off = try await client.call(.delete, "/v1/me/mfa/totp", token: user.accessToken, json: ["currentPassword": "a newer passphrase", "code": codes[2]])
            #expect(off.status == .noContent)
            // Back to the password alone.
            _ = try await client.signIn("cat@example.com", password: "a newer passphrase")
            let events = try await app.database.adminQuery("SELECT kind FROM atrium.auth_events WHERE kind LIKE 'mfa_%' ORDER BY occurred_at")
            #expect(events.map { $0.string(0) } == ["mfa_enrolled", "mfa_recovery_code_used", "mfa_recovery_code_used", "mfa_disabled"])
        }
    }

    @Test func anInvitationCannotBeAcceptedWithThePasswordAloneOfAnEnrolledAccount() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let (eve, _, _) = try await Self.enrolled("eve@example.com", client: client)
            let admin = try await client.signUp("boss@example.com", tenant: "Other")
            let invitation = try await client.call(.post, "/v1/invitations", token: admin.accessToken, json: ["email": "eve@example.com", "role": "member"])
            let token = try #require(invitation.string("token"))
            let withPassword = try await client.call(.post, "/v1/invitations/accept", json: ["token": token, "password": "correct horse battery"])
            #expect(withPassword.status == .unauthorized)
            #expect(withPassword.string("reason") == "mfa_required")
            let withSession = try await client.call(.post, "/v1/invitations/accept", token: eve.accessToken, json: ["token": token])
            #expect(withSession.status == .ok)
        }
    }

    @Test func aSecretMovesToTheNewSigningKeyAtItsNextUse() async throws {
        let first = try await TestApp.make()
        let secret = Locked("")
        try await first.test { client in
            let enrolled = try await Self.enrolled("gil@example.com", client: client).1
            secret.withLock { $0 = enrolled }
        }
        // Rotated: a new key signs, the old one stays in the ring.
        let newKey = "new:" + Base64.encode(Array(repeating: UInt8(99), count: 32))
        let rotated = try await TestApp.make(on: first.database) { $0.keyRing = try! TokenKeyRing(parsing: newKey + "," + TestApp.keyText) }
        try await rotated.test { client in
            let challenge = try #require(try await client.call(.post, "/v1/auth/login", json: ["email": "gil@example.com", "password": "correct horse battery"]).string("challenge"))
            #expect(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": Self.code(secret.value, stepOffset: 1)]).status == .ok)
        }
        #expect(try await first.database.adminQuery("SELECT key_id FROM atrium.user_mfa").first?.string(0) == "new")
        // The old key can go now: the secret opens under the new one (a current code is accepted
        // once the replay guard is set back).
        try await first.database.adminExecute("UPDATE atrium.user_mfa SET last_step = 0")
        let later = try await TestApp.make(on: first.database) { $0.keyRing = try! TokenKeyRing(parsing: newKey) }
        try await later.test { client in
            let challenge = try #require(try await client.call(.post, "/v1/auth/login", json: ["email": "gil@example.com", "password": "correct horse battery"]).string("challenge"))
            #expect(try await client.call(.post, "/v1/auth/mfa", json: ["challenge": challenge, "code": Self.code(secret.value)]).status == .ok)
        }
    }

    @Test func supportResetsMFAFromPsqlAndTheSecretIsStoredSealed() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let (_, secret, _) = try await Self.enrolled("dan@example.com", client: client)
            let stored = try await app.database.adminQuery("SELECT sealed_secret FROM atrium.user_mfa")
            let sealed = try #require(stored.first?.string(0))
            #expect(!sealed.contains(secret) && Base64.decode(sealed)?.count == 12 + 20 + 16, "only the sealed form is stored")
            #expect(try await client.call(.post, "/v1/auth/login", json: ["email": "dan@example.com", "password": "correct horse battery"]).status == .unauthorized)
            try await app.database.adminExecute("SELECT atrium_admin.reset_mfa('DAN@example.com')")
            _ = try await client.signIn("dan@example.com")
            let events = try await app.database.adminQuery("SELECT request_id FROM atrium.auth_events WHERE kind = 'mfa_reset'")
            #expect(events.first?.string(0)?.hasPrefix("psql:") == true)
        }
    }
}
