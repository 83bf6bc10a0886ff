public import Foundation

/// One mail as the outbox holds it: written in the transaction that caused it, rendered to MIME
/// only when sent.
public struct OutgoingMail: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case verifyEmail = "verify_email"
        case passwordReset = "password_reset"
        case emailChange = "email_change"
        case emailChangeNotice = "email_change_notice"
    }

    public var id: UUID
    /// The tenant the mail speaks for, if any.
    public var tenant: UUID?
    public var kind: Kind
    public var recipient: String
    public var subject: String
    public var text: String
    public var html: String

    public init(id: UUID, tenant: UUID?, kind: Kind, recipient: String, subject: String, text: String, html: String) {
        self.id = id
        self.tenant = tenant
        self.kind = kind
        self.recipient = recipient
        self.subject = subject
        self.text = text
        self.html = html
    }
}

/// A mail leased from the outbox for one attempt.
public struct ClaimedMail: Sendable {
    public var mail: OutgoingMail
    public var lease: UUID
    /// Attempts made before this one.
    public var attempts: Int
    public var createdAt: Date
}

/// How an attempt ended.
public struct MailOutcome: Sendable {
    public enum Kind: Sendable, Equatable {
        case sent
        /// Worth trying again (a connection failure, a 4xx answer).
        case transient
        /// Refused for good (a 5xx answer to the sender, the recipient or the content).
        case permanent
    }

    public var mailID: UUID
    public var lease: UUID
    public var kind: Kind
    public var error: String?

    public init(mailID: UUID, lease: UUID, kind: Kind, error: String? = nil) {
        self.mailID = mailID
        self.lease = lease
        self.kind = kind
        self.error = error
    }
}
