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
    static let fields = Fields.object(["currentPassword": nil, "newPassword": nil])
}

struct CreateTenantRequest: StrictDecodable {
    let name: String
    let slug: String?
    static let fields = Fields.object(["name": nil, "slug": nil])
}

struct UpdateTenantRequest: StrictDecodable {
    let name: String?
    let slug: String?
    static let fields = Fields.object(["name": nil, "slug": nil])
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
