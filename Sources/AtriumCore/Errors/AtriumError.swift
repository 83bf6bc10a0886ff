/// A failure the caller should be told about (as opposed to a bug): wrong credentials, no
/// permission, not found, a conflict, invalid input, too many attempts, overload.
///
/// The HTTP layer maps each code to a status and problem type in one place.
public struct AtriumError: Error, Sendable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case unauthenticated, invalidCredentials, forbidden, notFound, conflict, validation
            case throttled, overloaded, unavailable, preconditionFailed, gone, badRequest
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// No usable credential (missing, malformed, expired, revoked).
        public static let unauthenticated = Code(.unauthenticated)
        /// Email and password do not match (the same answer whether or not the email exists).
        public static let invalidCredentials = Code(.invalidCredentials)
        /// Authenticated, but the role is not enough.
        public static let forbidden = Code(.forbidden)
        /// Nothing with that id in this tenant (also what another tenant's ids get).
        public static let notFound = Code(.notFound)
        /// Clashes with existing state (email taken, last owner, …); `reason` says which.
        public static let conflict = Code(.conflict)
        /// Input fails validation; `fields` lists every failure.
        public static let validation = Code(.validation)
        /// Too many attempts; retry after `retryAfter` seconds.
        public static let throttled = Code(.throttled)
        /// The server is saturated (password hashing queue full); retry after `retryAfter` seconds.
        public static let overloaded = Code(.overloaded)
        /// The database is out of reach or every connection is busy past the acquire timeout;
        /// retry after `retryAfter` seconds. `cause` says which, for the log.
        public static let unavailable = Code(.unavailable)
        /// An `If-Match` precondition did not hold.
        public static let preconditionFailed = Code(.preconditionFailed)
        /// The thing existed but is no longer usable (an accepted or expired invitation).
        public static let gone = Code(.gone)
        /// The request is malformed (a query parameter, a cursor); `fields` names the parts.
        public static let badRequest = Code(.badRequest)

        public var description: String { self.base.rawValue }
    }

    /// One failing input field: a JSON pointer (`/email`) or parameter name, and why.
    public struct FieldFailure: Sendable, Hashable {
        public let field: String
        public let reason: String
        public init(field: String, reason: String) {
            self.field = field
            self.reason = reason
        }
    }

    public let code: Code
    public let message: String
    /// A stable machine-readable reason for conflicts (`email_taken`, `last_owner`, …).
    public var reason: String?
    public var fields: [FieldFailure] = []
    public var retryAfter: Int?
    /// What went wrong underneath, for the log only (never sent to the client).
    public var cause: String?
    /// Further members of the problem document the client needs (a sign-in's MFA `challenge`).
    public var extensions: [String: JSONValue] = [:]

    public init(_ code: Code, _ message: String, reason: String? = nil, fields: [FieldFailure] = [], retryAfter: Int? = nil, cause: String? = nil) {
        self.code = code
        self.message = message
        self.reason = reason
        self.fields = fields
        self.retryAfter = retryAfter
        self.cause = cause
    }

    public var description: String { "\(self.code): \(self.message)" }

    public static func notFound(_ what: String) -> AtriumError {
        AtriumError(.notFound, "\(what) not found")
    }

    public static func forbidden(_ required: Role) -> AtriumError {
        AtriumError(.forbidden, "this needs the \(required.rawValue) role or higher")
    }

    /// Invalid input. At most `maximumListedFailures` are listed (a body with thousands of
    /// unknown keys must not make a response as large as itself); the message gives the total.
    public static func invalid(_ fields: [FieldFailure]) -> AtriumError {
        let message = fields.count == 1 ? "1 field is invalid" : "\(fields.count) fields are invalid"
        guard fields.count > Self.maximumListedFailures else { return AtriumError(.validation, message, fields: fields) }
        return AtriumError(
            .validation, message + "; the first \(Self.maximumListedFailures) are listed",
            fields: Array(fields.prefix(Self.maximumListedFailures))
        )
    }

    /// Most field failures one error lists.
    public static let maximumListedFailures = 100

    public static let unauthenticated = AtriumError(.unauthenticated, "a valid access token or API key is required")
}
