@testable import AtriumCrypto
import Foundation
import Testing

@Suite struct TokenTests {
    let ring = try! TokenKeyRing(parsing: "current:\(Base64.encode(Array(repeating: 7, count: 32))),old:\(Base64.encode(Array(repeating: 9, count: 32)))")

    @Test func signedTokensVerifyAndCarryThePayload() throws {
        let token = CompactJWS.sign(payload: Array(#"{"sub":"x"}"#.utf8), with: self.ring)
        let header = try #require(Base64.decode(token.split(separator: ".")[0]))
        #expect(String(decoding: header, as: UTF8.self) == #"{"alg":"HS256","kid":"current","typ":"JWT"}"#)
        #expect(try CompactJWS.verify(token, with: self.ring).get() == Array(#"{"sub":"x"}"#.utf8))
    }

    @Test func tamperedTokensAreRejected() throws {
        let token = CompactJWS.sign(payload: Array(#"{"sub":"x","tid":"a"}"#.utf8), with: self.ring)
        let parts = token.split(separator: ".").map(String.init)
        func header(_ json: String) -> String { Base64.encode(Array(json.utf8)) }

        // alg none, other algorithms, unknown key, no kid.
        #expect(CompactJWS.verify(header(#"{"alg":"none","kid":"current"}"#) + "." + parts[1] + ".", with: self.ring) == .failure(.malformed))
        #expect(CompactJWS.verify(header(#"{"alg":"none","kid":"current"}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unsupportedAlgorithm))
        #expect(CompactJWS.verify(header(#"{"alg":"HS512","kid":"current"}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unsupportedAlgorithm))
        #expect(CompactJWS.verify(header(#"{"alg":"RS256","kid":"current"}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unsupportedAlgorithm))
        #expect(CompactJWS.verify(header(#"{"alg":"HS256","kid":"nope"}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unknownKey))
        #expect(CompactJWS.verify(header(#"{"alg":"HS256"}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unknownKey))
        #expect(CompactJWS.verify(header(#"{"alg":"HS256","kid":"current","crit":["exp"]}"#) + "." + parts[1] + "." + parts[2], with: self.ring) == .failure(.unsupportedAlgorithm))

        // A flipped payload bit, a swapped tenant, a truncated or empty signature.
        var payload = try #require(Base64.decode(parts[1]))
        payload[3] ^= 0x01
        #expect(CompactJWS.verify(parts[0] + "." + Base64.encode(payload) + "." + parts[2], with: self.ring) == .failure(.badSignature))
        let swapped = Base64.encode(Array(#"{"sub":"x","tid":"b"}"#.utf8))
        #expect(CompactJWS.verify(parts[0] + "." + swapped + "." + parts[2], with: self.ring) == .failure(.badSignature))
        #expect(CompactJWS.verify(parts[0] + "." + parts[1] + "." + String(parts[2].dropLast(2)), with: self.ring) == .failure(.badSignature))
        #expect(CompactJWS.verify(parts[0] + "." + parts[1] + ".", with: self.ring) == .failure(.malformed))
        // Signed with a key the ring does not hold under that id.
        let stranger = try TokenKeyRing(parsing: "current:\(Base64.encode(Array(repeating: 1, count: 32)))")
        #expect(CompactJWS.verify(CompactJWS.sign(payload: payload, with: stranger), with: self.ring) == .failure(.badSignature))
        // Not a JWS at all.
        for garbage in ["", "a.b", "a.b.c.d", "....", "\u{0}.\u{0}.\u{0}", String(repeating: "a", count: 10_000)] {
            #expect((try? CompactJWS.verify(garbage, with: self.ring).get()) == nil)
        }
    }

    @Test func everyKeyInTheRingVerifiesButTheFirstSigns() throws {
        let oldRing = try TokenKeyRing(parsing: "old:\(Base64.encode(Array(repeating: 9, count: 32)))")
        let oldToken = CompactJWS.sign(payload: [1, 2, 3], with: oldRing)
        #expect(try CompactJWS.verify(oldToken, with: self.ring).get() == [1, 2, 3])
        #expect(self.ring.signingKey.id == "current")
    }

    @Test func keyRingParsingRejectsWeakOrMalformedKeys() {
        #expect(throws: CryptoError.self) { try TokenKeyRing(parsing: "") }
        #expect(throws: CryptoError.self) { try TokenKeyRing(parsing: "k1:\(Base64.encode(Array(repeating: 1, count: 16)))") }
        #expect(throws: CryptoError.self) { try TokenKeyRing(parsing: "bad id:\(Base64.encode(Array(repeating: 1, count: 32)))") }
        #expect(throws: CryptoError.self) { try TokenKeyRing(parsing: "k1") }
        let generated = TokenKeyRing.generateKey()
        #expect((try? TokenKeyRing(parsing: generated)) != nil)
        #expect((try? TokenKeyRing(parsing: generated + "," + generated)) == nil)
    }

    @Test func base64RoundTripsAndRejectsNonCanonicalText() {
        for length in 0..<40 {
            let bytes = SecureRandom.bytes(length)
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decode(Base64.encode(bytes, alphabet: .standard), alphabet: .standard) == bytes)
        }
        #expect(Base64.decode("QQ==") == nil)
        #expect(Base64.decode("QR") == nil)
        #expect(Base64.decode("Q") == nil)
        #expect(Base64.decode("a+b/") == nil)
    }
}
