/// A member's role in a tenant. Each role can do everything the ones below it can.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Reads tenant data.
    case viewer
    /// Reads and writes tenant data.
    case member
    /// Manages members, invitations, API keys and collections.
    case admin
    /// Everything, including deleting the tenant and naming other owners.
    case owner

    private var rank: Int {
        switch self {
        case .viewer: 0
        case .member: 1
        case .admin: 2
        case .owner: 3
        }
    }

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }

    /// Whether this role includes `required`.
    public func allows(_ required: Role) -> Bool { self >= required }
}

extension Role {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let role = Role(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be one of owner, admin, member, viewer")
        }
        self = role
    }
}
