import AtriumCore
import AtriumText
import Foundation

/// JSON shapes of identity resources (camelCase), kept apart from the domain types.
struct UserJSON: Encodable {
    let id: String
    let email: String
    let createdAt: Date

    init(_ user: UserProfile) {
        self.id = user.id.lowercasedString
        self.email = user.email
        self.createdAt = user.createdAt
    }
}

struct MembershipJSON: Encodable {
    let id: String
    let name: String
    let slug: String
    let role: Role

    init(_ membership: TenantMembership) {
        self.id = membership.tenantID.lowercasedString
        self.name = membership.name
        self.slug = membership.slug
        self.role = membership.role
    }
}

struct TenantJSON: Encodable {
    let id: String
    let name: String
    let slug: String
    let createdAt: Date
    let updatedAt: Date

    init(_ tenant: Tenant) {
        self.id = tenant.id.lowercasedString
        self.name = tenant.name
        self.slug = tenant.slug
        self.createdAt = tenant.createdAt
        self.updatedAt = tenant.updatedAt
    }
}

struct TokensJSON: Encodable {
    let tokenType = "Bearer"
    let accessToken: String
    let expiresIn: Int
    let accessTokenExpiresAt: Date
    let refreshToken: String

    init(_ pair: TokenPair) {
        self.accessToken = pair.accessToken
        self.accessTokenExpiresAt = pair.accessTokenExpiresAt
        self.expiresIn = pair.expiresIn
        self.refreshToken = pair.refreshToken
    }
}

struct SignInJSON: Encodable {
    let user: UserJSON
    let tenant: MembershipJSON
    let tenants: [MembershipJSON]
    let tokens: TokensJSON

    init(_ signIn: SignIn) {
        self.user = UserJSON(signIn.user)
        self.tenant = MembershipJSON(signIn.tenant)
        self.tenants = signIn.tenants.map(MembershipJSON.init)
        self.tokens = TokensJSON(signIn.tokens)
    }
}

struct MemberJSON: Encodable {
    let userId: String
    let email: String
    let role: Role
    let joinedAt: Date
    let disabled: Bool

    init(_ member: Member) {
        self.userId = member.userID.lowercasedString
        self.email = member.email
        self.role = member.role
        self.joinedAt = member.joinedAt
        self.disabled = member.disabled
    }
}

struct InvitationJSON: Encodable {
    let id: String
    let email: String
    let role: Role
    let status: String
    let createdAt: Date
    let expiresAt: Date
    let invitedBy: String?
    /// Only in the response that creates the invitation.
    let token: String?

    init(_ invitation: Invitation, token: String? = nil) {
        self.id = invitation.id.lowercasedString
        self.email = invitation.email
        self.role = invitation.role
        self.status = invitation.status.rawValue
        self.createdAt = invitation.createdAt
        self.expiresAt = invitation.expiresAt
        self.invitedBy = invitation.invitedBy?.lowercasedString
        self.token = token
    }
}

struct APIKeyJSON: Encodable {
    let id: String
    let name: String
    let role: Role
    let prefix: String
    let createdAt: Date
    let expiresAt: Date?
    let revokedAt: Date?
    let lastUsedAt: Date?
    let createdBy: String?
    /// Only in the response that creates the key.
    let secret: String?

    init(_ key: APIKey, secret: String? = nil) {
        self.id = key.id.lowercasedString
        self.name = key.name
        self.role = key.role
        self.prefix = key.prefix
        self.createdAt = key.createdAt
        self.expiresAt = key.expiresAt
        self.revokedAt = key.revokedAt
        self.lastUsedAt = key.lastUsedAt
        self.createdBy = key.createdBy?.lowercasedString
        self.secret = secret
    }
}

/// `{"data": [...]}`: lists are wrapped so fields (a cursor) can be added without breaking clients.
struct ListJSON<Item: Encodable>: Encodable {
    let data: [Item]
}
