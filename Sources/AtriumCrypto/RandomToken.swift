/// Opaque secrets (refresh tokens, API keys, invitation tokens): a readable prefix and 256
/// random bits in URL-safe base64. Only their SHA-256 is ever stored.
public enum RandomToken {
    /// `prefix` followed by 32 random bytes, e.g. `art_Q2x…`.
    public static func make(prefix: String) -> String {
        prefix + Base64.encode(SecureRandom.bytes(32))
    }

    /// The stored form: lower-case hex SHA-256 of the whole token.
    public static func digest(_ token: String) -> String {
        Hex.encode(SHA256.hash(token))
    }
}
