public import Foundation

/// An access token and the refresh token that renews it.
public struct TokenPair: Sendable, Hashable {
    public init(accessToken: String, accessTokenExpiresAt: Date, expiresIn: Int, refreshToken: String, sessionID: UUID) {
        self.accessToken = accessToken
        self.accessTokenExpiresAt = accessTokenExpiresAt
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
        self.sessionID = sessionID
    }

    public let accessToken: String
    public let accessTokenExpiresAt: Date
    /// Seconds the access token is valid for from when it was issued.
    public var expiresIn: Int
    public let refreshToken: String
    public let sessionID: UUID
}

/// A tenant as one of its members sees it in lists.
public struct TenantMembership: Sendable, Hashable {
    public let tenantID: UUID
    public let name: String
    public let slug: String
    public let role: Role
}

/// A tenant's own record.
public struct Tenant: Sendable, Hashable {
    public let id: UUID
    public let name: String
    public let slug: String
    /// Members must have verified their email to sign in to it.
    public let requireVerifiedEmail: Bool
    public let createdAt: Date
    public let updatedAt: Date
}

/// A user's profile.
public struct UserProfile: Sendable, Hashable {
    public let id: UUID
    public let email: String
    public let createdAt: Date
    /// Whether the user proved they receive mail at `email`.
    public var emailVerified: Bool = false
    /// Whether sign-in needs a second factor (TOTP).
    public var mfaEnabled: Bool = false
}

/// What signing in (or up, or switching, or accepting an invitation) yields.
public struct SignIn: Sendable {
    public let user: UserProfile
    /// The tenant the tokens act in.
    public let tenant: TenantMembership
    /// Every tenant the user belongs to.
    public let tenants: [TenantMembership]
    public let tokens: TokenPair
}

/// A member of a tenant.
public struct Member: Sendable, Hashable {
    public let userID: UUID
    public let email: String
    public let role: Role
    public let joinedAt: Date
    public let disabled: Bool
}

/// An invitation as its tenant's admins see it (never with its token).
public struct Invitation: Sendable, Hashable {
    public enum Status: String, Sendable {
        case pending, accepted, revoked, expired
    }

    public let id: UUID
    public let email: String
    public let role: Role
    public let status: Status
    public let createdAt: Date
    public let expiresAt: Date
    public let invitedBy: UUID?
}

/// An API key as its tenant's admins see it (never with its secret).
public struct APIKey: Sendable, Hashable {
    public let id: UUID
    public let name: String
    public let role: Role
    public let prefix: String
    public let createdAt: Date
    public let expiresAt: Date?
    public let revokedAt: Date?
    public let lastUsedAt: Date?
    public let createdBy: UUID?
}

/// Prefixes of the opaque secrets, so a leaked one is recognisable (and scanners can find them).
enum SecretPrefix {
    static let refreshToken = "art_"
    static let apiKey = "atk_"
    static let invitation = "inv_"
    static let verifyEmail = "atv_"
    static let passwordReset = "atp_"
    static let emailChange = "ate_"
}
