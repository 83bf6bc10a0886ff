import AtriumCore

/// JSON shapes of identity resources (camelCase, keys in alphabetical order), kept apart from
/// the domain types.
struct UserJSON: JSONRepresentable {
    let user: UserProfile

    init(_ user: UserProfile) { self.user = user }

    var json: JSONValue {
        .fields([
            "createdAt": .date(self.user.createdAt), "email": .string(self.user.email),
            "emailVerified": .bool(self.user.emailVerified), "id": .id(self.user.id), "mfaEnabled": .bool(self.user.mfaEnabled),
        ])
    }
}

struct MembershipJSON: JSONRepresentable {
    let membership: TenantMembership

    init(_ membership: TenantMembership) { self.membership = membership }

    var json: JSONValue {
        .fields([
            "id": .id(self.membership.tenantID),
            "name": .string(self.membership.name),
            "role": .string(self.membership.role.rawValue),
            "slug": .string(self.membership.slug),
        ])
    }
}

struct TenantJSON: JSONRepresentable {
    let tenant: Tenant

    init(_ tenant: Tenant) { self.tenant = tenant }

    var json: JSONValue {
        .fields([
            "createdAt": .date(self.tenant.createdAt),
            "id": .id(self.tenant.id),
            "name": .string(self.tenant.name),
            "requireVerifiedEmail": .bool(self.tenant.requireVerifiedEmail),
            "slug": .string(self.tenant.slug),
            "updatedAt": .date(self.tenant.updatedAt),
        ])
    }
}

struct TokensJSON: JSONRepresentable {
    let pair: TokenPair

    init(_ pair: TokenPair) { self.pair = pair }

    var json: JSONValue {
        .fields([
            "accessToken": .string(self.pair.accessToken),
            "accessTokenExpiresAt": .date(self.pair.accessTokenExpiresAt),
            "expiresIn": .integer(self.pair.expiresIn),
            "refreshToken": .string(self.pair.refreshToken),
            "tokenType": .string("Bearer"),
        ])
    }
}

struct SignInJSON: JSONRepresentable {
    let signIn: SignIn

    init(_ signIn: SignIn) { self.signIn = signIn }

    var json: JSONValue {
        .fields([
            "tenant": MembershipJSON(self.signIn.tenant).json,
            "tenants": .array(self.signIn.tenants.map { MembershipJSON($0).json }),
            "tokens": TokensJSON(self.signIn.tokens).json,
            "user": UserJSON(self.signIn.user).json,
        ])
    }
}

struct MeJSON: JSONRepresentable {
    let user: UserProfile
    /// The tenant the credential is for.
    let current: TenantMembership?
    let tenants: [TenantMembership]

    var json: JSONValue {
        .fields([
            "tenant": self.current.map { MembershipJSON($0).json },
            "tenants": .array(self.tenants.map { MembershipJSON($0).json }),
            "user": UserJSON(self.user).json,
        ])
    }
}

struct MemberJSON: JSONRepresentable {
    let member: Member

    init(_ member: Member) { self.member = member }

    var json: JSONValue {
        .fields([
            "disabled": .bool(self.member.disabled),
            "email": .string(self.member.email),
            "joinedAt": .date(self.member.joinedAt),
            "role": .string(self.member.role.rawValue),
            "userId": .id(self.member.userID),
        ])
    }
}

struct InvitationJSON: JSONRepresentable {
    let invitation: Invitation
    /// Only in the response that creates the invitation.
    let token: String?

    init(_ invitation: Invitation, token: String? = nil) {
        self.invitation = invitation
        self.token = token
    }

    var json: JSONValue {
        .fields([
            "createdAt": .date(self.invitation.createdAt),
            "email": .string(self.invitation.email),
            "expiresAt": .date(self.invitation.expiresAt),
            "id": .id(self.invitation.id),
            "invitedBy": self.invitation.invitedBy.map { .id($0) },
            "role": .string(self.invitation.role.rawValue),
            "status": .string(self.invitation.status.rawValue),
            "token": self.token.map { .string($0) },
        ])
    }
}

struct APIKeyJSON: JSONRepresentable {
    let key: APIKey
    /// Only in the response that creates the key.
    let secret: String?

    init(_ key: APIKey, secret: String? = nil) {
        self.key = key
        self.secret = secret
    }

    var json: JSONValue {
        .fields([
            "createdAt": .date(self.key.createdAt),
            "createdBy": self.key.createdBy.map { .id($0) },
            "expiresAt": self.key.expiresAt.map { .date($0) },
            "id": .id(self.key.id),
            "lastUsedAt": self.key.lastUsedAt.map { .date($0) },
            "name": .string(self.key.name),
            "prefix": .string(self.key.prefix),
            "revokedAt": self.key.revokedAt.map { .date($0) },
            "role": .string(self.key.role.rawValue),
            "secret": self.secret.map { .string($0) },
        ])
    }
}
