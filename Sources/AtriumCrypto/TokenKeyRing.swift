/// HMAC keys for signing access tokens, each named by a `kid`.
///
/// The first key signs; every key verifies, so a new key can be rolled out first as a
/// verifier, then moved to the front, and the old one dropped once its tokens have expired.
public struct TokenKeyRing: Sendable {
    public struct Key: Sendable {
        public let id: String
        let secret: [UInt8]

        public init(id: String, secret: [UInt8]) throws {
            guard TokenKeyRing.isValidID(id) else {
                throw CryptoError("key id \"\(id)\" must be 1 to 64 of A-Z a-z 0-9 - _")
            }
            guard secret.count >= 32 else {
                throw CryptoError("key \(id) is \(secret.count) bytes; HS256 keys need at least 32")
            }
            self.id = id
            self.secret = secret
        }
    }

    public let keys: [Key]
    public var signingKey: Key { self.keys[0] }

    public init(keys: [Key]) throws {
        guard !keys.isEmpty else { throw CryptoError("the token key ring is empty") }
        guard Set(keys.map(\.id)).count == keys.count else { throw CryptoError("token key ids must be unique") }
        self.keys = keys
    }

    /// Parses `kid:secret,kid:secret,…` (secrets in URL-safe base64), as `atrium keygen` prints.
    public init(parsing text: String) throws {
        var keys: [Key] = []
        for entry in text.split(separator: ",").map({ $0.trimmingWhitespace() }) where !entry.isEmpty {
            let parts = entry.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let secret = Base64.decode(parts[1]) else {
                throw CryptoError("each token key must look like kid:base64url-secret")
            }
            keys.append(try Key(id: String(parts[0]), secret: secret))
        }
        try self.init(keys: keys)
    }

    /// A key for another purpose (signing list cursors, say), derived from the signing key so
    /// no extra secret needs configuring: HMAC-SHA256(signing key, purpose).
    public func derivedKey(purpose: String) -> [UInt8] {
        HMACSHA256.authenticationCode(for: Array(purpose.utf8), key: self.signingKey.secret)
    }

    /// The same derivation from the key `id`, while the ring still holds it (for values sealed
    /// under an earlier signing key).
    public func derivedKey(purpose: String, keyID id: String) -> [UInt8]? {
        self.key(id: id).map { HMACSHA256.authenticationCode(for: Array(purpose.utf8), key: $0.secret) }
    }

    public func key(id: String) -> Key? {
        self.keys.first { $0.id == id }
    }

    /// A new random 256-bit key in the `kid:secret` form.
    public static func generateKey() -> String {
        let id = "k" + Hex.encode(SecureRandom.bytes(4))
        return "\(id):\(Base64.encode(SecureRandom.bytes(32)))"
    }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 64 && id.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var text = self
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
