import AtriumCrypto
import Testing

@Suite struct TOTPTests {
    /// RFC 6238, appendix B (HMAC-SHA1, 8 digits, the ASCII secret "12345678901234567890").
    @Test func rfc6238TestVectors() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8), digits: 8)
        let vectors: [(Int64, String)] = [
            (59, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"), (2_000_000_000, "69279037"), (20_000_000_000, "65353130"),
        ]
        for (time, code) in vectors {
            #expect(totp.code(step: totp.step(at: time)) == code, "T = \(time)")
        }
    }

    @Test func aCodeMatchesItsStepAndItsNeighboursOnly() {
        let totp = TOTP(secret: Array("12345678901234567890".utf8))
        let step = totp.step(at: 1_234_567_890)
        #expect(totp.matchingStep(totp.code(step: step), around: step) == step)
        #expect(totp.matchingStep(totp.code(step: step + 1), around: step) == step + 1)
        #expect(totp.matchingStep(totp.code(step: step - 1), around: step) == step - 1)
        #expect(totp.matchingStep(totp.code(step: step + 2), around: step) == nil)
        #expect(totp.matchingStep("000000", around: step) == nil || totp.code(step: step) == "000000")
    }

    /// RFC 4648 section 10, without padding.
    @Test func base32TestVectors() {
        let vectors = ["": "", "f": "MY", "fo": "MZXQ", "foo": "MZXW6", "foob": "MZXW6YQ", "fooba": "MZXW6YTB", "foobar": "MZXW6YTBOI"]
        for (plain, encoded) in vectors {
            #expect(Base32.encode(Array(plain.utf8)) == encoded)
        }
    }

    @Test func sealedSecretsOpenOnlyWithTheirKeyAndContext() {
        let box = SealedBox(key: Array(repeating: 7, count: 32))
        let secret = Array("a twenty byte secret".utf8)
        let sealed = box.seal(secret, context: Array("user-1".utf8))
        #expect(sealed.count == 12 + secret.count + 16)
        #expect(box.open(sealed, context: Array("user-1".utf8)) == secret)
        #expect(box.open(sealed, context: Array("user-2".utf8)) == nil, "moved to another user's row")
        #expect(SealedBox(key: Array(repeating: 8, count: 32)).open(sealed, context: Array("user-1".utf8)) == nil)
        var tampered = sealed
        tampered[14] ^= 1
        #expect(box.open(tampered, context: Array("user-1".utf8)) == nil)
        #expect(box.seal(secret, context: []) != box.seal(secret, context: []), "a fresh nonce every time")
    }
}
