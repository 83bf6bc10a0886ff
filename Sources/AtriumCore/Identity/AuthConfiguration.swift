public import AtriumCrypto

/// Lifetimes and limits of identity and sessions.
public struct AuthConfiguration: Sendable {
    /// Signs and verifies access tokens.
    public var keyRing: TokenKeyRing
    /// `iss` of access tokens.
    public var issuer: String
    public var accessTokenLifetime: Duration
    /// A session (and its refresh tokens) ends this long after sign-in at the latest.
    public var sessionLifetime: Duration
    /// How long after a rotation the replaced refresh token still counts as a retry.
    public var refreshGracePeriod: Duration
    public var invitationLifetime: Duration
    /// scrypt parameters for new password hashes.
    public var passwordParameters: Scrypt.Parameters
    /// Concurrent password hashes (about one per core) and how many may wait.
    public var hashingPermits: Int
    public var hashingQueue: Int
    /// The mail flows: where their links point and how long their tokens live.
    public var mail: AccountMailConfiguration

    public init(
        keyRing: TokenKeyRing,
        issuer: String = "atrium",
        accessTokenLifetime: Duration = .seconds(15 * 60),
        sessionLifetime: Duration = .seconds(30 * 24 * 3600),
        refreshGracePeriod: Duration = .seconds(10),
        invitationLifetime: Duration = .seconds(7 * 24 * 3600),
        passwordParameters: Scrypt.Parameters = .recommended,
        hashingPermits: Int,
        hashingQueue: Int = 8,
        mail: AccountMailConfiguration = AccountMailConfiguration()
    ) {
        self.keyRing = keyRing
        self.issuer = issuer
        self.accessTokenLifetime = accessTokenLifetime
        self.sessionLifetime = sessionLifetime
        self.refreshGracePeriod = refreshGracePeriod
        self.invitationLifetime = invitationLifetime
        self.passwordParameters = passwordParameters
        self.hashingPermits = hashingPermits
        self.hashingQueue = hashingQueue
        self.mail = mail
    }
}

extension Duration {
    /// The duration in seconds, fractions included.
    public var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The duration in whole nanoseconds (for APIs that take them).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = self.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
