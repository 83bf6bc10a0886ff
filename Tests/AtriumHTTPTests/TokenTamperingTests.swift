import AtriumCore
import AtriumCrypto
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Tampered tokens are refused with 401, and without a database round trip.
@Suite struct TokenTamperingTests {
    @Test func tamperedAccessTokensAreRefusedWithoutTouchingTheDatabase() async throws {
        let app = try await TestApp.make()
        try await app.test { client in
            let ann = try await client.signUp("ann@example.com", tenant: "Acme")
            let bob = try await client.signUp("bob@example.com", tenant: "Bobs")
            let parts = ann.accessToken.split(separator: ".").map(String.init)
            let payloadBytes = try #require(Base64.decode(parts[1]))
            let claims = try #require(try JSONSerialization.jsonObject(with: Data(payloadBytes)) as? [String: Any])
            func encode(_ object: [String: Any]) throws -> String {
                Base64.encode(Array(try JSONSerialization.data(withJSONObject: object, options: .sortedKeys)))
            }
            func sign(_ header: String, _ payload: String, key: [UInt8]) -> String {
                let input = header + "." + payload
                return input + "." + Base64.encode(HMACSHA256.authenticationCode(for: Array(input.utf8), key: key))
            }
            let realKey = Array(repeating: UInt8(42), count: 32)
            var swapped = claims
            swapped["tid"] = bob.tenantID
            var expired = claims
            expired["iat"] = (claims["iat"] as! Int) - 3600
            expired["exp"] = (claims["exp"] as! Int) - 3600
            var flipped = try #require(Base64.decode(parts[1]))
            flipped[10] ^= 0x04

            let tampered: [String: String] = [
                "alg none": try encode(["alg": "none", "kid": "test"]) + "." + parts[1] + ".",
                "alg none with signature": try encode(["alg": "none", "kid": "test"]) + "." + parts[1] + "." + parts[2],
                "other algorithm": sign(try encode(["alg": "HS512", "kid": "test"]), parts[1], key: realKey),
                "wrong kid": sign(try encode(["alg": "HS256", "kid": "other"]), parts[1], key: realKey),
                "flipped payload bit": parts[0] + "." + Base64.encode(flipped) + "." + parts[2],
                "truncated signature": parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(4)),
                "swapped tenant claim": parts[0] + "." + (try encode(swapped)) + "." + parts[2],
                "other key": sign(parts[0], parts[1], key: Array(repeating: UInt8(7), count: 32)),
                "not a token": "hello",
            ]
            // Background work (the start-up queries, the heartbeat every few seconds) may take a
            // connection in any window: one window of every tampered token without a single
            // acquisition shows they took none; tokens that reached PostgreSQL would spoil every one.
            var quietWindow = false
            for _ in 0..<5 where !quietWindow {
                let acquiredBefore = app.pool.statistics.acquired
                for (name, token) in tampered {
                    let response = try await client.call(.get, "/v1/tenant", token: token)
                    #expect(response.status == .unauthorized, "\(name)")
                    #expect(response.headers[.wwwAuthenticate] == "Bearer", "\(name)")
                }
                quietWindow = app.pool.statistics.acquired == acquiredBefore
            }
            #expect(quietWindow, "a refused token must not reach PostgreSQL")

            // Correctly signed tokens expire on time…
            let expiredToken = sign(parts[0], try encode(expired), key: realKey)
            #expect(try await client.call(.get, "/v1/tenant", token: expiredToken).status == .unauthorized)
            // …and this test's own signing is sound: re-signed with the real key the swapped claims
            // are accepted, so the refusals above come from the tampering, not from a broken helper.
            let resigned = sign(parts[0], try encode(swapped), key: realKey)
            #expect(try await client.call(.get, "/v1/tenant", token: resigned).status == .ok)
            #expect(try await client.call(.get, "/v1/tenant", token: ann.accessToken).status == .ok)

            let malformedHeader = try await client.call(.get, "/v1/me", headers: [.authorization: "Basic YW5uOnB3"])
            #expect(malformedHeader.status == .unauthorized)
            // The scheme is case-insensitive and may be followed by several spaces; anything
            // else is not a bearer credential.
            for accepted in ["Bearer \(ann.accessToken)", "bearer \(ann.accessToken)", "BEARER   \(ann.accessToken)"] {
                #expect(try await client.call(.get, "/v1/me", headers: [.authorization: accepted]).status == .ok, "\(accepted.prefix(10))")
            }
            for refused in ["Bearer", "Bearer ", "Bearer\(ann.accessToken)", "Bearerx \(ann.accessToken)", "Token \(ann.accessToken)", "Bearer \(ann.accessToken)x"] {
                #expect(try await client.call(.get, "/v1/me", headers: [.authorization: refused]).status == .unauthorized, "\(refused.prefix(10))")
            }
        }
    }
}
