import Foundation

/// Compact JWS with HS256 only (RFC 7515/7518): `base64url(header).base64url(payload).base64url(mac)`.
///
/// Verification checks the header's `alg` and `kid`, then the MAC with `CRYPTO_memcmp`; only a
/// verified payload is handed back. Nothing in the payload is looked at before that.
public enum CompactJWS {
    /// Why a token was refused, for logs and metrics (callers answer 401 whatever the reason).
    public enum Rejection: String, Error, Sendable {
        case malformed
        case unsupportedAlgorithm
        case unknownKey
        case badSignature
    }

    public static func sign(payload: [UInt8], with ring: TokenKeyRing) -> String {
        let key = ring.signingKey
        let header = #"{"alg":"HS256","kid":"\#(key.id)","typ":"JWT"}"#
        let signingInput = Base64.encode(Array(header.utf8)) + "." + Base64.encode(payload)
        let mac = HMACSHA256.authenticationCode(for: Array(signingInput.utf8), key: key.secret)
        return signingInput + "." + Base64.encode(mac)
    }

    /// The payload bytes of a token whose header and signature check out.
    public static func verify(_ token: String, with ring: TokenKeyRing) -> Result<[UInt8], Rejection> {
        // Bound the work an attacker can ask for before anything is checked.
        guard token.utf8.count <= 8192 else { return .failure(.malformed) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty, !parts[2].isEmpty,
              let headerBytes = Base64.decode(parts[0]),
              let header = try? JSONSerialization.jsonObject(with: Data(headerBytes)) as? [String: Any]
        else { return .failure(.malformed) }
        guard header["alg"] as? String == "HS256", header["crit"] == nil else {
            return .failure(.unsupportedAlgorithm)
        }
        guard let keyID = header["kid"] as? String, let key = ring.key(id: keyID) else {
            return .failure(.unknownKey)
        }
        guard let signature = Base64.decode(parts[2]), signature.count == 32 else {
            return .failure(.badSignature)
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        let expected = HMACSHA256.authenticationCode(for: signingInput, key: key.secret)
        guard constantTimeEquals(expected, signature) else { return .failure(.badSignature) }
        guard let payload = Base64.decode(parts[1]) else { return .failure(.malformed) }
        return .success(payload)
    }
}
