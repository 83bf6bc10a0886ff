import AtriumCore
import Foundation

struct SignUpRequest: StrictDecodable {
    struct TenantInput: Decodable {
        let name: String
        let slug: String?
    }

    let email: String
    let password: String
    let tenant: TenantInput

    static let fields = Fields.object(["email": nil, "password": nil, "tenant": .object(["name": nil, "slug": nil])])
}

struct SignInRequest: StrictDecodable {
    let email: String
    let password: String
    let tenant: String?

    static let fields = Fields.object(["email": nil, "password": nil, "tenant": nil])
}

struct RefreshRequest: StrictDecodable {
    let refreshToken: String
    static let fields = Fields.object(["refreshToken": nil])
}

struct SwitchRequest: StrictDecodable {
    let tenant: String
    static let fields = Fields.object(["tenant": nil])
}

struct PasswordChangeRequest: StrictDecodable {
    let currentPassword: String
    let newPassword: String
    /// With two-factor sign-in on: a TOTP code or a recovery code.
    let code: String?
    static let fields = Fields.object(["code": nil, "currentPassword": nil, "newPassword": nil])
}

struct CreateTenantRequest: StrictDecodable {
    let name: String
    let slug: String?
    static let fields = Fields.object(["name": nil, "slug": nil])
}

struct UpdateTenantRequest: StrictDecodable {
    let name: String?
    let slug: String?
    let requireVerifiedEmail: Bool?
    static let fields = Fields.object(["name": nil, "requireVerifiedEmail": nil, "slug": nil])
}

struct RoleChangeRequest: StrictDecodable {
    let role: Role
    static let fields = Fields.object(["role": nil])
}

struct InvitationRequest: StrictDecodable {
    let email: String
    let role: Role
    static let fields = Fields.object(["email": nil, "role": nil])
}

struct AcceptInvitationRequest: StrictDecodable {
    let token: String
    let password: String?
    static let fields = Fields.object(["token": nil, "password": nil])
}

struct APIKeyRequest: StrictDecodable {
    let name: String
    let role: Role
    let expiresAt: Date?
    static let fields = Fields.object(["name": nil, "role": nil, "expiresAt": nil])
}

/// A mail flow's proof: the token from the link, or the address the mail went to and its code.
struct FlowProofRequest: StrictDecodable {
    let token: String?
    let email: String?
    let code: String?
    static let fields = Fields.object(["code": nil, "email": nil, "token": nil])

    var proof: AuthService.FlowProof {
        get throws { try Self.proof(token: self.token, email: self.email, code: self.code) }
    }

    static func proof(token: String?, email: String?, code: String?) throws -> AuthService.FlowProof {
        switch (token, email, code) {
        case (let token?, nil, nil): return .token(token)
        case (nil, let email?, let code?): return .code(email: email, code: code)
        default:
            throw AtriumError.invalid([.init(field: "/", reason: "give either token, or email and code")])
        }
    }
}

struct ForgotPasswordRequest: StrictDecodable {
    let email: String
    let tenant: String?
    static let fields = Fields.object(["email": nil, "tenant": nil])
}

struct ResetPasswordRequest: StrictDecodable {
    let token: String?
    let email: String?
    let code: String?
    let newPassword: String
    static let fields = Fields.object(["code": nil, "email": nil, "newPassword": nil, "token": nil])
}

struct EmailChangeRequest: StrictDecodable {
    let newEmail: String
    let currentPassword: String
    let code: String?
    static let fields = Fields.object(["code": nil, "currentPassword": nil, "newEmail": nil])
}

struct MFAChallengeRequest: StrictDecodable {
    let challenge: String
    let code: String?
    let recoveryCode: String?
    static let fields = Fields.object(["challenge": nil, "code": nil, "recoveryCode": nil])
}

struct TOTPConfirmRequest: StrictDecodable {
    let code: String
    static let fields = Fields.object(["code": nil])
}

struct TOTPDisableRequest: StrictDecodable {
    let currentPassword: String
    let code: String
    static let fields = Fields.object(["code": nil, "currentPassword": nil])
}
