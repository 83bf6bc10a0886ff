#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// Who is making a request, established from a verified credential.
public struct Principal: Sendable, Hashable {
    public enum Credential: Sendable, Hashable {
        /// A signed-in user, through an access token of a session.
        case session(userID: UUID, sessionID: UUID)
        /// A server, through an API key.
        case apiKey(keyID: UUID)
    }

    public let tenant: TenantContext
    public let role: Role
    public let credential: Credential

    public init(tenant: TenantContext, role: Role, credential: Credential) {
        self.tenant = tenant
        self.role = role
        self.credential = credential
    }

    public var userID: UUID? {
        if case .session(let userID, _) = self.credential { return userID }
        return nil
    }

    public var sessionID: UUID? {
        if case .session(_, let sessionID) = self.credential { return sessionID }
        return nil
    }

    public var apiKeyID: UUID? {
        if case .apiKey(let keyID) = self.credential { return keyID }
        return nil
    }
}

/// Facts about the request behind an action, for throttling and the audit trail.
public struct RequestOrigin: Sendable, Hashable {
    public var clientAddress: String
    public var requestID: String
    public var userAgent: String?

    public init(clientAddress: String, requestID: String, userAgent: String? = nil) {
        self.clientAddress = clientAddress
        self.requestID = requestID
        self.userAgent = userAgent.map { String($0.prefix(512)) }
    }
}
