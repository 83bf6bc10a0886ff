import AtriumCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PostgresPool
import Testing

@Suite struct AuthFlowTests {
    @Test func signUpSignInRefreshAndSignOut() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let signup = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "Ann@Example.com", "password": "correct horse battery", "tenant": ["name": "Acme Corp"],
            ])
            #expect(signup.status == .created)
            #expect(signup.string("tenant.slug") == "acme-corp")
            #expect(signup.string("tenant.role") == "owner")
            #expect(signup.string("user.email") == "Ann@Example.com")
            #expect(signup.string("tokens.tokenType") == "Bearer")
            #expect(signup["tokens.expiresIn"] as? Int == 900)
            #expect(signup.headers[.cacheControl] == "no-store")

            // Email is case-insensitive; the tenant list comes back with the pair.
            let login = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@EXAMPLE.com", "password": "correct horse battery"])
            #expect(login.status == .ok)
            #expect((login["tenants"] as? [Any])?.count == 1)
            let signedIn = try SignedIn(login)

            let me = try await client.call(.get, "/v1/me", token: signedIn.accessToken)
            #expect(me.status == .ok)
            #expect(me.string("tenant.role") == "owner")

            let refreshed = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": signedIn.refreshToken])
            #expect(refreshed.status == .ok)
            let newAccess = try #require(refreshed.string("accessToken"))
            #expect(refreshed.string("refreshToken") != signedIn.refreshToken)
            #expect(try await client.call(.get, "/v1/me", token: newAccess).status == .ok)

            #expect(try await client.call(.post, "/v1/auth/logout", token: newAccess).status == .noContent)
            // Both access tokens of the session stop working at once, and so does its refresh token.
            #expect(try await client.call(.get, "/v1/me", token: newAccess).status == .unauthorized)
            #expect(try await client.call(.get, "/v1/me", token: signedIn.accessToken).status == .unauthorized)
            let afterLogout = try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": refreshed.string("refreshToken")!])
            #expect(afterLogout.status == .unauthorized)
            // Other sessions of the user are untouched.
            #expect(try await client.signIn("ann@example.com").accessToken.isEmpty == false)
        }
    }

    @Test func signUpValidatesEveryFieldAndRefusesTakenEmailsAndSlugs() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let invalid = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "not-an-email", "password": "short", "tenant": ["name": "", "slug": "Bad Slug", "color": "red"],
            ])
            #expect(invalid.status == .unprocessableContent)
            #expect(invalid.headers[.contentType] == "application/problem+json")
            let fields = Set(((invalid["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(fields == ["/tenant/color"], "unknown fields are reported before anything else")

            let invalidValues = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "not-an-email", "password": "short", "tenant": ["name": "", "slug": "Bad Slug"],
            ])
            let valueFields = Set(((invalidValues["errors"] as? [[String: Any]]) ?? []).compactMap { $0["field"] as? String })
            #expect(valueFields == ["/email", "/password", "/tenant/name", "/tenant/slug"])

            let missing = try await client.call(.post, "/v1/auth/signup", json: ["email": "a@b.c"])
            #expect(missing.status == .unprocessableContent)

            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            let taken = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "ANN@example.com", "password": "correct horse battery", "tenant": ["name": "Other"],
            ])
            #expect(taken.status == .conflict)
            #expect(taken.string("reason") == "email_taken")
            let slugTaken = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "bob@example.com", "password": "correct horse battery", "tenant": ["name": "Other", "slug": "acme"],
            ])
            #expect(slugTaken.status == .conflict)
            #expect(slugTaken.string("reason") == "slug_taken")
            // A derived slug that is taken gets a suffix instead of failing.
            let derived = try await client.call(.post, "/v1/auth/signup", json: [
                "email": "cy@example.com", "password": "correct horse battery", "tenant": ["name": "Acme"],
            ])
            #expect(derived.status == .created)
            #expect(derived.string("tenant.slug")?.hasPrefix("acme-") == true)
        }
    }

    @Test func malformedBodiesAreProblems() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let broken = try await client.execute(uri: "/v1/auth/login", method: .post, headers: [.contentType: "application/json"], body: ByteBuffer(string: "{\"email\": ")) { $0 }
            #expect(broken.status == .badRequest)
            #expect(broken.headers[.contentType] == "application/problem+json")
            let form = try await client.execute(uri: "/v1/auth/login", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: "a=b")) { $0 }
            #expect(form.status == .unsupportedMediaType)
            let wrongType = try await client.call(.post, "/v1/auth/login", json: ["email": 42, "password": "x"])
            #expect(wrongType.status == .unprocessableContent)
            #expect((wrongType["errors"] as? [[String: Any]])?.first?["field"] as? String == "/email")
        }
    }

    @Test func unknownEmailAndWrongPasswordLookTheSame() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
            let wrongPassword = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "not the password"], from: "198.51.100.1")
            let unknownEmail = try await client.call(.post, "/v1/auth/login", json: ["email": "nobody@example.com", "password": "not the password"], from: "198.51.100.2")
            #expect(wrongPassword.status == .unauthorized)
            #expect(unknownEmail.status == wrongPassword.status)
            #expect(unknownEmail.bodyWithoutRequestID == wrongPassword.bodyWithoutRequestID)
            #expect(unknownEmail.headers[.wwwAuthenticate] == wrongPassword.headers[.wwwAuthenticate])
            // A disabled account answers the same too, even with the right password.
            try await app.database.withSuperuser { admin in
                _ = try await admin.query("SELECT atrium_admin.disable_user('ann@example.com')")
            }
            let disabled = try await client.call(.post, "/v1/auth/login", json: ["email": "ann@example.com", "password": "correct horse battery"], from: "198.51.100.3")
            #expect(disabled.status == .unauthorized)
            #expect(disabled.bodyWithoutRequestID == wrongPassword.bodyWithoutRequestID)
        }
    }

    @Test func switchingTenantAndChangingPassword() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let created = try await client.call(.post, "/v1/tenants", token: ann.accessToken, json: ["name": "Side Project", "slug": "side"])
            #expect(created.status == .created)
            #expect(created.string("role") == "owner")
            let mine = try await client.call(.get, "/v1/tenants", token: ann.accessToken)
            #expect((mine["data"] as? [Any])?.count == 2)

            let switched = try await client.call(.post, "/v1/auth/switch", token: ann.accessToken, json: ["tenant": "side"])
            #expect(switched.status == .ok)
            let side = try SignedIn(switched)
            #expect(side.tenantID == created.string("id"))
            let tenant = try await client.call(.get, "/v1/tenant", token: side.accessToken)
            #expect(tenant.string("slug") == "side")
            let notMine = try await client.call(.post, "/v1/auth/switch", token: ann.accessToken, json: ["tenant": "nope"])
            #expect(notMine.status == .forbidden)

            // A password change needs the current password and ends the other sessions.
            let other = try await client.signIn("ann@example.com")
            let wrong = try await client.call(.post, "/v1/me/password", token: ann.accessToken, json: ["currentPassword": "nope nope nope", "newPassword": "a brand new passphrase"])
            #expect(wrong.status == .unauthorized)
            let changed = try await client.call(.post, "/v1/me/password", token: ann.accessToken, json: ["currentPassword": "correct horse battery", "newPassword": "a brand new passphrase"])
            #expect(changed.status == .noContent)
            #expect(try await client.call(.get, "/v1/me", token: ann.accessToken).status == .ok)
            try await waitUntil { try await client.call(.get, "/v1/me", token: other.accessToken).status == .unauthorized }
            try await waitUntil { try await client.call(.get, "/v1/me", token: side.accessToken).status == .unauthorized }
            #expect(try await client.call(.post, "/v1/auth/refresh", json: ["refreshToken": other.refreshToken]).status == .unauthorized)
            _ = try await client.signIn("ann@example.com", password: "a brand new passphrase")

            // Logout everywhere ends every session, in every tenant.
            let a = try await client.signIn("ann@example.com", password: "a brand new passphrase")
            let b = try await client.signIn("ann@example.com", password: "a brand new passphrase", tenant: "side")
            #expect(try await client.call(.post, "/v1/auth/logout-all", token: a.accessToken).status == .noContent)
            try await waitUntil { try await client.call(.get, "/v1/me", token: b.accessToken).status == .unauthorized }
            #expect(try await client.call(.get, "/v1/me", token: a.accessToken).status == .unauthorized)
        }
    }

    @Test func passwordsAreHashedAsPHCAndOldHashesUpgradeAtSignIn() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            _ = try await client.signUp("ann@example.com", tenant: "Acme")
        }
        let stored = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT password_hash FROM atrium.users").single!.decode(String.self, column: 0)
        }
        #expect(stored.hasPrefix("$scrypt$ln=10,r=8,p=1$"))
        // A server configured with stronger parameters rehashes at the next sign-in.
        let stronger = try await TestApp.make(on: app.database) { $0.passwordParameters = .init(logN: 11, r: 8, p: 1) }
        try await stronger.test { client in
            _ = try await client.signIn("ann@example.com")
        }
        let upgraded = try await app.database.withSuperuser { admin in
            try await admin.query("SELECT password_hash FROM atrium.users").single!.decode(String.self, column: 0)
        }
        #expect(upgraded.hasPrefix("$scrypt$ln=11,r=8,p=1$"))
    }
}

/// Polls `condition` for up to `timeout`; revocations that travel through NOTIFY take a moment.
func waitUntil(timeout: Duration = .seconds(3), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition not met within \(timeout)")
}
