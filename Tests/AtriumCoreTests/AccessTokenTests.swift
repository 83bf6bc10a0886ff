@testable import AtriumCore
import AtriumCrypto
import Foundation
import Testing

/// What `AccessTokens` remembers between requests: a token it has checked is not checked again,
/// whether it was valid or refused as expired; nothing else is remembered.
@Suite struct AccessTokenTests {
    let tokens = AccessTokens(
        configuration: AuthConfiguration(keyRing: try! TokenKeyRing(parsing: "t:" + Base64.encode([UInt8](repeating: 7, count: 32))), hashingPermits: 1),
        revocations: RevocationSet(retention: .seconds(900))
    )

    @Test func anExpiredTokenIsRefusedFromMemoryTheSecondTime() {
        let anHourAgo = Date().addingTimeInterval(-3600)
        let token = self.tokens.issue(user: UUID(), tenant: UUID(), role: .viewer, session: UUID(), now: anHourAgo).token
        #expect(self.tokens.verified.lookup(token) == nil)
        #expect(self.tokens.verify(token) == .failure(.expired))
        #expect(self.tokens.verified.lookup(token) != nil, "the expired token was checked again on every request")
        #expect(self.tokens.verify(token) == .failure(.expired))
        // Still valid when it was made: the cache answers by the time it is asked at.
        #expect((try? self.tokens.verify(token, now: anHourAgo).get()) != nil)
        #expect(self.tokens.expiry(of: token) == nil)
    }

    @Test func tokensRefusedForAnythingButExpiryAreNotRemembered() {
        let valid = self.tokens.issue(user: UUID(), tenant: UUID(), role: .viewer, session: UUID()).token
        var tampered = Array(valid.utf8)
        tampered[tampered.count - 2] = tampered[tampered.count - 2] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        let forged = String(decoding: tampered, as: UTF8.self)
        #expect(self.tokens.verify(forged) == .failure(.badSignature))
        #expect(self.tokens.verified.lookup(forged) == nil)
        let early = self.tokens.issue(user: UUID(), tenant: UUID(), role: .viewer, session: UUID(), now: Date().addingTimeInterval(600)).token
        #expect(self.tokens.verify(early) == .failure(.notYetValid))
        #expect(self.tokens.verified.lookup(early) == nil)
        #expect(self.tokens.expiry(of: valid) != nil)
    }
}

extension Result where Success == Principal, Failure == AccessTokens.Rejection {
    fileprivate static func == (lhs: Self, rhs: Self) -> Bool {
        switch (lhs, rhs) {
        case (.failure(let a), .failure(let b)): a == b
        default: false
        }
    }
}
