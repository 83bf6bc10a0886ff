public import AtriumCrypto
public import Foundation
public import Logging
import PostgresPool

/// Identity and tenancy: sign-up, sign-in, sessions and tokens, tenants, members,
/// invitations and API keys. Each area lives in an `AuthService+Area.swift` extension.
public final class AuthService: Sendable {
    let database: Database
    public let configuration: AuthConfiguration
    public let hasher: PasswordHasher
    public let accessTokens: AccessTokens
    public let revocations: RevocationSet
    let logger: Logger

    public init(database: Database, configuration: AuthConfiguration, revocations: RevocationSet, logger: Logger) {
        self.database = database
        self.configuration = configuration
        self.revocations = revocations
        self.hasher = PasswordHasher(
            parameters: configuration.passwordParameters,
            permits: configuration.hashingPermits,
            queueLimit: configuration.hashingQueue
        )
        self.accessTokens = AccessTokens(configuration: configuration, revocations: revocations)
        self.logger = logger
    }

    /// The throttling key for an email: its lower-cased SHA-256, whether or not the user exists.
    static func accountKey(_ email: String) -> String {
        Hex.encode(SHA256.hash(email.lowercased()))
    }

    /// Runs password hashing, turning a full hashing queue into a retryable overload.
    func hashing<T>(_ work: () async throws -> T) async throws -> T {
        do {
            return try await work()
        } catch is BoundedExecutor.Overloaded {
            throw AtriumError(.overloaded, "too many sign-ins at once; retry shortly", retryAfter: 1)
        }
    }

    /// Starts a session in `tenant` for `user`: the statements that create it (to pipeline with
    /// others) and the tokens it will have once they commit.
    func newSession(user: UUID, tenant: UUID, role: Role, origin: RequestOrigin, now: Date = Date()) -> (statements: [PostgresQuery], tokens: TokenPair) {
        let session = SecureRandom.uuid()
        let refreshToken = RandomToken.make(prefix: SecretPrefix.refreshToken)
        let expiresAt = now.addingTimeInterval(self.configuration.sessionLifetime.seconds)
        let access = self.accessTokens.issue(user: user, tenant: tenant, role: role, session: session, now: now)
        let statements: [PostgresQuery] = [
            """
            INSERT INTO atrium.sessions (tenant_id, session_id, user_id, expires_at, client_address, user_agent)
            VALUES (\(tenant), \(session), \(user), \(expiresAt), \(origin.clientAddress), \(origin.userAgent))
            """,
            "INSERT INTO atrium.refresh_tokens (tenant_id, token_hash, session_id) VALUES (\(tenant), \(RandomToken.digest(refreshToken)), \(session))",
        ]
        return (statements, TokenPair(accessToken: access.token, accessTokenExpiresAt: access.expiresAt, expiresIn: Int(self.configuration.accessTokenLifetime.seconds), refreshToken: refreshToken, sessionID: session))
    }

    /// The tenants `user` belongs to.
    func memberships(of user: UUID) async throws -> [TenantMembership] {
        let rows = try await self.database.unscopedTransaction(["SELECT tenant_id, name, slug, role FROM atrium.auth_user_tenants(\(user))"])[0]
        return try rows.map(Self.membership)
    }

    static func membership(_ row: PostgresRow) throws -> TenantMembership {
        let (id, name, slug, role) = try row.decode((UUID, String, String, String).self)
        return TenantMembership(tenantID: id, name: name, slug: slug, role: Role(rawValue: role) ?? .viewer)
    }

    /// The user's profile.
    func profile(of user: UUID) async throws -> UserProfile {
        let rows = try await self.database.unscopedTransaction([
            """
            SELECT u.user_id, u.email, u.created_at, atrium.auth_user_verification(u.user_id),
                   EXISTS (SELECT 1 FROM atrium.auth_mfa_state(u.user_id) m WHERE m.confirmed)
            FROM atrium.auth_user(\(user)) u
            """,
        ])[0]
        guard let row = rows.single else { throw AtriumError.unauthenticated }
        let (id, email, createdAt, verified, mfa) = try row.decode((UUID, String, Date, Bool, Bool).self)
        return UserProfile(id: id, email: email, createdAt: createdAt, emailVerified: verified, mfaEnabled: mfa)
    }
}

extension Principal {
    /// Fails unless the principal's role includes `required`.
    public func require(_ required: Role) throws {
        guard self.role.allows(required) else { throw AtriumError.forbidden(required) }
    }

    /// The signed-in user, for actions API keys cannot take.
    public func requireUser() throws -> (user: UUID, session: UUID) {
        guard case .session(let user, let session) = self.credential else {
            throw AtriumError(.forbidden, "this needs a signed-in user; API keys cannot do it")
        }
        return (user, session)
    }
}
