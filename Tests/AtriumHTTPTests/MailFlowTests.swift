import AtriumCore
import AtriumHTTP
import AtriumMail
import Foundation
import HTTPTypes
import HummingbirdTesting
import PostgresPool
import Testing

/// The account flows end to end: HTTP in, mail out over SMTP to a sink, the link's token or the
/// code back in.
@Suite(.serialized) struct MailFlowTests {
    /// An application whose mail goes to `sink`, with its dispatcher running (quick retries).
    static func withMail(
        tls: Bool = false, trustSink: Bool = true, retries: [Duration] = [.milliseconds(100), .milliseconds(100)],
        _ body: @escaping @Sendable (any TestClientProtocol, SMTPSink, TestApp) async throws -> Void
    ) async throws {
        let sink = try await SMTPSink.start(tls: tls)
        var smtp = try SMTPConfiguration(url: "smtp://127.0.0.1:\(sink.port)" + (tls ? "" : "?tls=none"))
        if tls {
            smtp.host = "localhost"
            smtp.caFile = trustSink ? sink.certificateFile : nil
        }
        let delivery = MailDelivery(
            transport: .smtp(smtp), from: MailAddress(parsing: "Atrium Tests <no-reply@atrium.test>")!,
            retrySchedule: retries, pollInterval: .milliseconds(50)
        )
        let app = try await TestApp.make(mail: delivery) { $0.mail.appURL = "https://app.example.com" }
        // The dispatcher runs with the application's services; NOTIFY wakes it.
        #expect(app.services.mailer != nil)
        try await app.test { client in
            try await body(client, sink, app)
        }
        await sink.stop()
    }

    @Test func signupSendsAVerificationMailAndItsLinkVerifiesOnce() async throws {
        try await Self.withMail { client, sink, _ in
            let ann = try await client.signUp("ann@example.com", tenant: "Ann & Co")
            let mail = try #require(try await sink.mails(to: "ann@example.com").first)
            #expect(mail.from == "no-reply@atrium.test")
            #expect(mail.header("Subject") == "Confirm your email address for Ann & Co")
            #expect(mail.header("From") == "Atrium Tests <no-reply@atrium.test>")
            #expect(mail.header("Message-ID")?.hasSuffix("@atrium.test>") == true)
            #expect(mail.header("Content-Type")?.hasPrefix("multipart/alternative;") == true)
            let text = try #require(mail.body("text/plain"))
            #expect(text.contains("https://app.example.com/verify-email#token=atv_"))
            #expect(mail.body("text/html")?.contains("Ann &amp; Co") == true, "HTML escapes the tenant's name")
            let token = try #require(mail.token)

            #expect(try await client.call(.get, "/v1/me", token: ann.accessToken).object["user"].flatMap { ($0 as? [String: Any])?["emailVerified"] as? Bool } == false)
            // A GET of the link's page redeems nothing: only this POST does.
            #expect(try await client.call(.post, "/v1/auth/verify-email", json: ["token": token]).status == .noContent)
            let me = try await client.call(.get, "/v1/me", token: ann.accessToken)
            #expect((me["user"] as? [String: Any])?["emailVerified"] as? Bool == true)
            let again = try await client.call(.post, "/v1/auth/verify-email", json: ["token": token])
            #expect(again.status == .gone)
            #expect(again.string("reason") == "invalid_token")
            #expect(try await client.call(.post, "/v1/me/verification", token: ann.accessToken).status == .conflict)
        }
    }

    @Test func aCodeVerifiesAndFiveWrongCodesVoidIt() async throws {
        try await Self.withMail { client, sink, app in
            let bob = try await client.signUp("bob@example.com", tenant: "Bob")
            let first = try #require(try await sink.mails(to: "bob@example.com").first?.code)
            for wrong in ["AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC", "DDDD-DDDD", "EEEE-EEEE"] {
                let answer = try await client.call(.post, "/v1/auth/verify-email", json: ["email": "bob@example.com", "code": wrong])
                #expect(answer.status == .gone)
            }
            // The right code comes too late: the token is void.
            #expect(try await client.call(.post, "/v1/auth/verify-email", json: ["email": "bob@example.com", "code": first]).status == .gone)

            // A new mail (the resend, past the one-a-minute spacing) carries a new code, typed in
            // lower case without the dash.
            try await app.database.adminExecute("UPDATE atrium.account_tokens SET created_at = created_at - interval '2 minutes'")
            #expect(try await client.call(.post, "/v1/me/verification", token: bob.accessToken).status == .accepted)
            let resent = try await sink.mails(to: "bob@example.com", count: 2)
            let code = try #require(resent[1].code).lowercased().replacingOccurrences(of: "-", with: "")
            #expect(try await client.call(.post, "/v1/auth/verify-email", json: ["email": "BOB@example.com", "code": code]).status == .noContent)

            // Neither both proofs at once nor none.
            let both = try await client.call(.post, "/v1/auth/verify-email", json: ["token": "x", "email": "bob@example.com", "code": code])
            #expect(both.status == .unprocessableContent)
        }
    }

    @Test func resendingIsThrottled() async throws {
        try await Self.withMail { client, sink, _ in
            let cat = try await client.signUp("cat@example.com", tenant: "Cat")
            _ = try await sink.mails(to: "cat@example.com")
            // The sign-up's mail was a minute ago at the earliest: no second one yet.
            let throttled = try await client.call(.post, "/v1/me/verification", token: cat.accessToken)
            #expect(throttled.status == .tooManyRequests)
            #expect(Int(throttled.headers[.retryAfter] ?? "") ?? 0 > 0)
            try await Task.sleep(for: .milliseconds(300))
            #expect(sink.received.filter { $0.to == "cat@example.com" }.count == 1)
        }
    }

    @Test func forgotPasswordLooksTheSameForEveryAddressAndResetEndsEverySession() async throws {
        try await Self.withMail { client, sink, app in
            let dan = try await client.signUp("dan@example.com", tenant: "Dan Corp")
            let other = try await client.signIn("dan@example.com")
            let known = try await client.call(.post, "/v1/auth/forgot-password", json: ["email": "DAN@example.com"])
            let unknown = try await client.call(.post, "/v1/auth/forgot-password", json: ["email": "nobody@example.com"])
            #expect(known.status == .accepted)
            #expect(unknown.status == known.status)
            #expect(unknown.bodyWithoutRequestID == known.bodyWithoutRequestID)

            let resets = try await sink.mails(to: "dan@example.com", count: 2)
            let reset = try #require(resets.first { $0.header("Subject")?.hasPrefix("Reset your password") == true })
            #expect(reset.header("Subject") == "Reset your password for Dan Corp")
            let token = try #require(reset.token)
            #expect(token.hasPrefix("atp_"))
            try await Task.sleep(for: .milliseconds(200))
            #expect(!sink.received.contains { $0.to == "nobody@example.com" })

            let weak = try await client.call(.post, "/v1/auth/reset-password", json: ["token": token, "newPassword": "short"])
            #expect(weak.status == .unprocessableContent)
            let done = try await client.call(.post, "/v1/auth/reset-password", json: ["token": token, "newPassword": "a much better passphrase"])
            #expect(done.status == .noContent)
            // Every session of the user ends, on this server at once.
            #expect(try await client.call(.get, "/v1/me", token: dan.accessToken).status == .unauthorized)
            #expect(try await client.call(.get, "/v1/me", token: other.accessToken).status == .unauthorized)
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": other.refreshToken]).status == .unauthorized)
            _ = try await client.signIn("dan@example.com", password: "a much better passphrase")
            let reused = try await client.call(.post, "/v1/auth/reset-password", json: ["token": token, "newPassword": "yet another passphrase"])
            #expect(reused.status == .gone)

            // Reset proves the address too.
            let me = try await client.call(.get, "/v1/me", token: try await client.signIn("dan@example.com", password: "a much better passphrase").accessToken)
            #expect((me["user"] as? [String: Any])?["emailVerified"] as? Bool == true)
            let events = try await app.database.adminQuery(
                "SELECT kind FROM atrium.auth_events WHERE kind IN ('password_reset_requested', 'password_reset') ORDER BY occurred_at"
            )
            #expect(events.map { $0.string(0) } == ["password_reset_requested", "password_reset_requested", "password_reset"])
        }
    }

    @Test func aNewerResetOrAPasswordChangeVoidsAResetToken() async throws {
        try await Self.withMail { client, sink, app in
            let eve = try await client.signUp("eve@example.com", tenant: "Eve")
            _ = try await client.call(.post, "/v1/auth/forgot-password", json: ["email": "eve@example.com"])
            // Mails may arrive in either order (two senders): pick them by their tokens.
            let first = try #require(try await sink.mails(to: "eve@example.com", count: 2).compactMap(\.token).first { $0.hasPrefix("atp_") })
            // Past the one-a-minute spacing, a second request voids the first token.
            try await app.database.adminExecute("UPDATE atrium.account_tokens SET created_at = created_at - interval '2 minutes'")
            _ = try await client.call(.post, "/v1/auth/forgot-password", json: ["email": "eve@example.com"])
            let second = try #require(try await sink.mails(to: "eve@example.com", count: 3).compactMap(\.token).first { $0.hasPrefix("atp_") && $0 != first })
            #expect(try await client.call(.post, "/v1/auth/reset-password", json: ["token": first, "newPassword": "a much better passphrase"]).status == .gone)

            // A password change after the mail voids the newer one too.
            let change = try await client.call(.post, "/v1/me/password", token: eve.accessToken, json: [
                "currentPassword": "correct horse battery", "newPassword": "changed by the user",
            ])
            #expect(change.status == .noContent)
            #expect(try await client.call(.post, "/v1/auth/reset-password", json: ["token": second, "newPassword": "a much better passphrase"]).status == .gone)
            _ = try await client.signIn("eve@example.com", password: "changed by the user")
        }
    }

    @Test func emailChangeNeedsThePasswordAndHappensOnConfirmation() async throws {
        try await Self.withMail { client, sink, _ in
            let fay = try await client.signUp("fay@example.com", tenant: "Fay")
            _ = try await client.signUp("taken@example.com", tenant: "Taken")
            let wrong = try await client.call(.post, "/v1/me/email", token: fay.accessToken, json: ["newEmail": "fay@new.example", "currentPassword": "nope nope nope"])
            #expect(wrong.status == .unauthorized)
            let taken = try await client.call(.post, "/v1/me/email", token: fay.accessToken, json: ["newEmail": "Taken@example.com", "currentPassword": "correct horse battery"])
            #expect(taken.status == .conflict)
            #expect(taken.string("reason") == "email_taken")

            let asked = try await client.call(.post, "/v1/me/email", token: fay.accessToken, json: ["newEmail": "fay@new.example", "currentPassword": "correct horse battery"])
            #expect(asked.status == .accepted)
            let confirmation = try #require(try await sink.mails(to: "fay@new.example").first)
            let notice = try #require(try await sink.mails(to: "fay@example.com", count: 2).first { $0.header("Subject") == "Your email address is being changed" })
            #expect(notice.body("text/plain")?.contains("fay@new.example") == true)
            #expect(notice.token == nil, "the old address gets no link")
            // Nothing changed yet.
            _ = try await client.signIn("fay@example.com")

            let token = try #require(confirmation.token)
            #expect(try await client.call(.post, "/v1/auth/confirm-email", json: ["token": token]).status == .noContent)
            #expect(try await client.call(.post, "/v1/auth/confirm-email", json: ["token": token]).status == .gone)
            let signedIn = try await client.signIn("fay@new.example")
            let me = try await client.call(.get, "/v1/me", token: signedIn.accessToken)
            #expect((me["user"] as? [String: Any])?["email"] as? String == "fay@new.example")
            #expect((me["user"] as? [String: Any])?["emailVerified"] as? Bool == true)
            #expect(try await client.call(.post, "/v1/auth/login", json: ["email": "fay@example.com", "password": "correct horse battery"]).status == .unauthorized)
            // The verification link sent to the old address speaks for it no more.
            let oldVerification = try #require(try await sink.mails(to: "fay@example.com").compactMap(\.token).first)
            #expect(try await client.call(.post, "/v1/auth/verify-email", json: ["token": oldVerification]).status == .gone)
        }
    }

    @Test func aTenantCanRequireVerifiedEmails() async throws {
        try await Self.withMail { client, sink, _ in
            let owner = try await client.signUp("gus@example.com", tenant: "Strict")
            let patched = try await client.call(.patch, "/v1/tenant", token: owner.accessToken, json: ["requireVerifiedEmail": true])
            #expect(patched.status == .ok)
            #expect(patched["requireVerifiedEmail"] as? Bool == true)
            let refused = try await client.call(.post, "/v1/auth/login", json: ["email": "gus@example.com", "password": "correct horse battery"])
            #expect(refused.status == .forbidden)
            #expect(refused.string("reason") == "email_not_verified")
            let token = try #require(try await sink.mails(to: "gus@example.com").first?.token)
            #expect(try await client.call(.post, "/v1/auth/verify-email", json: ["token": token]).status == .noContent)
            _ = try await client.signIn("gus@example.com")
        }
    }

    @Test func aMailIsSentOnlyForACommittedTransaction() async throws {
        try await Self.withMail { client, sink, app in
            _ = try await client.signUp("hal@example.com", tenant: "Hal")
            // The same address again: the sign-up rolls back, and its mail with it.
            let clash = try await client.call(.post, "/v1/auth/signup", json: ["email": "HAL@example.com", "password": "correct horse battery", "tenant": ["name": "Hal 2"]])
            #expect(clash.status == .conflict)
            _ = try await sink.mails(to: "hal@example.com")
            try await Task.sleep(for: .milliseconds(300))
            #expect(sink.received.filter { $0.to.lowercased() == "hal@example.com" }.count == 1)
            let rows = try await app.database.adminQuery("SELECT count(*) FROM atrium.mail_outbox WHERE lower(recipient) = 'hal@example.com'")
            #expect(rows.first?.string(0) == "1")
        }
    }

    @Test func temporaryFailuresAreRetriedAndPermanentOnesGivenUp() async throws {
        try await Self.withMail { client, sink, app in
            sink.failNextRecipients(["451 4.3.0 try again later"])
            _ = try await client.signUp("ivy@example.com", tenant: "Ivy")
            let mail = try #require(try await sink.mails(to: "ivy@example.com").first)
            #expect(mail.token != nil)
            // The sink has the message before the sender has its answer and records the outcome.
            try await waitUntil(timeout: .seconds(10)) {
                try await app.database.adminQuery("SELECT status FROM atrium_admin.mail_queue WHERE recipient = 'ivy@example.com'").first?.string(0) == "sent"
            }
            let sent = try await app.database.adminQuery("SELECT attempts, status, last_error FROM atrium_admin.mail_queue WHERE recipient = 'ivy@example.com'")
            #expect(sent.first?.string(0) == "2")
            #expect(sent.first?.string(1) == "sent")
            #expect(sent.first?.string(2)?.contains("451") == true)

            sink.failNextRecipients(["550 5.1.1 no such user"])
            _ = try await client.signUp("jon@example.com", tenant: "Jon")
            try await waitUntil(timeout: .seconds(10)) {
                try await app.database.adminQuery("SELECT status FROM atrium_admin.mail_queue WHERE recipient = 'jon@example.com'").first?.string(0) == "failed"
            }
            #expect(!sink.received.contains { $0.to == "jon@example.com" })
            // Given up or sent, a mail keeps no body: bodies carry live tokens.
            let bodies = try await app.database.adminQuery("SELECT count(*) FROM atrium.mail_outbox WHERE text_body IS NOT NULL OR html_body IS NOT NULL")
            #expect(bodies.first?.string(0) == "0")
        }
    }

    @Test func startTLSVerifiesTheServerCertificate() async throws {
        try await Self.withMail(tls: true) { client, sink, _ in
            _ = try await client.signUp("kim@example.com", tenant: "Kim")
            let mail = try #require(try await sink.mails(to: "kim@example.com").first)
            #expect(mail.overTLS)
        }
        // A certificate nobody vouches for: nothing is sent, the mail waits for a retry.
        try await Self.withMail(tls: true, trustSink: false) { client, sink, app in
            _ = try await client.signUp("lee@example.com", tenant: "Lee")
            try await waitUntil(timeout: .seconds(10)) {
                let rows = try await app.database.adminQuery("SELECT attempts, last_error FROM atrium_admin.mail_queue WHERE recipient = 'lee@example.com'")
                return rows.first.map { $0.string(0) != "0" } ?? false
            }
            #expect(sink.received.isEmpty)
        }
    }

    /// Anyone can sign up with any address: a flood of verification mails must not hold back a
    /// password reset behind it.
    @Test func resetsAreClaimedBeforeABacklogOfVerifications() async throws {
        let app = try await TestApp.make()
        try await app.database.adminExecute("""
            SELECT atrium.mail_enqueue(gen_random_uuid(), NULL, 'verify_email', 'flood' || i || '@example.com', 's', 't', 'h')
            FROM generate_series(1, 50) AS i;
            SELECT atrium.mail_enqueue(gen_random_uuid(), NULL, 'password_reset', 'victim@example.com', 's', 't', 'h');
            """)
        let claimed = try await MailOutbox(database: app.services.database).claim(limit: 5)
        #expect(claimed.count == 5)
        #expect(claimed.first?.mail.kind == .passwordReset, "\(claimed.map(\.mail.kind))")
    }
}
