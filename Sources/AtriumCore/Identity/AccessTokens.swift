import AtriumCrypto
import AtriumText
public import Foundation
import Synchronization

/// Issues and checks access tokens: compact JWS (HS256) carrying issuer, subject (user),
/// tenant, role, session id, issued-at and expiry.
public struct AccessTokens: Sendable {
    let configuration: AuthConfiguration
    let revocations: RevocationSet
    let verified = VerifiedTokens()

    public init(configuration: AuthConfiguration, revocations: RevocationSet) {
        self.configuration = configuration
        self.revocations = revocations
    }

    /// The payload. Ids are lower-case UUID strings.
    struct Claims: Codable, Equatable {
        let iss: String
        let sub: String
        let tid: String
        let role: Role
        let sid: String
        let iat: Int64
        let exp: Int64
    }

    /// A signed access token for a session, and when it expires.
    public func issue(user: UUID, tenant: UUID, role: Role, session: UUID, now: Date = Date()) -> (token: String, expiresAt: Date) {
        let issuedAt = Int64(now.timeIntervalSince1970)
        let expiresAt = issuedAt + Int64(self.configuration.accessTokenLifetime.seconds)
        let claims = Claims(
            iss: self.configuration.issuer,
            sub: user.lowercasedString,
            tid: tenant.lowercasedString,
            role: role,
            sid: session.lowercasedString,
            iat: issuedAt,
            exp: expiresAt
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        // Encoding a struct of UUIDs, strings and integers cannot fail.
        let payload = try! encoder.encode(claims)
        return (CompactJWS.sign(payload: Array(payload), with: self.configuration.keyRing), Date(timeIntervalSince1970: Double(expiresAt)))
    }

    /// Why a token was refused (the caller is refused the same way whatever it is; this is for logs and metrics).
    public enum Rejection: String, Error, Sendable {
        case malformed, unsupportedAlgorithm, unknownKey, badSignature, invalidClaims, wrongIssuer, expired, notYetValid, revoked
    }

    /// The principal of a valid token. The signature is checked before any claim is read, and
    /// nothing here touches the database.
    public func verify(_ token: String, now: Date = Date()) -> Result<Principal, Rejection> {
        let seconds = Int64(now.timeIntervalSince1970)
        // A client sends the same token with every request for its 15 minutes: once its
        // signature and claims have been checked, only expiry and revocation can change.
        if let known = self.verified.lookup(token) {
            guard known.expiresAt > seconds else { return .failure(.expired) }
            guard !self.revocations.contains(known.session) else { return .failure(.revoked) }
            return .success(known.principal)
        }
        let payload: [UInt8]
        switch CompactJWS.verify(token, with: self.configuration.keyRing) {
        case .success(let verified): payload = verified
        case .failure(let rejection): return .failure(Rejection(rawValue: rejection.rawValue) ?? .malformed)
        }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: Data(payload)),
              let user = UUID(canonical: claims.sub), let tenant = UUID(canonical: claims.tid), let session = UUID(canonical: claims.sid)
        else {
            return .failure(.invalidClaims)
        }
        guard claims.iss == self.configuration.issuer else { return .failure(.wrongIssuer) }
        let principal = Principal(
            tenant: TenantContext(tenantID: tenant),
            role: claims.role,
            credential: .session(userID: user, sessionID: session)
        )
        let entry = VerifiedTokens.Entry(principal: principal, session: session, expiresAt: claims.exp)
        guard claims.exp > seconds else {
            // Remembered too: a client that keeps sending its expired token (or anyone replaying
            // one) is refused from the cache, not with a signature check and a JSON decode each
            // time — about 55 µs of server CPU a request, half of what a whole GET costs.
            self.verified.store(token, entry)
            return .failure(.expired)
        }
        // Allow a minute of clock skew between servers.
        guard claims.iat <= seconds + 60, claims.exp - claims.iat <= Int64(self.configuration.accessTokenLifetime.seconds) + 1 else {
            return .failure(.notYetValid)
        }
        guard !self.revocations.contains(session) else { return .failure(.revoked) }
        self.verified.store(token, entry)
        return .success(principal)
    }
}

extension AccessTokens {
    /// When a valid access token expires; nil for anything else (an API key, a bad token).
    public func expiry(of token: String, now: Date = Date()) -> Date? {
        // Checked first: the cache also remembers tokens refused as expired.
        guard case .success = self.verify(token, now: now), let entry = self.verified.lookup(token) else { return nil }
        return Date(timeIntervalSince1970: Double(entry.expiresAt))
    }
}

/// Tokens whose signature and claims were checked (valid, or refused only as expired), by their
/// exact text. Bounded: when full it starts over, which costs one signature check per token in use.
final class VerifiedTokens: Sendable {
    struct Entry: Sendable {
        let principal: Principal
        let session: UUID
        let expiresAt: Int64
    }

    static let capacity = 50_000
    private let entries = Mutex<[String: Entry]>([:])

    func lookup(_ token: String) -> Entry? {
        self.entries.withLock { $0[token] }
    }

    func store(_ token: String, _ entry: Entry) {
        self.entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[token] = entry
        }
    }
}
