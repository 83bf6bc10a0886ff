/// An error from the pool, a connection or PostgreSQL itself.
///
/// Server errors carry the fields PostgreSQL sends (SQLSTATE, message, detail, constraint …) so
/// callers can map, say, a unique violation on a named constraint to a domain error.
public struct PostgresError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case server
            case connectionFailed
            case connectionClosed
            case acquireTimeout
            case poolClosed
            case cancelled
            case invalidParameter
            case decoding
            case protocolViolation
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// PostgreSQL reported an error; `sqlState` says which.
        public static let server = Code(.server)
        /// A new connection could not be established.
        public static let connectionFailed = Code(.connectionFailed)
        /// The connection broke while the request was on it.
        public static let connectionClosed = Code(.connectionClosed)
        /// No connection became free within the pool's acquire timeout.
        public static let acquireTimeout = Code(.acquireTimeout)
        /// The pool is shutting down or shut down.
        public static let poolClosed = Code(.poolClosed)
        /// The request was cancelled before it ran or while it ran.
        public static let cancelled = Code(.cancelled)
        /// A bound parameter cannot be sent (for example text containing a NUL byte).
        public static let invalidParameter = Code(.invalidParameter)
        /// A column could not be decoded into the requested Swift type.
        public static let decoding = Code(.decoding)
        /// libpq returned something the pool did not expect.
        public static let protocolViolation = Code(.protocolViolation)

        public var description: String { self.base.rawValue }
    }

    public var code: Code
    /// Five-character SQLSTATE for server errors (`23505` unique violation, …).
    public var sqlState: String?
    /// Primary human-readable message.
    public var message: String
    public var detail: String?
    public var hint: String?
    public var constraint: String?
    public var table: String?
    public var column: String?
    public var schema: String?
    /// For a failure inside a batch: which of the batch's statements failed (0-based).
    public var statementIndex: Int?

    public init(
        code: Code,
        message: String,
        sqlState: String? = nil,
        detail: String? = nil,
        hint: String? = nil,
        constraint: String? = nil,
        table: String? = nil,
        column: String? = nil,
        schema: String? = nil
    ) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.constraint = constraint
        self.table = table
        self.column = column
        self.schema = schema
    }

    public var description: String {
        var text = "PostgresError(\(self.code)"
        if let sqlState { text += ", \(sqlState)" }
        text += "): \(self.message)"
        if let detail { text += " — \(detail)" }
        return text
    }
}

extension PostgresError {
    /// SQLSTATE classes and codes the layers above branch on.
    public enum SQLState {
        public static let uniqueViolation = "23505"
        public static let foreignKeyViolation = "23503"
        public static let checkViolation = "23514"
        public static let notNullViolation = "23502"
        public static let serializationFailure = "40001"
        public static let deadlockDetected = "40P01"
        public static let lockNotAvailable = "55P03"
        public static let queryCanceled = "57014"
        public static let adminShutdown = "57P01"
        public static let insufficientPrivilege = "42501"
        public static let inFailedTransaction = "25P02"
        public static let invalidTextRepresentation = "22P02"
    }

    /// True when the error is PostgreSQL's with the given SQLSTATE.
    public func isServer(_ sqlState: String) -> Bool {
        self.code == .server && self.sqlState == sqlState
    }

    static func connectionClosed(_ message: String) -> PostgresError {
        PostgresError(code: .connectionClosed, message: message)
    }

    static let poolClosed = PostgresError(code: .poolClosed, message: "the connection pool is closed")
    static let cancelled = PostgresError(code: .cancelled, message: "the request was cancelled")
}
